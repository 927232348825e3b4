"""A plain PyTorch RSO loop against rso's own trainer on the same work, in the same run.

    PYTHONPATH=. /tmp/torchenv/bin/python benchmarks/torch_loop.py                 # all 304 weights of fc, conv1
    PYTHONPATH=. /tmp/torchenv/bin/python benchmarks/torch_loop.py --weights 20    # a quick run: the first 20
    PYTHONPATH=. /tmp/torchenv/bin/python benchmarks/torch_loop.py --repeats 2 --cli

The case (from the issue): ``rso train --model papernet --batch-size 256 --cycles 1 --train-layers fc,conv1
--freeze-bn --dataset fashion-mnist``: the paper net, a fresh batch of 256 of Fashion-MNIST's 60,000
training images per weight, every weight of ``fc`` (160) then of ``conv1`` (144) swept once. ``--freeze-bn``
only takes bn1's γ/β out of the sweep (``RunConfig.search_bn``): batch norm still normalises every pass
with the batch's own statistics (training mode), and that is what the torch side does.

torch is not a dependency of rso: install it in a separate environment, with what ``rso_engine.data`` and
``rso_engine.models`` import, and run this script with that interpreter and the repository on the path::

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch numpy numba platformdirs pooch tqdm threadpoolctl

**torch loop** (this process): ``torch.set_num_threads(2)`` (``--torch-threads``), ``torch.no_grad()``,
float32, the net built from ``nn.Conv2d``/``nn.AvgPool2d``/``nn.BatchNorm2d`` (no running statistics, so
always the batch's)/``nn.ReLU``/``nn.Linear`` with ``rso_engine.models.build_model("papernet", seed=0)``'s
initial weights (checked first: its logits against the engine's ``model.forward`` on a batch). Per weight,
as the issue describes the reference: a fresh batch gathered from the training set, the prefix (the layers
before the swept one; none for conv1) run on it, then three passes from the swept layer on (candidates
w + Δ, w, w − Δ), each scored by the summed cross-entropy in float64; the lowest is kept, a tie keeps w
(between w ± Δ, w + Δ wins), as in ``rso_engine.evaluators.base.choose``. The Δs and batches are drawn
from the trainer's own streams (``default_rng([seed, 1])``, ``BatchStream(..., default_rng([seed, 2]))``),
so both sides do the same work on the same numbers and their losses and choices can be compared.

**rso trainer** (a subprocess of rso's own environment, ``--rso-python``, default the repository's
``.venv``, so no torch is loaded there): ``RSOTrainer`` on that config as ``rso train`` builds it,
evaluator "auto"; its ``seconds`` is the trainer's clock (the sweeps and cache builds, no evaluation), the
``seconds`` column of the CLI's table. With ``--weights N`` below the full 304 it stops after N weights
(the last chunk capped at the weights left, which changes no number). ``--cli`` also runs the CLI command
itself (full runs only) and reads the ``seconds`` of its table's last row.

Best of ``--repeats`` for each side, torch and rso alternating. Both sides share the machine: compare the
ratio of one run, and read the load average printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
CASE = {"model": "papernet", "batch_size": 256, "cycles": 1, "train_layers": ["fc", "conv1"], "search_bn": False,
        "dataset": "fashion-mnist", "seed": SEED}  # fmt: skip
CLI = ["train", "--model", "papernet", "--batch-size", "256", "--cycles", "1", "--train-layers", "fc,conv1",
       "--freeze-bn", "--dataset", "fashion-mnist"]  # fmt: skip
SWEPT = ["fc.weight", "conv1.weight"]  # output layer first; inside a tensor C order (filter → channel → kh → kw)


# --------------------------------------------------------------------------- rso's side (its own environment)
def rso_worker(n_weights: int, out: str) -> None:
    """Run rso's trainer on :data:`CASE` for ``n_weights`` weights; write its clock, what it did and its
    final weights to the ``out`` .npz (plus a JSON of the scalars in ``out`` + ".json")."""
    from rso_engine.backend import cpu_threads
    from rso_engine.config import RunConfig
    from rso_engine.data import load_dataset
    from rso_engine.events import ChunkDone, WeightTried
    from rso_engine.experiment import make_trainer

    cfg = RunConfig(**CASE)
    data = load_dataset(cfg.dataset, progress=False)
    trainer = make_trainer(cfg, data)
    full = n_weights >= trainer.weights_per_cycle
    tried: list[WeightTried] = []
    t0 = time.perf_counter()
    if full:  # as `rso train`: to the end of the cycle (its evaluation is not on the trainer's clock)
        for ev in trainer.events():
            if isinstance(ev, WeightTried):
                tried.append(ev)
    else:
        trainer.set_chunking(max_weights=n_weights)
        for ev in trainer.events():
            if isinstance(ev, WeightTried):
                tried.append(ev)
            elif isinstance(ev, ChunkDone):
                left = n_weights - len(tried)
                if left <= 0:
                    break
                trainer.set_chunking(max_weights=left)
    wall = time.perf_counter() - t0
    params = trainer.model.params_numpy()
    np.savez(out, losses=np.array([(e.loss_plus, e.loss_stay, e.loss_minus) for e in tried]),
             choices=np.array([e.choice for e in tried]), deltas=np.array([e.delta for e in tried]),
             where=np.array([f"{e.param}{list(e.index)}" for e in tried]),
             **{f"param/{p}": params[p] for p in SWEPT})  # fmt: skip
    info = {"seconds": trainer.seconds, "wall": wall, "weights": len(tried), "evaluator": trainer.evaluator.name,
            "threads": cpu_threads(), "numba_threads": _numba_threads()}
    Path(out + ".json").write_text(json.dumps(info))


def _numba_threads() -> int | None:
    try:
        import numba
    except ImportError:
        return None
    return int(numba.config.NUMBA_NUM_THREADS)


def run_rso(python: str, n_weights: int, tmp: str, k: int) -> tuple[dict, dict]:
    """One rso run in a fresh process of ``python``: (its JSON scalars, its arrays)."""
    out = os.path.join(tmp, f"rso{k}.npz")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([python, __file__, "--rso-worker", out, "--weights", str(n_weights)], check=True, env=env,
                   cwd=ROOT)  # fmt: skip
    info = json.loads(Path(out + ".json").read_text())
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files}
    return info, arrays


def run_cli(python: str) -> float:
    """The CLI command of the case; the ``seconds`` of its table's last row."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([python, "-m", "rso_engine.cli", *CLI], check=True, env=env, cwd=ROOT,
                         capture_output=True, text=True)  # fmt: skip
    lines = res.stdout.splitlines()
    head = max(i for i, line in enumerate(lines) if line.split()[-1:] == ["seconds"])
    rows = [line for line in lines[head + 2 :] if line.strip()]
    return float(rows[-1].split()[-1])


# --------------------------------------------------------------------------- the torch side
def torch_net(model):
    """The engine's layers as torch modules (one per engine layer, same indices), its weights copied."""
    import torch
    from torch import nn

    from rso_engine.layers import AvgPool2d, BatchNorm2d, Conv2d, Dense, GlobalAvgPool, ReLU

    class GAP(nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    mods = []
    P = model.params_numpy()
    for layer in model.layers:
        if isinstance(layer, Conv2d):
            m = nn.Conv2d(layer.cin, layer.cout, layer.k, padding=layer.pad, bias=False)
            m.weight.data.copy_(torch.from_numpy(P[layer.full("weight")]))
        elif isinstance(layer, BatchNorm2d):
            m = nn.BatchNorm2d(layer.channels, eps=1e-5, track_running_stats=False)  # the batch's statistics
            m.weight.data.copy_(torch.from_numpy(P[layer.full("gamma")]))
            m.bias.data.copy_(torch.from_numpy(P[layer.full("beta")]))
        elif isinstance(layer, AvgPool2d):
            m = nn.AvgPool2d(2)
        elif isinstance(layer, ReLU):
            m = nn.ReLU()
        elif isinstance(layer, GlobalAvgPool):
            m = GAP()
        elif isinstance(layer, Dense):
            m = nn.Linear(layer.fin, layer.fout, bias=False)
            m.weight.data.copy_(torch.from_numpy(P[layer.full("weight")]))
        else:
            raise TypeError(f"no torch module for {layer.describe()}")
        mods.append(m.train())
    return mods


def run_from(mods, x, start: int = 0, stop: int | None = None):
    for m in mods[start:stop]:
        x = m(x)
    return x


def torch_loop(mods, params, starts, sigmas, X, Y, n_weights: int, batch: int):
    """The reference loop over the first ``n_weights`` weights: (seconds, losses, choices, deltas, where)."""
    import torch
    import torch.nn.functional as F

    from rso_engine.training.batches import BatchStream

    delta_rng = np.random.default_rng([SEED, 1])
    stream = BatchStream(X.shape[0], batch, np.random.default_rng([SEED, 2]))
    losses = np.empty((n_weights, 3))
    choices = np.empty(n_weights, np.int64)
    deltas = np.empty(n_weights)
    where = []
    done = 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for pname in SWEPT:
            W = params[pname]
            flat_view = W.view(-1)
            start, sigma = starts[pname], sigmas[pname]
            for i in range(min(W.numel(), n_weights - done)):
                d = float(delta_rng.standard_normal(1)[0] * sigma)
                idx = torch.from_numpy(stream.take(1)[0])
                xb, yb = X.index_select(0, idx), Y.index_select(0, idx)
                h = run_from(mods, xb, 0, start)  # the prefix: the layers before the swept one
                w = float(flat_view[i])
                cands = np.array([w + d, w, w - d], dtype=np.float64).astype(np.float32)
                for c in range(3):
                    flat_view[i] = float(cands[c])
                    logits = run_from(mods, h, start)
                    losses[done, c] = float(F.cross_entropy(logits.double(), yb, reduction="sum"))
                lp, ls, lm = losses[done]
                choice = 0 if ls <= lp and ls <= lm else (1 if lp <= lm else -1)  # PLUS 1, STAY 0, MINUS -1
                flat_view[i] = float(cands[1 - choice])
                choices[done], deltas[done] = choice, d
                where.append(f"{pname}{[int(a) for a in np.unravel_index(i, W.shape)]}")
                done += 1
    return time.perf_counter() - t0, losses, choices, deltas, where


def check_logits(mods, model, X) -> tuple[float, float]:
    """(max |torch − engine|, max |engine|) of the logits of one batch (batch norm on batch statistics)."""
    import torch

    x = X[:256]
    with torch.no_grad():
        ours = run_from(mods, x).numpy()
    theirs = np.asarray(model.forward(model.to_input(x.numpy()), train=True))
    return float(np.abs(ours - theirs).max()), float(np.abs(theirs).max())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=int, default=None, help="sweep only the first N weights (default: all 304)")
    ap.add_argument("--repeats", type=int, default=1, help="best of this many runs per side (default 1)")
    ap.add_argument("--torch-threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--rso-python", default=None,
                    help="the interpreter of rso's environment (default: the repository's .venv, else this one)")
    ap.add_argument("--cli", action="store_true", help="also time the `rso train` command itself (full runs only)")
    ap.add_argument("--rso-worker", metavar="OUT", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rso_worker:
        rso_worker(args.weights or 10**9, args.rso_worker)
        return 0

    import torch

    from rso_engine.data import load_dataset
    from rso_engine.models import build_model
    from rso_engine.training.plan import sigma_scale

    torch.set_num_threads(args.torch_threads)
    python = args.rso_python or str(ROOT / ".venv" / "bin" / "python")
    if not Path(python).exists():
        python = sys.executable
    data = load_dataset(CASE["dataset"], progress=False)
    X = torch.from_numpy(np.ascontiguousarray(data.train_x, dtype=np.float32))
    Y = torch.from_numpy(np.asarray(data.train_y, dtype=np.int64))
    model = build_model(CASE["model"], seed=SEED)
    total = sum(model.params[p].size for p in SWEPT)
    n = total if args.weights is None else max(1, min(args.weights, total))
    index = model.top_level_index()
    starts = {p: index[p.rsplit(".", 1)[0]] for p in SWEPT}
    scale = sigma_scale(0, CASE["cycles"])
    sigmas = {p: model.sigma[p] * scale for p in SWEPT}

    mods = torch_net(model)
    diff, size = check_logits(mods, model, X)
    print(f"logits check: torch vs the engine's model.forward on 256 training images (batch statistics): "
          f"max |diff| {diff:.2e} (logits up to {size:.2f}) -> {'OK' if diff <= 1e-4 else 'MISMATCH'}")
    if diff > 1e-4:
        return 1
    with torch.no_grad():
        run_from(mods, X[:256])  # warm-up (oneDNN's primitives)

    load0 = os.getloadavg()
    best_t, best_r, cli_s = float("inf"), None, None
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            fresh = torch_net(model)  # every repeat from the initial weights
            params = {p: fresh[starts[p]].weight.data for p in SWEPT}
            t, losses, choices, deltas, where = torch_loop(fresh, params, starts, sigmas, X, Y, n,
                                                           CASE["batch_size"])  # fmt: skip
            print(f"repeat {k + 1}: torch {t:.2f} s", end="", flush=True)
            if k == 0:
                ours = {"losses": losses, "choices": choices, "deltas": deltas, "where": np.array(where),
                        **{f"param/{p}": params[p].numpy().copy() for p in SWEPT}}  # fmt: skip
            best_t = min(best_t, t)
            info, theirs_k = run_rso(python, n, tmp, k)
            print(f", rso {info['seconds']:.2f} s (process wall {info['wall']:.2f} s); load average "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            if best_r is None or info["seconds"] < best_r["seconds"]:
                best_r = info
            if k == 0:
                theirs = theirs_k
        if args.cli:
            if n == total:
                cli_s = run_cli(python)
            else:
                print("--cli: the command sweeps all 304 weights; skipped with --weights")
    load1 = os.getloadavg()

    rs = best_r["seconds"]
    print(f"\n## PyTorch reference loop vs rso's trainer: papernet, batch 256, fc then conv1 (--freeze-bn), "
          f"{n} of {total} weights, Fashion-MNIST 60,000, best of {args.repeats}\n")
    print("| what | seconds | ratio (torch / rso) |")
    print("|---|---|---|")
    print(f"| torch loop: fresh batch, prefix, 3 passes from the swept layer (torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads) | {best_t:.2f} | {best_t / rs:.1f} |")
    print(f"| rso trainer (evaluator {best_r['evaluator']}, {best_r['threads']} threads) | {rs:.2f} | 1.0 |")
    if cli_s is not None:
        print(f"| `rso {' '.join(CLI)}` (its table's seconds) | {cli_s:.2f} | {best_t / cli_s:.1f} |")
    print(f"\nload average (1, 5, 15 min): before {', '.join(f'{v:.2f}' for v in load0)}; "
          f"after {', '.join(f'{v:.2f}' for v in load1)}; {os.cpu_count()} cores")
    print(f"threads: torch intra-op {torch.get_num_threads()}, inter-op {torch.get_num_interop_threads()}; "
          f"rso engine {best_r['threads']} (RSO_THREADS={os.environ.get('RSO_THREADS', 'unset')}), "
          f"Numba {best_r['numba_threads']}, BLAS 1 in the sweeps")

    # the same work: same weights in the same order, same Δs; then the losses and choices
    same_order = list(ours["where"]) == list(theirs["where"])
    same_deltas = np.array_equal(ours["deltas"], theirs["deltas"])
    agree = ours["choices"] == theirs["choices"]
    first = int(np.argmin(agree)) if not agree.all() else None
    upto = first if first is not None else n  # after a different choice the states differ
    rel = np.abs(ours["losses"][:upto] - theirs["losses"][:upto]) / np.abs(theirs["losses"][:upto])
    print(f"same work: weights in the same order {same_order}, the same Δs {same_deltas}; choices agree on "
          f"{int(agree.sum())} of {n}" + (f" (first difference at weight {first + 1}, {ours['where'][first]})"
                                          if first is not None else "")
          + f"; largest relative loss difference {rel.max() if upto else float('nan'):.1e}"
          + (f" (before weight {first + 1})" if first is not None else ""))
    for p in SWEPT:
        print(f"final {p}: max |torch − rso| {np.abs(ours[f'param/{p}'] - theirs[f'param/{p}']).max():.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
