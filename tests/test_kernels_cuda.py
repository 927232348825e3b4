"""The GPU's output-layer sweep without a GPU: the host side (``kernels.cuda.dense_sweep``) runs as on the GPU
with the two CUDA kernels emulated in NumPy (``kernels.cuda.EMULATED``: block by block, in the kernels' order
of additions), against the reference evaluator and the vectorised NumPy sweep; and the CUDA source compiles
with NVRTC and rso's options wherever an NVRTC library can be found (``RSO_NVRTC=/path/libnvrtc.so``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import sys

import numpy as np
import pytest
import test_fast_evaluators as fe

from rso_engine.backend import NVRTC_OPTIONS
from rso_engine.evaluators.cupy import CupyIncrementalEvaluator
from rso_engine.evaluators.incremental import DenseStore, IncrementalEvaluator
from rso_engine.kernels import cuda
from rso_engine.kernels.cuda import EMULATED, TPB, dense_sweep, kernel_source
from rso_engine.models import build_model


def _emulated_cupy(name, model, x, y):
    ev = CupyIncrementalEvaluator(model, x, y)  # on NumPy arrays: everything but the sweep kernels is real
    ev.sweep_kernels = EMULATED
    return ev


@pytest.fixture
def emulated(monkeypatch):
    real = fe.make_evaluator
    monkeypatch.setattr(
        fe, "make_evaluator", lambda n, *a: _emulated_cupy(n, *a) if n == "emulated-cupy" else real(n, *a)
    )


@pytest.mark.parametrize("model_name", fe.MODELS)
@pytest.mark.parametrize("mode", ["weight", "layer"])
def test_emulated_gpu_sweep_makes_the_reference_choices(emulated, model_name, mode):
    got = fe.drive("emulated-cupy", model_name, mode, groups=("fc", "fc2", "conv1"))
    fe.assert_same(fe.reference(model_name, mode, groups=("fc", "fc2", "conv1")), got)
    assert got[2].engine == "cupy+rawkernel"


def test_emulated_gpu_sweep_with_stay_decay_and_many_blocks(emulated):
    kw = dict(stay_factor=1 - 1e-4, batch=TPB + 37, n_train=2 * TPB + 40, seed=3, groups=("fc",), per_tensor=30)
    fe.assert_same(fe.reference("oneconv", "weight", **kw), fe.drive("emulated-cupy", "oneconv", "weight", **kw))


def _store(rng, S, F, C, dtype):
    h = np.maximum(rng.standard_normal((F, S)), 0).astype(dtype)
    W = (rng.standard_normal((C, F)) * 0.3).astype(dtype)
    b = (rng.standard_normal(C) * 0.1).astype(dtype)
    lab = rng.integers(0, C, S)
    return h, W, b, lab


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("batch", [5, TPB, 2 * TPB + 3])
def test_emulated_kernels_match_the_vectorised_sweep(dtype, batch):
    """Batches of one partial block, one full block and several blocks; the cached logits' update over
    ceil(S/TPB) blocks; weights then biases then the first row again; fresh and shared batches."""
    rng = np.random.default_rng(4)
    S, F, C = 3 * TPB + 11, 21, 5
    h, W, b, lab = _store(rng, S, F, C, dtype)
    x, y = fe._data(64, dtype, fe.NUMPY)
    model = build_model("mlp", backend=fe.NUMPY, dtype=dtype)
    slow = IncrementalEvaluator(model, x, y)
    stores = [DenseStore(h.copy(), (W.astype(np.float64) @ h + b[:, None]), lab.copy(), (), ()) for _ in range(2)]
    views = [(W.reshape(-1).copy(), b.copy()) for _ in range(2)]
    results = []
    for which in (0, 1):
        st = stores[which]
        wv, bv = views[which]
        drng = np.random.default_rng(9)
        out = []
        for flat, view, is_bias in ((np.arange(C * F), wv, False), (np.arange(C), bv, True), (np.arange(F), wv, False)):
            for pos in range(0, len(flat), 17):
                sl = flat[pos : pos + 17]
                deltas = drng.standard_normal(len(sl)) * 0.05
                rows = drng.integers(0, S, (1 if pos % 2 else len(sl), batch))
                if which == 0:
                    lab32 = st.lab.astype(np.int32)
                    res = dense_sweep(EMULATED, np, view, F, is_bias, st.hT, st.zT, lab32, sl, deltas, rows, 1.0)
                else:
                    r = slow.dense_kernel(st, view, F, is_bias, sl, deltas, rows, 1.0)
                    res = (r.losses, r.choices, r.old, r.new)
                out.append(res)
        results.append(out)
    for got, want in zip(*results):
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[0], want[0], rtol=1e-11 if dtype == "float64" else 1e-9)
        np.testing.assert_array_equal(got[2], want[2])
        np.testing.assert_array_equal(got[3], want[3])
    np.testing.assert_array_equal(views[0][0], views[1][0])
    assert np.mean(np.concatenate([g[1] for g in results[0]]) != 0) > 0.5  # most changes accepted
    # the cached logits are the layer's output for the final weights (an update per accepted change)
    Wf, bf = views[0][0].reshape(C, F).astype(np.float64), views[0][1].astype(np.float64)
    np.testing.assert_allclose(stores[0].zT, Wf @ h.astype(np.float64) + bf[:, None], rtol=1e-9, atol=1e-9)


def test_the_emulated_sweep_does_not_depend_on_chunking():
    rng = np.random.default_rng(1)
    S, F, C = 2 * TPB + 5, 12, 4
    h, W, b, lab = _store(rng, S, F, C, "float64")
    flat = np.arange(C * F)
    deltas = rng.standard_normal(len(flat)) * 0.1
    rows = rng.integers(0, S, (len(flat), TPB + 9))
    outs = []
    for chunk in (1, 7, len(flat)):
        wv, zT = W.reshape(-1).copy(), W @ h + b[:, None]
        lab32 = lab.astype(np.int32)
        parts = [
            dense_sweep(EMULATED, np, wv, F, False, h, zT, lab32, flat[sl], deltas[sl], rows[sl], 1.0)
            for sl in (slice(p, p + chunk) for p in range(0, len(flat), chunk))
        ]
        outs.append((np.concatenate([p[0] for p in parts]), wv, zT))
    for got in outs[1:]:
        for a, b_ in zip(got, outs[0]):
            np.testing.assert_array_equal(a, b_)


def test_indices_must_fit_32_bits():
    with pytest.raises(ValueError, match="32-bit"):
        cuda._i32(2**31, "the layer's input size")
    assert cuda._i32(2**31 - 1, "x") == 2**31 - 1


def test_without_nvrtc_the_evaluator_falls_back_to_the_vectorised_loop(monkeypatch):
    """A CuPy whose compiler fails: the sweep kernels are compiled before the sweep starts, so the evaluator
    switches to the base class's loop cleanly (and still makes the reference's choices)."""

    class RawKernel:
        def __init__(self, code, name, options=()):
            assert tuple(options) == NVRTC_OPTIONS

        def compile(self):
            raise RuntimeError("CuPy failed to load libnvrtc.so.12: OSError: cannot open shared object file")

    monkeypatch.setitem(sys.modules, "cupy", type(sys)("cupy"))
    sys.modules["cupy"].RawKernel = RawKernel
    monkeypatch.setattr(cuda, "_kernels", {})
    real = fe.make_evaluator
    monkeypatch.setattr(
        fe, "make_evaluator", lambda n, *a: CupyIncrementalEvaluator(*a) if n == "cupy" else real(n, *a)
    )
    got = fe.drive("cupy", "mlp", "weight")
    assert got[2].engine == "cupy"
    fe.assert_same(fe.reference("mlp", "weight"), got)


# --------------------------------------------------------------------------- the CUDA source, with NVRTC
def _nvrtc():
    path = os.environ.get("RSO_NVRTC") or ctypes.util.find_library("nvrtc")
    if not path:
        found = sorted(glob.glob(os.path.join(sys.prefix, "lib", "python*", "site-packages", "nvidia", "cu*", "lib",
                                              "libnvrtc.so*")))  # fmt: skip
        path = found[0] if found else None
    if not path:
        pytest.skip("no NVRTC library here (set RSO_NVRTC=/path/to/libnvrtc.so to check the CUDA source)")
    for builtins in glob.glob(os.path.join(os.path.dirname(path), "libnvrtc-builtins.so*")):
        ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)  # NVRTC loads it by name: found once loaded
    return ctypes.CDLL(path)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("arch", ["compute_80", "compute_90"])
def test_the_cuda_source_compiles_with_nvrtc(dtype, arch):
    lib = _nvrtc()
    prog = ctypes.c_void_p()
    src = kernel_source(np.dtype(dtype)).encode()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, b"rso.cu", 0, None, None) == 0
    opts = [o.encode() for o in (*NVRTC_OPTIONS, "-ftz=true", f"--gpu-architecture={arch}")]
    rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    assert rc == 0, log.value.decode()
    assert b"warning" not in log.value.lower(), log.value.decode()
    lib.nvrtcDestroyProgram(ctypes.byref(prog))


# --------------------------------------------------------------------------- on a real GPU
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_cuda_kernels_compute_what_their_emulation_computes(dtype):
    """The compiled kernels against their NumPy emulation on the same chunks: the same choices and weights,
    losses and cached logits to the last bits of exp/log (CUDA's libm and NumPy's may differ by an ulp)."""
    pytest.importorskip("cupy")
    from rso_engine.backend import cupy_unavailable_reason  # noqa: PLC0415

    if cupy_unavailable_reason():
        pytest.skip(cupy_unavailable_reason())
    import cupy  # noqa: PLC0415

    rng = np.random.default_rng(2)
    S, F, C = 5 * TPB + 3, 33, 10
    h, W, b, lab = _store(rng, S, F, C, dtype)
    z = W.astype(np.float64) @ h + b[:, None]
    host = (W.reshape(-1).copy(), z.copy())
    dev = (cupy.asarray(W.reshape(-1)), cupy.asarray(z))
    h_d, lab_d = cupy.asarray(h), cupy.asarray(lab.astype(np.int32))
    flat = np.arange(C * F)
    deltas = rng.standard_normal(len(flat)) * 0.05
    rows = rng.integers(0, S, (len(flat), 3 * TPB + 17))
    got = dense_sweep(cuda.sweep_kernels(np.dtype(dtype)), cupy, dev[0], F, False, h_d, dev[1], lab_d, flat, deltas,
                      rows, 1.0)  # fmt: skip
    want = dense_sweep(EMULATED, np, host[0], F, False, h, host[1], lab.astype(np.int32), flat, deltas, rows, 1.0)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13)
    np.testing.assert_array_equal(cupy.asnumpy(dev[0]), host[0])
    np.testing.assert_allclose(cupy.asnumpy(dev[1]), host[1], rtol=1e-13, atol=1e-13)
