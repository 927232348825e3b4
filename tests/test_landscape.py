"""rso_engine.landscape: loss along one weight and 2-D slices agree with plain forward passes."""

from __future__ import annotations

import numpy as np
import pytest

from rso_engine import landscape as L
from rso_engine.config import RunConfig
from rso_engine.events import WeightTried
from rso_engine.models import build_model, cross_entropy
from rso_engine.training import RSOTrainer


def _batch(model, n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, n).astype(np.int64)
    return model.to_input(x), y


def _plain_loss(model, param, index, value, x, y):
    """The loss with the weight set in place (then restored): the obvious reference."""
    t = model.params[param]
    old = float(t[index])
    t[index] = value
    try:
        return float(cross_entropy(model.forward(x, train=True), y))
    finally:
        t[index] = old


@pytest.mark.parametrize("model_name", ["oneconv", "mlp", "papernet"])
def test_curve_matches_plain_forward_for_every_tensor(model_name):
    model = build_model(model_name, seed=1)
    x, y = _batch(model)
    before = {k: v.copy() for k, v in model.params.items()}
    offsets = np.array([-0.4, -0.1, 0.0, 0.25])
    for param, tensor in model.params.items():
        index = tuple(s // 2 for s in tensor.shape)
        center = float(tensor[index])
        got = L.loss_along_weight(model, param, index, x, y, offsets)
        want = [_plain_loss(model, param, index, center + t, x, y) for t in offsets]
        np.testing.assert_allclose(got, want, rtol=2e-5, err_msg=param)
    for k, v in model.params.items():  # the model is left unchanged
        np.testing.assert_array_equal(v, before[k])


def test_affine_and_direct_methods_agree():
    model = build_model("twoconv", seed=2)
    x, y = _batch(model, n=16)
    offsets = np.linspace(-1, 1, 9)
    for param in ("conv1.weight", "conv2.bias", "fc.weight"):
        index = (0,) * model.params[param].ndim
        a = L.loss_along_weight(model, param, index, x, y, offsets, method="affine")
        d = L.loss_along_weight(model, param, index, x, y, offsets, method="direct")
        np.testing.assert_allclose(a, d, rtol=2e-5)


def test_weight_curve_includes_candidates_and_centre():
    model = build_model("oneconv", seed=0)
    x, y = _batch(model)
    delta = 0.123
    c = L.weight_curve(model, "fc.weight", (3, 100), x, y, span=0.5, n=11, include=(0.0, delta, -delta))
    assert np.all(np.diff(c.offsets) > 0)
    for t in (0.0, delta, -delta, -0.5, 0.5):
        assert np.any(np.isclose(c.offsets, t))
    assert c.center == pytest.approx(float(model.params["fc.weight"][3, 100]))
    assert c.batch_size == len(y)
    np.testing.assert_allclose(c.values, c.center + c.offsets)
    stay = c.loss_at(0.0)
    assert stay == pytest.approx(float(cross_entropy(model.forward(x), y)), rel=1e-6)


def test_curve_passes_through_rso_losses_when_single_stepping():
    """With max_chunk=1 each WeightTried is the engine's real state: the curve around the old value,
    on the weight's own batch, must give the engine's three losses at −Δ, 0, +Δ."""
    cfg = RunConfig(
        model="oneconv",
        batch_size=32,
        n_train=300,
        n_test=50,
        cycles=1,
        evaluator="reference",
        eval_train_samples=100,
        bn_calibration_samples=100,
    )
    tr = RSOTrainer(cfg)
    tr.set_chunking(1)
    checked = 0
    for ev in tr.events():
        if not isinstance(ev, WeightTried):
            continue
        idx = tr.batch_for_step(ev.step)
        assert idx is not None
        x, y = tr.x_train[:, idx], tr.y_train[idx]
        c = L.weight_curve(
            tr.model,
            ev.param,
            ev.index,
            x,
            y,
            span=3 * abs(ev.delta) + 1e-3,
            n=7,
            center=ev.old,
            include=(ev.delta, 0.0, -ev.delta),
        )
        assert c.loss_at(ev.delta) == pytest.approx(ev.loss_plus, rel=1e-5)
        assert c.loss_at(0.0) == pytest.approx(ev.loss_stay, rel=1e-5)
        assert c.loss_at(-ev.delta) == pytest.approx(ev.loss_minus, rel=1e-5)
        checked += 1
        if checked == 12:
            break
    assert checked == 12


def test_weight_grid_same_layer_and_across_layers():
    model = build_model("oneconv", seed=3)
    x, y = _batch(model, n=12)
    a, b = ("conv1.weight", (0, 0, 1, 1)), ("conv1.weight", (0, 0, 1, 2))
    ao, bo = np.linspace(-0.5, 0.5, 3), np.linspace(-0.3, 0.3, 4)
    s = L.weight_grid(model, a, b, x, y, ao, bo)
    assert s.kind == "weights" and s.losses.shape == (3, 4)
    ref = L.weight_grid(model, a, b, x, y, ao, bo, method="direct")
    np.testing.assert_allclose(s.losses, ref.losses, rtol=2e-5)
    w = model.params["conv1.weight"]
    want = []
    for da in ao:
        row = []
        for db in bo:
            old = w.copy()
            w[a[1]] += da
            w[b[1]] += db
            row.append(float(cross_entropy(model.forward(x), y)))
            w[...] = old
        want.append(row)
    np.testing.assert_allclose(s.losses, want, rtol=2e-5)
    cross = L.weight_grid(model, a, ("fc.weight", (1, 2)), x, y, ao, bo)
    assert cross.losses.shape == (3, 4) and np.all(np.isfinite(cross.losses))
    with pytest.raises(ValueError):
        L.weight_grid(model, a, ("fc.weight", (1, 2)), x, y, ao, bo, method="affine")
    with pytest.raises(ValueError):
        L.weight_grid(model, a, a, x, y, ao, bo)


def _norms(a, axes):
    return np.sqrt((a.astype(np.float64) ** 2).sum(axis=axes))


def test_filter_normalised_directions():
    model = build_model("twoconv", seed=4)
    d = L.filter_normalized_direction(model, np.random.default_rng(0))
    for name, w in model.params.items():
        assert d[name].shape == w.shape
        if w.ndim < 2:
            assert not np.any(d[name])  # biases get no component, as in Li et al.
            continue
        axes = tuple(range(1, w.ndim))
        np.testing.assert_allclose(_norms(d[name], axes), _norms(w, axes), rtol=1e-5)
    only = L.filter_normalized_direction(model, np.random.default_rng(0), params=["fc.weight"])
    assert not np.any(only["conv1.weight"]) and np.any(only["fc.weight"])


def test_direction_grid_centre_is_current_loss():
    model = build_model("oneconv", seed=5)
    x, y = _batch(model, n=10)
    rng = np.random.default_rng(1)
    d1, d2 = L.filter_normalized_direction(model, rng), L.filter_normalized_direction(model, rng)
    s = L.direction_grid(model, d1, d2, x, y, [-0.5, 0.0, 0.5], [-0.2, 0.0, 0.2])
    assert s.kind == "directions" and s.losses.shape == (3, 3)
    assert s.losses[1, 1] == pytest.approx(float(cross_entropy(model.forward(x), y)), rel=1e-6)
    moved = {k: model.params[k] + 0.5 * d1[k].astype(np.float32) + 0.2 * d2[k].astype(np.float32) for k in model.params}
    assert s.losses[2, 2] == pytest.approx(float(cross_entropy(model.forward(x, P=moved), y)), rel=1e-5)


def test_bad_arguments_are_clear():
    model = build_model("oneconv", seed=0)
    x, y = _batch(model, n=4)
    with pytest.raises(KeyError, match="no parameter"):
        L.loss_along_weight(model, "conv9.weight", (0,), x, y, [0.0])
    with pytest.raises(IndexError, match="outside"):
        L.loss_along_weight(model, "fc.bias", (10,), x, y, [0.0])
    with pytest.raises(ValueError, match="method"):
        L.loss_along_weight(model, "fc.bias", (1,), x, y, [0.0], method="magic")
    with pytest.raises(ValueError, match="span"):
        L.weight_curve(model, "fc.bias", (1,), x, y, span=0.0)
