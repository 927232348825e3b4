"""A study's results as tables: Markdown in the course project's layout, the run details, the budgets, CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from .course import model_label
from .results import RESULT_FIELDS, RunResult, StudyResult


def secs(v: float) -> str:
    """Seconds with as many decimals as a table needs (212, 43.8, 1.25)."""
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def plural(n: Any, unit: str) -> str:
    """``"1 cycle"``, ``"10 cycles"``: ``unit`` is the plural."""
    return f"{n} {unit[:-1]}" if str(n) in ("1", "1.00") else f"{n} {unit}"


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def course_table(runs: Sequence[RunResult]) -> str:
    """The Markdown table in the course project's layout, with its numbers side by side."""
    rows = []
    for run in runs:
        last = run.history[-1]
        ref = run.course() or {}
        model = model_label(run.config.model)
        if run.algorithm == "sgd":
            epochs = f", {last.forward_samples / run.n_train:.2f} epochs" if run.budget else ""
            model += f" (SGD{epochs})"
        rows.append((model, run.batch_size, secs(last.seconds), _fmt(last.test_loss, 3), _fmt(last.test_accuracy, 4),
                     _fmt(ref.get("seconds")), _fmt(ref.get("test_loss"), 3), _fmt(ref.get("test_accuracy"), 4)))
    return md_table(("model", "batch", "time (s)", "test loss", "test accuracy", "course: time (s)",
                     "course: test loss", "course: test accuracy"), rows)


def details_table(runs: Sequence[RunResult]) -> str:
    """Every run's final numbers: how long it trained, losses, accuracy, budget counters, times."""
    rows = []
    for run in runs:
        last = run.history[-1]
        unit = "cycles" if run.algorithm == "rso" else "epochs"
        amount = (f"{last.cycle}" if run.algorithm == "rso" or not run.budget
                  else f"{last.forward_samples / run.n_train:.2f}")
        rows.append((run.label, plural(amount, unit), _fmt(last.train_loss), _fmt(last.test_loss),
                     _fmt(last.test_accuracy), f"{last.weight_updates:,}", f"{last.forward_samples:,}",
                     secs(last.seconds), secs(run.wall_seconds)))
    return md_table(("run", "trained for", "train loss", "test loss", "test accuracy", "weight updates",
                     "forward samples", "time (s)", "wall (s)"), rows)


def budget_table(runs: Sequence[RunResult]) -> str:
    """RSO and SGD side by side at equal forward-pass budgets (equal-budget study)."""
    rows = []
    pending: RunResult | None = None
    for run in runs:
        if run.algorithm == "rso":
            pending = run
            continue
        if pending is None or run.budget is None:
            continue
        r, s = pending.history[-1], run.history[-1]
        rows.append((model_label(pending.config.model), pending.batch_size, f"{r.forward_samples:,}",
                     _fmt(r.test_accuracy), secs(r.seconds), f"{s.forward_samples / run.n_train:.2f}",
                     f"{s.forward_samples:,}", _fmt(s.test_accuracy), secs(s.seconds), f"{r.weight_updates:,}",
                     f"{s.weight_updates:,}"))
    return md_table(("model", "RSO batch", "RSO forward samples", "RSO test accuracy", "RSO time (s)", "SGD epochs",
                     "SGD forward samples", "SGD test accuracy", "SGD time (s)", "RSO weight updates",
                     "SGD weight updates"), rows)


def results_csv(result: StudyResult) -> str:
    """``results.csv``: one row per run, the columns of :data:`RESULT_FIELDS`."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RESULT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for run in result.runs:
        writer.writerow(run.row(result.study.name))
    for failure in result.failures:
        writer.writerow(failure.row(result.study.name))
    return buf.getvalue()
