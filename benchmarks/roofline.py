"""How close each layer's compiled forward kernel is to the machine: GFLOP/s per layer and its share of a
large sgemm's rate measured in the same run, on the same number of threads.

    python benchmarks/roofline.py                                   # every model, batch 256, float32
    python benchmarks/roofline.py --models papernet --batches 256 5000
    python benchmarks/bench_evaluators.py --roofline ...            # the same table before the evaluator tables

For each convolution and dense layer of a model, the layer's input for a batch (random images pushed
through the layers before it) is split over the engine's threads by image, as the cache builds and the
evaluations split it (:func:`rso_engine.parallel.for_each`), and run with the compiled kernel set
(``NUMBA_KERNELS``; where it fuses the layer with the ReLU and pooling after it, the row says so and the
time includes them) and with the layers' own NumPy code (``LAYER_KERNELS``). FLOPs count the multiply-adds
of the conv/dense alone (2 per multiply-add). The peak is a 2048³ float32 matrix product with BLAS on as
many threads. Best of ``--repeats``; on a shared machine compare the columns of one run only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

MODELS = ["oneconv", "twoconv", "papernet", "mlp"]


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def sgemm_peak(threads: int, repeats: int = 3, n: int = 2048) -> float:
    """GFLOP/s of an n³ float32 matrix product with BLAS on ``threads`` threads."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    with threadpool_limits(threads, user_api="blas"):
        a @ a  # warm-up
        return 2 * n**3 / _best(lambda: a @ a, repeats) / 1e9


def layer_rows(model_name: str, batch: int, dtype: str, threads: int, repeats: int) -> list[dict]:
    """One row per conv/dense layer: seconds and GFLOP/s with the compiled and the NumPy kernels."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from rso_engine.kernels.forward import LAYER_KERNELS
    from rso_engine.kernels.numba_layers import NUMBA_KERNELS
    from rso_engine.layers import Conv2d, Dense
    from rso_engine.models import build_model
    from rso_engine.parallel import for_each

    model = build_model(model_name, dtype=dtype)
    layers, P = model.layers, model.params
    x = model.to_input(np.random.default_rng(1).random((batch, 1, 28, 28)))
    step = -(-batch // threads)
    rows = []
    with threadpool_limits(1, user_api="blas"):  # the engine's setting: its own threads use the cores
        for i, layer in enumerate(layers):
            if not isinstance(layer, (Conv2d, Dense)):
                continue
            xin = model.forward(x, stop=i)
            n_axis = 1 if xin.ndim == 4 else 0
            parts = [np.ascontiguousarray(xin[:, s : s + step] if n_axis else xin[s : s + step])
                     for s in range(0, batch, step)]  # fmt: skip
            if isinstance(layer, Conv2d):
                grow = 2 * layer.pad - layer.k + 1
                flops = 2 * batch * layer.cout * layer.cin * layer.k**2 * (xin.shape[2] + grow) * (xin.shape[3] + grow)
            else:
                flops = 2 * batch * layer.fout * layer.fin
            row = {"model": model_name, "batch": batch, "layer": layer.describe(), "gflop": flops / 1e9}
            for name, kernels in (("compiled", NUMBA_KERNELS), ("numpy", LAYER_KERNELS)):
                ran = [1]

                def run(kernels=kernels, ran=ran, i=i, parts=parts):
                    def one(part):
                        ran[0] = kernels.run(layers, i, len(layers), P, part, True)[1]

                    for_each(one, parts, threads=threads)

                run()  # warm-up (compilation)
                secs = _best(run, repeats)
                row[name] = {"s": secs, "gflops": flops / secs / 1e9, "ran": ran[0]}
            rows.append(row)
    return rows


def print_roofline(models, batches, dtype="float32", threads=None, repeats=3) -> None:
    from rso_engine.backend import cpu_threads

    threads = threads or cpu_threads()
    peak = sgemm_peak(threads, repeats)
    print(f"\n## Roofline: the compiled layers against a 2048³ sgemm ({peak:.1f} GFLOP/s on {threads} threads, "
          f"{dtype}, load average {os.getloadavg()[0]:.2f})\n")  # fmt: skip
    cols = ["model", "batch", "layer", "GFLOP", "compiled ms", "compiled GFLOP/s", "share of sgemm", "NumPy ms",
            "NumPy GFLOP/s"]  # fmt: skip
    print("| " + " | ".join(cols) + " |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in models:
        for batch in batches:
            for r in layer_rows(model, batch, dtype, threads, repeats):
                c, n = r["compiled"], r["numpy"]
                fused = f" (+{c['ran'] - 1} fused)" if c["ran"] > 1 else ""
                cells = [model, batch, r["layer"] + fused, f"{r['gflop']:.3f}", f"{c['s'] * 1e3:.1f}",
                         f"{c['gflops']:.1f}", f"{c['gflops'] / peak:.0%}", f"{n['s'] * 1e3:.1f}", f"{n['gflops']:.1f}"]
                print("| " + " | ".join(map(str, cells)) + " |")
            sys.stdout.flush()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--batches", nargs="+", type=int, default=[256])
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=None, help="default: the engine's (RSO_THREADS or every core)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    print_roofline(args.models, args.batches, args.dtype, args.threads, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
