"""The task a Dask worker runs for one run of a study: load the data (once per process), train, report back.

:func:`train_run` takes a :class:`RunSpec` (a config and where to checkpoint: a few hundred bytes) and
returns a :class:`~rso_engine.distributed.records.RunRecord` (the history and a few facts; the final
weights only when asked). The worker loads the dataset itself from the config's name and ``data_dir``
and keeps it for the next run in the same process, so no arrays travel with a task.

While it trains, the task publishes its progress as Dask worker events on :data:`PROGRESS_TOPIC`
(``{"key", "label", "done", "total", "cycle", "accuracy", "resumed_from", "state"}``, at most about once
a second and at every evaluation), which the client subscribes to for its progress bar. With a
checkpoint path it saves the run after every cycle/epoch and, when the task is started again (its
worker died and the scheduler gave it to another), continues from the last save: the numbers are those
of an uninterrupted run. With a cancel event name it stops at the next exact state once the client sets
that Dask ``Event`` (Ctrl-C), raising :class:`RunCancelled`.

Outside a Dask worker (called directly) the task runs the same way, publishing nothing.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import RunConfig
from .records import RunRecord

PROGRESS_TOPIC = "rso-progress"
#: seconds between two progress events of one run (evaluations are always published)
PUBLISH_EVERY = 1.0
#: seconds between two looks at the cancel event
CANCEL_CHECK_EVERY = 2.0
#: BLAS threads a task uses. A float32 matrix product's last bits depend on OpenBLAS's thread count, and
#: Dask's worker processes start with OMP/OPENBLAS_NUM_THREADS=1; pinning every task to one BLAS thread
#: (an in-process worker, a remote worker started without a nanny) gives the same numbers everywhere.
BLAS_THREADS = 1


class RunCancelled(RuntimeError):
    """The client asked the study's runs to stop (Ctrl-C); the run's last checkpoint, if any, is kept."""


@dataclass(frozen=True)
class RunSpec:
    """What a worker needs to train one run (small: it is sent with the task)."""

    key: str
    label: str
    config: RunConfig
    backend: str | None = None  # "numpy", "cupy" or None (the worker's RSO_BACKEND / auto)
    budget: int | None = None  # stop once this many forward samples are used (equal-budget SGD)
    note: str = ""
    checkpoint: str | None = None  # a path every worker can reach (a shared folder), or None
    cancel_event: str | None = None  # the name of a Dask Event the client sets to stop the study
    keep_weights: bool = False
    trajectory: str | None = None  # write the per-cycle weights there (see rso_engine.trajectory)


@functools.lru_cache(maxsize=4)
def worker_dataset(name: str, data_dir: str | None):
    """The dataset ``name`` (from ``data_dir``), loaded once per process and kept for the next runs."""
    from ..data import load_dataset  # noqa: PLC0415

    return load_dataset(name, data_dir=data_dir, progress=False)


def _worker():
    """The Dask worker running this task, or None outside one."""
    try:
        from distributed import get_worker  # noqa: PLC0415

        return get_worker()
    except (ImportError, ValueError):
        return None


class _Publisher:
    """A :class:`~rso_engine.driving.Progress` that sends the run's progress to the client as worker events."""

    def __init__(self, worker, spec: RunSpec, trainer, resumed_from: int):
        self.worker, self.spec = worker, spec
        if trainer.algorithm == "rso":
            self.total = trainer.config.cycles * trainer.weights_per_cycle
        else:
            self.total = trainer.config.cycles * trainer.steps_per_epoch
        self.done = trainer.steps
        self.cycle = trainer.history[-1].cycle if trainer.history else 0
        self.accuracy = trainer.history[-1].test_accuracy if trainer.history else None
        self.resumed_from = resumed_from
        self._last = 0.0
        self.publish("started")

    def publish(self, state: str = "running", force: bool = True) -> None:
        now = time.monotonic()
        if self.worker is None or (not force and now - self._last < PUBLISH_EVERY):
            return
        self._last = now
        self.worker.log_event(PROGRESS_TOPIC, {
            "key": self.spec.key, "label": self.spec.label, "done": int(self.done), "total": int(self.total),
            "cycle": int(self.cycle), "accuracy": self.accuracy, "resumed_from": self.resumed_from, "state": state,
        })  # fmt: skip

    def advance(self, steps: int) -> None:
        self.done += steps
        self.publish(force=False)

    def evaluated(self, ev) -> None:
        self.cycle, self.accuracy = ev.cycle, float(ev.test_accuracy)
        self.publish()

    def close(self) -> None:
        pass


def _cancel_check(name: str | None):
    """A function that says, at most every :data:`CANCEL_CHECK_EVERY` seconds, whether Event ``name`` is set."""
    if name is None or _worker() is None:
        return lambda: False
    from distributed import Event  # noqa: PLC0415

    event = Event(name)
    last = [-CANCEL_CHECK_EVERY]  # the first call looks at once

    def cancelled() -> bool:
        now = time.monotonic()
        if now - last[0] < CANCEL_CHECK_EVERY:
            return False
        last[0] = now
        return event.is_set()

    return cancelled


def _trainer(spec: RunSpec, dataset, backend):
    """The run's trainer: continued from its checkpoint if there is one, else new; and the cycles done."""
    from ..experiment import load_checkpoint, make_trainer  # noqa: PLC0415

    if spec.checkpoint and Path(spec.checkpoint).exists():
        trainers, _ = load_checkpoint(spec.checkpoint, dataset=dataset, backend=backend)
        trainer = trainers[0]
        if trainer.config.to_dict() == spec.config.to_dict():
            return trainer, (trainer.history[-1].cycle if trainer.history else 0)
    return make_trainer(spec.config, dataset, backend), 0


def _recorder(spec: RunSpec, trainer, resumed_from: int):
    """The trajectory recorder of a run that keeps one (continuing the saved one after a restart), or None."""
    if not spec.trajectory:
        return None
    from ..trajectory import TrajectoryRecorder, load_trajectory  # noqa: PLC0415

    previous = None
    if resumed_from and Path(spec.trajectory).exists():
        try:
            previous = load_trajectory(spec.trajectory)
        except ValueError:
            previous = None
    return TrajectoryRecorder(trainer, previous)


def train_run(spec: RunSpec, dataset=None, progress=None) -> RunRecord:
    """Train the run ``spec`` describes and return its record (the Dask task of a study's run).

    ``dataset`` (in this process only) saves loading the data; ``progress`` replaces the worker-event
    publisher (a :class:`~rso_engine.driving.Progress`). Raises whatever the run raises (a config that
    cannot be built, a diverging SGD), or :class:`RunCancelled` when the client stopped the study. BLAS
    runs on :data:`BLAS_THREADS` threads meanwhile.
    """
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    with threadpool_limits(BLAS_THREADS, user_api="blas"):
        return _train_run(spec, dataset, progress)


def _train_run(spec: RunSpec, dataset, progress) -> RunRecord:
    from ..backend import get_backend  # noqa: PLC0415
    from ..driving import drive  # noqa: PLC0415
    from ..experiment import save_checkpoint  # noqa: PLC0415

    t0 = time.perf_counter()
    cancelled = _cancel_check(spec.cancel_event)
    if cancelled():  # queued when the client stopped the study
        raise RunCancelled(f"{spec.label} was stopped by the client before it started")
    cfg = spec.config
    if dataset is None:
        dataset = worker_dataset(cfg.dataset, str(cfg.data_dir) if cfg.data_dir else None)
    backend = get_backend(spec.backend) if spec.backend else None
    trainer, resumed_from = _trainer(spec, dataset, backend)
    worker = _worker()
    reporter = progress if progress is not None else _Publisher(worker, spec, trainer, resumed_from)
    stopped_by_client = []
    recorder = _recorder(spec, trainer, resumed_from)

    def stop(t) -> bool:
        if cancelled():
            stopped_by_client.append(True)
            return True
        return spec.budget is not None and t.forward_samples >= spec.budget

    def save() -> None:
        if spec.checkpoint:
            save_checkpoint(spec.checkpoint, trainer)
        if recorder is not None:
            recorder.save(spec.trajectory)

    drive(trainer, progress=reporter, save=save if spec.checkpoint or recorder else None, stop=stop,
          on_event=recorder)
    if stopped_by_client:
        raise RunCancelled(f"{spec.label} was stopped by the client")
    if spec.budget is not None and trainer.history[-1].forward_samples != trainer.forward_samples:
        ev = trainer.evaluate(trainer.epoch + 1)  # stopped mid-epoch at the budget: evaluate where it stopped
        if recorder is not None:
            recorder(ev)
            save()
    address = getattr(worker, "address", "") if worker is not None else ""
    return RunRecord.from_trainer(spec.label, trainer, time.perf_counter() - t0, spec.budget, spec.note,
                                  worker=address, resumed_from=resumed_from, keep_weights=spec.keep_weights)
