"""The course project's table entries, timed with this engine.

    python benchmarks/course_table.py                  # OneConv, batch 256, 10 rounds, full data
    python benchmarks/course_table.py --evaluator layer-cached --cycles 1
    python benchmarks/course_table.py --model twoconv --batch-size 32
    python benchmarks/course_table.py --paper          # one cycle of the paper's net at batch 5000
    python benchmarks/course_table.py --paper --batch-mode layer

Runs :class:`~rso_engine.training.RSOTrainer` exactly as the app does (evaluator "auto" unless given) on
Fashion-MNIST's 60,000 training images (Debian's ``dataset-fashion-mnist``; MNIST itself cannot be
downloaded here — its images are of the same size and number, so the timings carry over), and prints a
row like the course project's table plus: the training compute time (the trainer's clock: sweeps
only), the wall time (with the evaluation after every cycle), the evaluator that ran and the peak
resident memory. The course project's figure (Julia/Flux, three full forward passes per weight) is
printed alongside.

One cycle of the paper's net at batch 5,000 on a CPU takes hours in batch mode "weight" (every weight
draws a fresh batch of 5,000 images whose batch-norm statistics change everything after the first
layer); ``benchmarks/bench_evaluators.py --models papernet --batches 5000`` estimates it from sampled
weights instead.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

COURSE = {  # (model, batch): seconds for 10 rounds (the paper net: one round)
    ("oneconv", 32): 212, ("oneconv", 64): 345, ("oneconv", 256): 1641, ("oneconv", 512): 2834,
    ("oneconv", 1024): 5046, ("twoconv", 32): 1457, ("twoconv", 512): 19186, ("twoconv", 1000): 36464,
    ("papernet", 256): 5240,
}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="oneconv")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--batch-mode", default="weight", choices=["weight", "layer", "cycle"])
    ap.add_argument("--evaluator", default="auto")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--paper", action="store_true", help="one cycle of the paper's net at batch 5000")
    ap.add_argument("--blas-threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.paper:
        args.model, args.batch_size, args.cycles = "papernet", 5000, 1
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.blas_threads))

    from rso_engine.backend import get_backend
    from rso_engine.config import RunConfig
    from rso_engine.data import load_dataset
    from rso_engine.events import Evaluated, LayerDone
    from rso_engine.training import RSOTrainer

    try:
        ds = load_dataset(args.dataset, progress=False, download=False)
    except Exception as exc:
        print(f"{args.dataset} is not available ({exc}).\nInstall it with: apt-get install dataset-fashion-mnist")
        return 1
    backend = get_backend()
    cfg = RunConfig(model=args.model, dataset=args.dataset, batch_size=args.batch_size, cycles=args.cycles,
                    batch_mode=args.batch_mode, evaluator=args.evaluator, dtype=args.dtype,
                    n_train=args.n_train)  # fmt: skip
    t0 = time.perf_counter()
    trainer = RSOTrainer(cfg, ds, backend)
    print(f"# {args.model}, batch {args.batch_size}, mode {args.batch_mode}, {args.cycles} cycle(s), "
          f"{trainer.n_train:,} training images ({ds.name}), {backend.describe()}, "
          f"evaluator {getattr(trainer.evaluator, 'describe', lambda: trainer.evaluator.name)()}, "
          f"BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    last = None
    for ev in trainer.events():
        if isinstance(ev, LayerDone):
            print(f"  cycle {ev.cycle} {ev.layer:6s} {ev.n_weights:6d} weights, {ev.n_changed:6d} changed, "
                  f"{ev.seconds:8.2f} s")  # fmt: skip
        elif isinstance(ev, Evaluated):
            last = ev
            print(f"cycle {ev.cycle:2d}: test loss {ev.test_loss:.3f}, test accuracy {ev.test_accuracy:.4f}, "
                  f"training time {ev.seconds:.2f} s, wall {time.perf_counter() - t0:.1f} s")  # fmt: skip
        sys.stdout.flush()
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    course = COURSE.get((args.model, args.batch_size))
    cols = ["model", "batch", "rounds", "time (s)", "wall (s)", "test loss", "test accuracy", "peak RSS (MB)",
            "course project (s)"]  # fmt: skip
    print("\n| " + " | ".join(cols) + " |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.model} | {args.batch_size} | {args.cycles} | {last.seconds:.2f} | {wall:.1f} | "
          f"{last.test_loss:.3f} | {last.test_accuracy:.4f} | {peak:.0f} | {course if course else '–'} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
