"""A study's figures: accuracy and losses against cycles and against forward samples, and the batch sweep."""

from __future__ import annotations

from collections.abc import Sequence

from .. import plots
from .course import COURSE_RESULTS
from .results import RunResult, StudyResult


def batch_sweep_plot(runs: Sequence[RunResult], study: str, title: str, size: tuple[int, int], dpi: int):
    """Test accuracy and time against the batch size for ``runs``, with the course project's numbers
    (dashed) for the same models, cycles and batch sizes, and the SGD runs as dotted lines."""
    rso_batches = {run.batch_size for run in runs if run.algorithm == "rso"}
    models = {run.config.model for run in runs}
    cycles = {run.config.cycles for run in runs}
    ref = [dict(r) for r in COURSE_RESULTS
           if r["model"] in models and r["cycles"] in cycles and r["batch_size"] in rso_batches]
    rows = [run.row(study) for run in runs]
    return plots.batch_sweep_figure(rows, ref, title=title, size=size, dpi=dpi)


def study_figures(result: StudyResult, size: tuple[int, int], dpi: int) -> list[tuple[str, object]]:
    """(file stem, matplotlib figure) for each figure of a study's folder."""
    study = result.study
    by_label = {run.label: run.history for run in result.runs}
    figures = [
        (f"accuracy-vs-{axis.replace('_', '-')}",
         plots.histories_figure(by_label, axis, title=study.title, size=size, dpi=dpi))
        for axis in ("cycles", "forward_samples")
    ]
    rso_batches = {run.batch_size for run in result.runs if run.algorithm == "rso"}
    if len(rso_batches) > 1 and not study.equal_budget:
        figures.append(("batch-sweep", batch_sweep_plot(result.runs, study.name, study.title, size, dpi)))
    return figures
