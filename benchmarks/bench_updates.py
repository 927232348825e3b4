"""What the paper's parallel updates and the authors' batch semantics cost per weight, against the sequential
sweep with a fresh prefix per batch, measured in the same run.

For every model and batch size, each layer of the sweep plan is swept from its first weight by a real
``RSOTrainer`` (``train_layers`` = that layer, evaluator ``auto``) for up to ``--seconds`` (at least
``--min-weights`` weights), once per variant:

- ``sequential`` (Algorithm 1; batch mode "weight": the prefix run on every fresh batch),
- ``layer-parallel`` (every weight scored against the layer's starting state, many at a time),
- ``neuron-parallel`` (each neuron's weights in turn from the layer's starting state),
- ``authors`` (sequential, batch mode "authors": the layer's input computed once for the training set).

The layer's start (its first weight, which builds any training-set cache, e.g. the authors' prefix pass
over the whole training set) is timed on its own ("start s"); the rates are those of the weights after it,
so a full layer costs start + weights / rate. The first cycle's evaluation is not timed. The table gives
weights/s per layer and the ratio to ``sequential``.

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


def rate(cfg, dataset, seconds: float, min_weights: int) -> tuple[float, float]:
    """(seconds of the layer's first weight, weights per second after it) of ``cfg``'s one planned layer."""
    from rso_engine.backend import get_backend
    from rso_engine.events import ChunkDone
    from rso_engine.training import RSOTrainer

    t = RSOTrainer(cfg, dataset, get_backend("numpy"))
    t.history.append(None)  # skip the evaluation before the first cycle: it is not a sweep's cost
    events = t.events()
    t.set_chunking(1)  # the first chunk: the layer's start and one weight
    start = time.perf_counter()
    first = None
    for ev in events:
        if isinstance(ev, ChunkDone):
            if first is None:
                first = (time.perf_counter(), t.steps)
                t.set_chunking()
                continue
            done = t.steps - first[1]
            if t.steps >= t.weights_per_cycle or (done >= min_weights and time.perf_counter() - first[0] >= seconds):
                break
    end = time.perf_counter()
    return first[0] - start, (t.steps - first[1]) / max(end - first[0], 1e-9)


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
                  + " | ".join(f"{v} ×" for v in args.variants if v != "sequential") + " | "
                  + " | ".join(f"{v} start s" for v in args.variants) + " |")
            print("|---" * (1 + 3 * len(args.variants) - ("sequential" in args.variants)) + "|")
            for layer in layers:
                rates, starts = {}, {}
                for v in args.variants:
                    cfg = RunConfig(model=model, batch_size=batch, cycles=1, dtype=args.dtype, train_layers=[layer],
                                    dataset=name, **VARIANTS[v]).validated()
                    starts[v], rates[v] = rate(cfg, ds, args.seconds, args.min_weights)
                base = rates.get("sequential")
                ratios = [f"{rates[v] / base:.2f}" if base else "–" for v in args.variants if v != "sequential"]
                print(f"| {layer} | " + " | ".join(f"{rates[v]:,.1f}" for v in args.variants) + " | "
                      + " | ".join(ratios) + " | " + " | ".join(f"{starts[v]:.2f}" for v in args.variants) + " |",
                      flush=True)
            print()


if __name__ == "__main__":
    main()
