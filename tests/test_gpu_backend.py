"""The CuPy backend gives the same numbers as NumPy (skipped without CuPy and a working GPU), and the
start-up probe names the real cause when CuPy cannot run (tested everywhere, on a fake CuPy).

Each fake failure below raises the error text CuPy itself raises in that situation (a missing shared
library: ``CuPy failed to load libnvrtc.so.12: OSError: ... cannot open shared object file``; a driver
older than the runtime: ``cudaErrorInsufficientDriver``; no device: ``cudaErrorNoDevice``).
"""

import sys
import types

import numpy as np
import pytest

from helpers import sample, tiny_config
from rso_engine import backend as backend_mod
from rso_engine.backend import Backend, cupy_unavailable_reason, get_backend, to_numpy
from rso_engine.events import WeightTried
from rso_engine.models import build_model
from rso_engine.training import RSOTrainer, SGDTrainer, Stopwatch


# --------------------------------------------------------------------------- the probe, on a fake CuPy
class _Fake:
    """Enough of CuPy for the probe, computing with NumPy; ``fail`` maps a step ("count", "copy",
    "elementwise", "matmul", "compile", "launch") to the exception it raises."""

    float32, float64 = np.float32, np.float64

    def __init__(self, fail=None, devices=1):
        self.fail = dict(fail or {})
        self.compiled_options = []
        self.synced = 0
        fake = self

        def raise_for(step):
            if step in fake.fail:
                raise fake.fail[step]

        class Device:
            id = 0

            def synchronize(self):
                fake.synced += 1

        class RawKernel:
            def __init__(self, code, name, options=()):
                self.name, self.options = name, tuple(options)

            def compile(self):
                raise_for("compile")
                fake.compiled_options.append(self.options)

            def __call__(self, grid, block, args):
                raise_for("launch")
                a, b, out, n = args
                out[: int(n)] = a[: int(n)] * b[: int(n)] + 1.0

        def count():
            raise_for("count")
            return devices

        class _Arr(np.ndarray):
            def __mul__(self, other):
                raise_for("elementwise")
                return np.ndarray.__mul__(self, other)

            def __matmul__(self, other):
                raise_for("matmul")
                return np.ndarray.__matmul__(np.asarray(self), np.asarray(other))

        def asarray(a, dtype=None):
            raise_for("copy")
            return np.array(a, dtype=dtype).view(_Arr)

        runtime = types.SimpleNamespace(getDeviceCount=count, getDeviceProperties=lambda i: {"name": b"Fake GPU"})
        self.cuda = types.SimpleNamespace(runtime=runtime, Device=Device)
        self.RawKernel = RawKernel
        self.asarray = asarray
        self.asnumpy = lambda a: np.asarray(a).copy()
        self.arange = lambda *a, dtype=None: np.arange(*a, dtype=dtype).view(_Arr)
        self.zeros = lambda n, dtype=None: np.zeros(n, dtype=dtype).view(_Arr)


def _probe(monkeypatch, fake):
    monkeypatch.setitem(sys.modules, "cupy", fake)
    return backend_mod._try_cupy()


def test_probe_accepts_a_working_device_and_compiles_with_rso_options(monkeypatch):
    fake = _Fake()
    backend, why = _probe(monkeypatch, fake)
    assert why == "" and backend.name == "cupy" and backend.device == "Fake GPU (GPU 0)"
    assert fake.compiled_options == [backend_mod.NVRTC_OPTIONS]
    assert "--fmad=false" in backend_mod.NVRTC_OPTIONS


NVRTC_MISSING = RuntimeError(
    "CuPy failed to load libnvrtc.so.12: OSError: libnvrtc.so.12: cannot open shared "
    "object file: No such file or directory"
)
CUBLAS_MISSING = ImportError("libcublas.so.12: cannot open shared object file: No such file or directory")
OLD_DRIVER = RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version")
NO_DEVICE = RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")


@pytest.mark.parametrize(
    "fail, says, not_says",
    [
        ({"elementwise": NVRTC_MISSING}, ["NVRTC", "cupy-cuda12x[ctk]"], ["no CUDA device", "driver"]),
        ({"compile": NVRTC_MISSING}, ["NVRTC", "cupy-cuda12x[ctk]"], ["no CUDA device"]),
        (
            {"compile": RuntimeError('catastrophic error: cannot open source file "cuda_fp16.h"')},
            ["CUDA headers", "[ctk]"],
            ["no CUDA device"],
        ),
        ({"matmul": CUBLAS_MISSING}, ["cuBLAS", "cupy-cuda12x[ctk]"], ["no CUDA device", "NVRTC"]),
        ({"count": OLD_DRIVER}, ["driver is too old", "update the driver"], ["NVRTC", "cuBLAS"]),
        ({"count": NO_DEVICE}, ["sees no CUDA device", "nvidia-smi"], ["NVRTC", "cuBLAS", "driver is too old"]),
        ({"copy": RuntimeError("cudaErrorMemoryAllocation: out of memory")}, ["no CUDA device works"], ["NVRTC"]),
        ({"matmul": RuntimeError("CUBLAS_STATUS_NOT_INITIALIZED")}, ["cuBLAS"], ["no CUDA device"]),
        (
            {"launch": RuntimeError("CUDA_ERROR_LAUNCH_FAILED: unspecified launch failure")},
            ["compiling and launching a CUDA kernel"],
            ["no CUDA device"],
        ),
    ],
)
def test_probe_names_the_real_cause(monkeypatch, fail, says, not_says):
    backend, why = _probe(monkeypatch, _Fake(fail))
    assert backend is None
    for s in says:
        assert s in why, why
    for s in not_says:
        assert s not in why, why


def test_probe_with_no_device_and_a_missing_cupy(monkeypatch):
    backend, why = _probe(monkeypatch, _Fake(devices=0))
    assert backend is None and "sees no CUDA device" in why
    monkeypatch.setitem(sys.modules, "cupy", None)  # import raises ImportError
    backend, why = backend_mod._try_cupy()
    assert backend is None and "does not import" in why and ".[gpu]" in why


def test_forcing_cupy_names_the_cause(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _Fake({"matmul": CUBLAS_MISSING}))
    monkeypatch.delitem(backend_mod._cached, "cupy", raising=False)
    with pytest.raises(backend_mod.BackendError, match="cuBLAS"):
        get_backend("cupy")
    assert "cupy" not in backend_mod._cached


def test_the_stopwatch_waits_for_the_device():
    fake = _Fake()

    class T:
        seconds = 0.0
        backend = Backend("cupy", fake, "Fake GPU")

    with Stopwatch(T()):
        pass
    assert fake.synced == 1
    T.backend = Backend("numpy", np, "CPU")
    with Stopwatch(T()):  # nothing to wait for on the CPU
        pass
    assert fake.synced == 1


# --------------------------------------------------------------------------- on a real GPU


@pytest.fixture(scope="module")
def cupy_backend():
    pytest.importorskip("cupy")
    why = cupy_unavailable_reason()
    if why:
        pytest.skip(f"no usable GPU: {why}")
    return get_backend("cupy")


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["oneconv", "twoconv", "papernet", "mlp"])
def test_forward_and_backward_match_numpy(cupy_backend, name):
    cpu = build_model(name, seed=2, backend=get_backend("numpy"), dtype="float64")
    gpu = build_model(name, seed=2, backend=cupy_backend, dtype="float64")
    x = np.random.default_rng(0).normal(size=(6, 1, 28, 28))
    np.testing.assert_allclose(to_numpy(gpu.forward(gpu.to_input(x))), cpu.forward(cpu.to_input(x)), rtol=1e-10)


@pytest.mark.gpu
def test_rso_reference_makes_the_same_choices_on_gpu(cupy_backend):
    cfg = tiny_config(model="papernet", train_layers=["conv1", "fc"], cycles=1)
    runs = []
    for backend in (get_backend("numpy"), cupy_backend):
        t = RSOTrainer(cfg, sample(), backend, evaluator="reference")
        runs.append([(e.choice, round(e.new, 12)) for e in t.events() if isinstance(e, WeightTried)])
    assert runs[0] == runs[1]


@pytest.mark.gpu
def test_sgd_matches_on_gpu(cupy_backend):
    cfg = tiny_config(algorithm="sgd", train_layers=None, cycles=1, momentum=0.9)
    a = SGDTrainer(cfg, sample(), get_backend("numpy"))
    b = SGDTrainer(cfg, sample(), cupy_backend)
    a.run()
    b.run()
    for k, v in a.model.params_numpy().items():
        np.testing.assert_allclose(b.model.params_numpy()[k], v, rtol=1e-8, atol=1e-10)


def test_engine_blas_runs_blas_on_one_thread_unless_a_count_is_set(monkeypatch):
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    for var in backend_mod.BLAS_THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    before = blas_threads()
    with backend_mod.engine_blas():
        assert blas_threads() <= {1}
    assert blas_threads() == before
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    with backend_mod.engine_blas():  # the user's choice stands
        assert blas_threads() == before
