"""``rso sweep``: RSO once per batch size, tabulated, without writing a report folder.

It runs the ``course-batch-sweep`` study (without its SGD baseline) on the run options' config, so it
trains exactly what ``rso report course-batch-sweep --no-sgd`` would on the same options.
"""

from __future__ import annotations

import argparse

from ..experiment import save_history
from ..plots import save_figure
from ..report import batch_sweep_plot, train_study
from ..training import Trainer
from .options import check_figure_names, config_from_args, load_data, plot_options, positive_int
from .presets import maybe_save_preset, save_preset_options
from .progress import ProgressBar, format_table, run_header

STUDY = "course-batch-sweep"
TABLE_HEADERS = ("model", "batch", "time (s)", "test loss", "test accuracy")


def add_parser(sub, run: argparse.ArgumentParser) -> None:
    """Register ``rso sweep`` (``run``: the shared run options)."""
    w = sub.add_parser("sweep", parents=[run], help="the course project's batch-size study",
                       description="Train RSO once per batch size and tabulate time, test loss and accuracy.")
    w.set_defaults(handler=cmd_sweep)
    w.add_argument("--batch-sizes", type=positive_int, nargs="+", metavar="B", default=[32, 64, 256, 512],
                   help="batch sizes to try (default 32 64 256 512)")
    w.add_argument("--history", metavar="FILE", help="write all histories to FILE (.csv or .json)")
    plot_options(w, "plot accuracy and time against the batch size to FILE (.png, .svg or .pdf)", x_axis=False)
    save_preset_options(w)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Train the sweep's runs, printing each one's row as it finishes, then the table and the files."""
    check_figure_names(args)
    base = config_from_args(args).replace(algorithm="rso")
    maybe_save_preset(args, base)
    data = load_data(base)

    headed = False

    def progress(trainer: Trainer, label: str) -> ProgressBar:
        nonlocal headed
        if not headed:  # the first run: what all of them share
            print(run_header(trainer, batch_sizes=args.batch_sizes), flush=True)
            headed = True
        return ProgressBar(trainer, f"batch {trainer.config.batch_size}")

    runs, rows = [], []
    for run in train_study(STUDY, base, models=[base.model], batch_sizes=args.batch_sizes, sgd=False,
                           dataset=data, progress=progress):
        last = run.history[-1]
        runs.append(run)
        rows.append((run.config.model, run.batch_size, f"{run.wall_seconds:.1f}", last.test_loss, last.test_accuracy))
        print(format_table(TABLE_HEADERS, rows[-1:]).split("\n")[-1], flush=True)
    print()
    print(format_table(TABLE_HEADERS, rows))
    if args.history:
        histories = [ev for run in runs for ev in run.history]
        print(f"histories written to {save_history(args.history, histories, base)}")
    for path in args.plot or ():
        fig = batch_sweep_plot(runs, STUDY, title=f"RSO batch-size sweep: {base.model}, {data.name}",
                               size=args.plot_size, dpi=args.dpi)
        print(f"figure written to {save_figure(fig, path, size=args.plot_size, dpi=args.dpi)}")
    return 0
