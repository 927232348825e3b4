"""Work that splits into independent pieces (images, channels, column blocks), spread over the engine's threads.

The pieces write disjoint parts of their output, so the result is the same whatever the number of
threads (:func:`rso_engine.backend.cpu_threads`, ``RSO_THREADS``); the kernels they run release the GIL.

The threads are one pool kept for the process (a per-weight batch pass splits a dozen layers, each a
fraction of a millisecond: a pool made per call would cost more than it saves). A piece that itself
splits (a kernel inside a cache build's chunk) runs its parts in its own thread: the pool is busy with
its siblings already, and waiting on it from inside it could deadlock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .backend import cpu_threads
from .cancel import cancellable, current_token

T = TypeVar("T")

_pools: list[tuple[int, ThreadPoolExecutor]] = []  # (threads, pool): the last is in use; made on first use,
_pool_lock = threading.Lock()  # a larger one added when more threads are asked for
_inside = threading.local()  # .active: this thread is running a piece


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool, with room for ``workers`` shares at once (a smaller one is left to finish what it
    was given, not shut down: another engine thread may be handing it work right now)."""
    with _pool_lock:
        if not _pools or _pools[-1][0] < workers:
            size = max(workers, os.cpu_count() or 1)
            _pools.append((size, ThreadPoolExecutor(size, thread_name_prefix="rso-engine")))
        return _pools[-1][1]


def _run_share(fn: Callable, share: list) -> None:
    _inside.active = True
    try:
        for item in share:
            fn(item)
    finally:
        _inside.active = False


def for_each(fn: Callable[[T], object], items: Iterable[T], threads: int | None = None) -> None:
    """Call ``fn`` on every item, on up to ``threads`` threads (default :func:`cpu_threads`); returns when
    all are done and re-raises the first error. Work running under a cancelled token
    (:mod:`rso_engine.cancel`) stops before the next item with ``Cancelled``. Called from inside another
    ``for_each``'s piece, the items run one after another in that piece's thread."""
    items = list(items)
    token = current_token()
    if token is not None:
        inner = fn

        def fn(item):  # the pool's threads do not see the caller's token: hand it to them
            token.check()
            with cancellable(token):
                return inner(item)

    workers = min(threads or cpu_threads(), len(items))
    if workers <= 1 or getattr(_inside, "active", False):
        for item in items:
            fn(item)
        return
    shares = [items[i::workers] for i in range(workers)]  # one task per thread: at most `workers` at once
    pool = _executor(workers)
    futures = [pool.submit(_run_share, fn, share) for share in shares[1:]]
    error = None
    try:
        _run_share(fn, shares[0])  # the caller's thread takes a share too
    except BaseException as exc:  # noqa: BLE001 - re-raised after the other shares have finished
        error = exc
    for f in futures:
        try:
            f.result()
        except BaseException as exc:  # noqa: BLE001
            error = error or exc
    if error is not None:
        raise error


def split(n: int, parts: int | None = None, minimum: int = 1) -> list[tuple[int, int]]:
    """``range(n)`` as up to ``parts`` (default :func:`cpu_threads`) contiguous (start, stop) ranges of at
    least ``minimum`` items each (fewer ranges where ``n`` is small)."""
    parts = max(1, min(parts or cpu_threads(), n // max(1, minimum)))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts) if bounds[i + 1] > bounds[i]]
