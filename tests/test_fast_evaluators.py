"""The fast evaluators make exactly the reference's choices.

Every evaluator is driven with the same weights, Δs and batches as :class:`ReferenceEvaluator`: in
float64 the choice sequences must be identical (so the final weights are bitwise equal) and the
reported losses agree to rounding; in float32 near-ties may flip, so agreement is statistical. The
equivalence runs on every model and batch mode with the pure NumPy path, the Numba JIT (where numba
imports) and, when a GPU is present, CuPy.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import sample
from rso_engine.backend import cupy_unavailable_reason, get_backend, to_numpy
from rso_engine.config import RunConfig
from rso_engine.evaluators import make_evaluator
from rso_engine.evaluators.incremental import DenseStore, IncrementalEvaluator
from rso_engine.evaluators.numba import NumbaIncrementalEvaluator
from rso_engine.events import WeightTried
from rso_engine.experiment import load_checkpoint, save_checkpoint
from rso_engine.kernels.cuda import GPU_KERNELS
from rso_engine.kernels.dense_sweep import BLOCK
from rso_engine.kernels.forward import Kernels, run_layers
from rso_engine.kernels.jit import numba_unavailable_reason
from rso_engine.kernels.numba_layers import NUMBA_KERNELS
from rso_engine.models import build_model
from rso_engine.training import RSOTrainer

NUMPY = get_backend("numpy")
MODELS = ["oneconv", "twoconv", "papernet", "mlp"]
# the paper net's reference is slow at tiny batches (many small layers): sweep the layers whose changes
# take different routes (conv6/bn6 → GAP → dense, conv2 → avg-pool → bn2 → ReLU → conv3, conv1 → bn1 → ReLU →
# conv2) and fewer weights per tensor
SWEPT_GROUPS = {"papernet": ("fc", "conv6", "conv2", "conv1")}
PER_TENSOR = {"oneconv": 40, "mlp": 40, "twoconv": 12, "papernet": 6}


def _numba_missing() -> str:
    return numba_unavailable_reason()


CPU_FAST = [
    "incremental",
    "layer-cached",
    pytest.param("incremental-numba", marks=pytest.mark.skipif(bool(_numba_missing()), reason="no numba")),
]


# --------------------------------------------------------------------------- a direct driver
def _data(n: int, dtype: str, backend):
    ds = sample().subset(n, 10)
    model = build_model("oneconv", backend=backend, dtype=dtype)  # for the input conversion only
    xp = backend.xp
    return model.to_input(ds.train_x), xp.asarray(ds.train_y, dtype=xp.int64)


def drive(
    evaluator: str,
    model_name: str,
    mode: str,
    dtype: str = "float64",
    *,
    backend=NUMPY,
    n_train=64,
    batch=8,
    per_tensor=None,
    seed=0,
    stay_factor=1.0,
    chunk_seed=None,
    groups=None,
):
    """Sweep a sample of every tensor, output layer first, like the trainer; return what happened.

    For each tensor: ``per_tensor`` weights (its first and last output channel's first weights and a
    spread of the rest, in sweep order), Δ ~ N(0, σ), a fresh batch per weight ("weight") or one per
    layer ("layer"), handed over in chunks of random size.
    """
    x, y = _data(n_train, dtype, backend)
    model = build_model(model_name, seed=seed, backend=backend, dtype=dtype)
    ev = make_evaluator(evaluator, model, x, y)
    rng = np.random.default_rng(seed + 7)
    crng = np.random.default_rng(chunk_seed if chunk_seed is not None else seed + 11)
    out = {"choices": [], "losses": [], "new": []}
    if groups is None:
        groups = SWEPT_GROUPS.get(model_name)
    per_tensor = PER_TENSOR.get(model_name, per_tensor) if per_tensor is None else per_tensor
    for group in reversed(model.groups):
        if groups is not None and group.name not in groups:
            continue
        shared = rng.permutation(n_train)[None, :batch]
        ev.begin_group(group, group.params)
        for p in group.params:
            shape = model.params[p].shape
            size = int(np.prod(shape))
            per = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            picks = np.unique(
                np.concatenate(
                    [
                        np.arange(min(per, 6)),
                        size - per + np.arange(min(per, 4)),
                        np.linspace(0, size - 1, per_tensor).astype(int),
                    ]
                )
            )
            picks = picks[picks < size]
            deltas = rng.standard_normal(len(picks)) * model.sigma[p]
            if mode == "weight":
                batches = np.stack([rng.permutation(n_train)[:batch] for _ in picks])
            else:
                batches = shared
            pos = 0
            while pos < len(picks):
                k = int(crng.integers(1, 9))
                sl = slice(pos, pos + k)
                res = ev.sweep(p, picks[sl], deltas[sl], batches if mode != "weight" else batches[sl], stay_factor)
                out["choices"].append(res.choices)
                out["losses"].append(res.losses)
                out["new"].append(res.new)
                pos += k
        ev.end_group(group)
    return (
        {k: np.concatenate(v) for k, v in out.items()},
        {k: to_numpy(v).copy() for k, v in model.params.items()},
        ev,
    )


def assert_same(ref, got, rtol=1e-9):
    (r, rp, _), (g, gp, _) = ref, got
    assert len(r["choices"]) == len(g["choices"])
    first = np.flatnonzero(r["choices"] != g["choices"])
    assert len(first) == 0, f"choices differ first at {first[0]}: {r['losses'][first[0]]} vs {g['losses'][first[0]]}"
    np.testing.assert_allclose(g["losses"], r["losses"], rtol=rtol, atol=1e-9)
    for k in rp:
        np.testing.assert_array_equal(gp[k], rp[k], err_msg=k)


_REF_CACHE: dict = {}


def reference(model_name, mode, dtype="float64", **kw):
    key = (model_name, mode, dtype, tuple(sorted(kw.items())))
    if key not in _REF_CACHE:
        _REF_CACHE[key] = drive("reference", model_name, mode, dtype, **kw)
    return _REF_CACHE[key]


# --------------------------------------------------------------------------- float64: identical choices
@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("mode", ["weight", "layer"])
@pytest.mark.parametrize("evaluator", CPU_FAST)
def test_float64_choices_are_identical(model_name, mode, evaluator):
    assert_same(reference(model_name, mode), drive(evaluator, model_name, mode))


@pytest.mark.parametrize("evaluator", CPU_FAST)
def test_stay_decay_and_larger_batches_are_identical(evaluator):
    kw = dict(stay_factor=1 - 1e-4, batch=24, seed=3, groups=("fc", "conv6", "conv1"))
    for model_name in ("papernet", "oneconv"):
        assert_same(reference(model_name, "weight", **kw), drive(evaluator, model_name, "weight", **kw))


@pytest.mark.parametrize("evaluator", ["incremental", "incremental-numba"])
def test_results_do_not_depend_on_chunking(evaluator):
    if evaluator == "incremental-numba" and _numba_missing():
        pytest.skip("no numba")
    big = dict(n_train=256, per_tensor=120)  # the output layer's session records: filled eagerly or lazily
    for model_name, mode, kw in (("papernet", "weight", {}), ("papernet", "layer", {}), ("oneconv", "weight", big),
                                 ("mlp", "layer", big)):  # fmt: skip
        a = drive(evaluator, model_name, mode, chunk_seed=1, **kw)
        b = drive(evaluator, model_name, mode, chunk_seed=2, **kw)
        assert_same(a, b, rtol=0)


@pytest.mark.skipif(bool(_numba_missing()), reason="no numba")
@pytest.mark.parametrize("scale", [0.05, 100.0])
@pytest.mark.parametrize("order,batch", [("forward", 32), ("reverse", 32), ("forward", 64)])
def test_the_jit_output_layer_sweep_matches_the_numpy_one(scale, order, batch):
    """The compiled output-layer sweep defers accepted changes of a block of columns and applies them
    in one pass (per column when few): the same choices as the vectorised NumPy sweep, and the cached
    logits exactly the layer's output again once the sweep has left a row; small Δs (most accepted) and
    huge ones (few accepted) take the two ways of applying a block; batches of S/BLOCK samples or more
    apply every change at once."""
    rng = np.random.default_rng(5)
    S, F, C = 600, 2 * BLOCK + 5, 4  # a partial last block
    assert (batch * BLOCK < S) == (batch == 32)
    x, y = _data(64, "float64", NUMPY)
    model = build_model("mlp", backend=NUMPY, dtype="float64")
    fast = NumbaIncrementalEvaluator(model, x, y)
    slow = IncrementalEvaluator(model, x, y)
    h = np.maximum(rng.standard_normal((F, S)), 0)
    W = rng.standard_normal((C, F)) * 0.3
    b = rng.standard_normal(C) * 0.1
    lab = rng.integers(0, C, S)
    stores, views = [], []
    for _ in range(2):
        stores.append(DenseStore(h.copy(), W @ h + b[:, None], lab.copy(), (), ()))
        views.append((W.reshape(-1).copy(), b.copy()))
    order_w = np.arange(C * F)
    order_b = np.arange(C)
    if order == "reverse":
        order_w, order_b = order_w[::-1].copy(), order_b[::-1].copy()
    results = []
    for ev, store, (wv, bv) in zip((fast, slow), stores, views):
        drng = np.random.default_rng(9)
        out = []
        for flat, view, fin, is_bias in ((order_w, wv, F, False), (order_b, bv, F, True), (order_w[:F], wv, F, False)):
            pos = 0
            while pos < len(flat):
                k = int(drng.integers(1, 40))
                sl = flat[pos : pos + k]
                deltas = drng.standard_normal(len(sl)) * scale
                rows = drng.integers(0, S, (len(sl), batch))
                kernel = NumbaIncrementalEvaluator.dense_kernel if ev is fast else IncrementalEvaluator.dense_kernel
                out.append(kernel(ev, store, view, fin, is_bias, sl, deltas, rows, 1.0))
                pos += k
        results.append(out)
    for got, want in zip(*results):
        np.testing.assert_array_equal(got.choices, want.choices)
        np.testing.assert_allclose(got.losses, want.losses, rtol=1e-12)
        np.testing.assert_array_equal(got.new, want.new)
    accepted = np.mean(np.concatenate([r.choices for r in results[0]]) != 0)
    assert (accepted > 0.75) if scale < 1 else (accepted < 0.45), accepted
    # the last pass re-entered the first row swept, which may hold a pending block: every other row's cached
    # logits are the layer's output for the final weights
    Wf, bf = views[0][0].reshape(C, F), views[0][1]
    done = np.arange(C) != order_w[0] // F
    np.testing.assert_allclose(stores[0].zT[done], (Wf @ h + bf[:, None])[done], rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- float32: statistical agreement
@pytest.mark.parametrize("model_name", MODELS)
def test_float32_agrees_with_the_reference(model_name):
    """float32 logits round differently when computed incrementally, so a near-tie can flip; ≥ 98% of
    the choices must agree and the losses match to float32 precision."""
    kw = dict(per_tensor=60) if model_name in ("oneconv", "mlp") else {}
    ref = reference(model_name, "weight", "float32", **kw)
    for evaluator in ("incremental", "incremental-numba") if not _numba_missing() else ("incremental",):
        got = drive(evaluator, model_name, "weight", "float32", **kw)
        agree = np.mean(ref[0]["choices"] == got[0]["choices"])
        assert agree >= 0.98, (evaluator, agree)
        # until the first flip the losses are the same numbers up to float32 rounding
        n = int(np.argmax(ref[0]["choices"] != got[0]["choices"])) or len(ref[0]["choices"])
        np.testing.assert_allclose(got[0]["losses"][:n], ref[0]["losses"][:n], rtol=2e-5)
        for k, v in ref[1].items():
            np.testing.assert_allclose(got[1][k], v, atol=0.05 * np.abs(v).max())


def test_float32_a_whole_run_agrees_with_the_reference():
    """A full float32 cycle of OneConv: ≥ 99.5% identical choices, weights within float32 noise."""
    runs = {}
    for name in ("reference", "incremental-numba" if not _numba_missing() else "incremental"):
        t = _trainer(name, dtype="float32", n_train=128)
        runs[name] = (_weights(t), t.model.params_numpy())
    (ref, rp), (got, gp) = runs.values()
    assert len(ref) == len(got) == 7890
    flipped = {(a[0], a[1]) for a, b in zip(ref, got) if a[2] != b[2]}
    assert len(flipped) <= 0.005 * len(ref)
    for k in rp:  # float32 noise everywhere but at a weight whose near-tie went the other way
        far = ~np.isclose(gp[k], rp[k], rtol=0, atol=0.02 * np.abs(rp[k]).max())
        assert {(k, tuple(int(i) for i in idx)) for idx in np.argwhere(far)} <= flipped, k


# --------------------------------------------------------------------------- the trainer
def _trainer(evaluator, **kw):
    base = dict(
        model="oneconv",
        n_train=96,
        n_test=32,
        batch_size=8,
        cycles=1,
        dtype="float64",
        eval_train_samples=32,
        bn_calibration_samples=32,
    )
    base.update(kw)
    return RSOTrainer(RunConfig(**base), sample(), NUMPY, evaluator=evaluator)


def _weights(t, limit=None, gaps=None):
    """(param, index, choice, new value) of every weight tried; ``gaps`` (a list) collects each decision's
    relative margin between the best and the second-best distinct loss."""
    out = []
    for ev in t.events():
        if isinstance(ev, WeightTried):
            out.append((ev.param, ev.index, ev.choice, ev.new))
            if gaps is not None:
                lo, mid, _ = sorted((ev.loss_plus, ev.loss_stay, ev.loss_minus))
                gaps.append((mid - lo) / max(abs(lo), 1e-300) if mid != lo else np.inf)
            if limit and len(out) >= limit:
                break
    return out


def test_auto_picks_the_fastest_exact_path_for_every_model():
    want = "incremental-numba" if not _numba_missing() else "incremental"
    for name in MODELS:
        t = _trainer("auto", model=name)
        assert t.evaluator.name == want, name
        assert want in t.evaluator.describe()


def test_trainer_runs_match_the_reference_in_every_batch_mode():
    # batch 24 in mode "cycle": one batch of 8 for the whole cycle is memorised by the dense layer (summed loss
    # ~0.007) and its last candidates differ by a few ulps, where two exact float64 computations need not agree
    for mode, layers, batch in (("weight", ["conv1"], 8), ("cycle", ["fc", "conv1"], 24), ("layer", ["conv1"], 8)):
        kw = dict(batch_mode=mode, train_layers=layers, n_train=48, batch_size=batch)
        gaps: list[float] = []
        ref = _weights(_trainer("reference", **kw), gaps=gaps)
        assert min(gaps) > 1e-12, f"{mode}: a rounding-level near-tie ({min(gaps):.1e}) makes this setting unfit"
        for name in ("incremental", "incremental-numba") if not _numba_missing() else ("incremental",):
            assert _weights(_trainer(name, **kw)) == ref, (mode, name)


def test_sweep_orders_and_options_match_the_reference():
    """Input-first layers, reversed order inside a layer, frozen batch norm, a layer subset."""
    common = dict(layer_order="input-first", in_layer_order="reverse", n_train=32, batch_size=4)
    for kw in (dict(model="papernet", train_layers=["conv1"], search_bn=False),
               dict(model="mlp", train_layers=["fc2", "fc1"], batch_mode="cycle")):  # fmt: skip
        kw.update(common)
        t = _trainer("reference", **kw)
        t.set_chunking(50)
        ref = _weights(t, limit=600)
        for name in ("incremental", "incremental-numba") if not _numba_missing() else ("incremental",):
            assert _weights(_trainer(name, **kw), limit=600) == ref, (kw["model"], name)


def test_a_resumed_run_continues_like_the_uninterrupted_one(tmp_path):
    kw = dict(model="mlp", train_layers=["fc2"], cycles=2)
    full = _weights(_trainer("auto", **kw))
    t = _trainer("auto", **kw)
    t.set_chunking(1)  # the checkpoint is then taken exactly at the 400th weight
    first = _weights(t, limit=400)
    save_checkpoint(tmp_path / "c.npz", t)
    (t2,), _ = load_checkpoint(tmp_path / "c.npz", dataset=sample(), backend=NUMPY, evaluator="auto")
    assert first + _weights(t2) == full


def test_weights_changed_from_outside_are_noticed():
    """A cache must never survive an edit of the weights it was computed from."""
    runs = []
    for name in ("reference", "incremental", "layer-cached", "incremental-numba"):
        if name == "incremental-numba" and _numba_missing():
            continue
        t = _trainer(name, model="twoconv", train_layers=["fc", "conv2"], n_train=32)
        t.set_chunking(1)  # the edit then lands between the same two weights for every evaluator
        out, gen = [], t.events()
        for ev in gen:
            if isinstance(ev, WeightTried):
                out.append((ev.choice, ev.new))
                if len(out) == 200:
                    t.model.params["conv2.weight"][...] *= 0.5  # an edit the evaluator is not told about
                    t.model.params["fc.weight"][0, :5] = 0.3
                if len(out) == 900:
                    break
        runs.append(out)
    assert all(run == runs[0] for run in runs[1:])


# --------------------------------------------------------------------------- GPU
@pytest.mark.parametrize("model_name", MODELS)
def test_every_kernel_set_runs_the_forward_pass_the_layers_define(model_name):
    """One forward dispatch, pluggable kernels: the GPU set (convolutions in 1 GB chunks, array-module generic,
    so checked here with NumPy), tiny chunks and the compiled CPU set all give the layers' numbers, on
    every stretch of layers an evaluator runs (a prefix, a suffix, one layer)."""
    model = build_model(model_name, dtype="float64")
    x = model.to_input(np.random.default_rng(0).normal(size=(20, 1, 28, 28)))
    n = len(model.layers)
    sets = [GPU_KERNELS, Kernels(chunk_bytes=1 << 16)] + ([] if _numba_missing() else [NUMBA_KERNELS])
    want = [model.forward(x, stop=i) for i in range(n + 1)]
    for kernels in sets:
        np.testing.assert_allclose(run_layers(model.layers, model.params, x, 0, n, kernels), want[n], rtol=1e-12)
        for a, b in ((0, n // 2), (n // 2, n), (n - 1, n), (n // 3, n // 3 + 1)):
            got = run_layers(model.layers, model.params, want[a], a, b, kernels)
            np.testing.assert_allclose(got, want[b], rtol=1e-12, atol=1e-12, err_msg=f"{kernels.name} {a}..{b}")


@pytest.fixture(scope="module")
def cupy_backend():
    pytest.importorskip("cupy")
    why = cupy_unavailable_reason()
    if why:
        pytest.skip(f"no usable GPU: {why}")
    return get_backend("cupy")


@pytest.mark.gpu
@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("mode", ["weight", "layer"])
@pytest.mark.parametrize("evaluator", ["incremental-cupy", "incremental", "layer-cached"])
def test_gpu_float64_choices_are_identical(cupy_backend, model_name, mode, evaluator):
    assert_same(reference(model_name, mode), drive(evaluator, model_name, mode, backend=cupy_backend))


@pytest.mark.gpu
def test_gpu_auto_picks_the_cuda_path(cupy_backend):
    t = RSOTrainer(
        RunConfig(
            model="oneconv",
            n_train=64,
            n_test=16,
            batch_size=8,
            cycles=1,
            eval_train_samples=16,
            bn_calibration_samples=16,
        ),
        sample(),
        cupy_backend,
    )
    assert t.evaluator.name == "incremental-cupy"
