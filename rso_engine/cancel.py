"""Stopping engine work from outside: a window that closes or starts a new run must not wait for a long
evaluation, a cache build or a 2-D landscape to finish.

A driver owns a :class:`CancelToken` and runs engine work inside :func:`cancellable`; long loops in the
engine call :func:`check_cancelled` between their pieces (every :func:`rso_engine.parallel.for_each`
piece, every landscape pass), which raises :class:`Cancelled` once the token is cancelled. The token is
per thread of the driver, so cancelling one run never stops another. Work outside :func:`cancellable`
(the CLI, tests) is never cancelled this way; Ctrl-C stays a ``KeyboardInterrupt``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Cancelled(BaseException):  # noqa: N818  (like KeyboardInterrupt: not an error, and never swallowed)
    """The work was stopped because its owner asked; the trainer's state is no longer worth keeping."""


class CancelToken:
    """A flag one thread sets and another's engine work checks."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask every piece of work running under this token to stop at its next check."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if :meth:`cancel` was called."""
        if self._event.is_set():
            raise Cancelled("the work was cancelled")


_local = threading.local()


@contextmanager
def cancellable(token: CancelToken) -> Iterator[CancelToken]:
    """Run the ``with`` block's engine work under ``token`` (in this thread and the pieces it hands out)."""
    previous = getattr(_local, "token", None)
    _local.token = token
    try:
        yield token
    finally:
        _local.token = previous


def current_token() -> CancelToken | None:
    """The token this thread's engine work runs under, if any."""
    return getattr(_local, "token", None)


def check_cancelled() -> None:
    """Raise :class:`Cancelled` if this thread's work runs under a cancelled token; else do nothing."""
    token = getattr(_local, "token", None)
    if token is not None and token.cancelled:
        raise Cancelled("the work was cancelled")
