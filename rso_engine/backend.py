"""The one place that decides which array module the engine computes with.

CuPy is used when it imports *and* a CUDA device really works: data goes to the device and back, CuPy's
kernels and a cuBLAS matrix product run, and a RawKernel compiles with NVRTC and runs (:func:`_try_cupy`;
when a step fails, the reason names what is missing); otherwise NumPy. ``RSO_BACKEND=numpy`` or
``RSO_BACKEND=cupy`` forces one; forcing CuPy where it cannot run is an error that says why.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

ENV_VAR = "RSO_BACKEND"
THREADS_VAR = "RSO_THREADS"


_CORES = max(1, os.cpu_count() or 1)  # asked once: every split of every layer asks cpu_threads()


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
    return _CORES


#: the environment variables that choose BLAS's thread count; when one is set, the engine leaves BLAS alone
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_blas_controller: list = []  # threadpoolctl's controller, made on first use (it scans the loaded libraries)


def engine_blas():
    """A context in which BLAS computes on one thread: the engine spreads its own work over the cores
    (:func:`cpu_threads`), and BLAS threads inside it oversubscribe them (on a shared 2-core machine two
    BLAS threads made a training run twice as slow, with the same numbers). Where one of
    :data:`BLAS_THREAD_VARS` is set, that choice stands and nothing is changed; results never depend on it."""
    if any(os.environ.get(var, "").strip() for var in BLAS_THREAD_VARS):
        return contextlib.nullcontext()
    if not _blas_controller:
        try:
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415
        except ImportError:  # pragma: no cover - a declared dependency
            return contextlib.nullcontext()
        _blas_controller.append(ThreadpoolController())
    return _blas_controller[0].limit(limits=1, user_api="blas")


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

    def synchronize(self) -> None:
        """Wait until the device has finished the work queued on it (a no-op on the CPU): GPU launches
        return at once, so a stopwatch stops after this."""
        if self.is_gpu:
            self.xp.cuda.Device().synchronize()

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


#: NVRTC options of every CUDA kernel rso compiles (the sweep kernels and the start-up probe): no fused
#: multiply-add contraction, so float64 arithmetic rounds as on the CPU (CuPy adds ``-ftz=true`` itself,
#: which flushes float32 subnormals to zero; float64 is unaffected)
NVRTC_OPTIONS = ("--fmad=false",)

_PROBE_KERNEL = r"""
extern "C" __global__ void rso_probe(const double* a, const double* b, double* out, const int n) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n) out[t] = a[t] * b[t] + 1.0;
}
"""

_INSTALL = 'install the CUDA toolkit wheels with CuPy: `pip install ".[gpu]"` (cupy-cuda12x[ctk])'


def _classify(step: str, exc: BaseException) -> str:
    """The reason a probe step failed, naming the real cause where the error says it."""
    text = f"{exc.__class__.__name__}: {exc}"
    low = text.lower()
    if "insufficientdriver" in low.replace(" ", "") or "driver version is insufficient" in low:
        return (
            f"the NVIDIA driver is too old for CuPy's CUDA runtime ({text}); update the driver "
            "(`nvidia-smi` shows its version and the newest CUDA it supports)"
        )
    if "nodevice" in low.replace(" ", "") or "no cuda-capable device" in low:
        return f"CuPy imports but sees no CUDA device ({text}); check `nvidia-smi` and CUDA_VISIBLE_DEVICES"
    if "nvrtc" in low or "cuda_fp16" in low or "cannot open source file" in low:
        return f"the CUDA runtime compiler NVRTC (or the CUDA headers) is missing or fails ({text}); {_INSTALL}"
    if "cublas" in low:
        return f"cuBLAS is missing or fails ({text}); {_INSTALL}"
    if step == "device":
        return f"CuPy imports but no CUDA device works ({text})"
    what = {
        "kernels": "CuPy's elementwise kernels",
        "matmul": "a matrix product (cuBLAS)",
        "rawkernel": "compiling and launching a CUDA kernel (NVRTC)",
    }[step]
    return f"the CUDA device works but {what} fails ({text})"


def _probe_device(cupy) -> str:
    """The device's name after a copy to it and back (the runtime and driver only: nothing compiled)."""
    if cupy.cuda.runtime.getDeviceCount() < 1:
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
    dev = cupy.cuda.Device()
    a = cupy.asarray(np.arange(16, dtype=np.float64))
    if not np.array_equal(cupy.asnumpy(a), np.arange(16)):
        raise RuntimeError("a copy to the device and back changed the data")
    name = cupy.cuda.runtime.getDeviceProperties(dev.id)["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return f"{name} (GPU {dev.id})"


def _probe_kernels(cupy) -> None:
    """An elementwise op and a reduction (CuPy compiles these with NVRTC on first use)."""
    a = cupy.arange(16, dtype=cupy.float32)
    if float((a * 2).sum()) != 240.0:
        raise RuntimeError("an elementwise kernel and a reduction gave a wrong sum")


def _probe_matmul(cupy) -> None:
    """A small matrix product in both dtypes: cuBLAS loads lazily at the first one."""
    for dt in (cupy.float32, cupy.float64):
        a = cupy.asarray(np.arange(12, dtype=dt).reshape(3, 4))
        got = cupy.asnumpy(a @ a.T)
        want = np.arange(12, dtype=dt).reshape(3, 4) @ np.arange(12, dtype=dt).reshape(3, 4).T
        if not np.array_equal(got, want):
            raise RuntimeError(f"a {np.dtype(dt).name} matrix product (cuBLAS) gave wrong numbers")


def _probe_rawkernel(cupy) -> None:
    """Compile (NVRTC, with rso's options) and launch a small RawKernel, as the sweep kernels are."""
    kernel = cupy.RawKernel(_PROBE_KERNEL, "rso_probe", options=NVRTC_OPTIONS)
    compile_now = getattr(kernel, "compile", None)
    if compile_now is not None:
        compile_now()
    a = cupy.asarray(np.arange(8, dtype=np.float64))
    out = cupy.zeros(8, dtype=cupy.float64)
    kernel((1,), (32,), (a, a, out, np.int32(8)))
    if not np.array_equal(cupy.asnumpy(out), np.arange(8.0) ** 2 + 1):
        raise RuntimeError("the probe kernel computed wrong numbers")


def _try_cupy() -> tuple[Backend | None, str]:
    """Return a working CuPy backend, or None and the reason it cannot be used: CuPy imports, a device
    takes and returns data, CuPy's own kernels and a cuBLAS matrix product run, and a RawKernel compiles
    with NVRTC and runs — each step that fails names its cause (no device, a driver too old for the
    runtime, NVRTC or cuBLAS missing)."""
    try:
        import cupy  # noqa: PLC0415
    except Exception as exc:  # ImportError, or a broken CUDA install raising at import
        return None, f'CuPy does not import ({exc.__class__.__name__}: {exc}); install it with `pip install ".[gpu]"`'
    steps = (("kernels", _probe_kernels), ("matmul", _probe_matmul), ("rawkernel", _probe_rawkernel))
    step = "device"
    try:
        device = _probe_device(cupy)
        for name, probe in steps:
            step = name
            probe(cupy)
    except Exception as exc:
        return None, _classify(step, exc)
    return Backend("cupy", cupy, device), ""


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
