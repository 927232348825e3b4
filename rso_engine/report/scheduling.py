"""A study's runs as Dask tasks: submitted together, written as each finishes, skipped when already done.

:func:`schedule_study` submits every run of a study to a ``distributed.Client`` (from
:func:`rso_engine.distributed.open_client`) and collects them as they finish, in any order, returning
them in the study's order. The workers load the data themselves; a task sends back a small
:class:`~rso_engine.distributed.RunRecord`.

- **Finished runs are kept.** With a :class:`RunStore` (the study folder's ``runs/``), each finished run
  is written there at once as ``KEY.json`` (the key is the run's label and a digest of its config, see
  :func:`~rso_engine.distributed.run_key`); the same study run again loads those instead of training
  them (``fresh=True`` trains them again).
- **Checkpoints** (``checkpoints=True``): every run saves ``runs/KEY.npz`` after each cycle/epoch; a
  run whose worker dies is given to another worker by the scheduler and continues from that file, with
  the numbers of an uninterrupted run (the folder must then be one every worker can reach). Without
  checkpoints the run starts again from the beginning: the same numbers, more time.
- **Trajectories** (``trajectories=True``): every run also writes its per-cycle weights to
  ``runs/KEY.trajectory.npz`` (:mod:`rso_engine.trajectory`) and keeps its checkpoint, the input of
  ``rso landscape --plane pca``.
- **Failures.** A run that raises becomes a :class:`~rso_engine.report.results.RunFailure` carrying the
  error; the others go on. An equal-budget SGD run whose RSO run failed is a failure too ("not run").
- **Ctrl-C** sets the study's cancel event (the running tasks stop at their next exact state, saving a
  checkpoint if they keep one), cancels what is queued and re-raises; what finished is already on disk.
- **Progress**: a :class:`StudyProgress` hears of every run's start, progress (the workers' events),
  finish and failure.
"""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..config import RunConfig
from ..distributed import PROGRESS_TOPIC, RunRecord, RunSpec, run_key, train_run
from ..files import write_atomic
from .course import model_label
from .results import RunFailure, RunResult
from .studies import Study

#: seconds between two looks at the finished tasks and the progress events
POLL_EVERY = 0.2
#: seconds Ctrl-C waits for running tasks to stop at an exact state (and save their checkpoint)
STOP_GRACE = 6.0


class StudyProgress(Protocol):
    """What the client shows while a study runs on a cluster (the CLI's bar over runs)."""

    def planned(self, n_runs: int) -> None:
        """The study has ``n_runs`` runs in all."""

    def update(self, event: dict[str, Any]) -> None:
        """A worker's progress event for one run (see :mod:`rso_engine.distributed.tasks`)."""

    def finished(self, result: RunResult, skipped: bool) -> None:
        """A run finished (``skipped``: it had finished before and was loaded from the folder)."""

    def failed(self, failure: RunFailure) -> None:
        """A run failed."""

    def close(self) -> None:
        """The study ended, failed or was interrupted."""


class RunStore:
    """A study folder's ``runs/``: one JSON record per finished run, and the runs' checkpoints."""

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir).resolve() / "runs"

    def record_path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def checkpoint_path(self, key: str) -> Path:
        return self.dir / f"{key}.npz"

    def trajectory_path(self, key: str) -> Path:
        return self.dir / f"{key}.trajectory.npz"

    def load(self, key: str) -> RunRecord | None:
        """The finished run ``key``, or None if there is none (or its file is unreadable: it runs again)."""
        try:
            return RunRecord.from_json(self.record_path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, key: str, record: RunRecord) -> Path:
        return write_atomic(self.record_path(key), record.to_json().encode())

    def forget(self, key: str) -> None:
        """Remove run ``key``'s record and checkpoint (``--fresh``)."""
        for path in (self.record_path(key), self.checkpoint_path(key), self.trajectory_path(key)):
            path.unlink(missing_ok=True)


@dataclass
class _Slot:
    label: str
    config: RunConfig | None  # None: an equal-budget SGD run, known once its RSO run has finished
    after: int | None = None  # the slot of the RSO run it is budgeted on
    budget: int | None = None
    note: str = ""
    key: str = ""
    result: RunResult | None = None
    failure: RunFailure | None = None


def plan_slots(study: Study, plan: list[tuple[str, RunConfig]], want_sgd: bool) -> list[_Slot]:
    """The study's runs in report order: each RSO run, then the SGD runs (one per model, or one per RSO
    run at its budget for the equal-budget study)."""
    slots: list[_Slot] = []
    sgd_done: set[str] = set()
    for i, (label, cfg) in enumerate(plan):
        slots.append(_Slot(label, cfg))
        if not want_sgd:
            continue
        if study.equal_budget:
            slots.append(_Slot(f"{model_label(cfg.model)} SGD at the budget of b{cfg.batch_size}", None,
                               after=len(slots) - 1))
        elif all(c.model != cfg.model for _, c in plan[i + 1 :]) and cfg.model not in sgd_done:
            sgd_done.add(cfg.model)
            slots.append(_Slot(f"{model_label(cfg.model)} SGD", cfg.replace(algorithm="sgd")))
    return slots


def schedule_study(
    study: Study,
    plan: list[tuple[str, RunConfig]],
    want_sgd: bool,
    client,
    *,
    sgd_epochs_for: Callable[[int, int], tuple[int, str]],
    store: RunStore | None = None,
    fresh: bool = False,
    checkpoints: bool = False,
    trajectories: bool = False,
    backend: str | None = None,
    progress: StudyProgress | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list[RunResult], list[RunFailure]]:
    """Run the study's runs as tasks on ``client``; return (finished runs, failures) in study order.

    ``sgd_epochs_for(budget, n_train)`` gives an equal-budget SGD run's epochs and note. See the module
    docstring for ``store``, ``fresh``, ``checkpoints``, ``progress`` and Ctrl-C.
    """
    from distributed import Event, as_completed  # noqa: PLC0415

    say = log or (lambda line: None)
    slots = plan_slots(study, plan, want_sgd)
    if progress is not None:
        progress.planned(len(slots))
    cancel_name = f"rso-cancel-{uuid.uuid4().hex}"
    futures: dict[str, tuple[int, Any]] = {}  # task key -> (slot, future)
    by_run: dict[str, int] = {}  # run key -> slot
    pending = as_completed([])
    events: collections.deque = collections.deque()
    seen_workers: dict[str, str] = {}

    def finish(i: int, record: RunRecord, skipped: bool) -> None:
        slot = slots[i]
        slot.result = RunResult.from_record(record)
        if progress is not None:
            progress.finished(slot.result, skipped)
        for j, other in enumerate(slots):
            if other.after == i:
                prepare_budgeted(j, slot.result)

    def fail(i: int, error: str) -> None:
        slot = slots[i]
        slot.failure = RunFailure(slot.label, slot.config or slots[slot.after].config.replace(algorithm="sgd"), error)
        if progress is not None:
            progress.failed(slot.failure)
        say(f"{slot.label}: failed: {error}")
        for j, other in enumerate(slots):
            if other.after == i:
                fail(j, f"not run: the RSO run it is budgeted on ({slot.label}) did not finish")

    def prepare_budgeted(j: int, rso: RunResult) -> None:
        slot = slots[j]
        slot.budget = rso.record.forward_samples
        epochs, slot.note = sgd_epochs_for(slot.budget, rso.n_train)
        slot.config = rso.config.replace(algorithm="sgd", cycles=epochs)
        start(j)

    def start(i: int) -> None:
        slot = slots[i]
        slot.key = run_key(slot.label, slot.config, slot.budget)
        by_run[slot.key] = i
        if store is not None:
            if fresh:
                store.forget(slot.key)
            else:
                record = store.load(slot.key)
                if record is not None:
                    say(f"{slot.label}: already finished in {store.record_path(slot.key)}, skipped "
                        "(--fresh trains it again)")
                    finish(i, record, skipped=True)
                    return
        keep = store is not None and (checkpoints or trajectories)
        spec = RunSpec(slot.key, slot.label, slot.config, backend=backend, budget=slot.budget, note=slot.note,
                       checkpoint=str(store.checkpoint_path(slot.key)) if keep else None, cancel_event=cancel_name,
                       trajectory=str(store.trajectory_path(slot.key)) if store is not None and trajectories else None)
        if store is not None:
            store.dir.mkdir(parents=True, exist_ok=True)
        future = client.submit(train_run, spec, key=f"rso-run-{slot.key}-{uuid.uuid4().hex[:6]}", pure=False)
        futures[future.key] = (i, future)
        pending.add(future)

    def on_event(event) -> None:  # on the client's event-loop thread: hand over to the main loop
        events.append(event[1] if isinstance(event, tuple) else event)

    def drain_events() -> None:
        while events:
            msg = events.popleft()
            i = by_run.get(msg.get("key"))
            if i is None:
                continue
            worker = msg.get("worker", "")
            if msg.get("state") == "started":
                before = seen_workers.get(msg["key"])
                if before is not None:
                    again = (f"from its checkpoint after cycle {msg['resumed_from']}" if msg.get("resumed_from")
                             else "from the start")
                    say(f"{slots[i].label}: restarted on {worker} {again} (its worker {before} was lost)")
                seen_workers[msg["key"]] = worker
            if progress is not None:
                progress.update(msg)

    def collect(future) -> None:
        i, _ = futures.pop(future.key)
        if future.status == "finished":
            record = future.result()
            if store is not None:
                store.save(slots[i].key, record)
            finish(i, record, skipped=False)
            say(_summary(slots[i].result, record))
        elif future.status == "cancelled":
            fail(i, "cancelled")
        else:
            exc = future.exception()
            fail(i, f"{type(exc).__name__}: {exc}")

    client.subscribe_topic(PROGRESS_TOPIC, on_event)
    try:
        for i, slot in enumerate(slots):
            if slot.after is None:
                start(i)
        while futures:
            drain_events()
            if pending.has_ready():
                for future in pending.next_batch(block=False):
                    collect(future)
            else:
                time.sleep(POLL_EVERY)
        drain_events()
    except BaseException:  # Ctrl-C (or a client that failed): stop the runs, keep what finished
        _stop(client, Event(cancel_name, client=client), [f for _, f in futures.values()])
        raise
    finally:
        try:
            client.unsubscribe_topic(PROGRESS_TOPIC)
        except Exception:  # noqa: BLE001 - the client may already be gone
            pass
        if progress is not None:
            progress.close()
    return [s.result for s in slots if s.result is not None], [s.failure for s in slots if s.failure is not None]


def _stop(client, event, running: list) -> None:
    """Ask running tasks to stop at an exact state, wait a little for them, cancel the rest."""
    from distributed import wait  # noqa: PLC0415

    try:
        event.set()
        if running:
            wait(running, timeout=STOP_GRACE)
    except BaseException:  # noqa: BLE001 - a second Ctrl-C, a timeout, a closed client: stop waiting
        pass
    try:
        client.cancel(running)
    except Exception:  # noqa: BLE001
        pass


def _summary(result: RunResult, record: RunRecord) -> str:
    last = result.history[-1]
    where = f" on {record.worker}" if record.worker else ""
    resumed = f", continued from its checkpoint after cycle {record.resumed_from}" if record.resumed_from else ""
    return (f"{result.label}: {last.seconds:.1f} s{where}{resumed}, test loss {last.test_loss:.4f}, "
            f"test accuracy {last.test_accuracy:.4f}, {last.forward_samples:,} forward samples")
