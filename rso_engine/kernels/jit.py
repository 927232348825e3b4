"""Numba, optional: :func:`njit` for the compiled kernels, :func:`numba_unavailable_reason`, and the scalar
helper the kernel modules share (:func:`nanmax`).

Numba is a runtime dependency, but the engine must work without it: when it does not import, ``njit``
returns the plain Python functions (so the kernel modules still define) and the evaluators that need
compiled kernels report :data:`NUMBA_ERROR` as the reason they cannot run.
"""

from __future__ import annotations

try:
    from numba import njit

    NUMBA_ERROR = ""
except Exception as exc:  # pragma: no cover - exercised only where numba is missing
    NUMBA_ERROR = f"numba does not import ({exc.__class__.__name__}: {exc})"

    def njit(*args, **kwargs):  # a stand-in so the kernels still define
        """Return the function undecorated (Numba is missing)."""
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


@njit(cache=True, nogil=True, inline="always")
def nanmax(a, b):
    """``numpy.maximum`` for scalars, for the compiled kernels: the larger value, NaN if either is NaN."""
    return a if (a > b or a != a) else b


def numba_unavailable_reason() -> str:
    """Why Numba cannot be used here ('' when it can)."""
    return NUMBA_ERROR


__all__ = ["NUMBA_ERROR", "nanmax", "njit", "numba_unavailable_reason"]
