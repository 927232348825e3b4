"""Running a study: its RSO runs, each model's SGD baseline, in this process or as Dask tasks.

:func:`train_study` trains the runs here one after another and yields each
:class:`~rso_engine.report.results.RunResult` as it finishes; :func:`run_study` trains a whole study and
writes its folder, here or (``cluster=``) as Dask tasks through :mod:`.scheduling`, which the command
line always uses. Every run is driven by :func:`rso_engine.driving.drive`.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..data import load_dataset
from ..distributed import ClusterOptions, open_client
from ..driving import Progress, drive
from ..experiment import make_trainer
from ..training import Trainer
from .course import model_label
from .results import RunFailure, RunResult, StudyResult
from .scheduling import RunStore, StudyProgress, schedule_study
from .studies import Study, StudyError, get_study, plan_runs, study_base
from .writing import write_study

#: progress(trainer, label) makes the progress reporter of one run (the CLI's progress bar), or None
ProgressFactory = Callable[[Trainer, str], Progress | None]


def _sgd_epochs_for(budget: int, n_train: int, max_epochs: int) -> tuple[int, str]:
    need = max(1, math.ceil(budget / n_train))
    if need > max_epochs:
        return max_epochs, (
            f"budget capped: RSO's {budget:,} forward samples would take {budget / n_train:,.1f} "
            f"SGD epochs; stopped at {max_epochs} (raise --max-sgd-epochs)"
        )
    return need, ""


def _checked_plan(study: Study, base: RunConfig, models, batch_sizes, sgd: bool | None,
                  max_sgd_epochs: int) -> tuple[bool, list[tuple[str, RunConfig]]]:
    """(whether SGD runs, the RSO runs) of a study asked for with these options, or a :class:`StudyError`."""
    if max_sgd_epochs < 1:
        raise StudyError("max_sgd_epochs must be ≥ 1")
    want_sgd = study.sgd if sgd is None else bool(sgd)
    if study.equal_budget and not want_sgd:
        raise StudyError("the equal-budget study compares with SGD; it cannot run without it")
    return want_sgd, plan_runs(study, base, models, batch_sizes)


def train_study(
    name: str,
    base: RunConfig | None = None,
    *,
    models: Sequence[str] | None = None,
    batch_sizes: Sequence[int] | None = None,
    sgd: bool | None = None,
    max_sgd_epochs: int = 200,
    dataset=None,
    backend=None,
    progress: ProgressFactory | None = None,
) -> Iterator[RunResult]:
    """The runs of study ``name`` on ``base`` (see :func:`study_base`), trained one by one as it is iterated.

    ``models``/``batch_sizes`` replace the study's own; ``sgd=False`` leaves out the SGD runs (not for
    equal-budget); ``sgd=True`` adds them to a study without. ``dataset`` saves loading the data (it must
    be ``base``'s dataset); ``progress`` makes each run's progress reporter. The options are checked, and
    the data loaded, before this returns.
    """
    study = get_study(name)
    if base is None:
        base = study_base(name)
    want_sgd, plan = _checked_plan(study, base, models, batch_sizes, sgd, max_sgd_epochs)
    if dataset is None:
        dataset = load_dataset(base.dataset, data_dir=base.data_dir, progress=sys.stderr.isatty())
    return _train(study, plan, want_sgd, max_sgd_epochs, dataset, backend, progress or (lambda trainer, label: None))


def _train(
    study: Study,
    plan: list[tuple[str, RunConfig]],
    want_sgd: bool,
    max_sgd_epochs: int,
    dataset,
    backend,
    progress: ProgressFactory,
) -> Iterator[RunResult]:
    def one(label: str, cfg: RunConfig, budget: int | None = None, note: str = "") -> RunResult:
        t0 = time.perf_counter()
        trainer = make_trainer(cfg, dataset, backend)
        stop = None if budget is None else (lambda t: t.forward_samples >= budget)
        drive(trainer, progress=progress(trainer, label), stop=stop)
        if budget is not None and trainer.history[-1].forward_samples != trainer.forward_samples:
            trainer.evaluate(trainer.epoch + 1)  # stopped mid-epoch: evaluate where it stopped
        return RunResult(label, trainer, time.perf_counter() - t0, budget, note)

    sgd_done: set[str] = set()
    for i, (label, cfg) in enumerate(plan):
        rso = one(label, cfg)
        yield rso
        if not want_sgd:
            continue
        last_of_model = all(c.model != cfg.model for _, c in plan[i + 1 :])
        if study.equal_budget:
            budget = rso.trainer.forward_samples
            epochs, note = _sgd_epochs_for(budget, rso.trainer.n_train, max_sgd_epochs)
            yield one(f"{model_label(cfg.model)} SGD at the budget of b{cfg.batch_size}",
                      cfg.replace(algorithm="sgd", cycles=epochs), budget, note)
        elif last_of_model and cfg.model not in sgd_done:  # one baseline per model, after its RSO runs
            sgd_done.add(cfg.model)
            yield one(f"{model_label(cfg.model)} SGD", cfg.replace(algorithm="sgd"))


def run_study(
    name: str,
    out_dir: str | Path | None,
    base: RunConfig | None = None,
    *,
    plot_size: tuple[int, int] = (1200, 500),
    dpi: int = 100,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
    cluster: ClusterOptions | Any | None = None,
    fresh: bool = False,
    checkpoints: bool = False,
    trajectories: bool = False,
    study_progress: StudyProgress | None = None,
    figures: bool = True,
    **options: Any,
) -> StudyResult:
    """Run study ``name`` on ``base`` (see :func:`study_base`) and write its folder ``out_dir``.

    ``options`` are those of :func:`train_study` (``models``, ``batch_sizes``, ``sgd``, ``max_sgd_epochs``,
    ``dataset``, ``backend``, ``progress``); ``log`` receives one line per finished run; ``plot_size``,
    ``dpi``, ``command`` (recorded in the report) and ``figures=False`` (data files only) are for the folder.

    ``cluster`` (:class:`~rso_engine.distributed.ClusterOptions`, or a ``distributed.Client``) runs the
    runs as Dask tasks (:mod:`.scheduling`): each finished run is written to ``out_dir/runs/`` at once and
    a run already there is skipped unless ``fresh``; ``checkpoints`` saves every run after each cycle so a
    run whose worker dies continues elsewhere; ``trajectories`` keeps each run's per-cycle weights; a run
    that raises is listed in ``result.failures`` and the others go on; ``study_progress`` hears of every
    run. ``dataset`` and ``progress`` are then not used (the workers load the data). Without ``cluster``
    the runs train here, one after another.
    ``out_dir=None`` (with a cluster) writes nothing.
    """
    if base is None:
        base = study_base(name)
    out = Path(out_dir) if out_dir is not None else None
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    failures: list[RunFailure] = []
    if cluster is None:
        if out is None:
            raise StudyError("a study trained in this process needs a folder to write")
        runs_to_train = train_study(name, base, **options)
        out.mkdir(parents=True, exist_ok=True)
        runs: list[RunResult] = []
        for run in runs_to_train:
            runs.append(run)
            if log is not None:
                log(run_summary(run))
    else:
        runs, failures = _on_cluster(name, base, out, cluster, fresh=fresh, checkpoints=checkpoints,
                                     trajectories=trajectories, progress=study_progress, log=log, **options)
    result = StudyResult(get_study(name), out, base, runs, [], failures)
    if out is not None and runs:
        result.files = write_study(result, plot_size=plot_size, dpi=dpi, command=command, started=started,
                                   figures=figures)
    return result


def _on_cluster(name: str, base: RunConfig, out: Path | None, cluster, *, fresh: bool, checkpoints: bool,
                trajectories: bool, progress: StudyProgress | None, log, models=None, batch_sizes=None, sgd=None,
                max_sgd_epochs: int = 200, backend=None, dataset=None, **unused: Any):
    """The study's runs as Dask tasks on ``cluster`` (options or a client): (finished runs, failures)."""
    study = get_study(name)
    want_sgd, plan = _checked_plan(study, base, models, batch_sizes, sgd, max_sgd_epochs)
    store = RunStore(out) if out is not None else None
    backend_name = getattr(backend, "name", backend)
    kwargs = dict(sgd_epochs_for=lambda budget, n: _sgd_epochs_for(budget, n, max_sgd_epochs), store=store,
                  fresh=fresh, checkpoints=checkpoints, trajectories=trajectories, backend=backend_name,
                  progress=progress, log=log)
    if isinstance(cluster, ClusterOptions):
        with open_client(cluster) as client:
            return schedule_study(study, plan, want_sgd, client, **kwargs)
    return schedule_study(study, plan, want_sgd, cluster, **kwargs)


def run_summary(run: RunResult) -> str:
    """One line saying how a finished run did."""
    last = run.history[-1]
    return (
        f"{run.label}: {last.seconds:.1f} s, test loss {last.test_loss:.4f}, test accuracy "
        f"{last.test_accuracy:.4f}, {last.forward_samples:,} forward samples"
    )
