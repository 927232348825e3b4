"""What the paper's parallel updates and the authors' batch semantics cost per weight, against the sequential
sweep with a fresh prefix per batch, measured in the same run.

For every model and batch size, each layer of the sweep plan is swept from its first weight by a real
``RSOTrainer`` (``train_layers`` = that layer, evaluator ``auto``) for up to ``--seconds`` (at least
``--min-weights`` weights), once per variant:

- ``sequential`` (Algorithm 1; batch mode "weight": the prefix run on every fresh batch),
- ``layer-parallel`` (every weight scored against the layer's starting state, many at a time),
- ``neuron-parallel`` (each neuron's weights in turn from the layer's starting state),
- ``authors`` (sequential, batch mode "authors": the layer's input computed once for the training set).

The time includes the layer's start (a training-set cache, the authors' prefix pass) but not the first
cycle's evaluation. The table gives weights/s per layer and the ratio to ``sequential``.

    python benchmarks/bench_updates.py                                  # oneconv and papernet, batch 256
    python benchmarks/bench_updates.py --models papernet --batches 256 5000 --seconds 10

Data: Fashion-MNIST (60,000 training images, Debian's ``dataset-fashion-mnist``) when installed, else the
bundled 4,000-image MNIST sample. Compare ratios within one run: speeds depend on the machine's load.
"""

from __future__ import annotations

import argparse
import time

VARIANTS = {
    "sequential": {},
    "layer-parallel": {"update": "layer-parallel"},
    "neuron-parallel": {"update": "neuron-parallel"},
    "authors": {"batch_mode": "authors"},
}


def rate(cfg, dataset, seconds: float, min_weights: int) -> tuple[float, int]:
    """(weights per second, weights swept) of the first weights of ``cfg``'s one planned layer."""
    from rso_engine.backend import get_backend
    from rso_engine.events import ChunkDone
    from rso_engine.training import RSOTrainer

    t = RSOTrainer(cfg, dataset, get_backend("numpy"))
    t.history.append(None)  # skip the evaluation before the first cycle: it is not a sweep's cost
    events = t.events()
    start = time.perf_counter()
    done = 0
    for ev in events:
        if isinstance(ev, ChunkDone):
            done = t.steps
            if done >= t.weights_per_cycle or (done >= min_weights and time.perf_counter() - start >= seconds):
                break
    return done / (time.perf_counter() - start), done


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["oneconv", "papernet"])
    p.add_argument("--batches", nargs="+", type=int, default=[256])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seconds", type=float, default=3.0, help="time per layer and variant (default 3)")
    p.add_argument("--min-weights", type=int, default=20)
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    args = p.parse_args(argv)

    from rso_engine.config import RunConfig
    from rso_engine.data import load_dataset
    from rso_engine.models import build_model

    try:
        ds, name = load_dataset("fashion-mnist", progress=False), "fashion-mnist"
    except Exception:  # noqa: BLE001 - any reason the full set is missing: say so and use the sample
        ds, name = load_dataset("mnist-sample", progress=False), "mnist-sample"
    print(f"data: {name} ({ds.n_train} training images); weights/s per layer, ratio to sequential in this run\n")
    for model in args.models:
        layers = [g.name for g in build_model(model).groups][::-1]
        for batch in args.batches:
            print(f"### {model}, batch {batch}\n")
            print("| layer | " + " | ".join(f"{v} w/s" for v in args.variants) + " | "
                  + " | ".join(f"{v} ×" for v in args.variants if v != "sequential") + " |")
            print("|---" * (1 + 2 * len(args.variants) - ("sequential" in args.variants)) + "|")
            for layer in layers:
                rates = {}
                for v in args.variants:
                    cfg = RunConfig(model=model, batch_size=batch, cycles=1, dtype=args.dtype, train_layers=[layer],
                                    dataset=name, **VARIANTS[v]).validated()
                    rates[v], _ = rate(cfg, ds, args.seconds, args.min_weights)
                base = rates.get("sequential")
                ratios = [f"{rates[v] / base:.2f}" if base else "–" for v in args.variants if v != "sequential"]
                print(f"| {layer} | " + " | ".join(f"{rates[v]:,.0f}" for v in args.variants) + " | "
                      + " | ".join(ratios) + " |", flush=True)
            print()


if __name__ == "__main__":
    main()
