"""Work-arounds for bugs in the Qt binding, applied once when rso_gui is imported.

PySide6 6.12.0 on Python < 3.12 drops references it does not own: every call of a Qt method returning
``void`` (``setText``, ``update``, ``processEvents``, ...) releases one reference to ``None``, and every
``Signal.emit`` one reference to ``True``. On Python 3.12+ these objects are immortal and nothing
happens; on 3.11 their reference counts sink by one per call, and after a few thousand calls Python
aborts with "Fatal Python error: none_dealloc" (or ``bool_dealloc``). A GUI makes thousands of such
calls a second, so the window would crash within minutes.

:func:`protect_singletons` detects the leak with a cheap probe and, only when it is there, raises the
reference counts of ``None``, ``True`` and ``False`` so far (2**60) that they can never reach zero —
what Python 3.12 does for every immortal object. It touches nothing else, and does nothing on a binding
without the bug or on Python 3.12+.
"""

from __future__ import annotations

import ctypes
import os
import sys

BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def leave_a_core_for_the_gui() -> int:
    """Limit BLAS threads to one less than the CPU count (at least 1), unless the user chose a number.

    Must run before NumPy is imported. The engine's matrix products are small (one mini-batch), so extra
    BLAS threads gain little; on a busy or 2-core machine they spin and fight the GUI thread for the
    cores (measured: the reference evaluator ran 4× faster with one BLAS thread than with two on a loaded
    2-core machine). The engine's own threads (training-set caches, ``RSO_THREADS``) are limited alike.
    Returns the number set (0 when the user's setting was kept).
    """
    os.environ.setdefault("RSO_THREADS", str(max(1, (os.cpu_count() or 2) - 1)))
    if any(v in os.environ for v in BLAS_THREAD_VARS) or "numpy" in sys.modules:
        return 0
    n = max(1, (os.cpu_count() or 2) - 1)
    for v in BLAS_THREAD_VARS:
        os.environ[v] = str(n)
    return n


_PROBE_CALLS = 64
_applied = False


def leaks_per_call() -> dict[str, float]:
    """References lost per call: to None by a void Qt method, to True by Signal.emit (0 when healthy)."""
    from PySide6.QtCore import QObject, Signal  # noqa: PLC0415

    class _Probe(QObject):
        sig = Signal()

    probe = _Probe()
    before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(_PROBE_CALLS):
        probe.setObjectName("probe")
    mid = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(_PROBE_CALLS):
        probe.sig.emit()
    after = sys.getrefcount(None), sys.getrefcount(True)
    return {
        "None": (before[0] - mid[0]) / _PROBE_CALLS,
        "True": (mid[1] - after[1]) / _PROBE_CALLS,
    }


def protect_singletons() -> bool:
    """Make None/True/False effectively immortal if the binding leaks their references; True if applied."""
    global _applied
    if _applied or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return _applied
    if max(leaks_per_call().values()) <= 0:
        return False
    for obj in (None, True, False):
        refcnt = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is PyObject's first field
        refcnt.value += 1 << 60
    _applied = True
    return True
