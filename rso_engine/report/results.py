"""A study's results as data: one :class:`RunResult` per finished run, a :class:`StudyResult` for the study."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..distributed.records import RunRecord
from ..events import Evaluated
from ..training import Trainer
from .course import course_result
from .studies import Study

#: The columns of ``results.csv``, one row per run (:meth:`RunResult.row`).
RESULT_FIELDS = (
    "study", "label", "model", "algorithm", "batch_size", "cycles", "epochs", "seconds", "wall_seconds",
    "train_loss", "test_loss", "test_accuracy", "weight_updates", "forward_samples", "dataset", "n_train", "n_test",
    "evaluator", "course_seconds", "course_test_loss", "course_test_accuracy", "error",
)  # fmt: skip


@dataclass
class RunResult:
    """One finished run of a study: trained in this process (``trainer`` kept) or on a Dask worker
    (``record`` only; the trainer stayed on the worker)."""

    label: str
    trainer: Trainer | None
    wall_seconds: float
    budget: int | None = None  # equal-budget SGD: the forward samples it was stopped at
    note: str = ""
    record: RunRecord | None = None

    def __post_init__(self) -> None:
        if self.record is None:
            if self.trainer is None:
                raise ValueError("a RunResult needs a trainer or a record")
            self.record = RunRecord.from_trainer(self.label, self.trainer, self.wall_seconds, self.budget, self.note)

    @classmethod
    def from_record(cls, record: RunRecord) -> RunResult:
        """The result of a run that was trained elsewhere (a Dask worker, or an earlier invocation)."""
        return cls(record.label, None, record.wall_seconds, record.budget, record.note, record)

    @property
    def config(self) -> RunConfig:
        return self.trainer.config if self.trainer is not None else self.record.config

    @property
    def history(self) -> list[Evaluated]:
        return self.trainer.history if self.trainer is not None else self.record.history

    @property
    def algorithm(self) -> str:
        return self.config.algorithm

    @property
    def batch_size(self) -> int:
        return self.record.batch_size

    @property
    def n_train(self) -> int:
        """The training images the run used."""
        return self.record.n_train

    def course(self) -> dict[str, Any] | None:
        """The course project's row for the same model, batch size and cycles (RSO only), if any."""
        if self.algorithm != "rso":
            return None
        return course_result(self.config.model, self.batch_size, self.config.cycles)

    def row(self, study: str) -> dict[str, Any]:
        """This run's row of ``results.csv`` (the keys of :data:`RESULT_FIELDS`)."""
        last = self.history[-1]
        rec = self.record
        ref = self.course() or {}
        epochs = last.forward_samples / rec.n_train if self.algorithm == "sgd" else None
        return {
            "study": study, "label": self.label, "model": self.config.model, "algorithm": self.algorithm,
            "batch_size": self.batch_size, "cycles": last.cycle,
            "epochs": round(epochs, 4) if epochs is not None else "",
            "seconds": round(last.seconds, 3), "wall_seconds": round(self.wall_seconds, 3),
            "train_loss": last.train_loss, "test_loss": last.test_loss, "test_accuracy": last.test_accuracy,
            "weight_updates": last.weight_updates, "forward_samples": last.forward_samples,
            "dataset": rec.dataset, "n_train": rec.n_train, "n_test": rec.n_test, "evaluator": rec.evaluator,
            "course_seconds": _blank(ref.get("seconds")), "course_test_loss": _blank(ref.get("test_loss")),
            "course_test_accuracy": _blank(ref.get("test_accuracy")), "error": "",
        }  # fmt: skip


@dataclass
class RunFailure:
    """A run of a study that did not finish: it raised, its workers kept dying, or it was not started."""

    label: str
    config: RunConfig
    error: str

    def row(self, study: str) -> dict[str, Any]:
        """Its row of ``results.csv``: what it was, and the error instead of numbers."""
        row = dict.fromkeys(RESULT_FIELDS, "")
        row.update(study=study, label=self.label, model=self.config.model, algorithm=self.config.algorithm,
                   batch_size=self.config.batch_size if self.config.algorithm == "rso" else self.config.sgd_batch_size,
                   dataset=self.config.dataset, error=self.error)
        return row


@dataclass
class StudyResult:
    """A finished study: its runs, and the folder it was written to (``files``: what was written)."""

    study: Study
    out_dir: Path
    base: RunConfig
    runs: list[RunResult]
    files: list[Path]
    failures: list[RunFailure] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.out_dir / "report.md"


def _blank(v: Any) -> Any:
    return "" if v is None else v
