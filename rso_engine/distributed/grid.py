"""Independent chunks of work as Dask tasks, results in order: the points of a loss surface, for example.

:func:`map_chunks` splits ``items`` into chunks, runs ``fn(chunk, *shared)`` for each, on the client's
workers (or in this process when there is no client), and returns the results in the order of the
chunks. The shared arguments (a model's weights, two directions) are sent to the workers once
(``client.scatter``), not once per chunk. A later "score these chunks of one layer" step of
layer-parallel RSO fits the same shape: chunks of weights, the layer's starting state shared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` in consecutive chunks of at most ``size``."""
    size = max(1, int(size))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def map_chunks(fn: Callable[..., Any], items: Sequence[T], *shared: Any, client=None, chunk_size: int = 16,
               on_done: Callable[[int], None] | None = None) -> list[Any]:
    """``[fn(chunk, *shared) for chunk in chunked(items, chunk_size)]``, each call a Dask task when
    ``client`` is given. ``on_done(n)`` is told of each finished chunk's length (for a progress bar).
    A task that raises re-raises here; a worker that dies has its chunks run again elsewhere."""
    chunks = chunked(items, chunk_size)
    if client is None:
        out = []
        for chunk in chunks:
            out.append(fn(chunk, *shared))
            if on_done is not None:
                on_done(len(chunk))
        return out
    from distributed import as_completed  # noqa: PLC0415

    handles = [client.scatter(s, broadcast=True) if _big(s) else s for s in shared]
    futures = [client.submit(fn, chunk, *handles, pure=False) for chunk in chunks]
    index = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    try:
        for future in as_completed(futures):
            i = index[future.key]
            results[i] = future.result()
            if on_done is not None:
                on_done(len(chunks[i]))
    except BaseException:
        client.cancel(futures)
        raise
    return results


def _big(value: Any) -> bool:
    """Whether a shared argument is worth scattering once rather than sending with every task."""
    return not isinstance(value, (str, int, float, bool, type(None)))
