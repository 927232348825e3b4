"""The compiled CPU layers (``kernels.numba_layers``) compute what the layers define, in evaluation mode too:
on every model, on random shapes with odd sizes, and bitwise where the operations are the same ones."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import sample, tiny_config
from rso_engine.backend import get_backend
from rso_engine.kernels.forward import run_layers
from rso_engine.kernels.jit import numba_unavailable_reason
from rso_engine.kernels.numba_layers import NUMBA_KERNELS, bn_eval_forward
from rso_engine.layers import BatchNorm2d
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
