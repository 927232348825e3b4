"""What bounds the output layer's sweep: the cost of keeping the training set's cached logits exact.

For OneConv's dense layer on 60,000 images it measures, in one process and on the same weights and
batches (batch mode "weight", BLAS single-threaded):

- the layer-cached evaluator (the authors' method, the comparison baseline);
- incremental-numba as the trainer runs it (Δ ~ N(0, σ): almost every change is accepted at first);
- incremental-numba with Δ = 0 (nothing accepted): the scoring alone, without cache updates;
- one streaming read of the layer's input (60,000 × 784 float32) divided by the weights of a row: an
  accepted change of w[i, j] moves logit i of every cached sample by Δ·h[s, j], so when most changes are
  accepted the whole input is read once per output row, whatever the order of the updates.

    python benchmarks/dense_floor.py [--batch 256] [--weights 3000]
"""

from __future__ import annotations

import argparse
import os
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--weights", type=int, default=3000, help="weights swept per measurement")
    ap.add_argument("--dataset", default="fashion-mnist")
    args = ap.parse_args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    import numpy as np

    from rso_engine.backend import get_backend
    from rso_engine.data import load_dataset
    from rso_engine.evaluators import make_evaluator
    from rso_engine.models import build_model
    from rso_engine.training.batches import BatchStream

    ds = load_dataset(args.dataset, progress=False)
    rows = {}

    def sweep_rate(evaluator: str, scale: float, n: int) -> tuple[float, float]:
        model = build_model("oneconv", seed=0, backend=get_backend("numpy"), dtype="float32")
        x = model.to_input(ds.train_x)
        y = np.asarray(ds.train_y, np.int64)
        ev = make_evaluator(evaluator, model, x, y)
        group = model.groups[-1]
        p = group.params[0]
        stream = BatchStream(len(y), args.batch, np.random.default_rng([0, 2]))
        drng = np.random.default_rng([0, 1])
        ev.begin_group(group, group.params)
        ev.sweep(p, np.arange(1), np.zeros(1), stream.take(1), 1.0)  # builds the caches (and compiles)
        done, spent, accepted = 1, 0.0, 0
        while done < n + 1:
            k = min(500, n + 1 - done)
            deltas = drng.standard_normal(k) * model.sigma[p] * scale
            batches = stream.take(k)
            t = time.perf_counter()
            res = ev.sweep(p, np.arange(done, done + k), deltas, batches, 1.0)
            spent += time.perf_counter() - t
            accepted += int(np.count_nonzero(res.choices))
            done += k
        return spent / n, accepted / n

    n_lc = max(100, args.weights // 10)
    rows["layer-cached"] = sweep_rate("layer-cached", 1.0, n_lc)
    rows["incremental-numba"] = sweep_rate("incremental-numba", 1.0, args.weights)
    rows["incremental-numba, Δ = 0 (scoring only)"] = sweep_rate("incremental-numba", 0.0, args.weights)

    h = np.random.default_rng(0).random((784, len(ds.train_y)), dtype=np.float32)
    h.sum()  # touch the pages once
    t = time.perf_counter()
    reps = 3
    for _ in range(reps):
        h.sum()
    read = (time.perf_counter() - t) / reps
    floor = read / 784

    base = rows["layer-cached"][0]
    print(f"# OneConv dense layer, batch {args.batch}, {len(ds.train_y):,} images ({args.dataset}), "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print("| what | µs per weight | weights/s | × layer-cached | accepted |")
    print("|---|---|---|---|---|")
    for name, (sec, acc) in rows.items():
        print(f"| {name} | {sec * 1e6:.1f} | {1 / sec:,.0f} | {base / sec:.1f}× | {acc:.0%} |")
    print(f"| one read of the layer input per row ({h.nbytes / read / 1e9:.1f} GB/s) | {floor * 1e6:.1f} | "
          f"{1 / floor:,.0f} | {base / floor:.1f}× | |")  # fmt: skip
    scoring = rows["incremental-numba, Δ = 0 (scoring only)"][0]
    print(f"\nscoring + one input read per row: {(scoring + floor) * 1e6:.1f} µs per weight "
          f"= {base / (scoring + floor):.1f}× layer-cached at best with the cache kept exact")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
