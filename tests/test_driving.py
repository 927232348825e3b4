"""The one driving loop (rso_engine.driving.drive): hooks, progress, saving, stopping, Ctrl-C."""

import os
import signal

import pytest

from helpers import sample, tiny_config
from rso_engine.backend import get_backend
from rso_engine.driving import PROGRESS_EVERY, Interrupted, drive
from rso_engine.events import CycleDone, Evaluated, SGDStep
from rso_engine.experiment import make_trainer


class FakeTrainer:
    """Yields the event shapes of an SGD run: evaluation 0, then per epoch its steps, CycleDone, Evaluated."""

    def __init__(self, epochs=2, steps=700, interrupt_at=None):
        self.epochs, self.steps_per_epoch, self.interrupt_at = epochs, steps, interrupt_at
        self.history, self.steps = [], 0

    def _evaluated(self, epoch):
        ev = Evaluated("sgd", epoch, 1.0, 1.0, 0.5, self.steps, self.steps, 0.0)
        self.history.append(ev)
        return ev

    def events(self):
        yield self._evaluated(0)
        for epoch in range(1, self.epochs + 1):
            for _ in range(self.steps_per_epoch):
                self.steps += 1
                if self.steps == self.interrupt_at:
                    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of a step
                yield SGDStep(epoch, self.steps, 1.0, 32)
            yield CycleDone("sgd", epoch, self.steps, self.steps, 0.0)
            yield self._evaluated(epoch)


class Recorder:
    def __init__(self):
        self.advanced, self.cycles, self.closed = [], [], 0

    def advance(self, steps):
        self.advanced.append(steps)

    def evaluated(self, ev):
        self.cycles.append(ev.cycle)

    def close(self):
        self.closed += 1


def test_drive_runs_to_the_end_with_hooks_progress_and_a_save_per_cycle():
    t, bar, seen, saves = FakeTrainer(), Recorder(), [], []
    history = drive(t, on_event=seen.append, progress=bar, save=lambda: saves.append(t.steps) or "f")
    assert history is t.history and [ev.cycle for ev in history] == [0, 1, 2]
    assert len(seen) == 1 + 2 * (700 + 2)
    assert sum(bar.advanced) == 1400 and max(bar.advanced) <= PROGRESS_EVERY
    assert bar.cycles == [0, 1, 2] and bar.closed == 1
    assert saves == [700, 1400]  # after each epoch's evaluation; nothing new to save at the end


def test_a_stop_predicate_ends_the_run_and_it_is_saved_there():
    t, saves = FakeTrainer(), []
    drive(t, save=lambda: saves.append(t.steps), stop=lambda tr: tr.steps >= 900)
    assert t.steps == 900 and saves == [700, 900]


def test_ctrl_c_saves_closes_the_progress_and_says_what_was_saved():
    t, bar = FakeTrainer(interrupt_at=800), Recorder()
    with pytest.raises(Interrupted) as info:
        drive(t, progress=bar, save=lambda: f"saved at {t.steps}")
    assert info.value.saved == "saved at 800" and isinstance(info.value, KeyboardInterrupt)
    assert bar.closed == 1
    with pytest.raises(Interrupted) as info:
        drive(FakeTrainer(interrupt_at=5))
    assert info.value.saved is None


def test_trainer_run_is_the_same_loop(monkeypatch):
    import rso_engine.training.base as base

    t = make_trainer(tiny_config(algorithm="sgd", cycles=1), sample(), get_backend("numpy"))
    calls = []
    monkeypatch.setattr(base, "drive", lambda tr, on_event=None: calls.append((tr, on_event)) or tr.history)
    hook = print
    assert t.run(on_event=hook) is t.history and calls == [(t, hook)]


def test_ctrl_c_in_the_middle_of_a_chunk_saves_an_exact_state(tmp_path, monkeypatch):
    """Ctrl-C arriving while the evaluator scores a chunk (weights already changed, the Δ stream further
    on) takes effect at the chunk's end: the saved run continues exactly like the uninterrupted one."""
    from rso_engine.experiment import load_checkpoint, save_checkpoint

    cfg = tiny_config(model="mlp", train_layers=["fc2"], n_train=64, batch_size=8, cycles=2)
    full = make_trainer(cfg, sample(), get_backend("numpy"), evaluator="reference")
    full.run()
    t = make_trainer(cfg, sample(), get_backend("numpy"), evaluator="reference")
    t.set_chunking(5, seconds=1e9)
    sweep, calls = t.evaluator.sweep, []

    def sweep_then_ctrl_c(*a, **k):
        res = sweep(*a, **k)
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # lands inside the generator, mid-chunk
        return res

    monkeypatch.setattr(t.evaluator, "sweep", sweep_then_ctrl_c)
    with pytest.raises(Interrupted) as info:
        drive(t, save=lambda: save_checkpoint(tmp_path / "c.npz", t))
    assert info.value.saved is not None and t.steps == 1 + 5 + 5  # at the end of the third chunk
    (resumed,), _ = load_checkpoint(tmp_path / "c.npz", dataset=sample(), backend=get_backend("numpy"),
                                    evaluator="reference")
    resumed.run()
    assert resumed.model.params_numpy().keys() == full.model.params_numpy().keys()
    for k, v in full.model.params_numpy().items():
        assert (resumed.model.params_numpy()[k] == v).all(), k
