"""Named studies (``rso report STUDY``): the course project's experiments, run and written up as a folder.

A study is a list of runs built from one base config: the course project's batch-size sweep, its model
comparison, and RSO against SGD at equal forward-pass budgets. :func:`run_study` trains them one after
another (through a ``drive`` callable, so the CLI can show progress bars) and writes into one folder:

- ``report.md``: what was run, on which data and machine, and a table laid out like the course
  project's (model | batch | time (s) | test loss | test accuracy) with the course project's own numbers
  side by side where it measured the same model and batch size, then the details of every run;
- ``results.csv``: one row per run (the columns of :data:`RESULT_FIELDS`);
- ``histories.json``: every run's config and per-cycle history;
- ``config.json``: the study, its options, the base config and each run's config;
- ``*.png`` and ``*.svg``: test accuracy/loss against cycles and against forward-pass samples, and
  for a batch-size study accuracy and time against the batch size.

"time (s)" is the training compute time (evaluation excluded) that the trainers measure.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .config import RunConfig
from .events import Evaluated
from .experiment import history_rows, make_trainer
from .files import write_atomic
from .training import Trainer

_COURSE_ROWS = (  # model, batch, cycles, time (s), test loss, test accuracy
    ("oneconv", 32, 10, 212, 0.632, 0.8075),
    ("oneconv", 64, 10, 345, 0.553, 0.8353),
    ("oneconv", 256, 10, 1641, 0.372, 0.8929),
    ("oneconv", 512, 10, 2834, 0.297, 0.9152),
    ("oneconv", 1024, 10, 5046, 0.301, 0.9148),
    ("twoconv", 32, 10, 1457, 0.513, 0.8504),
    ("twoconv", 512, 10, 19186, 0.193, 0.9397),
    ("twoconv", 1000, 10, 36464, 0.126, 0.9604),
    ("papernet", 256, 1, 5240, None, None),
)
#: The course project's table (Julia/Flux on a CPU, full MNIST, 10 rounds of RSO; None where it has no number).
COURSE_RESULTS: tuple[dict[str, Any], ...] = tuple(
    dict(zip(("model", "batch_size", "cycles", "seconds", "test_loss", "test_accuracy"), row)) for row in _COURSE_ROWS
)
MODEL_LABELS = {"oneconv": "OneConv", "twoconv": "TwoConv", "papernet": "Paper net", "mlp": "MLP"}

RESULT_FIELDS = (
    "study", "label", "model", "algorithm", "batch_size", "cycles", "epochs", "seconds", "wall_seconds",
    "train_loss", "test_loss", "test_accuracy", "weight_updates", "forward_samples", "dataset", "n_train", "n_test",
    "evaluator", "course_seconds", "course_test_loss", "course_test_accuracy",
)  # fmt: skip

#: drive(trainer, label, stop) runs ``trainer`` (to the end, or until ``stop(trainer)`` is true after
#: an event) and returns its history; the CLI passes one with a progress bar.
Driver = Callable[..., list[Evaluated]]


class StudyError(ValueError):
    """A study cannot be run as asked (unknown study, impossible options)."""


@dataclass(frozen=True)
class Study:
    """A named experiment: which models and batch sizes, with or without SGD, and how SGD is budgeted."""

    name: str
    title: str
    description: str
    models: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    defaults: dict[str, Any] = field(default_factory=dict)  # RunConfig fields the study starts from
    sgd: bool = True  # add the SGD baseline (one run per model)
    equal_budget: bool = False  # one SGD run per RSO run, stopped at the RSO run's forward-pass budget


_COURSE_DEFAULTS = {"dataset": "mnist", "cycles": 10, "lr": 0.01, "sgd_batch_size": 32}

STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "course-batch-sweep",
            "RSO batch-size sweep (the course project's study)",
            "OneConv trained by RSO once per mini-batch size (32, 64, 256, 512), 10 cycles on full MNIST as in "
            "the course project, plus the SGD baseline (lr 0.01, batch 32, as many epochs as cycles).",
            ("oneconv",),
            (32, 64, 256, 512),
            dict(_COURSE_DEFAULTS),
        ),
        Study(
            "model-comparison",
            "Model comparison (the course project's study)",
            "OneConv and TwoConv trained by RSO at batch 32 and 512, 10 cycles on full MNIST, each with its SGD "
            "baseline; add the paper's net with --models oneconv twoconv papernet.",
            ("oneconv", "twoconv"),
            (32, 512),
            dict(_COURSE_DEFAULTS),
        ),
        Study(
            "equal-budget",
            "RSO against SGD at equal forward-pass budgets",
            "OneConv trained by RSO at batch 32 and 256, 10 cycles on full MNIST; after each RSO run, SGD (lr "
            "0.01, batch 32) trains the same model on the same data until it has pushed as many images through "
            "the network as RSO did (3 × batch size per weight tried), stopping mid-epoch if need be (at most "
            "--max-sgd-epochs epochs).",
            ("oneconv",),
            (32, 256),
            dict(_COURSE_DEFAULTS),
            sgd=True,
            equal_budget=True,
        ),
    )
}


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
        for ref in COURSE_RESULTS:
            if (ref["model"], ref["batch_size"], ref["cycles"]) == (
                self.config.model,
                self.batch_size,
                self.config.cycles,
            ):
                return ref
        return None

    def row(self, study: str) -> dict[str, Any]:
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


def get_study(name: str) -> Study:
    try:
        return STUDIES[name]
    except KeyError:
        raise StudyError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}") from None


# --------------------------------------------------------------------------- planning and running
def study_base(name: str, config: RunConfig | None = None, changes: dict[str, Any] | None = None) -> RunConfig:
    """The base config of a study: its defaults, then ``config``'s fields, then ``changes``.

    With ``config=None`` the study's defaults (e.g. full MNIST, 10 cycles) apply to the fields
    ``changes`` leaves out; the CLI passes its --preset/--config layers as ``config``.
    """
    study = get_study(name)
    base = config if config is not None else RunConfig().replace(**study.defaults)
    return base.replace(**(changes or {})).replace(algorithm="rso")


def plan_runs(
    study: Study, base: RunConfig, models: Sequence[str] | None = None, batch_sizes: Sequence[int] | None = None
) -> list[tuple[str, RunConfig]]:
    """The RSO runs of a study as (label, config), in the order they run."""
    models = list(models or study.models)
    batch_sizes = list(batch_sizes or study.batch_sizes)
    if not models or not batch_sizes:
        raise StudyError("a study needs at least one model and one batch size")
    out = []
    for model in models:
        for b in batch_sizes:
            cfg = base.replace(model=model, batch_size=int(b), algorithm="rso")
            out.append((f"{MODEL_LABELS.get(cfg.model, cfg.model)} RSO b{b}", cfg))
    return out


def _plain_drive(trainer: Trainer, label: str, stop: Callable[[Trainer], bool] | None = None) -> list[Evaluated]:
    for _ in trainer.events():
        if stop is not None and stop(trainer):
            break
    return trainer.history


def _sgd_epochs_for(budget: int, n_train: int, max_epochs: int) -> tuple[int, str]:
    need = max(1, math.ceil(budget / n_train))
    if need > max_epochs:
        return max_epochs, (
            f"budget capped: RSO's {budget:,} forward samples would take {budget / n_train:,.1f} "
            f"SGD epochs; stopped at {max_epochs} (raise --max-sgd-epochs)"
        )
    return need, ""


def run_study(
    name: str,
    out_dir: str | Path,
    base: RunConfig | None = None,
    *,
    models: Sequence[str] | None = None,
    batch_sizes: Sequence[int] | None = None,
    sgd: bool | None = None,
    max_sgd_epochs: int = 200,
    dataset=None,
    backend=None,
    drive: Driver | None = None,
    plot_size: tuple[int, int] = (1200, 500),
    dpi: int = 100,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
) -> StudyResult:
    """Run study ``name`` on ``base`` (see :func:`study_base`) and write its folder ``out_dir``.

    ``models``/``batch_sizes`` replace the study's own; ``sgd=False`` leaves out the SGD runs (not for
    equal-budget). ``dataset`` saves loading the data (it must be ``base``'s dataset); ``drive``
    runs one trainer (default: silently); ``log`` receives one line per finished run.
    """
    study = get_study(name)
    if base is None:
        base = study_base(name)
    if max_sgd_epochs < 1:
        raise StudyError("max_sgd_epochs must be ≥ 1")
    want_sgd = study.sgd if sgd is None else bool(sgd)
    if study.equal_budget and not want_sgd:
        raise StudyError("the equal-budget study compares with SGD; it cannot run without it")
    plan = plan_runs(study, base, models, batch_sizes)
    drive = drive or _plain_drive
    log = log or (lambda line: None)
    if dataset is None:
        from .data import load_dataset  # noqa: PLC0415

        dataset = load_dataset(base.dataset, data_dir=base.data_dir, progress=sys.stderr.isatty())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")

    runs: list[RunResult] = []
    sgd_done: set[str] = set()
    for i, (label, cfg) in enumerate(plan):
        t0 = time.perf_counter()
        rso = make_trainer(cfg, dataset, backend)
        drive(rso, label)
        runs.append(RunResult(label, rso, time.perf_counter() - t0))
        log(_summary(runs[-1]))
        if not want_sgd:
            continue
        model_label = MODEL_LABELS.get(cfg.model, cfg.model)
        last_of_model = all(c.model != cfg.model for _, c in plan[i + 1 :])
        if study.equal_budget:
            budget = rso.forward_samples
            epochs, note = _sgd_epochs_for(budget, rso.n_train, max_sgd_epochs)
            sgd_cfg = cfg.replace(algorithm="sgd", cycles=epochs)
            sgd_label = f"{model_label} SGD at the budget of b{cfg.batch_size}"
            t0 = time.perf_counter()
            trainer = make_trainer(sgd_cfg, dataset, backend)
            drive(trainer, sgd_label, lambda t, b=budget: t.forward_samples >= b)
            if trainer.history[-1].forward_samples != trainer.forward_samples:  # stopped mid-epoch
                trainer.evaluate(trainer.epoch + 1)
            runs.append(RunResult(sgd_label, trainer, time.perf_counter() - t0, budget, note))
            log(_summary(runs[-1]))
        elif last_of_model and cfg.model not in sgd_done:  # one baseline per model, after its RSO runs
            sgd_done.add(cfg.model)
            sgd_label = f"{model_label} SGD"
            t0 = time.perf_counter()
            trainer = make_trainer(cfg.replace(algorithm="sgd"), dataset, backend)
            drive(trainer, sgd_label)
            runs.append(RunResult(sgd_label, trainer, time.perf_counter() - t0))
            log(_summary(runs[-1]))

    result = StudyResult(study, out_dir, base, runs, [])
    result.files = write_study(result, plot_size=plot_size, dpi=dpi, command=command, started=started, backend=backend)
    return result


def _summary(run: RunResult) -> str:
    last = run.history[-1]
    return (
        f"{run.label}: {last.seconds:.1f} s, test loss {last.test_loss:.4f}, test accuracy "
        f"{last.test_accuracy:.4f}, {last.forward_samples:,} forward samples"
    )


# --------------------------------------------------------------------------- writing
def _secs(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _plural(n: Any, unit: str) -> str:
    return f"{n} {unit[:-1]}" if str(n) in ("1", "1.00") else f"{n} {unit}"


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def course_table(runs: Sequence[RunResult]) -> str:
    """The Markdown table in the course project's layout, with its numbers side by side."""
    rows = []
    for run in runs:
        last = run.history[-1]
        ref = run.course() or {}
        model = MODEL_LABELS.get(run.config.model, run.config.model)
        if run.algorithm == "sgd":
            epochs = f", {last.forward_samples / run.trainer.n_train:.2f} epochs" if run.budget else ""
            model += f" (SGD{epochs})"
        rows.append(
            (
                model,
                run.batch_size,
                _secs(last.seconds),
                _fmt(last.test_loss, 3),
                _fmt(last.test_accuracy, 4),
                _fmt(ref.get("seconds")),
                _fmt(ref.get("test_loss"), 3),
                _fmt(ref.get("test_accuracy"), 4),
            )
        )
    return _md_table(
        (
            "model",
            "batch",
            "time (s)",
            "test loss",
            "test accuracy",
            "course: time (s)",
            "course: test loss",
            "course: test accuracy",
        ),
        rows,
    )


def details_table(runs: Sequence[RunResult]) -> str:
    rows = []
    for run in runs:
        last = run.history[-1]
        unit = "cycles" if run.algorithm == "rso" else "epochs"
        amount = (
            f"{last.cycle}"
            if run.algorithm == "rso" or not run.budget
            else f"{last.forward_samples / run.trainer.n_train:.2f}"
        )
        rows.append(
            (
                run.label,
                _plural(amount, unit),
                _fmt(last.train_loss),
                _fmt(last.test_loss),
                _fmt(last.test_accuracy),
                f"{last.weight_updates:,}",
                f"{last.forward_samples:,}",
                _secs(last.seconds),
                _secs(run.wall_seconds),
            )
        )
    return _md_table(
        (
            "run",
            "trained for",
            "train loss",
            "test loss",
            "test accuracy",
            "weight updates",
            "forward samples",
            "time (s)",
            "wall (s)",
        ),
        rows,
    )


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
        rows.append(
            (
                MODEL_LABELS.get(pending.config.model, pending.config.model),
                pending.batch_size,
                f"{r.forward_samples:,}",
                _fmt(r.test_accuracy),
                _secs(r.seconds),
                f"{s.forward_samples / run.trainer.n_train:.2f}",
                f"{s.forward_samples:,}",
                _fmt(s.test_accuracy),
                _secs(s.seconds),
                f"{r.weight_updates:,}",
                f"{s.weight_updates:,}",
            )
        )
    return _md_table(
        (
            "model",
            "RSO batch",
            "RSO forward samples",
            "RSO test accuracy",
            "RSO time (s)",
            "SGD epochs",
            "SGD forward samples",
            "SGD test accuracy",
            "SGD time (s)",
            "RSO weight updates",
            "SGD weight updates",
        ),
        rows,
    )


def results_csv(result: StudyResult) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RESULT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for run in result.runs:
        writer.writerow(run.row(result.study.name))
    return buf.getvalue()


def _describe_data(result: StudyResult) -> str:
    t = result.runs[0].trainer
    ds = t.dataset
    full = {"mnist": 60000, "fashion-mnist": 60000, "mnist-sample": 4000}.get(ds.name)
    part = "" if full is None or ds.n_train == full else f" (the first {ds.n_train:,} of {full:,})"
    return f"{ds.name}: {ds.n_train:,} training images{part}, {ds.n_test:,} test images, from {ds.source}"


def report_markdown(result: StudyResult, command: str | None = None, started: str | None = None, backend=None) -> str:
    study, base, runs = result.study, result.base, result.runs
    t0 = runs[0].trainer
    evaluators = sorted({r.trainer.evaluator.name for r in runs if r.algorithm == "rso"})
    cfg = base
    lines = [
        f"# {study.title}",
        "",
        f"The study (`rso report {study.name}`) by default: {study.description}",
        "",
        "This run:",
        "",
    ]
    lines += [
        f"- study: `{study.name}`" + (f", command: `{command}`" if command else ""),
        f"- data: {_describe_data(result)}",
        f"- RSO: {_plural(cfg.cycles, 'cycles')}, a fresh mini-batch per {cfg.batch_mode}, σ annealing "
        f"{'on' if cfg.anneal else 'off'}, stay decay {cfg.stay_decay:g}, layers searched: "
        f"{', '.join(cfg.train_layers) if cfg.train_layers else 'all'}, evaluator: {', '.join(evaluators)}, "
        f"{cfg.dtype}, seed {cfg.seed}",
        f"- SGD: lr {cfg.lr:g}, momentum {cfg.momentum:g}, batch {cfg.sgd_batch_size}"
        + (
            ", stopped at each RSO run's forward-pass budget"
            if study.equal_budget
            else f", {_plural(cfg.cycles, 'epochs')}"
        ),
        f"- machine: {t0.backend.describe()}; rso {__version__}" + (f"; started {started}" if started else ""),
        "- time (s) is training compute time, evaluation excluded; wall (s) includes evaluation.",
        "",
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
    ds = t0.dataset
    if (ds.name, ds.n_train, ds.n_test) != ("mnist", 60000, 10000):
        lines += [
            f"**These runs used {ds.name} ({ds.n_train:,} training / {ds.n_test:,} test images), not full MNIST: "
            "the course project's losses and accuracies are a landmark, not a like-for-like comparison.**",
            "",
        ]
    if study.equal_budget:
        lines += ["## At equal forward-pass budgets", "", budget_table(runs), ""]
        notes = [r.note for r in runs if r.note]
        lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    lines += ["## Every run", "", details_table(runs), ""]
    figures = sorted(p.name for p in result.out_dir.glob("*.png"))
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{name[:-4]}]({name})" for name in figures]
        lines += ["", "(each also as SVG; data in `results.csv` and `histories.json`)", ""]
    return "\n".join(lines)


def write_study(
    result: StudyResult,
    plot_size: tuple[int, int] = (1200, 500),
    dpi: int = 100,
    command: str | None = None,
    started: str | None = None,
    backend=None,
) -> list[Path]:
    """Write a finished study's folder (figures, CSV, JSON, report.md); return the files written."""
    from . import plots  # noqa: PLC0415

    out = result.out_dir
    files: list[Path] = []
    study = result.study
    by_label = {run.label: run.history for run in result.runs}
    figures = [
        ("accuracy-vs-cycles", plots.histories_figure(by_label, "cycles", title=study.title, size=plot_size, dpi=dpi)),
        (
            "accuracy-vs-forward-samples",
            plots.histories_figure(by_label, "forward_samples", title=study.title, size=plot_size, dpi=dpi),
        ),
    ]
    rso_batches = {run.batch_size for run in result.runs if run.algorithm == "rso"}
    if len(rso_batches) > 1 and not study.equal_budget:
        rows = [run.row(study.name) for run in result.runs]
        models = {run.config.model for run in result.runs}
        cycles = {run.config.cycles for run in result.runs}
        ref = [
            dict(r)
            for r in COURSE_RESULTS
            if r["model"] in models and r["cycles"] in cycles and r["batch_size"] in rso_batches
        ]
        figures.append(("batch-sweep", plots.batch_sweep_figure(rows, ref, title=study.title, size=plot_size, dpi=dpi)))
    for stem, fig in figures:
        for ext in ("png", "svg"):
            files.append(plots.save_figure(fig, out / f"{stem}.{ext}", size=plot_size, dpi=dpi))

    csv_path = out / "results.csv"
    write_atomic(csv_path, results_csv(result).encode())
    files.append(csv_path)

    hist = {
        "study": study.name,
        "rso_version": __version__,
        "runs": [
            {
                "label": r.label,
                "algorithm": r.algorithm,
                "model": r.config.model,
                "batch_size": r.batch_size,
                "budget": r.budget,
                "config": r.config.to_dict(),
                "history": history_rows(r.history),
            }
            for r in result.runs
        ],
    }
    hist_path = out / "histories.json"
    write_atomic(hist_path, (json.dumps(hist, indent=1) + "\n").encode())
    files.append(hist_path)

    conf = {
        "study": study.name,
        "title": study.title,
        "description": study.description,
        "command": command,
        "started": started,
        "rso_version": __version__,
        "backend": result.runs[0].trainer.backend.describe() if result.runs else None,
        "base_config": result.base.to_dict(),
        "runs": [
            {"label": r.label, "config": r.config.to_dict(), "budget": r.budget, "note": r.note} for r in result.runs
        ],
    }
    conf_path = out / "config.json"
    write_atomic(conf_path, (json.dumps(conf, indent=2) + "\n").encode())
    files.append(conf_path)

    md_path = out / "report.md"
    write_atomic(md_path, (report_markdown(result, command, started, backend) + "\n").encode())
    files.append(md_path)
    return files


__all__ = [
    "COURSE_RESULTS",
    "MODEL_LABELS",
    "RESULT_FIELDS",
    "STUDIES",
    "RunResult",
    "Study",
    "StudyError",
    "StudyResult",
    "course_table",
    "get_study",
    "plan_runs",
    "run_study",
    "study_base",
    "write_study",
]
