"""The CuPy backend gives the same numbers as NumPy (skipped without CuPy and a working GPU)."""

import numpy as np
import pytest

from helpers import sample, tiny_config
from rso_engine.backend import cupy_unavailable_reason, get_backend, to_numpy
from rso_engine.events import WeightTried
from rso_engine.models import build_model
from rso_engine.training import RSOTrainer, SGDTrainer

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cupy_backend():
    why = cupy_unavailable_reason()
    if why:
        pytest.skip(f"no usable GPU: {why}")
    return get_backend("cupy")


@pytest.mark.parametrize("name", ["oneconv", "twoconv", "papernet", "mlp"])
def test_forward_and_backward_match_numpy(cupy_backend, name):
    cpu = build_model(name, seed=2, backend=get_backend("numpy"), dtype="float64")
    gpu = build_model(name, seed=2, backend=cupy_backend, dtype="float64")
    x = np.random.default_rng(0).normal(size=(6, 1, 28, 28))
    np.testing.assert_allclose(to_numpy(gpu.forward(gpu.to_input(x))), cpu.forward(cpu.to_input(x)), rtol=1e-10)


def test_rso_reference_makes_the_same_choices_on_gpu(cupy_backend):
    cfg = tiny_config(model="papernet", train_layers=["conv1", "fc"], cycles=1)
    runs = []
    for backend in (get_backend("numpy"), cupy_backend):
        t = RSOTrainer(cfg, sample(), backend, evaluator="reference")
        runs.append([(e.choice, round(e.new, 12)) for e in t.events() if isinstance(e, WeightTried)])
    assert runs[0] == runs[1]


def test_sgd_matches_on_gpu(cupy_backend):
    cfg = tiny_config(algorithm="sgd", train_layers=None, cycles=1, momentum=0.9)
    a = SGDTrainer(cfg, sample(), get_backend("numpy"))
    b = SGDTrainer(cfg, sample(), cupy_backend)
    a.run()
    b.run()
    for k, v in a.model.params_numpy().items():
        np.testing.assert_allclose(b.model.params_numpy()[k], v, rtol=1e-8, atol=1e-10)
