"""A study's results as data: one :class:`RunResult` per finished run, a :class:`StudyResult` for the study."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..events import Evaluated
from ..training import Trainer
from .course import course_result
from .studies import Study

#: The columns of ``results.csv``, one row per run (:meth:`RunResult.row`).
RESULT_FIELDS = (
    "study", "label", "model", "algorithm", "batch_size", "cycles", "epochs", "seconds", "wall_seconds",
    "train_loss", "test_loss", "test_accuracy", "weight_updates", "forward_samples", "dataset", "n_train", "n_test",
    "evaluator", "course_seconds", "course_test_loss", "course_test_accuracy",
)  # fmt: skip


@dataclass
class RunResult:
    """One finished run of a study."""

    label: str
    trainer: Trainer
    wall_seconds: float
    budget: int | None = None  # equal-budget SGD: the forward samples it was stopped at
    note: str = ""

    @property
    def config(self) -> RunConfig:
        return self.trainer.config

    @property
    def history(self) -> list[Evaluated]:
        return self.trainer.history

    @property
    def algorithm(self) -> str:
        return self.trainer.algorithm

    @property
    def batch_size(self) -> int:
        return self.config.batch_size if self.algorithm == "rso" else self.trainer.batch_size

    def course(self) -> dict[str, Any] | None:
        """The course project's row for the same model, batch size and cycles (RSO only), if any."""
        if self.algorithm != "rso":
            return None
        return course_result(self.config.model, self.batch_size, self.config.cycles)

    def row(self, study: str) -> dict[str, Any]:
        """This run's row of ``results.csv`` (the keys of :data:`RESULT_FIELDS`)."""
        last = self.history[-1]
        t = self.trainer
        ref = self.course() or {}
        epochs = last.forward_samples / t.n_train if self.algorithm == "sgd" else None
        return {
            "study": study, "label": self.label, "model": self.config.model, "algorithm": self.algorithm,
            "batch_size": self.batch_size, "cycles": last.cycle,
            "epochs": round(epochs, 4) if epochs is not None else "",
            "seconds": round(last.seconds, 3), "wall_seconds": round(self.wall_seconds, 3),
            "train_loss": last.train_loss, "test_loss": last.test_loss, "test_accuracy": last.test_accuracy,
            "weight_updates": last.weight_updates, "forward_samples": last.forward_samples,
            "dataset": t.dataset.name, "n_train": t.dataset.n_train, "n_test": t.dataset.n_test,
            "evaluator": getattr(getattr(t, "evaluator", None), "name", ""),
            "course_seconds": _blank(ref.get("seconds")), "course_test_loss": _blank(ref.get("test_loss")),
            "course_test_accuracy": _blank(ref.get("test_accuracy")),
        }  # fmt: skip


@dataclass
class StudyResult:
    """A finished study: its runs, and the folder it was written to (``files``: what was written)."""

    study: Study
    out_dir: Path
    base: RunConfig
    runs: list[RunResult]
    files: list[Path]

    @property
    def report(self) -> Path:
        return self.out_dir / "report.md"


def _blank(v: Any) -> Any:
    return "" if v is None else v
