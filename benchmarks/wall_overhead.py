"""Where a run's wall time goes outside RSO's sweeps: the course table from the command line, and its parts.

    python benchmarks/wall_overhead.py                          # the course table: CLI wall and a breakdown
    python benchmarks/wall_overhead.py --compare /tmp/old-tree  # the CLI of another checkout, interleaved
    python benchmarks/wall_overhead.py --cycles 3 --repeats 3

1. The command line: ``rso train --model oneconv --batch-size 256 --cycles 10 --dataset fashion-mnist``
   run ``--repeats`` times (interleaved with the same command of the ``--compare`` checkout, when given:
   on a shared machine only same-run ratios mean anything); wall time, the trainer's training time (from
   the final table), and what is left.
2. In this process, the same run with clocks around each part: imports, loading the data, building the
   trainer, the evaluations (BN calibration and the loss/accuracy passes apart), and inside the training
   time the training-set cache rebuilds (the boundary cache, the output layer's store, the compiled sweep's
   column blocks and records).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli_run(tree: Path, args) -> tuple[float, float]:
    """(wall s, training s) of one CLI run from the checkout ``tree``."""
    cmd = [sys.executable, "-c", "import sys; from rso_engine.cli import main; sys.exit(main())", "train",
           "--model", args.model, "--batch-size", str(args.batch_size), "--cycles", str(args.cycles),
           "--dataset", args.dataset]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(tree))
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t0
    last = [line for line in out.splitlines() if re.match(rf"\s*rso\s+{args.cycles}\s", line)][-1]
    return wall, float(last.split()[-1])


def breakdown(args) -> dict[str, float]:
    """Seconds per part of one run in this process (see the module docstring)."""
    t0 = time.perf_counter()
    from rso_engine.config import RunConfig  # noqa: PLC0415
    from rso_engine.data import load_dataset  # noqa: PLC0415
    from rso_engine.evaluators import caching, incremental, numba  # noqa: PLC0415
    from rso_engine.models import Model  # noqa: PLC0415
    from rso_engine.training import RSOTrainer  # noqa: PLC0415
    from rso_engine.training import base as tbase  # noqa: PLC0415

    T = {"imports": time.perf_counter() - t0}

    def timed(owner, name, key):
        orig = getattr(owner, name)

        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return orig(*a, **kw)
            finally:
                T[key] = T.get(key, 0.0) + time.perf_counter() - t

        setattr(owner, name, wrapper)

    timed(Model, "calibrate_bn", "  BN calibration")
    timed(tbase.Trainer, "_mean_loss_accuracy", "  loss/accuracy passes")
    timed(tbase.Trainer, "evaluate", "evaluations")
    timed(caching.CachingEvaluator, "train_boundary", "  boundary cache")
    timed(incremental.IncrementalEvaluator, "_training_output_store", "  output-layer store (incl. boundary)")
    timed(numba, "column_blocks", "  column blocks")
    timed(numba, "dense_records", "  sweep records")
    t = time.perf_counter()
    ds = load_dataset(args.dataset, progress=False)
    T["loading the data"] = time.perf_counter() - t
    cfg = RunConfig(model=args.model, dataset=args.dataset, batch_size=args.batch_size, cycles=args.cycles)
    t = time.perf_counter()
    trainer = RSOTrainer(cfg, ds)
    T["building the trainer"] = time.perf_counter() - t
    t = time.perf_counter()
    for _ in trainer.events():
        pass
    T["events loop"] = time.perf_counter() - t
    T["training time (trainer's clock)"] = trainer.seconds
    T["total"] = time.perf_counter() - t0
    return T


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="oneconv")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--compare", type=Path, help="another checkout whose CLI runs interleaved with this one")
    ap.add_argument("--no-cli", action="store_true", help="only the in-process breakdown")
    args = ap.parse_args(argv)
    print(f"# {args.model}, batch {args.batch_size}, {args.cycles} cycles, {args.dataset}; "
          f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")  # fmt: skip
    if not args.no_cli:
        trees = [("this checkout", ROOT)] + ([("--compare", args.compare.resolve())] if args.compare else [])
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in trees}
        for _, tree in trees:  # warm-up: Numba's caches of each checkout filled, files in the page cache
            cli_run(tree, argparse.Namespace(**{**vars(args), "cycles": 1}))
        for _ in range(args.repeats):
            for name, tree in trees:
                runs[name].append(cli_run(tree, args))
        print("\n| CLI | wall s (best) | training s (best) | wall − training s | (wall − training) / training |")
        print("|---|---|---|---|---|")
        for name, got in runs.items():
            wall, train = min(w for w, _ in got), min(t for _, t in got)
            print(f"| {name} | {wall:.2f} | {train:.2f} | {wall - train:.2f} | {(wall - train) / train:.2f} |")
        print(f"\nall runs (wall, training): {runs}")
    T = breakdown(args)
    train = T["training time (trainer's clock)"]
    print("\n| part (this process) | s | share of training time |")
    print("|---|---|---|")
    for k, v in T.items():
        print(f"| {k} | {v:.2f} | {v / train:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
