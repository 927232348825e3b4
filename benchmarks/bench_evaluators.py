"""Weights swept per second by each RSO evaluator, per model, batch size, batch mode and backend.

For every (model, batch size, batch mode, backend) it runs, each in a fresh process (so peak memory is
that evaluator's own), the evaluators

- ``reference``: three full forward passes per weight (Algorithm 1 as written);
- ``layer-cached``: the authors' method — the swept layer's input cached, three passes from there;
- the fast incremental path: ``incremental`` (NumPy), ``incremental-numba`` (CPU JIT) and, on a GPU,
  ``incremental-cupy``;

over the same weights, Δs and batches the trainer would draw. Each tensor (a layer's weights, its bias,
a batch norm's γ/β) is swept from its first weight, output layer first, for up to ``--seconds`` per
tensor (at least ``--min-weights`` weights). The table gives, per layer, weights/s and the ratio to the
layer-cached evaluator measured in the same run; the ``cycle s`` column is the time of one full cycle,
measured where every tensor was swept whole and otherwise extrapolated from the rates (marked ``~``).
Cache builds (a layer's input for the whole training set) are inside the measured time.

    python benchmarks/bench_evaluators.py                          # all models, batches 32/256/5000
    python benchmarks/bench_evaluators.py --models oneconv --batches 256 --seconds 5
    python benchmarks/bench_evaluators.py --models papernet --batches 5000 --modes weight layer
    python benchmarks/bench_evaluators.py --roofline --models papernet oneconv --batches 256   # + GFLOP/s per layer

Data: Fashion-MNIST (60,000 training images) from Debian's package (``apt-get install
dataset-fashion-mnist``), else the bundled 4,000-image MNIST sample. BLAS runs single-threaded by
default (``--blas-threads``): on a shared 2-core machine two BLAS threads make the small products of
the reference and layer-cached evaluators several times slower, which would flatter the fast path.
Speeds depend on the machine and its load: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

MODELS = ["oneconv", "twoconv", "papernet", "mlp"]
CPU_EVALUATORS = ["reference", "layer-cached", "incremental", "incremental-numba"]
GPU_EVALUATORS = ["reference", "layer-cached", "incremental", "incremental-cupy"]


# ---------------------------------------------------------------------------------------- worker
def worker(spec: dict) -> dict:
    """Run one evaluator over one (model, batch, mode) in this process; return rates and peak memory."""
    import resource

    import numpy as np

    from rso_engine.backend import get_backend, to_numpy
    from rso_engine.data import load_dataset
    from rso_engine.evaluators import make_evaluator
    from rso_engine.models import build_model
    from rso_engine.training.batches import BatchStream
    from rso_engine.training.rso import DEFAULT_CHUNK_SECONDS, DEFAULT_MAX_CHUNK

    backend = get_backend(spec["backend"])
    ds = load_dataset(spec["dataset"], progress=False)
    if spec["n_train"]:
        ds = ds.subset(spec["n_train"], 100)
    model = build_model(spec["model"], seed=0, backend=backend, dtype=spec["dtype"])
    xp = backend.xp
    x = model.to_input(ds.train_x)
    y = xp.asarray(ds.train_y, dtype=xp.int64)
    del ds
    # warm-up on a copy of the model and 512 images: JIT compilation is a one-off, not part of a cycle
    t0 = time.perf_counter()
    warm = build_model(spec["model"], seed=0, backend=backend, dtype=spec["dtype"])
    wev = make_evaluator(spec["evaluator"], warm, x[:, :512], y[:512])
    for p in warm.params:
        b = np.arange(min(spec["batch"], 512))[None]
        wev.sweep(p, np.arange(2), np.full(2, 0.01), np.repeat(b, 2, axis=0), 1.0)
        wev.sweep(p, np.arange(2, 3), np.full(1, 0.01), b, 1.0)
    del wev, warm
    setup = time.perf_counter() - t0
    ev = make_evaluator(spec["evaluator"], model, x, y)
    N = int(y.shape[0])
    B = spec["batch"]
    stream = BatchStream(N, B, np.random.default_rng([0, 2]))
    drng = np.random.default_rng([0, 1])
    layers = []
    sync = (lambda: xp.cuda.Device().synchronize()) if backend.is_gpu else (lambda: None)
    # the first cycle of the default plan: output layer first, σ = σ_d (the first cycle is not annealed)
    for group in reversed(model.groups):
        shared = stream.take(1) if spec["mode"] != "weight" else None
        ev.begin_group(group, group.params)
        tensors = []
        for p in group.params:
            size = int(np.prod(model.params[p].shape))
            done, spent, chunk, first = 0, 0.0, 1, None
            # the budget counts steady sweeping only: the first weight may build a training-set cache
            while done < size and (spent - (first or 0.0) < spec["seconds"] or done < spec["min_weights"] + 1):
                k = min(chunk, size - done)
                flat = np.arange(done, done + k)
                deltas = drng.standard_normal(k) * model.sigma[p]
                batches = shared if shared is not None else stream.take(k)
                t = time.perf_counter()
                ev.sweep(p, flat, deltas, batches, 1.0)
                sync()
                dt = time.perf_counter() - t
                spent += dt
                done += k
                if first is None:  # the first weight of a tensor pays for the caches it needs
                    first = dt
                chunk = max(1, min(DEFAULT_MAX_CHUNK, int(DEFAULT_CHUNK_SECONDS / max(dt / k, 1e-9))))  # as the trainer
            tensors.append({"param": p, "size": size, "done": done, "seconds": spent, "first": first})
        ev.end_group(group)
        layers.append({"layer": group.name, "tensors": tensors})
    _ = to_numpy(next(iter(model.params.values())))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu_peak = None
    if backend.is_gpu:
        gpu_peak = xp.get_default_memory_pool().total_bytes() / 2**20
    return {**spec, "layers": layers, "peak_mb": peak, "gpu_pool_mb": gpu_peak, "setup_s": setup,
            "engine": getattr(ev, "describe", lambda: ev.name)(), "n": N}  # fmt: skip


# ---------------------------------------------------------------------------------------- driver
def run_worker(spec: dict, blas_threads: int) -> dict | None:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(blas_threads)
    env["RSO_BACKEND"] = spec["backend"]
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        print(f"  {spec['evaluator']}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def layer_rate(layer: dict) -> tuple[float, float, bool]:
    """(steady weights/s over the layer, seconds for the whole layer, whether it was swept whole).

    The rate leaves out each tensor's first weight (which builds the caches the tensor needs); the
    layer's time puts it back: first weight + the rest at the measured rate."""
    est, steady_t, steady_n = 0.0, 0.0, 0
    for t in layer["tensors"]:
        rest_n, rest_t = t["done"] - 1, t["seconds"] - t["first"]
        if rest_n > 0 and rest_t > 0:
            est += t["first"] + rest_t * (t["size"] - 1) / rest_n
            steady_t += rest_t
            steady_n += rest_n
        else:
            est += t["seconds"] * t["size"] / max(t["done"], 1)
    size = sum(t["size"] for t in layer["tensors"])
    whole = all(t["done"] == t["size"] for t in layer["tensors"])
    rate = steady_n / steady_t if steady_t > 0 else size / est
    return rate, est, whole


def fmt_rate(r: float) -> str:
    return f"{r:,.0f}" if r >= 100 else f"{r:.3g}"


def print_table(results: list[dict], spec: dict) -> None:
    ok = [r for r in results if r]
    if not ok:
        return
    base = next((r for r in ok if r["evaluator"] == "layer-cached"), None)
    print(f"\n### {spec['model']}, batch {spec['batch']}, mode {spec['mode']}, {spec['backend']}, "
          f"{spec['dtype']}, {ok[0]['n']:,} training images")  # fmt: skip
    names = [layer["layer"] for layer in ok[0]["layers"]]
    head = "| evaluator | " + " | ".join(f"{n} w/s (×LC)" for n in names) + " | cycle s | peak MB |"
    print(head)
    print("|" + "---|" * (len(names) + 3))
    for r in ok:
        cells = []
        total, whole_all = 0.0, True
        for i, layer in enumerate(r["layers"]):
            rate, est, whole = layer_rate(layer)
            total += est
            whole_all &= whole
            ratio = ""
            if base is not None:
                brate = layer_rate(base["layers"][i])[0]
                ratio = f" ({rate / brate:.1f}×)" if brate > 0 else ""
            cells.append(fmt_rate(rate) + ratio)
        cyc = ("" if whole_all else "~") + f"{total:.3g}"
        mem = f"{r['peak_mb']:.0f}" + (f" (+GPU {r['gpu_pool_mb']:.0f})" if r.get("gpu_pool_mb") else "")
        print(f"| {r['evaluator']} [{r['engine']}] | " + " | ".join(cells) + f" | {cyc} | {mem} |")
    sys.stdout.flush()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--batches", nargs="+", type=int, default=[32, 256, 5000])
    ap.add_argument("--modes", nargs="+", default=["weight"], choices=["weight", "layer", "cycle"])
    ap.add_argument("--backends", nargs="+", default=None, help="numpy and/or cupy (default: what works)")
    ap.add_argument("--evaluators", nargs="+", default=None)
    ap.add_argument("--seconds", type=float, default=3.0, help="time budget per tensor and evaluator")
    ap.add_argument("--min-weights", type=int, default=2)
    ap.add_argument("--dataset", default=None, help="default: fashion-mnist if installed, else mnist-sample")
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--blas-threads", type=int, default=1)
    ap.add_argument("--json", help="also write all results to this file")
    ap.add_argument("--roofline", action="store_true",
                    help="first the compiled layers' GFLOP/s against a large sgemm in the same run (roofline.py)")
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    from rso_engine.backend import cupy_unavailable_reason

    dataset = args.dataset or _default_dataset()
    backends = args.backends or (["numpy", "cupy"] if not cupy_unavailable_reason() else ["numpy"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# RSO evaluator benchmark — {dataset}, BLAS threads {args.blas_threads}, "
          f"{os.cpu_count()} CPUs, load average {load:.2f}, {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    if "cupy" not in backends:
        print(f"# GPU: not measured ({cupy_unavailable_reason() or 'not requested'})")
    if args.roofline and "numpy" in backends:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from roofline import print_roofline

        print_roofline(args.models, args.batches, args.dtype)
    everything = []
    for backend in backends:
        evaluators = args.evaluators or (GPU_EVALUATORS if backend == "cupy" else CPU_EVALUATORS)
        for model in args.models:
            for batch in args.batches:
                for mode in args.modes:
                    spec = dict(model=model, batch=batch, mode=mode, backend=backend, dtype=args.dtype,
                                dataset=dataset, n_train=args.n_train, seconds=args.seconds,
                                min_weights=args.min_weights)  # fmt: skip
                    results = [run_worker({**spec, "evaluator": e}, args.blas_threads) for e in evaluators]
                    print_table(results, spec)
                    everything += [r for r in results if r]
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(everything, fh, indent=1)
    return 0


def _default_dataset() -> str:
    from rso_engine.data import load_dataset

    try:
        load_dataset("fashion-mnist", progress=False, download=False)
        return "fashion-mnist"
    except Exception:
        print("# Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): using mnist-sample")
        return "mnist-sample"


if __name__ == "__main__":
    sys.exit(main())
