"""Race lanes: up to four runs on the same model, data and seed in one window, advanced fairly. Qt-free.

The main RSO run (lane 1, the one the landscape and algorithm panels follow) and its SGD baseline are the
runner's as always. Each extra lane is one more trainer (RSO with another batch size or update, or SGD)
whose events the runner's thread consumes between the main run's chunks (:meth:`LaneSet.catch_up`):

- **the fairness rule** (:func:`next_lane`): of the runs not finished, the one furthest behind goes next,
  the main run first on a tie. "Behind" is measured by :func:`progress` under the chosen rule: forward-pass
  samples (``"samples"``, equal compute: a lane with batch 256 tries a quarter as many weights as one with
  batch 64) or cycles/epochs done (``"cycles"``, round-robin per cycle, each run at the same fraction of
  a cycle). After every burst of the main run the lanes behind it advance, one exact state (a chunk, a
  layer's end, an evaluation, an SGD step) at a time, until none is behind: the lanes are never more than
  one chunk apart, and the runner publishes (and the window draws) after each round, as without lanes.
- when the main run ends first, the lanes still behind finish their race in :meth:`LaneSet.tail`, a time
  slice per round of the runner's loop, so pause, steps and stop still work.

A lane's settings are its own except what a race shares (:data:`SHARED_FIELDS`: model, data and seed),
which always come from the main run (:func:`lane_config`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rso_engine.backend import to_numpy
from rso_engine.config import RunConfig
from rso_engine.events import ChunkDone, Evaluated, LayerDone, SGDStep
from rso_engine.experiment import make_trainer
from rso_engine.training import TrainingError

from .loading import error_message
from .snapshot import LaneView

MAX_RUNS = 4  # runs in one race: the main run, its SGD baseline (if on) and the extra lanes
MAX_LANES = MAX_RUNS - 1  # extra lanes without an SGD baseline
#: the fairness rules: name -> label
FAIRNESS = {"samples": "equal forward samples", "cycles": "equal cycles (round-robin per cycle)"}
DEFAULT_FAIRNESS = "samples"
#: what every lane shares with the main run: a race is on the same model, data and seed
SHARED_FIELDS = ("model", "dataset", "data_dir", "n_train", "n_test", "seed", "dtype")
#: lanes a lecturer adds with one click: label -> changes to the main run's settings
VARIANTS: dict[str, dict[str, Any]] = {
    "RSO batch 64": {"algorithm": "rso", "batch_size": 64},
    "RSO batch 256": {"algorithm": "rso", "batch_size": 256},
    "RSO layer-parallel": {"algorithm": "rso", "update": "layer-parallel"},
    "SGD": {"algorithm": "sgd"},
}
TAIL_SLICE_S = 1 / 30  # when the main run is over, the lanes run this long per round of the loop


@dataclass(frozen=True)
class LaneSpec:
    """One extra lane as chosen: its name in the legend and its settings (model, data and seed are the
    main run's whatever ``config`` says, see :func:`lane_config`)."""

    label: str
    config: RunConfig

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LaneSpec:
        return cls(str(data["label"]), RunConfig.from_dict(data["config"]))


def max_lanes(sgd: bool) -> int:
    """How many extra lanes fit beside the main run (and its SGD baseline when ``sgd``)."""
    return MAX_RUNS - 1 - int(bool(sgd))


def lane_config(main: RunConfig, config: RunConfig) -> RunConfig:
    """``config`` with the main run's model, data and seed (:data:`SHARED_FIELDS`), validated."""
    return config.replace(**{f: getattr(main, f) for f in SHARED_FIELDS}).validated()


def variant(main: RunConfig, label: str) -> LaneSpec:
    """The lane :data:`VARIANTS` ``[label]`` of the main run's settings."""
    return LaneSpec(label, lane_config(main, main.replace(**VARIANTS[label])))


def check_fairness(rule: str) -> str:
    if rule not in FAIRNESS:
        raise ValueError(f"unknown fairness rule {rule!r}: choose one of {', '.join(FAIRNESS)}")
    return rule


def progress(trainer, rule: str) -> float:
    """How far ``trainer`` has come under ``rule``: forward samples, or cycles (epochs) done as a fraction."""
    if rule == "samples":
        return float(trainer.forward_samples)
    if trainer.algorithm == "sgd":
        return trainer.epoch + trainer.step_in_epoch / max(trainer.steps_per_epoch, 1)
    return trainer.steps / max(trainer.weights_per_cycle, 1)


def next_lane(progresses: Sequence[float], finished: Sequence[bool]) -> int | None:
    """The fairness rule: the index of the unfinished run furthest behind (the lowest on a tie, so the
    main run, index 0, goes first), or None when every run is finished."""
    best = None
    for i, (p, done) in enumerate(zip(progresses, finished, strict=True)):
        if not done and (best is None or p < progresses[best]):
            best = i
    return best


class Lane:
    """One extra lane: its spec, trainer and event stream (started: cycle 0 evaluated)."""

    def __init__(self, spec: LaneSpec, trainer):
        self.spec, self.trainer = spec, trainer
        self.error: str | None = None
        self.gen = trainer.events()
        if not trainer.history:
            next(self.gen)  # Evaluated(0)

    @property
    def finished(self) -> bool:
        return self.gen is None or self.trainer.finished

    def burst(self) -> None:
        """Consume events up to the next exact state (a chunk, a layer's end, an evaluation, an SGD step;
        a cycle's or epoch's end runs on to its evaluation). A diverging run stops with ``error`` set."""
        t = self.trainer
        try:
            for ev in self.gen:
                kind = type(ev)
                if kind is ChunkDone or kind is Evaluated:
                    return
                if kind is LayerDone and not ev.ends_cycle:
                    return
                if kind is SGDStep and t.step_in_epoch != 0:
                    return
        except TrainingError as exc:
            self.error = error_message(exc)
        self.gen = None

    def view(self, number: int, filter_param: str | None) -> LaneView:
        t = self.trainer
        weights = None
        if filter_param is not None and filter_param in t.model.params:
            weights = np.array(to_numpy(t.model.params[filter_param]))
        return LaneView(
            number=number,
            label=self.spec.label,
            algorithm=t.algorithm,
            history=tuple(t.history),
            filter_param=filter_param,
            filters=weights,
            forward_samples=int(t.forward_samples),
            finished=t.finished,
            error=self.error,
        )


class LaneSet:
    """The extra lanes of one run and the rule that advances them (see the module docstring)."""

    def __init__(self, specs: Sequence[LaneSpec] = (), fairness: str = DEFAULT_FAIRNESS):
        if len(specs) > MAX_LANES:
            raise ValueError(f"at most {MAX_LANES} extra lanes (got {len(specs)})")
        self.specs = tuple(specs)
        self.fairness = check_fairness(fairness)
        self.lanes: list[Lane] = []
        self.rounds = 0  # lane bursts so far (tests)

    def __bool__(self) -> bool:
        return bool(self.specs)

    def prepare(self, main: RunConfig, dataset, trainers: Sequence | None = None) -> None:
        """Build the lanes on ``dataset`` (the main run's data); ``trainers``: restored ones (a session)."""
        if trainers is not None:
            if len(trainers) != len(self.specs):
                raise ValueError(f"{len(trainers)} saved lanes for {len(self.specs)} lane names")
            self.lanes = [Lane(s, t) for s, t in zip(self.specs, trainers, strict=True)]
            return
        self.lanes = [Lane(s, make_trainer(lane_config(main, s.config), dataset=dataset)) for s in self.specs]

    @property
    def finished(self) -> bool:
        return all(lane.finished for lane in self.lanes)

    @property
    def trainers(self) -> list:
        return [lane.trainer for lane in self.lanes]

    def _next(self, main) -> int | None:
        runs = [main, *(lane.trainer for lane in self.lanes)]
        done = [main.finished] + [lane.finished for lane in self.lanes]
        return next_lane([progress(t, self.fairness) for t in runs], done)

    def catch_up(self, main, stop: Callable[[], bool] = lambda: False) -> list[str]:
        """Advance the lanes behind ``main`` until none is (or ``stop()``); returns the lanes' new errors."""
        errors = []
        while not stop():
            i = self._next(main)
            if i is None or i == 0:
                break
            lane = self.lanes[i - 1]
            lane.burst()
            self.rounds += 1
            if lane.error is not None and lane.gen is None:
                errors.append(f"The lane “{lane.spec.label}” stopped: {lane.error}. The others go on.")
        return errors

    def tail(self, main, stop: Callable[[], bool] = lambda: False, seconds: float = TAIL_SLICE_S) -> list[str]:
        """The main run is over: advance the unfinished lanes (fairly among themselves) for ``seconds``."""
        end = time.monotonic() + seconds
        errors = []
        while not stop() and not self.finished and time.monotonic() < end:
            errors += self.catch_up(main, stop=lambda: stop() or time.monotonic() >= end)
        return errors

    def views(self, filter_param: str | None, first: int = 2) -> tuple[LaneView, ...]:
        """Each lane as the views draw it, numbered from ``first`` (the main run is lane 1)."""
        return tuple(lane.view(first + i, filter_param) for i, lane in enumerate(self.lanes))


def run_lanes(runner) -> None:
    """One round of the runner's loop once the main run is over and lanes still race (rso_gui/live/runner.py):
    a slice of the lanes' work, a snapshot; a step pauses after one slice; the end finishes the run."""
    for message in runner.lanes.tail(runner.rso, stop=lambda: runner.stopping):
        runner.on_notice(message)
    if runner.lanes.finished:
        runner._finish()
        return
    runner._publish(landscape=False)
    with runner._cond:  # a step (weight or layer) while only the lanes run: one slice, then pause
        if runner._mode != "play":
            runner._mode = "pause"


__all__ = [
    "DEFAULT_FAIRNESS",
    "FAIRNESS",
    "MAX_LANES",
    "MAX_RUNS",
    "SHARED_FIELDS",
    "VARIANTS",
    "Lane",
    "LaneSet",
    "LaneSpec",
    "check_fairness",
    "lane_config",
    "max_lanes",
    "next_lane",
    "progress",
    "run_lanes",
    "variant",
]
