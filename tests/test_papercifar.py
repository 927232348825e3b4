"""The paper's CIFAR-10 net (``papercifar``): structure, residual links, backprop, batch-norm calibration,
exact evaluators, and training end to end on CIFAR-format files made here."""

from __future__ import annotations

import numpy as np
import pytest
from test_cifar import make_batch, write_folder
from threadpoolctl import threadpool_limits

from helpers import sample
from rso_engine import data
from rso_engine.backend import get_backend
from rso_engine.cli import main
from rso_engine.config import RunConfig
from rso_engine.data.catalogue import CIFAR10_FOLDER
from rso_engine.evaluators import make_evaluator
from rso_engine.evaluators.registry import StandInEvaluator, auto_choice, unavailable
from rso_engine.events import WeightTried
from rso_engine.experiment import load_checkpoint, save_checkpoint
from rso_engine.kernels.jit import numba_unavailable_reason
from rso_engine.layers import AvgPool2d, Conv2d, GlobalAvgPool, Residual
from rso_engine.models import build_model, cross_entropy, softmax_grad
from rso_engine.training import RSOTrainer, SGDTrainer
from rso_engine.training.base import check_input_shape

NUMPY = get_backend("numpy")
BLOCKS = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


@pytest.fixture(autouse=True)
def one_blas_thread():
    """These tests push small batches through many small layers: BLAS threads only cost (30× on a busy
    2-core machine); both sides of every comparison run alike."""
    with threadpool_limits(1, user_api="blas"):
        yield


def _model(dtype="float64", seed=0):
    return build_model("papercifar", seed=seed, backend=NUMPY, dtype=dtype)


def _x(model, n, seed=0, size=32):
    """``n`` random 3-channel images. The net ends in a global average pool, so it takes any size that its
    two pools divide; the slow tests use 8×8 images (the same paths, 16 times less arithmetic)."""
    return model.to_input(np.random.default_rng(seed).normal(size=(n, 3, size, size)))


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    """A CIFAR-10 folder in the exact binary format: 5 training batches of 16 images, a test batch of 16."""
    batches = {name: make_batch(10 + i, n=16) for i, name in enumerate(BLOCKS)}
    return write_folder(tmp_path_factory.mktemp("cifar") / CIFAR10_FOLDER, batches)


# --------------------------------------------------------------------------- structure
def test_parameter_count_and_groups():
    m = _model()
    assert m.n_params == 57_104
    assert [g.name for g in m.groups] == ["conv1", "conv2", "conv3", "proj5", *(f"conv{i}" for i in range(4, 10)), "fc"]
    assert m.group_of("proj5bn.gamma").params == ("proj5.weight", "proj5bn.gamma", "proj5bn.beta")
    assert m.group_of("bn5.beta").params == ("conv5.weight", "bn5.gamma", "bn5.beta")  # bn5 follows the add
    shapes = m.param_shapes()
    assert shapes["conv1.weight"] == (16, 3, 3, 3) and shapes["conv4.weight"] == (32, 16, 3, 3)
    assert shapes["proj5.weight"] == (32, 16, 1, 1) and shapes["fc.weight"] == (10, 32)
    assert {p: m.sigma[p] for p in ("bn1.gamma", "proj5bn.beta")} == {"bn1.gamma": 0.167, "proj5bn.beta": 0.167}
    assert m.sigma["proj5.weight"] == pytest.approx(np.sqrt(2 / 16), rel=0.15)  # He init of a 1×1 conv 16→32


def test_the_residual_links_sit_where_the_reference_says():
    m = _model()
    top = [layer.name for layer in m.layers]
    assert top == ["conv1", "bn1", "res3", "pool1", "bn3", "res5", "pool2", "bn5", "res7", "bn7", "res9", "bn9",
                   "gap", "fc"]  # fmt: skip
    res = {layer.name: layer for layer in m.layers if isinstance(layer, Residual)}
    for i, block in res.items():
        n = int(i[3:])
        assert [la.name for la in block.body] == [f"relu{n - 2}", f"conv{n - 1}", f"bn{n - 1}", f"relu{n - 1}",
                                                  f"conv{n}"]  # fmt: skip
    assert [la.name for la in res["res5"].skip] == ["proj5", "proj5bn"]
    assert all(not res[n].skip for n in ("res3", "res7", "res9"))
    assert isinstance(m.layers[3], AvgPool2d) and isinstance(m.layers[12], GlobalAvgPool)
    assert all(not la.bias for la in m.walk() if isinstance(la, Conv2d))
    assert len(m.bn_layers()) == 10  # bn1..bn9 and the projection's
    assert m.layer_of("conv4.weight") is res["res5"] and m.owner_of("conv4.weight").name == "conv4"
    assert m.top_level_index()["proj5bn"] == top.index("res5")


def test_forward_is_the_blocks_written_out():
    """bn1 → (relu → conv2 → bn2 → relu → conv3) + bn1 → pool → bn3 → … with the 1×1 projection in block 5."""
    m = _model()
    x = _x(m, 3)
    P = m.params
    L = {la.name: la for la in m.walk()}

    def run(names, h):
        for n in names:
            h = L[n].forward(P, h, True)[0]
        return h

    s = run(["conv1", "bn1"], x)
    s = run(["pool1", "bn3"], run(["relu1", "conv2", "bn2", "relu2", "conv3"], s) + s)
    s = run(["pool2", "bn5"], run(["relu3", "conv4", "bn4", "relu4", "conv5"], s) + run(["proj5", "proj5bn"], s))
    assert s.shape == (32, 3, 8, 8)
    s = run(["bn7"], run(["relu5", "conv6", "bn6", "relu6", "conv7"], s) + s)
    s = run(["bn9"], run(["relu7", "conv8", "bn8", "relu8", "conv9"], s) + s)
    logits = s.mean(axis=(2, 3)).T @ P["fc.weight"].T
    np.testing.assert_array_equal(m.forward(x), logits)
    np.testing.assert_array_equal(m.forward(m.forward(x, stop=5), start=5), logits)  # a pass may start at a block


def test_backprop_through_the_residual_adds_matches_finite_differences():
    m = _model()
    rng = np.random.default_rng(4)
    for k in m.params:  # non-trivial γ/β
        if k.endswith((".gamma", ".beta")):
            m.params[k] = m.params[k] + rng.normal(scale=0.3, size=m.params[k].shape)
    x, y = _x(m, 4, seed=5, size=8), rng.integers(0, 10, size=4)
    logits, caches = m.forward_keep(x, train=True)
    grads = m.backward(softmax_grad(logits, y), caches)
    assert set(grads) == set(m.params)
    eps = 1e-6
    for name in ("conv1.weight", "bn1.beta", "conv2.weight", "conv3.weight", "proj5.weight", "proj5bn.gamma",
                 "conv4.weight", "bn5.gamma", "conv9.weight", "bn9.beta", "fc.weight"):  # fmt: skip
        flat = m.params[name].reshape(-1)
        for i in rng.choice(flat.size, size=min(3, flat.size), replace=False):
            w = flat[i]
            flat[i] = w + eps
            up = float(cross_entropy(m.forward(x), y, "mean"))
            flat[i] = w - eps
            down = float(cross_entropy(m.forward(x), y, "mean"))
            flat[i] = w
            assert grads[name].reshape(-1)[i] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-9), name


def test_calibrated_statistics_reach_the_batch_norms_inside_the_blocks():
    m = _model()
    x = _x(m, 8, seed=1)
    m.calibrate_bn(x)
    assert {f"{b.name}.mean" for b in m.bn_layers()} <= set(m.buffers)
    np.testing.assert_allclose(m.logits(x), m.forward(x, train=True), rtol=1e-9, atol=1e-12)


def test_the_landscape_of_a_weight_inside_a_block_is_computed_directly():
    from rso_engine import landscape as L  # noqa: PLC0415

    m = _model()
    x, y = _x(m, 3, size=8), np.arange(3)
    w = float(m.params["conv4.weight"][1, 2, 0, 1])
    curve = L.weight_curve(m, "conv4.weight", (1, 2, 0, 1), x, y, span=0.5, n=3)  # auto: direct, through ReLUs
    for offset, loss in zip(curve.offsets, curve.losses, strict=True):
        m.params["conv4.weight"][1, 2, 0, 1] = w + offset
        assert loss == pytest.approx(float(cross_entropy(m.forward(x), y)), rel=1e-12)
    m.params["conv4.weight"][1, 2, 0, 1] = w
    with pytest.raises(ValueError, match="res5 is a residual block"):
        L.loss_along_weight(m, "conv4.weight", (1, 2, 0, 1), x, y, [0.1], method="affine")


# --------------------------------------------------------------------------- evaluators
def _numba() -> list[str]:
    return [] if numba_unavailable_reason() else ["incremental-numba"]


def drive(evaluator, mode, *, n_train=16, batch=3, seed=0, stay_factor=1.0):
    """Sweep a few weights of the groups whose paths differ (the dense layer, bn9 before the GAP, a block
    with a projection, the projection, the first block), output layer first, in chunks of 1–3."""
    model = _model(seed=seed)
    x, y = _x(model, n_train, seed=seed + 1, size=8), NUMPY.xp.asarray(np.arange(n_train) % 10, dtype=np.int64)
    ev = make_evaluator(evaluator, model, x, y)
    rng = np.random.default_rng(seed + 7)
    choices, losses = [], []
    for group in reversed(model.groups):
        if group.name not in ("fc", "conv9", "conv5", "proj5", "conv3", "conv1"):
            continue
        shared = rng.permutation(n_train)[None, :batch]
        ev.begin_group(group, group.params)
        for p in group.params:
            size = model.params[p].size
            picks = np.unique(np.linspace(0, size - 1, 4).astype(int))
            deltas = rng.standard_normal(len(picks)) * model.sigma[p]
            batches = np.stack([rng.permutation(n_train)[:batch] for _ in picks]) if mode == "weight" else shared
            for s in range(0, len(picks), 3):
                res = ev.sweep(p, picks[s : s + 3], deltas[s : s + 3], batches[s : s + 3] if mode == "weight"
                               else batches, stay_factor)  # fmt: skip
                choices.append(res.choices)
                losses.append(res.losses)
        ev.end_group(group)
    return np.concatenate(choices), np.concatenate(losses), model.params_numpy(), ev


def test_a_batch_norm_inside_a_block_is_seen_by_the_caches():
    """No batch norm at the top level before the output layer, one inside a block: its input depends on the
    whole batch, so it must not come from a per-image training-set cache."""
    from rso_engine.layers import BatchNorm2d, Dense, ReLU  # noqa: PLC0415
    from rso_engine.models import Model  # noqa: PLC0415

    def toy():
        body = [ReLU("r1"), Conv2d("c2", 4, 4), BatchNorm2d("b2", 4), ReLU("r2"), Conv2d("c3", 4, 4)]
        return Model("toy", [Conv2d("c1", 3, 4), Residual("res", body), GlobalAvgPool("gap"), Dense("fc", 4, 10)],
                     backend=NUMPY, dtype="float64").init(0)  # fmt: skip

    x, y = _x(toy(), 12, size=4), NUMPY.xp.asarray(np.arange(12) % 10, dtype=np.int64)
    rng = np.random.default_rng(0)
    flat, deltas = np.arange(40), rng.standard_normal(40) * 0.3
    batches = np.stack([rng.permutation(12)[:3] for _ in flat])
    out = {}
    for name in ("reference", "layer-cached", "incremental"):
        m = toy()
        ev = make_evaluator(name, m, x, y)
        assert ev.bn_before(2) if name != "reference" else True
        out[name] = ev.sweep("fc.weight", flat, deltas, batches, 1.0).choices, m.params_numpy()["fc.weight"]
    for name in ("layer-cached", "incremental"):
        np.testing.assert_array_equal(out[name][0], out["reference"][0])
        np.testing.assert_array_equal(out[name][1], out["reference"][1])


@pytest.mark.parametrize("mode", ["weight", "layer"])
def test_every_evaluator_makes_the_references_choices_in_float64(mode):
    ref_choices, ref_losses, ref_params, _ = drive("reference", mode)
    assert len(set(ref_choices.tolist())) > 1  # the sweep decides something
    for name in ("auto", "layer-cached", "incremental", *_numba()):
        choices, losses, params, ev = drive(name, mode)
        np.testing.assert_array_equal(choices, ref_choices, err_msg=name)
        np.testing.assert_allclose(losses, ref_losses, rtol=1e-12, err_msg=name)
        for k, v in ref_params.items():
            np.testing.assert_array_equal(params[k], v, err_msg=f"{name}: {k}")
        assert ev.name == "layer-cached", name


def test_stay_decay_is_exact_too():
    ref = drive("reference", "weight", stay_factor=1 - 1e-4, seed=2)
    got = drive("incremental", "weight", stay_factor=1 - 1e-4, seed=2)
    np.testing.assert_array_equal(got[0], ref[0])
    assert all(np.array_equal(got[2][k], ref[2][k]) for k in ref[2])


def test_auto_and_the_incremental_names_say_what_runs():
    m = _model()
    x, y = _x(m, 4), NUMPY.xp.zeros(4, dtype=np.int64)
    assert auto_choice(m) == "layer-cached"
    assert "residual links (res3, res5, res7, res9)" in unavailable("incremental", m)
    for name in ("incremental", *_numba()):
        ev = make_evaluator(name, m, x, y)
        assert isinstance(ev, StandInEvaluator)
        assert ev.describe().startswith(f"layer-cached in place of {name} (papercifar has residual links")
    assert make_evaluator("auto", m, x, y).describe() == "layer-cached"
    with pytest.raises(ValueError, match="CuPy"):  # a backend that is not there is still an error
        make_evaluator("incremental-cupy", m, x, y)
    assert auto_choice(build_model("papernet", backend=NUMPY)) != "layer-cached"  # the other nets keep theirs


def _tiny_colour_data(n_train=24, n_test=8, size=8) -> data.Dataset:
    """Random 3-channel images (8×8: the same paths as 32×32, 16 times less arithmetic) with labels."""
    rng = np.random.default_rng(3)
    return data.Dataset("cifar10", rng.normal(size=(n_train, 3, size, size)).astype(np.float32),
                        np.arange(n_train) % 10, rng.normal(size=(n_test, 3, size, size)).astype(np.float32),
                        np.arange(n_test) % 10, 0.0, 1.0, "random", data.CIFAR10_CLASSES)  # fmt: skip


@pytest.mark.parametrize("kw", [
    dict(update="layer-parallel", train_layers=["proj5"], search_bn=False),  # inside a block: scored from res5
    dict(update="neuron-parallel", train_layers=["fc"]),
    dict(batch_mode="authors", train_layers=["fc"]),  # the frozen input computed through every block
], ids=["layer-parallel", "neuron-parallel", "authors"])  # fmt: skip
def test_the_parallel_updates_and_the_authors_batches_match_their_plain_reference(kw):
    from test_update_variants import reference_run  # noqa: PLC0415

    ds = _tiny_colour_data()
    cfg = RunConfig(model="papercifar", dataset="cifar10", n_train=24, n_test=8, batch_size=4, cycles=1,
                    dtype="float64", eval_train_samples=8, bn_calibration_samples=8, **kw).validated()
    want_params, want = reference_run(cfg, ds)
    t = RSOTrainer(cfg, ds, NUMPY, evaluator="auto")
    t.set_chunking(7)
    assert [(e.param, e.index, e.choice, e.new) for e in t.events() if isinstance(e, WeightTried)] == want
    got = t.model.params_numpy()
    assert all(np.array_equal(got[p], want_params[p]) for p in want_params)
    assert len({c for _, _, c, _ in want}) > 1


# --------------------------------------------------------------------------- data and training
def test_models_and_datasets_must_agree_on_channels(cifar_dir):
    with pytest.raises(ValueError) as exc:
        RSOTrainer(RunConfig(model="papercifar", n_train=20, n_test=10), dataset=sample())
    msg = str(exc.value)
    assert msg.startswith("model papercifar (first layer: Conv 3×3 3→16") and "1×28×28 images of mnist-sample" in msg
    assert msg.endswith("choose a model made for 1×28×28 images (oneconv, twoconv, papernet, mlp)")
    ds = data.load_dataset("cifar10", data_dir=cifar_dir)
    check_input_shape(build_model("papercifar", backend=NUMPY), ds.image_shape, ds.name)  # fits
    with pytest.raises(ValueError, match=r"model oneconv .* 3×32×32 images of cifar10.*: choose .* \(papercifar\)$"):
        RSOTrainer(RunConfig(model="oneconv", dataset="cifar10", n_train=10, n_test=5), dataset=ds)


def test_rso_trains_on_cifar_files_and_changes_weights(cifar_dir):
    ds = data.load_dataset("cifar10", data_dir=cifar_dir)
    cfg = RunConfig(model="papercifar", dataset="cifar10", n_train=80, n_test=16, batch_size=8, cycles=1,
                    train_layers=["fc", "conv9"], batch_mode="layer", dtype="float64", eval_train_samples=16,
                    bn_calibration_samples=32)
    t = RSOTrainer(cfg, dataset=ds, backend=NUMPY)
    assert t.evaluator.name == "layer-cached"
    t.set_chunking(64)
    tried = []
    for ev in t.events():
        if isinstance(ev, WeightTried):
            tried.append((ev.param, ev.choice))
            if len(tried) >= 340:
                break
    assert [p for p, _ in tried[:320]] == ["fc.weight"] * 320 and tried[320][0] == "conv9.weight"
    assert any(c != 0 for _, c in tried)


def test_a_resumed_papercifar_run_continues_like_the_uninterrupted_one(cifar_dir, tmp_path):
    """The checkpoint carries every batch norm's statistics, those inside the residual blocks included."""
    ds = data.load_dataset("cifar10", data_dir=cifar_dir)
    cfg = RunConfig(model="papercifar", dataset="cifar10", n_train=48, n_test=16, batch_size=4, cycles=1,
                    train_layers=["conv9"], batch_mode="layer", dtype="float64", eval_train_samples=16,
                    bn_calibration_samples=16)  # fmt: skip

    def tried(t, limit):
        out = []
        for ev in t.events():
            if isinstance(ev, WeightTried):
                out.append((ev.index, ev.choice, ev.new))
                if len(out) == limit:
                    return out
        return out

    full = RSOTrainer(cfg, dataset=ds, backend=NUMPY)
    full.set_chunking(1)
    want = tried(full, 60)
    t = RSOTrainer(cfg, dataset=ds, backend=NUMPY)
    t.set_chunking(1)
    first = tried(t, 30)
    save_checkpoint(tmp_path / "c.npz", t)
    (t2,), _ = load_checkpoint(tmp_path / "c.npz", dataset=ds, backend=NUMPY, evaluator="auto")
    assert set(t2.model.buffers) == set(t.model.buffers) >= {"proj5bn.mean", "bn8.var"}
    for k, v in t.model.buffers.items():
        np.testing.assert_array_equal(t2.model.buffers[k], v, err_msg=k)
    t2.set_chunking(1)
    assert first + tried(t2, 30) == want


def test_sgd_lowers_the_loss_of_papercifar(cifar_dir):
    ds = data.load_dataset("cifar10", data_dir=cifar_dir)
    cfg = RunConfig(model="papercifar", dataset="cifar10", n_train=16, n_test=16, cycles=2, sgd_batch_size=8,
                    lr=0.05, momentum=0.9, dtype="float64", eval_train_samples=16, bn_calibration_samples=16)
    t = SGDTrainer(cfg, dataset=ds, backend=NUMPY)
    t.run()
    losses = [h.train_loss for h in t.history]
    assert losses[-1] < losses[0], losses


def test_the_cli_trains_papercifar_on_a_cifar_folder(cifar_dir, capsys, tmp_path):
    hist = tmp_path / "h.csv"
    code = main(["train", "--model", "papercifar", "--dataset", "cifar10", "--data-dir", str(cifar_dir.parent),
                 "--cycles", "1", "--train-layers", "fc", "--batch-size", "8", "--batch-mode", "layer",
                 "--n-train", "48", "--n-test", "16", "--evaluator", "incremental",
                 "--eval-train-samples", "16", "--history", str(hist)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "evaluator: layer-cached" in out and "test acc" in out
    assert "\nlayer-cached in place of incremental (papercifar has residual links" in out  # the header says why
    assert len(hist.read_text().splitlines()) == 3


def test_info_lists_the_model_with_its_count_and_the_dataset(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.strip().startswith("papercifar"))
    assert "57,104" in line and "auto: layer-cached" in line
    assert "cifar10" in out and "residual links" in out

