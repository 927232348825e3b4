"""``rso sweep``: RSO once per batch size, each run a Dask task, tabulated (and with ``--out``, kept).

It runs the ``course-batch-sweep`` study (without its SGD baseline) on the run options' config, so it
trains exactly what ``rso report course-batch-sweep --no-sgd`` would on the same options. With
``--out DIR`` each finished run is written to ``DIR/runs/`` as it completes, and ``DIR`` gets
``results.csv``, ``histories.json``, ``config.json`` and ``report.md``; the same command again skips
the runs already finished there.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from ..experiment import make_trainer, save_history
from ..plots import save_figure
from ..report import batch_sweep_plot, run_study
from .cluster import StudyBar, cluster_from_args, cluster_options, failures_message, interrupted_message
from .options import (
    CLIError,
    check_figure_names,
    check_output_folder,
    config_from_args,
    load_data,
    plot_options,
    positive_int,
)
from .presets import maybe_save_preset, save_preset_options
from .progress import format_table, run_header

STUDY = "course-batch-sweep"
TABLE_HEADERS = ("model", "batch", "time (s)", "test loss", "test accuracy")


def add_parser(sub, run: argparse.ArgumentParser) -> None:
    """Register ``rso sweep`` (``run``: the shared run options)."""
    w = sub.add_parser("sweep", parents=[run], help="the course project's batch-size study",
                       description="Train RSO once per batch size (each run a Dask task: a local cluster by "
                                   "default, --scheduler for an existing one) and tabulate time, test loss and "
                                   "accuracy.")
    w.set_defaults(handler=cmd_sweep)
    w.add_argument("--batch-sizes", type=positive_int, nargs="+", metavar="B", default=[32, 64, 256, 512],
                   help="batch sizes to try (default 32 64 256 512)")
    w.add_argument("--out", metavar="DIR",
                   help="write each finished run to DIR/runs/ as it completes, and results.csv, histories.json, "
                        "config.json and report.md to DIR; runs already finished there are skipped")
    w.add_argument("--history", metavar="FILE", help="write all histories to FILE (.csv or .json)")
    plot_options(w, "plot accuracy and time against the batch size to FILE (.png, .svg or .pdf)", x_axis=False)
    cluster_options(w)
    save_preset_options(w)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Train the sweep's runs on the cluster, printing each as it finishes, then the table and the files."""
    check_figure_names(args)
    if args.out:
        check_output_folder("out", args.out)
    elif args.checkpoints or args.trajectories or args.fresh:
        raise CLIError("--checkpoints, --trajectories and --fresh are about the runs kept in an output folder: "
                       "give --out DIR")
    base = config_from_args(args).replace(algorithm="rso")
    maybe_save_preset(args, base)
    data = load_data(base)  # here first: a download fills the cache before the workers look
    header = make_trainer(base.replace(batch_size=min(args.batch_sizes)), data)
    cluster = cluster_from_args(args)
    print(run_header(header, batch_sizes=args.batch_sizes) + f"\nworkers: {cluster.describe()}", flush=True)
    del header
    bar = StudyBar("sweep")
    command = "rso " + " ".join(shlex.quote(a) for a in (args.argv or []))
    try:
        result = run_study(STUDY, args.out, base, models=[base.model], batch_sizes=args.batch_sizes, sgd=False,
                           cluster=cluster, fresh=args.fresh, checkpoints=args.checkpoints,
                           trajectories=args.trajectories, study_progress=bar,
                           log=bar.write, figures=False, command=command, plot_size=args.plot_size, dpi=args.dpi,
                           backend=getattr(args, "backend", None))
    except KeyboardInterrupt:
        print(interrupted_message(args.out), file=sys.stderr)
        raise
    rows = [(r.config.model, r.batch_size, f"{r.wall_seconds:.1f}", r.history[-1].test_loss,
             r.history[-1].test_accuracy) for r in result.runs]
    rows += [(f.config.model, f.config.batch_size, "failed", "–", "–") for f in result.failures]
    order = {b: i for i, b in enumerate(args.batch_sizes)}
    rows.sort(key=lambda row: order.get(row[1], len(order)))
    print()
    print(format_table(TABLE_HEADERS, rows))
    for f in result.failures:
        print(f"failed: {f.label}: {f.error}")
    if args.out and result.runs:
        print(f"results written to {result.out_dir / 'results.csv'} (runs kept in {result.out_dir / 'runs'})")
    if args.history and result.runs:
        histories = [ev for run in result.runs for ev in run.history]
        print(f"histories written to {save_history(args.history, histories, base)}")
    for path in args.plot or ():
        if not result.runs:
            break
        fig = batch_sweep_plot(result.runs, STUDY, title=f"RSO batch-size sweep: {base.model}, {data.name}",
                               size=args.plot_size, dpi=args.dpi)
        print(f"figure written to {save_figure(fig, path, size=args.plot_size, dpi=args.dpi)}")
    if result.failures:
        print(failures_message(result.failures), file=sys.stderr)
        return 1
    return 0
