"""Work that splits into independent pieces (images, column blocks), spread over the engine's threads.

The pieces write disjoint parts of their output, so the result is the same whatever the number of
threads (:func:`rso_engine.backend.cpu_threads`, ``RSO_THREADS``); the kernels they run release the GIL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .backend import cpu_threads
from .cancel import cancellable, current_token

T = TypeVar("T")


def for_each(fn: Callable[[T], object], items: Iterable[T], threads: int | None = None) -> None:
    """Call ``fn`` on every item, on up to ``threads`` threads (default :func:`cpu_threads`); returns when
    all are done and re-raises the first error. Work running under a cancelled token
    (:mod:`rso_engine.cancel`) stops before the next item with ``Cancelled``."""
    items = list(items)
    token = current_token()
    if token is not None:
        inner = fn

        def fn(item):  # the pool's threads do not see the caller's token: hand it to them
            token.check()
            with cancellable(token):
                return inner(item)

    workers = min(threads or cpu_threads(), len(items))
    if workers <= 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="rso-engine") as pool:
        for _ in pool.map(fn, items):
            pass
