"""The SGD baseline: learning, budget counters, reproducibility and exact resume."""

import numpy as np
import pytest

from helpers import params_equal, sample, tiny_config, without_seconds
from rso_engine.backend import get_backend
from rso_engine.events import CycleDone, Evaluated, SGDStep
from rso_engine.experiment import load_checkpoint, save_checkpoint
from rso_engine.training import SGDTrainer

NUMPY = get_backend("numpy")


def sgd(**changes):
    return SGDTrainer(tiny_config(algorithm="sgd", train_layers=None, **changes), sample(), NUMPY)


def test_sgd_beats_chance_within_one_epoch():
    t = SGDTrainer(tiny_config(algorithm="sgd", train_layers=None, n_train=None, n_test=None, cycles=1,
                               dtype="float32", eval_train_samples=1000), sample(), NUMPY)
    events = list(t.events())
    assert [type(e) for e in events if not isinstance(e, SGDStep)] == [Evaluated, CycleDone, Evaluated]
    assert sum(isinstance(e, SGDStep) for e in events) == t.steps_per_epoch == 125
    last = t.history[-1]
    assert last.test_accuracy > 0.6  # chance is 0.1
    assert last.weight_updates == 125 * 7890 and last.forward_samples == 4000


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_momentum_variants_reduce_the_loss(momentum, nesterov):
    t = sgd(momentum=momentum, nesterov=nesterov, cycles=2, model="papernet", lr=0.05, n_train=128)
    t.run()
    assert t.history[-1].train_loss < t.history[0].train_loss


def test_identical_configs_give_identical_histories():
    a, b = sgd(cycles=2, momentum=0.5), sgd(cycles=2, momentum=0.5)
    a.run()
    b.run()
    assert without_seconds(a.history) == without_seconds(b.history)
    assert params_equal(a.model.params_numpy(), b.model.params_numpy())


def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path):
    full = sgd(cycles=2, momentum=0.9)
    full.run()
    part = sgd(cycles=2, momentum=0.9)
    gen = part.events()
    for _ in range(13):  # mid-epoch 2, with momentum buffers in flight
        next(gen)
    save_checkpoint(tmp_path / "sgd.npz", part)
    (resumed,), _ = load_checkpoint(tmp_path / "sgd.npz", dataset=sample(), backend=NUMPY)
    resumed.run()
    assert params_equal(resumed.model.params_numpy(), full.model.params_numpy())
    assert without_seconds(resumed.history) == without_seconds(full.history)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_too_high_learning_rate_gives_a_clear_error():
    from rso_engine.training import TrainingError

    t = sgd(lr=1e6, cycles=1, dtype="float32")
    with pytest.raises(TrainingError, match="learning rate"):
        list(t.events())


@pytest.mark.parametrize("momentum,nesterov,weight_decay", [(0.0, False, 0.0), (0.9, False, 1e-3), (0.9, True, 1e-3)])
def test_the_optimizer_object_is_the_textbook_update_rule(momentum, nesterov, weight_decay):
    from rso_engine.training.optim import apply_updates, sgd

    rng = np.random.default_rng(0)
    params = {"a": rng.standard_normal((3, 4)).astype(np.float32), "b": rng.standard_normal(5).astype(np.float32)}
    ref = {k: v.copy() for k, v in params.items()}
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    opt = sgd(0.05, momentum, nesterov, weight_decay)
    state = opt.init(params)
    for _ in range(4):
        grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
        updates, state = opt.update(grads, state, params)
        apply_updates(params, updates)
        for k, p in ref.items():  # the rule written out, as PyTorch's optim.SGD documents it
            g = grads[k] + weight_decay * p
            if momentum:
                vel[k] = momentum * vel[k] + g
                g = g + momentum * vel[k] if nesterov else vel[k]
            p -= (0.05 * g).astype(p.dtype)
        for k in params:
            np.testing.assert_array_equal(params[k], ref[k])
