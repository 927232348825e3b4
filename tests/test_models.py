"""Models: parameter counts and order, shapes, He init, and backprop against finite differences."""

import numpy as np
import pytest

from rso_engine.backend import get_backend
from rso_engine.layers import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dense,
    Flatten,
    GlobalAvgPool,
    MaxPool2d,
    ReLU,
)
from rso_engine.models import Model, build_model, cross_entropy, softmax_grad

NUMPY = get_backend("numpy")


@pytest.mark.parametrize("name, count", [("oneconv", 7890), ("twoconv", 10330), ("papernet", 12016),
                                         ("mlp", 25450)])
def test_parameter_counts_match_the_reference(name, count):
    assert build_model(name, backend=NUMPY).n_params == count


def test_parameter_order_is_documented_order():
    m = build_model("papernet", backend=NUMPY)
    assert m.param_order()[:4] == ["conv1.weight", "bn1.gamma", "bn1.beta", "conv2.weight"]
    assert m.param_order()[-1] == "fc.weight"
    assert [g.name for g in m.groups] == [f"conv{i}" for i in range(1, 7)] + ["fc"]
    assert build_model("oneconv", backend=NUMPY).param_order() == ["conv1.weight", "conv1.bias", "fc.weight",
                                                                   "fc.bias"]


def test_paper_net_has_the_authors_layer_order():
    """Block i = [ReLU if i > 1] → conv → [avg-pool in blocks 2 and 4] → BN; GAP straight on bn6's output."""
    m = build_model("papernet", backend=NUMPY)
    names = [layer.name for layer in m.layers]
    assert names == [
        "conv1", "bn1",
        "relu1", "conv2", "pool1", "bn2",
        "relu2", "conv3", "bn3",
        "relu3", "conv4", "pool2", "bn4",
        "relu4", "conv5", "bn5",
        "relu5", "conv6", "bn6",
        "gap", "fc",
    ]  # fmt: skip
    kinds = {name: type(layer) for name, layer in zip(names, m.layers)}
    assert all(kinds[f"conv{i}"] is Conv2d and kinds[f"bn{i}"] is BatchNorm2d for i in range(1, 7))
    assert all(kinds[f"relu{i}"] is ReLU for i in range(1, 6))
    assert kinds["pool1"] is AvgPool2d and kinds["pool2"] is AvgPool2d
    assert kinds["gap"] is GlobalAvgPool and kinds["fc"] is Dense
    # no ReLU between bn6 and the global average pool; a pool sits between conv and BN in blocks 2 and 4
    assert names[names.index("bn6") + 1] == "gap"
    for conv, pool, bn in (("conv2", "pool1", "bn2"), ("conv4", "pool2", "bn4")):
        assert names.index(pool) == names.index(conv) + 1 and names.index(bn) == names.index(pool) + 1
    assert not any(isinstance(layer, (ReLU, AvgPool2d)) for layer in m.layers[: names.index("bn1") + 1])
    assert not m.layers[names.index("conv1")].bias and not m.layers[-1].bias
    # the searched groups still put each BN's γ, β right after its conv's weight
    assert [g.params for g in m.groups[:2]] == [
        ("conv1.weight", "bn1.gamma", "bn1.beta"),
        ("conv2.weight", "bn2.gamma", "bn2.beta"),
    ]
    # shapes: 28 → 14 after block 2, 7 after block 4; the GAP sees bn6's (16, N, 7, 7)
    x = m.to_input(np.zeros((2, 1, 28, 28), np.float32))
    assert m.forward(x, stop=names.index("bn2") + 1).shape == (16, 2, 14, 14)
    assert m.forward(x, stop=names.index("bn6") + 1).shape == (16, 2, 7, 7)


def test_paper_net_gap_averages_bn6_without_rectifying():
    """The logits are fc(GAP(bn6)) with bn6's negative values included (no ReLU before the GAP)."""
    m = build_model("papernet", backend=NUMPY, dtype="float64")
    x = m.to_input(np.random.default_rng(0).normal(size=(5, 1, 28, 28)))
    i = [layer.name for layer in m.layers].index("bn6")
    h = m.forward(x, stop=i + 1)
    assert (h < 0).any()
    np.testing.assert_allclose(m.forward(x), h.mean(axis=(2, 3)).T @ m.params["fc.weight"].T, rtol=1e-12)


def test_he_init_and_sigma():
    m = build_model("twoconv", seed=3, backend=NUMPY)
    w = m.params["conv2.weight"]
    assert abs(w.std() - np.sqrt(2 / (16 * 9))) < 0.01
    assert m.sigma["conv2.weight"] == np.sqrt(2 / (16 * 9))  # the authors' code: He's std, not the sample's
    assert float(np.std(w.astype(np.float64))) == pytest.approx(m.sigma["conv2.weight"], rel=0.1)
    assert m.sigma["conv2.bias"] == m.sigma["conv2.weight"]  # biases use their layer's σ_d
    assert np.all(m.params["conv2.bias"] == 0)
    assert build_model("papernet", backend=NUMPY).sigma["bn3.gamma"] == 0.167
    # the same seed gives the same weights
    m2 = build_model("twoconv", seed=3, backend=NUMPY)
    assert all(np.array_equal(m.params[k], m2.params[k]) for k in m.params)


@pytest.mark.parametrize("name", ["oneconv", "twoconv", "papernet", "mlp"])
def test_forward_shapes_and_loss(name):
    m = build_model(name, backend=NUMPY)
    x = np.random.default_rng(0).normal(size=(7, 1, 28, 28)).astype(np.float32)
    logits = m.forward(m.to_input(x))
    assert logits.shape == (7, 10)
    y = np.arange(7) % 10
    total = float(cross_entropy(logits, y))
    assert total == pytest.approx(7 * float(cross_entropy(logits, y, "mean")))
    # reference softmax cross-entropy
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert total == pytest.approx(-np.log(p[np.arange(7), y]).sum(), rel=1e-10)


def test_conv_matches_a_direct_loop():
    rng = np.random.default_rng(1)
    conv = Conv2d("c", 3, 2)
    P = {"c.weight": rng.normal(size=(2, 3, 3, 3)), "c.bias": rng.normal(size=2)}
    x = rng.normal(size=(3, 4, 6, 5))  # (C, N, H, W)
    y, _ = conv.forward(P, x, True)
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros((2, 4, 6, 5))
    for o in range(2):
        for n in range(4):
            for i in range(6):
                for j in range(5):
                    ref[o, n, i, j] = (P["c.weight"][o] * xpad[:, n, i : i + 3, j : j + 3]).sum() + P["c.bias"][o]
    np.testing.assert_allclose(y, ref, rtol=1e-12)


def _check_gradients(layers, x_shape, rng, eps=1e-6):
    m = Model("t", layers, backend=NUMPY, dtype="float64").init(0)
    for k in m.params:  # non-trivial BN γ/β and biases
        m.params[k] = m.params[k] + rng.normal(scale=0.3, size=m.params[k].shape)
    x = rng.normal(size=x_shape)
    y = rng.integers(0, 10, size=x_shape[1])

    def loss():
        return float(cross_entropy(m.forward(x, train=True), y, "mean"))

    logits, caches = m.forward_keep(x, train=True)
    grads = m.backward(softmax_grad(logits, y), caches)
    for name, p in m.params.items():
        flat = p.reshape(-1)
        num = np.empty(flat.size)
        for i in range(flat.size):
            w = flat[i]
            flat[i] = w + eps
            up = loss()
            flat[i] = w - eps
            down = loss()
            flat[i] = w
            num[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grads[name].reshape(-1), num, rtol=1e-5, atol=1e-8, err_msg=name)


def test_backprop_matches_finite_differences_conv_bn_pools_dense():
    rng = np.random.default_rng(0)
    layers = [Conv2d("c1", 1, 2), BatchNorm2d("bn1", 2), ReLU("r1"), MaxPool2d("mp"),
              Conv2d("c2", 2, 3, bias=False), BatchNorm2d("bn2", 3), ReLU("r2"), AvgPool2d("ap"),
              Flatten("f"), Dense("fc", 3 * 2 * 2, 10)]
    _check_gradients(layers, (1, 5, 8, 8), rng)


def test_backprop_matches_finite_differences_paper_block_order():
    """The paper net's order: conv → BN, ReLU → conv → avg-pool → BN, GAP straight on a BN output."""
    rng = np.random.default_rng(2)
    layers = [Conv2d("c1", 1, 2, bias=False), BatchNorm2d("bn1", 2), ReLU("r1"), Conv2d("c2", 2, 3, bias=False),
              AvgPool2d("ap"), BatchNorm2d("bn2", 3), GlobalAvgPool("g"), Dense("fc", 3, 10, bias=False)]  # fmt: skip
    _check_gradients(layers, (1, 5, 8, 8), rng)


def test_backprop_matches_finite_differences_gap_and_mlp():
    rng = np.random.default_rng(1)
    _check_gradients([Conv2d("c1", 1, 3), ReLU("r"), GlobalAvgPool("g"), Dense("fc", 3, 10, bias=False)],
                     (1, 4, 6, 6), rng)
    _check_gradients([Flatten("f"), Dense("d1", 16, 5), ReLU("r"), Dense("d2", 5, 10)], (1, 6, 4, 4), rng)


def test_batchnorm_eval_uses_calibrated_statistics():
    m = build_model("papernet", backend=NUMPY, dtype="float64")
    x = m.to_input(np.random.default_rng(0).normal(size=(16, 1, 28, 28)))
    m.calibrate_bn(x)
    # evaluation with statistics of x equals training-mode forward on the batch x itself
    np.testing.assert_allclose(m.logits(x), m.forward(x, train=True), rtol=1e-9, atol=1e-12)
