"""The one place that decides which array module the engine computes with.

CuPy is used when it imports *and* a CUDA device really works (a small allocation and kernel run
succeed); otherwise NumPy. ``RSO_BACKEND=numpy`` or ``RSO_BACKEND=cupy`` forces one; forcing CuPy
where it cannot run is an error that says why.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

ENV_VAR = "RSO_BACKEND"
THREADS_VAR = "RSO_THREADS"


def cpu_threads() -> int:
    """How many threads the engine may use for work that splits by image (building training-set caches):
    ``RSO_THREADS`` if set (the GUI sets one fewer than the cores, leaving one for drawing), else every core.
    Results never depend on it."""
    value = os.environ.get(THREADS_VAR, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise BackendError(f"{THREADS_VAR}={value!r} is not a number of threads; unset it or give e.g. 2") from None
    return max(1, os.cpu_count() or 1)


class BackendError(RuntimeError):
    """The requested array backend cannot be used."""


@dataclass(frozen=True)
class Backend:
    """An array module and a description of the device it computes on."""

    name: str  # "numpy" or "cupy"
    xp: ModuleType
    device: str

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    def describe(self) -> str:
        """One line for status bars and CLI headers, e.g. ``cupy on NVIDIA H100 (GPU)``."""
        return f"{self.name} on {self.device}"


_cached: dict[str, Backend] = {}


def _cpu_name() -> str:
    name = platform.processor() or platform.machine() or "CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} (CPU, {os.cpu_count()} cores)"


def _numpy_backend() -> Backend:
    return Backend("numpy", np, _cpu_name())


def _try_cupy() -> tuple[Backend | None, str]:
    """Return a working CuPy backend, or None and the reason it cannot be used."""
    try:
        import cupy  # noqa: PLC0415
    except Exception as exc:  # ImportError, or a broken CUDA install raising at import
        return None, f"CuPy does not import ({exc.__class__.__name__}: {exc}); install it with `pip install .[gpu]`"
    try:
        a = cupy.arange(16, dtype=cupy.float32)
        float((a * 2).sum())  # forces a kernel launch and a device->host copy
        dev = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
    except Exception as exc:
        return None, f"CuPy imports but no CUDA device works ({exc.__class__.__name__}: {exc})"
    return Backend("cupy", cupy, f"{name} (GPU {dev.id})"), ""


def get_backend(force: str | None = None) -> Backend:
    """Return the process-wide backend.

    ``force`` (or the ``RSO_BACKEND`` environment variable when ``force`` is None) may be ``"numpy"``,
    ``"cupy"`` or ``"auto"``. The result is cached per request.
    """
    want = (force or os.environ.get(ENV_VAR) or "auto").strip().lower()
    if want in _cached:
        return _cached[want]
    if want == "numpy":
        backend = _numpy_backend()
    elif want == "cupy":
        backend, why = _try_cupy()
        if backend is None:
            raise BackendError(f"{ENV_VAR}=cupy was requested but {why}. Unset {ENV_VAR} to use NumPy.")
    elif want == "auto":
        backend, _ = _try_cupy()
        backend = backend or _numpy_backend()
    else:
        raise BackendError(f"unknown backend {want!r}: use 'numpy', 'cupy' or 'auto' (in {ENV_VAR} or --backend)")
    _cached[want] = backend
    return backend


def cupy_unavailable_reason() -> str:
    """Why CuPy cannot be used here ('' when it can). Used by `rso info` and GPU test skips."""
    return _try_cupy()[1]


def to_numpy(a: Any) -> np.ndarray:
    """Copy an array (NumPy or CuPy) to a NumPy array; NumPy arrays are returned as they are."""
    if isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)
    if get is not None:
        return get()
    return np.asarray(a)


def array_module(a: Any) -> ModuleType:
    """The array module (numpy or cupy) an array belongs to."""
    if isinstance(a, np.ndarray) or np.isscalar(a):
        return np
    import cupy  # noqa: PLC0415

    return cupy.get_array_module(a)
