"""``rso report STUDY --out DIR``: run a named study and write its folder (see :mod:`rso_engine.report`)."""

from __future__ import annotations

import argparse
import shlex
import sys
import textwrap

from ..backend import get_backend
from ..models import MODELS
from ..report import STUDIES, run_study, study_base
from .cluster import StudyBar, cluster_from_args, cluster_options, failures_message, interrupted_message
from .options import check_output_folder, config_from_args, figure_size_options, load_data, positive_int
from .progress import format_table


def add_parser(sub, run: argparse.ArgumentParser) -> None:
    """Register ``rso report`` (``run``: the shared run options)."""
    studies = "\n".join(textwrap.fill(s.description, 100, initial_indent=f"  {s.name:20s} ", subsequent_indent=" " * 23)
                        for s in STUDIES.values())
    r = sub.add_parser(
        "report", parents=[run], help="run a named study and write a folder with plots, CSV and a Markdown table",
        description="Run one of the course project's studies and write DIR/report.md (a table laid out like the "
                    "course project's, its numbers side by side), results.csv, histories.json, config.json and "
                    "PNG/SVG figures. Run options override the study's defaults (full MNIST, 10 cycles), e.g. "
                    "--dataset mnist-sample --cycles 2 for a quick run.",
        epilog="studies:\n" + studies, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.set_defaults(handler=cmd_report)
    r.add_argument("study", choices=list(STUDIES), metavar="STUDY", help=", ".join(STUDIES))
    r.add_argument("--out", metavar="DIR", required=True, help="folder to write (created; files in it replaced)")
    r.add_argument("--batch-sizes", type=positive_int, nargs="+", metavar="B", help="RSO batch sizes to run")
    r.add_argument("--models", nargs="+", choices=list(MODELS), metavar="MODEL", help="models to run")
    r.add_argument("--no-sgd", dest="sgd", action="store_false", default=None, help="leave out the SGD runs")
    r.add_argument("--max-sgd-epochs", type=positive_int, default=200, metavar="N",
                   help="equal-budget: the most SGD epochs one budget may take (default 200)")
    figure_size_options(r)
    cluster_options(r)


def cmd_report(args: argparse.Namespace) -> int:
    """Run the study with a progress bar per run, print its table and where the folder is."""
    check_output_folder("out", args.out)
    cfg = config_from_args(args, base=study_base(args.study))
    data = load_data(cfg)  # here first: a download fills the cache before the workers look
    cluster = cluster_from_args(args)
    print(f"backend: {get_backend().describe()}")
    print(f"study {args.study}: data {data.name} ({cfg.n_train or data.n_train} training images), "
          f"{cfg.cycles} cycles, writing to {args.out}\nworkers: {cluster.describe()}", flush=True)
    command = "rso " + " ".join(shlex.quote(a) for a in (args.argv or []))
    # a single --model/--batch-size stands for --models/--batch-sizes with one entry
    models = args.models or ([args.model] if args.model else None)
    batch_sizes = args.batch_sizes or ([args.batch_size] if args.batch_size else None)
    bar = StudyBar(args.study)
    try:
        result = run_study(args.study, args.out, cfg, models=models, batch_sizes=batch_sizes, sgd=args.sgd,
                           max_sgd_epochs=args.max_sgd_epochs, cluster=cluster, fresh=args.fresh,
                           checkpoints=args.checkpoints, trajectories=args.trajectories, study_progress=bar,
                           backend=getattr(args, "backend", None),
                           plot_size=args.plot_size, dpi=args.dpi, command=command, log=bar.write)
    except KeyboardInterrupt:
        print(interrupted_message(args.out), file=sys.stderr)
        raise
    rows = [(r.label, r.batch_size, f"{r.history[-1].seconds:.1f}", r.history[-1].test_loss,
             r.history[-1].test_accuracy) for r in result.runs]
    rows += [(f.label, "", "failed", "–", "–") for f in result.failures]
    print()
    print(format_table(("run", "batch", "time (s)", "test loss", "test accuracy"), rows))
    for f in result.failures:
        print(f"failed: {f.label}: {f.error}")
    if result.runs:
        print(f"\nreport written to {result.report} ({len(result.files)} files in {result.out_dir})")
    if result.failures:
        print(failures_message(result.failures), file=sys.stderr)
        return 1
    return 0
