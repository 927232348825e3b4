"""``report.md``: what a study ran, on which data and machine, its tables, and the figures it links."""

from __future__ import annotations

from .. import __version__
from ..training import describe_sigma_schedule
from ..training.plan import describe_batching
from .paper import paper_sections
from .results import StudyResult
from .tables import budget_table, course_table, details_table, md_table, plural

#: a study's own sections, by the name in Study.sections, in place of the course project's table
SECTIONS = {"paper": paper_sections}
_FULL_TRAIN_SIZES = {"mnist": 60000, "fashion-mnist": 60000, "mnist-sample": 4000}


def _describe_data(result: StudyResult) -> str:
    ds = result.runs[0].record
    full = _FULL_TRAIN_SIZES.get(ds.dataset)
    part = "" if full is None or ds.n_train == full else f" (the first {ds.n_train:,} of {full:,})"
    return f"{ds.dataset}: {ds.n_train:,} training images{part}, {ds.n_test:,} test images, from {ds.dataset_source}"


def report_markdown(result: StudyResult, command: str | None = None, started: str | None = None) -> str:
    """The text of ``report.md`` (the figures it links are the PNGs already in the folder)."""
    study, cfg, runs = result.study, result.base, result.runs
    t0 = runs[0].record
    evaluators = sorted({r.record.evaluator for r in runs if r.algorithm == "rso"})
    layers = ", ".join(cfg.train_layers) if cfg.train_layers else "all"
    sgd_length = (", stopped at each RSO run's forward-pass budget" if study.equal_budget
                  else f", {plural(cfg.cycles, 'epochs')}")
    lines = [
        f"# {study.title}",
        "",
        f"The study (`rso report {study.name}`) by default: {study.description}",
        "",
        "This run:",
        "",
        f"- study: `{study.name}`" + (f", command: `{command}`" if command else ""),
        f"- data: {_describe_data(result)}",
        f"- RSO: {plural(cfg.cycles, 'cycles')}, {describe_batching(cfg)}, "
        f"{describe_sigma_schedule(cfg)}, "
        f"stay decay {cfg.stay_decay:g}, layers searched: {layers}, "
        f"evaluator: {', '.join(evaluators)}, {cfg.dtype}, seed {cfg.seed}",
        f"- SGD: lr {cfg.lr:g}, momentum {cfg.momentum:g}, batch {cfg.sgd_batch_size}{sgd_length}",
        f"- machine: {t0.backend}; rso {__version__}" + (f"; started {started}" if started else ""),
        "- time (s) is training compute time, evaluation excluded; wall (s) includes evaluation.",
        "",
    ]
    lines += SECTIONS[study.sections](result) if study.sections else _course_section(runs, t0)
    if study.equal_budget:
        lines += ["## At equal forward-pass budgets", "", budget_table(runs), ""]
        notes = [r.note for r in runs if r.note]
        lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    lines += ["## Every run", "", details_table(runs), ""]
    if result.failures:
        lines += ["## Runs that did not finish", "",
                  md_table(("run", "error"), [(f.label, f.error.replace("|", "\\|")) for f in result.failures]),
                  "", "(run the same command again to retry them; finished runs are kept and skipped)", ""]
    figures = sorted(p.name for p in result.out_dir.glob("*.png"))
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{name[:-4]}]({name})" for name in figures]
        lines += ["", "(each also as SVG; data in `results.csv` and `histories.json`)", ""]
    return "\n".join(lines)


def _course_section(runs, t0) -> list[str]:
    """The table laid out like the course project's, its numbers side by side, and what they are."""
    lines = [
        "## Results, laid out like the course project's table",
        "",
        course_table(runs),
        "",
        "The course columns are the course project's own measurements (Julia/Flux on a CPU, full MNIST "
        "60,000 training / 10,000 test images, 10 rounds of RSO with three full forward passes per weight, no "
        "caching; its reproduction had known flaws: its He init never reached the model and σ_d was "
        "accumulated across layers). They are shown only where it ran the same model, batch size and number "
        "of cycles.",
        "",
    ]
    if (t0.dataset, t0.n_train, t0.n_test) != ("mnist", 60000, 10000):
        lines += [
            f"**These runs used {t0.dataset} ({t0.n_train:,} training / {t0.n_test:,} test images), not full MNIST: "
            "the course project's losses and accuracies are a landmark, not a like-for-like comparison.**",
            "",
        ]
    return lines
