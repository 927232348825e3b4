"""Writing a finished study's folder: figures (PNG and SVG), results.csv, histories.json, config.json, report.md."""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__, plots
from ..experiment import history_rows
from ..files import write_atomic
from .figures import study_figures
from .markdown import report_markdown
from .results import StudyResult
from .tables import results_csv


def _write_json(path: Path, doc: dict, indent: int) -> Path:
    write_atomic(path, (json.dumps(doc, indent=indent) + "\n").encode())
    return path


def write_study(
    result: StudyResult,
    plot_size: tuple[int, int] = (1200, 500),
    dpi: int = 100,
    command: str | None = None,
    started: str | None = None,
    figures: bool = True,
) -> list[Path]:
    """Write a finished study's folder (figures unless ``figures=False``, CSV, JSON, report.md); return the
    files written."""
    out = result.out_dir
    study = result.study
    files: list[Path] = []
    for stem, fig in study_figures(result, plot_size, dpi) if figures else ():
        for ext in ("png", "svg"):
            files.append(plots.save_figure(fig, out / f"{stem}.{ext}", size=plot_size, dpi=dpi))

    csv_path = out / "results.csv"
    write_atomic(csv_path, results_csv(result).encode())
    files.append(csv_path)

    runs = [
        {"label": r.label, "algorithm": r.algorithm, "model": r.config.model, "batch_size": r.batch_size,
         "budget": r.budget, "config": r.config.to_dict(), "history": history_rows(r.history)}
        for r in result.runs
    ]
    files.append(_write_json(out / "histories.json", {"study": study.name, "rso_version": __version__, "runs": runs},
                             indent=1))
    conf = {
        "study": study.name,
        "title": study.title,
        "description": study.description,
        "command": command,
        "started": started,
        "rso_version": __version__,
        "backend": result.runs[0].record.backend if result.runs else None,
        "base_config": result.base.to_dict(),
        "runs": [{"label": r.label, "config": r.config.to_dict(), "budget": r.budget, "note": r.note}
                 for r in result.runs],
        "failed": [{"label": f.label, "config": f.config.to_dict(), "error": f.error} for f in result.failures],
    }
    files.append(_write_json(out / "config.json", conf, indent=2))

    md_path = out / "report.md"
    write_atomic(md_path, (report_markdown(result, command, started) + "\n").encode())
    files.append(md_path)
    return files
