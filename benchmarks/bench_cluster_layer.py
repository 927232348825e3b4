"""Layer-parallel RSO in one process against the same run's layers scored on a local Dask cluster.

For each layer named (default the paper net's ``fc`` and ``conv6`` at batch 5,000, batch mode "weight"), a
layer-parallel trainer sweeps the layer's first ``--weights`` weights in one process, then again with its
chunks scored on a ``LocalCluster`` of ``--workers`` worker processes (one thread each). It prints the
weights/s of both and the speed-up, and where the cluster's time goes: the workers' compute (the same
scoring, measured in one process, divided by the workers) against the rest (sending the model and the
chunk's batches, collecting the results, the scheduler's round trips), with the bytes sent per chunk.

    python benchmarks/bench_cluster_layer.py                        # paper net, b5000, fc + conv6, 2 workers
    python benchmarks/bench_cluster_layer.py --model oneconv --batch-size 256 --layers fc conv1 --weights 2000

Data: Fashion-MNIST (60,000 images, Debian's dataset-fashion-mnist) when installed, else the bundled sample.
On a machine shared with other work the speed-up is that of whatever cores are free: compare within a run.
"""

from __future__ import annotations

import argparse
import logging
import time


def sweep(trainer, warm: int, n: int) -> tuple[float, int]:
    """(seconds, weights) of sweeping ``n`` weights of the trainer's one planned layer after its first ``warm``
    (the layer's start: caches built, the workers' data loaded), merge excluded."""
    from rso_engine.events import ChunkDone

    trainer.history.append(None)  # no evaluation before the sweep
    start, first = None, 0
    for ev in trainer.events():
        if isinstance(ev, ChunkDone):
            if start is None and trainer.steps >= warm:
                start, first = time.perf_counter(), trainer.steps
            elif start is not None and (trainer.steps >= warm + n or trainer.steps >= trainer.weights_per_cycle):
                break
    return time.perf_counter() - start, trainer.steps - first


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="papernet")
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--layers", nargs="+", default=["fc", "conv6"])
    p.add_argument("--weights", type=int, default=48, help="weights swept per layer (default 48)")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)

    import numpy as np
    from distributed import Client, LocalCluster
    from threadpoolctl import threadpool_limits

    from rso_engine.config import RunConfig
    from rso_engine.data import load_dataset
    from rso_engine.distributed.layer_scoring import use_cluster
    from rso_engine.training import RSOTrainer

    try:
        ds, name = load_dataset("fashion-mnist", progress=False), "fashion-mnist"
    except Exception:  # noqa: BLE001 - any reason the full set is missing: say so and use the sample
        ds, name = load_dataset("mnist-sample", progress=False), "mnist-sample"
    print(f"data: {name}; {args.model}, batch {args.batch_size}, layer-parallel, {args.weights} weights per layer, "
          f"{args.workers} workers\n")
    print("| layer | one process w/s | cluster w/s | speed-up | compute share of cluster time | MB sent per chunk |")
    print("|---|---|---|---|---|---|")
    per_chunk = max(1, args.weights // (2 * args.workers))  # two timed chunks after the first
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      env={"RSO_THREADS": "1"}, silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        for layer in args.layers:
            cfg = RunConfig(model=args.model, batch_size=args.batch_size, cycles=1, update="layer-parallel",
                            train_layers=[layer], dataset=name).validated()
            with threadpool_limits(1, user_api="blas"):
                here = RSOTrainer(cfg, ds)
                chunk = max(1, min(per_chunk * args.workers, here.weights_per_cycle // 3))
                here.set_chunking(chunk, 60.0)
                t_here, n_here = sweep(here, chunk, args.weights)
            there = RSOTrainer(cfg, ds)
            use_cluster(there, client)
            there.set_chunking(chunk, 60.0)
            t_there, n_there = sweep(there, chunk, args.weights)
            t_here, t_there = t_here / n_here, t_there / n_there  # seconds per weight
            compute = t_here / args.workers
            sent = sum(np.asarray(v).nbytes for v in there.model.params_numpy().values()) * args.workers
            sent += chunk * args.batch_size * 8  # the chunk's batch indices (int64)
            print(f"| {layer} | {1 / t_here:.2f} | {1 / t_there:.2f} | {t_here / t_there:.2f} | "
                  f"{min(1.0, compute / t_there):.0%} | {sent / 1e6:.2f} |", flush=True)


if __name__ == "__main__":
    main()
