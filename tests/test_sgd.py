"""The SGD baseline: learning, budget counters, reproducibility and exact resume."""

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
