"""The compiled CPU layers (``kernels.numba_layers``) compute what the layers define, in evaluation mode too:
on every model, on random shapes with odd sizes, and bitwise where the operations are the same ones."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import sample, tiny_config
from rso_engine.backend import get_backend
from rso_engine.kernels.forward import run_layers
from rso_engine.kernels.jit import numba_unavailable_reason
from rso_engine.kernels.numba_layers import (
    NUMBA_KERNELS,
    bn_eval_forward,
    conv_pool_forward,
    fuses_conv_pool,
    relu_maxpool,
)
from rso_engine.layers import BatchNorm2d, Conv2d, MaxPool2d, ReLU
from rso_engine.models import build_model, cross_entropy
from rso_engine.training import RSOTrainer, SGDTrainer

pytestmark = pytest.mark.skipif(bool(numba_unavailable_reason()), reason="no numba")

MODELS = ["oneconv", "twoconv", "papernet", "mlp"]


@pytest.mark.parametrize("model_name", MODELS)
def test_evaluation_mode_runs_the_layers_forward(model_name):
    """Population statistics in batch norm (after calibration), every other layer as in training."""
    model = build_model(model_name, dtype="float64", seed=1)
    x = model.to_input(np.random.default_rng(0).normal(size=(23, 1, 28, 28)))
    model.calibrate_bn(x[:, :17])
    P = model.all_tensors()
    want = model.logits(x)
    got = run_layers(model.layers, P, x, kernels=NUMBA_KERNELS, train=False)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("relu", [False, True])
def test_batch_norm_in_evaluation_mode_is_bitwise_the_layers(dtype, relu):
    rng = np.random.default_rng(3)
    C, n, H, W = 5, 7, 9, 3  # odd sizes
    layer = BatchNorm2d("bn", C)
    mean_name, var_name = layer.buffer_names()
    P = {
        layer.full("gamma"): rng.normal(size=C).astype(dtype),
        layer.full("beta"): rng.normal(size=C).astype(dtype),
        mean_name: rng.normal(size=C).astype(dtype),
        var_name: rng.uniform(0.1, 2, size=C).astype(dtype),
    }
    x = rng.normal(size=(C, n, H, W)).astype(dtype)
    x[0, 0, 0, :2] = np.nan
    want = layer.forward(P, x, False)[0]
    if relu:
        want = np.maximum(want, 0)
    got = bn_eval_forward(layer, P, x, relu)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    with pytest.raises(RuntimeError, match="calibrate_bn"):
        bn_eval_forward(layer, {k: v for k, v in P.items() if k != mean_name}, x)


@pytest.mark.parametrize("trainer", [RSOTrainer, SGDTrainer])
def test_evaluation_uses_the_compiled_layers_and_agrees_with_the_layer_code(trainer):
    extra = {"algorithm": "sgd", "train_layers": None} if trainer is SGDTrainer else {}
    cfg = tiny_config(model="papernet", cycles=1, **extra)
    t = trainer(cfg, sample(), get_backend("numpy"))
    assert t.eval_kernels is NUMBA_KERNELS
    ev = t.evaluate(0)
    t.model.calibrate_bn(t.x_train[:, : cfg.bn_calibration_samples])
    logits = t.model.logits(t.x_test)  # the layers' own code
    np.testing.assert_allclose(ev.test_loss, float(cross_entropy(logits, t.y_test)) / len(t.y_test), rtol=1e-12)
    assert ev.test_accuracy == float((logits.argmax(axis=1) == t.y_test).mean())


# --------------------------------------------------------------------------- conv → [ReLU] → max-pool, fused
def _unfused(layer, P, x, relu):
    y = layer.forward(P, x, True)[0]
    if relu:
        y = np.maximum(y, 0)
    return MaxPool2d("pool", 2).forward({}, y, True)[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed", range(6))
def test_fused_conv_pool_is_the_layers_on_random_shapes(dtype, seed):
    """Random small filter banks, kernel sizes and paddings (the padding edges of the pooled windows),
    batch and image sizes (odd inputs where the padding makes the conv output even), a NaN pixel."""
    rng = np.random.default_rng(seed)
    k = int(rng.choice([1, 3, 5]))
    C = int(rng.integers(1, 28 // (k * k) + 1))
    O = int(rng.integers(1, 8))
    pad = int(rng.integers(0, k // 2 + 2))
    grow = 2 * pad - k + 1  # the conv output is (H + grow) × (W + grow): even, at least 2
    H, W = (max(int(m), -(-(1 + grow) // 2)) * 2 - grow for m in rng.integers(1, 8, size=2))
    assert H >= 1 and W >= 1 and (H + grow) % 2 == 0 and H + grow >= 2
    n = int(rng.integers(1, 6))
    layer = Conv2d("conv", C, O, k=k, pad=pad, bias=bool(seed % 2))
    P = {layer.full("weight"): rng.normal(size=(O, C, k, k)).astype(dtype)}
    if layer.bias:
        P[layer.full("bias")] = rng.normal(size=O).astype(dtype)
    x = rng.normal(size=(C, n, H, W)).astype(dtype)
    if seed == 0:
        x[0, 0, 0, 0] = np.nan
    assert fuses_conv_pool(layer, x.shape)
    for relu in (False, True):
        want = _unfused(layer, P, x, relu)
        got = conv_pool_forward(layer, P, x, relu)
        assert got.shape == want.shape and got.dtype == want.dtype
        ref = NUMBA_KERNELS  # the unfused compiled kernels: the same operations, so bitwise
        layers = [layer, ReLU("relu"), MaxPool2d("pool", 2)] if relu else [layer, MaxPool2d("pool", 2)]
        unfused = relu_maxpool(ref.run(layers, 0, 1, P, x, True)[0], 2, relu)
        np.testing.assert_array_equal(got, unfused)
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-5)


def test_the_dispatch_fuses_only_small_banks_and_even_outputs():
    big = Conv2d("c", 16, 16, k=3, pad=1)
    small = Conv2d("c", 1, 4, k=3, pad=1)
    assert not fuses_conv_pool(big, (16, 2, 14, 14))
    assert fuses_conv_pool(small, (1, 2, 28, 28))
    assert not fuses_conv_pool(small, (1, 2, 27, 28))  # an odd conv output: the pool cannot take it
    model = build_model("oneconv", dtype="float64")
    x = model.to_input(np.random.default_rng(0).normal(size=(5, 1, 28, 28)))
    out, ran = NUMBA_KERNELS.run(model.layers, 0, len(model.layers), model.params, x, True)
    assert ran == 3
    np.testing.assert_allclose(out, model.forward(x, stop=3), rtol=1e-12)
    out, ran = NUMBA_KERNELS.run(model.layers, 0, 2, model.params, x, True)  # the pool is past the stop
    assert ran == 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("C", "O", "n", "H", "W", "bias"),
    [(16, 16, 40, 7, 7, False), (16, 16, 3, 28, 28, True), (5, 6, 17, 5, 11, True), (4, 1, 2, 1, 1, True),
     (16, 16, 1, 14, 14, False), (7, 9, 33, 9, 4, False)],  # fmt: skip
)
def test_register_blocked_3x3_conv_matches_the_layer(dtype, C, O, n, H, W, bias):
    """Odd sizes, filter banks not a multiple of the 4-channel block, groups of images that do not divide
    the batch, 1×1 images (all padding): the flat-run kernel is the layer's im2col + matrix product."""
    from rso_engine.kernels import conv3x3  # noqa: PLC0415

    rng = np.random.default_rng(C * 100 + O * 10 + n)
    layer = Conv2d("c", C, O, bias=bias)
    P = layer.init_params(rng, dtype)
    if bias:
        P[layer.full("bias")] = rng.normal(size=O).astype(dtype)
    x = rng.normal(size=(C, n, H, W)).astype(dtype)
    assert conv3x3.fits(layer, x.shape) == (C * 9 > 27)
    want = layer.forward(P, x, True)[0]
    got = conv3x3.conv3x3(x, P[layer.full("weight")], P.get(layer.full("bias")))
    assert got.shape == want.shape and got.dtype == want.dtype
    tol = 1e-12 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def test_register_blocked_conv_is_the_same_on_any_number_of_threads(monkeypatch):
    """Each thread's share is whole groups of images, each pixel summed alike: bitwise equal outputs."""
    from rso_engine.kernels import conv3x3  # noqa: PLC0415

    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, 301, 14, 14)).astype(np.float32)
    W = rng.normal(size=(16, 16, 3, 3)).astype(np.float32)
    outs = []
    for threads in ("1", "2", "5"):
        monkeypatch.setenv("RSO_THREADS", threads)
        outs.append(conv3x3.conv3x3(x, W, None))
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


@pytest.mark.parametrize("model_name", ["twoconv", "papernet"])
def test_compiled_forward_is_the_same_on_any_number_of_threads(monkeypatch, model_name):
    """Convolutions split by image, batch norm and pooling by channel: one thread and several agree bitwise."""
    model = build_model(model_name, dtype="float32", seed=2)
    x = model.to_input(np.random.default_rng(1).normal(size=(300, 1, 28, 28)))
    got = []
    for threads in ("1", "3"):
        monkeypatch.setenv("RSO_THREADS", threads)
        got.append(run_layers(model.layers, model.params, x, kernels=NUMBA_KERNELS))
    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_allclose(got[0], model.forward(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("relu", [False, True])
def test_register_blocked_conv_with_pooling_fused_is_bitwise_the_unfused_layers(dtype, relu):
    """conv → [ReLU] → 2×2 max-pool from the accumulators (bias after the max, ReLU after the pool) equals
    the conv kernel followed by the pooling kernel, NaN included."""
    from rso_engine.kernels import conv3x3  # noqa: PLC0415

    rng = np.random.default_rng(11)
    x = rng.normal(size=(6, 37, 10, 14)).astype(dtype)
    x[2, 3, 4, 5] = np.nan
    W, b = rng.normal(size=(7, 6, 3, 3)).astype(dtype), rng.normal(size=7).astype(dtype)
    want = relu_maxpool(conv3x3.conv3x3(x, W, b), 2, relu)
    got = conv3x3.conv3x3(x, W, b, pool=True, relu=relu)
    assert got.shape == (7, 37, 5, 7)
    assert np.isnan(got).any()
    np.testing.assert_array_equal(got, want)
