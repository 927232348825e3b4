"""``rso landscape FILE … --out DIR``: the loss surface around saved runs and the path between RSO and SGD.

See :mod:`rso_engine.landscape_study` (what is computed) and :mod:`rso_engine.landscape_output` (what is
written). The grid's points are Dask tasks, on a local cluster by default or ``--scheduler ADDRESS``.
"""

from __future__ import annotations

import argparse
import shlex
import sys

import numpy as np
from tqdm import tqdm

from ..distributed import open_client
from ..landscape_output import write_landscape
from ..landscape_study import PLANES, interpolation_ts, load_runs, surface
from .cluster import cluster_from_args, cluster_options
from .options import check_output_folder, figure_size_options, nonneg_float, positive_int


def add_parser(sub) -> None:
    """Register ``rso landscape``."""
    p = sub.add_parser(
        "landscape", help="the loss surface around saved runs, and the path from the RSO to the SGD solution",
        description="Evaluate the loss on a plane through the first run's final weights: along two filter-"
                    "normalised random directions (--plane random, Li et al. 2018) or the two principal directions "
                    "of the runs' per-cycle weights (--plane pca; train with --trajectories), with each run's path "
                    "projected onto it; and, for an RSO and an SGD run, the loss along the straight line between "
                    "them. Batch-norm statistics are recomputed at every point. Writes PNG/SVG figures, CSV and "
                    "NPZ to DIR.")
    p.set_defaults(handler=cmd_landscape)
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="sessions (.rso.npz, from `rso compare --session`) or checkpoints (.npz, from `rso train "
                        "--checkpoint` or a study's DIR/runs/); the first run is the centre")
    p.add_argument("--out", metavar="DIR", required=True, help="folder to write (created; files in it replaced)")
    p.add_argument("--plane", choices=PLANES, default="random",
                   help="random: two filter-normalised random directions (default); pca: the runs' principal "
                        "directions (needs their trajectories)")
    p.add_argument("--points", type=positive_int, default=15, metavar="N", help="grid points per side (default 15)")
    p.add_argument("--span", type=nonneg_float, metavar="S",
                   help="the grid covers [-S, S] on both axes (default: 1 for random directions; for PCA the "
                        "projected paths with a margin)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random directions (default 0)")
    p.add_argument("--interp-points", type=positive_int, default=31, metavar="N",
                   help="points on the RSO–SGD line, t from -0.25 to 1.25 (default 31)")
    p.add_argument("--no-interpolation", dest="interpolate", action="store_false",
                   help="leave out the RSO–SGD interpolation")
    p.add_argument("--chunk", type=positive_int, default=8, metavar="K", help="points per Dask task (default 8)")
    figure_size_options(p)
    p.set_defaults(plot_size=(900, 750))
    cluster_options(p, runs=False)


def cmd_landscape(args: argparse.Namespace) -> int:
    """Read the runs, compute the surface (and the interpolation) on the cluster, write the folder."""
    check_output_folder("out", args.out)
    runs = load_runs(args.files)
    cluster = cluster_from_args(args)
    for run in runs:
        points = len(run.trajectory) if run.trajectory is not None else 0
        print(f"{run.label}: {run.config.model} on {run.config.dataset}, {run.path}"
              + (f", trajectory of {points} points" if points else ", no trajectory (its end point only)"))
    n_points = args.points**2 + (len(interpolation_ts(args.interp_points)) if args.interpolate else 0)
    print(f"{args.plane} plane around {runs[0].label}, {args.points}×{args.points} points; workers: "
          f"{cluster.describe()}", flush=True)
    bar = tqdm(total=n_points, desc="points", unit="pt", file=sys.stderr, disable=None, leave=False)
    try:
        with open_client(cluster) as client:
            study = surface(runs, args.plane, n=args.points, span=args.span, seed=args.seed, client=client,
                            chunk_size=args.chunk, interpolate=args.interpolate, n_interp=args.interp_points,
                            on_done=bar.update)
    finally:
        bar.close()
    command = "rso " + " ".join(shlex.quote(a) for a in (getattr(args, "argv", None) or []))
    files = write_landscape(study, args.out, size=args.plot_size, dpi=args.dpi, command=command)
    plane = study.plane
    if plane.explained:
        print(f"principal directions: {plane.explained[0]:.1%} and {plane.explained[1]:.1%} of the paths' variance")
    elif plane.explained_total is not None:
        print(f"the random plane holds {plane.explained_total:.1%} of the paths' squared distance from the centre")
    g = study.grid
    print(f"train loss over the grid: {float(np.nanmin(g.train_loss)):.4f} … {float(np.nanmax(g.train_loss)):.4f}")
    if study.interpolation is not None:
        i = study.interpolation
        print(f"{study.interpolation_runs[0]} → {study.interpolation_runs[1]}: test accuracy at t=0 "
              f"{i.test_accuracy[i.a == 0][0]:.4f}, at t=1 {i.test_accuracy[i.a == 1][0]:.4f}, "
              f"lowest along the line {float(min(i.test_accuracy)):.4f}")
    print(f"written to {args.out}: {', '.join(sorted(p.name for p in files))}")
    return 0
