"""The headless command line: ``rso train | compare | sweep | info``.

Every command prints the backend it computes on first, shows a progress bar on stderr and ends with a
table. Bad arguments and bad input end with one ``rso: error: …`` line and exit status 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from . import __version__
from .backend import BackendError, cupy_unavailable_reason, get_backend
from .config import BATCH_MODES, DTYPES, IN_LAYER_ORDERS, LAYER_ORDERS, ConfigError, RunConfig
from .events import Evaluated, WeightTried
from .experiment import CheckpointError, load_checkpoint, make_trainer, save_checkpoint, save_history
from .models import MODELS
from .training import Trainer, TrainingError

# argparse dest -> RunConfig field, for options that map one to one
_FIELD_OPTIONS = (
    "model", "dataset", "data_dir", "n_train", "n_test", "seed", "dtype", "cycles", "batch_size", "batch_mode",
    "anneal", "stay_decay", "layer_order", "in_layer_order", "search_bn", "train_layers", "evaluator", "lr",
    "momentum", "nesterov", "weight_decay", "sgd_batch_size", "eval_train_samples",
)  # fmt: skip


class CLIError(Exception):
    """An error to report as one line."""


# --------------------------------------------------------------------------- argument parsing
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (plus where to look), not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be ≥ 1")
    return value


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be ≥ 0")
    return value


def _run_options() -> argparse.ArgumentParser:
    """Options shared by train, compare and sweep. Defaults are None so only given ones override."""
    p = _Parser(add_help=False)
    g = p.add_argument_group("run")
    g.add_argument("--config", metavar="FILE", help="start from a run config JSON file (options below override it)")
    g.add_argument("--model", choices=list(MODELS), help="network (default oneconv)")
    g.add_argument("--dataset", help="mnist-sample (default, bundled), mnist or fashion-mnist")
    g.add_argument("--data-dir", metavar="DIR", help="a folder holding the four MNIST-style IDX files")
    g.add_argument("--n-train", type=_positive_int, metavar="N", help="use only the first N training images")
    g.add_argument("--n-test", type=_positive_int, metavar="N", help="use only the first N test images")
    g.add_argument("--seed", type=int, help="random seed (default 0)")
    g.add_argument("--dtype", choices=DTYPES, help="float32 (default) or float64")
    g.add_argument("--cycles", type=_positive_int, help="RSO cycles / SGD epochs (default 10)")
    g.add_argument("--backend", choices=("auto", "numpy", "cupy"), help="array backend (default auto; env RSO_BACKEND)")
    r = p.add_argument_group("RSO (Algorithm 1 and its variants)")
    r.add_argument("--batch-size", type=_positive_int, help="RSO mini-batch size (default 256)")
    r.add_argument("--batch-mode", choices=BATCH_MODES, help="a fresh batch per weight (default), layer or cycle")
    r.add_argument("--no-anneal", dest="anneal", action="store_false", default=None,
                   help="keep σ constant instead of annealing it to σ/10")
    r.add_argument("--stay-decay", type=_nonneg_float, metavar="λ",
                   help="the stay candidate is w·(1−λ) (authors' code: 1e-4; default 0)")
    r.add_argument("--layer-order", choices=LAYER_ORDERS, help="sweep the output layer first (default) or last")
    r.add_argument("--in-layer-order", choices=IN_LAYER_ORDERS, help="order of weights inside a layer")
    r.add_argument("--freeze-bn", dest="search_bn", action="store_false", default=None,
                   help="do not search batch norm γ/β")
    r.add_argument("--train-layers", metavar="NAMES", help="comma-separated layers to search, e.g. fc,conv1")
    r.add_argument("--evaluator", help="auto (default), reference, or a fast exact evaluator")
    s = p.add_argument_group("SGD baseline")
    s.add_argument("--lr", type=_nonneg_float, help="learning rate (default 0.01)")
    s.add_argument("--momentum", type=_nonneg_float, help="momentum (default 0)")
    s.add_argument("--nesterov", action="store_true", default=None, help="Nesterov momentum")
    s.add_argument("--weight-decay", type=_nonneg_float, help="L2 weight decay (default 0)")
    s.add_argument("--sgd-batch-size", type=_positive_int, help="SGD mini-batch size (default 32)")
    e = p.add_argument_group("evaluation")
    e.add_argument("--eval-train-samples", type=_positive_int, metavar="N",
                   help="training images the per-cycle train loss uses (default 10000)")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rso",
        description="Train small CNNs without gradients by RSO (arXiv 2005.05955), and compare with SGD.",
    )
    parser.add_argument("--version", action="version", version=f"rso {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    run = _run_options()

    t = sub.add_parser("train", parents=[run], help="one RSO (or SGD) run with a progress bar and a final table",
                       description="Train one model with RSO (or SGD with --algorithm sgd).")
    t.add_argument("--algorithm", choices=("rso", "sgd"), help="rso (default) or sgd")
    t.add_argument("--history", metavar="FILE", help="write the per-cycle history to FILE (.csv or .json)")
    t.add_argument("--checkpoint", metavar="FILE", help="save a checkpoint (.npz) after every cycle and on Ctrl-C")
    t.add_argument("--resume", metavar="FILE", help="continue the run saved in checkpoint FILE")
    t.add_argument("--save-config", metavar="FILE", help="write the run's config JSON to FILE")

    c = sub.add_parser("compare", parents=[run], help="RSO and SGD on the same model, data and seed, one table",
                       description="Train RSO and the SGD baseline on the same model, data and seed.")
    c.add_argument("--history", metavar="FILE", help="write both histories to FILE (.csv or .json)")

    w = sub.add_parser("sweep", parents=[run], help="the course project's batch-size study",
                       description="Train RSO once per batch size and tabulate time, test loss and accuracy.")
    w.add_argument("--batch-sizes", type=_positive_int, nargs="+", metavar="B", default=[32, 64, 256, 512],
                   help="batch sizes to try (default 32 64 256 512)")
    w.add_argument("--history", metavar="FILE", help="write all histories to FILE (.csv or .json)")

    sub.add_parser("info", help="backend, evaluators and datasets available here",
                   description="Show the array backend, the evaluators and which datasets are available.")
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The RunConfig an invocation describes: its --config file (or defaults), overridden by options."""
    cfg = RunConfig.load(args.config) if getattr(args, "config", None) else RunConfig()
    changes: dict[str, Any] = {k: getattr(args, k) for k in _FIELD_OPTIONS if getattr(args, k, None) is not None}
    if getattr(args, "algorithm", None):
        changes["algorithm"] = args.algorithm
    return cfg.replace(**changes)


# --------------------------------------------------------------------------- output
def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with right-aligned numbers."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


HISTORY_HEADERS = ("algorithm", "cycle", "train loss", "test loss", "test acc", "weight updates",
                   "fwd samples", "seconds")


def history_table(history: Sequence[Evaluated]) -> str:
    return format_table(HISTORY_HEADERS, [tuple(ev) for ev in history])


def _progress(trainer: Trainer, label: str):
    from tqdm import tqdm  # noqa: PLC0415

    if trainer.algorithm == "rso":
        total = trainer.config.cycles * trainer.weights_per_cycle
        unit = "w"
    else:
        total = trainer.config.cycles * trainer.steps_per_epoch
        unit = "step"
    done = trainer.steps
    return tqdm(total=total, initial=done, desc=label, unit=unit, unit_scale=True, dynamic_ncols=True,
                file=sys.stderr, disable=None, leave=False)


def drive(trainer: Trainer, label: str, checkpoint: str | None = None) -> list[Evaluated]:
    """Run ``trainer`` to the end with a progress bar; checkpoint after each cycle if asked."""
    bar = _progress(trainer, label)
    pending = 0
    try:
        for ev in trainer.events():
            if isinstance(ev, WeightTried) or type(ev).__name__ == "SGDStep":
                pending += 1
                if pending >= 512:
                    bar.update(pending)
                    pending = 0
            elif isinstance(ev, Evaluated):
                bar.update(pending)
                pending = 0
                bar.set_postfix_str(f"cycle {ev.cycle} test acc {ev.test_accuracy:.4f}")
                if checkpoint and ev.cycle > 0:
                    save_checkpoint(checkpoint, trainer)
    except KeyboardInterrupt:
        bar.close()
        if checkpoint:
            save_checkpoint(checkpoint, trainer)
            print(f"\ninterrupted; saved the run to {checkpoint} (continue with --resume {checkpoint})",
                  file=sys.stderr)
        raise
    bar.close()
    return trainer.history


def _header(trainer: Trainer) -> str:
    cfg = trainer.config
    ds = trainer.dataset
    line = (f"backend: {trainer.backend.describe()}\n"
            f"model: {cfg.model} ({trainer.model.n_params} parameters) | data: {ds.name} "
            f"({ds.n_train} train / {ds.n_test} test) | seed {cfg.seed}")
    if trainer.algorithm == "rso":
        line += (f"\nRSO: batch {cfg.batch_size} per {cfg.batch_mode}, {cfg.cycles} cycles, "
                 f"σ annealing {'on' if cfg.anneal else 'off'} | evaluator: {trainer.evaluator.name}")
    else:
        line += (f"\nSGD: lr {cfg.lr}, momentum {cfg.momentum}, batch {trainer.batch_size}, "
                 f"{cfg.cycles} epochs")
    return line


# --------------------------------------------------------------------------- commands
def _load_data(cfg: RunConfig):
    from .data import load_dataset  # noqa: PLC0415

    return load_dataset(cfg.dataset, data_dir=cfg.data_dir, progress=True)


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        trainers, _ = load_checkpoint(args.resume)
        trainer = trainers[0]
        print(f"resuming {args.resume} at cycle {len(trainer.history) - 1} of {trainer.config.cycles}")
    else:
        cfg = config_from_args(args)
        trainer = make_trainer(cfg, _load_data(cfg))
    if args.save_config:
        trainer.config.save(args.save_config)
    print(_header(trainer), flush=True)
    history = drive(trainer, trainer.algorithm.upper(), checkpoint=args.checkpoint)
    print(history_table(history))
    if args.history:
        print(f"history written to {save_history(args.history, history, trainer.config)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    cfg = config_from_args(args).replace(algorithm="rso")
    data = _load_data(cfg)
    rso = make_trainer(cfg, data)
    sgd = make_trainer(cfg.replace(algorithm="sgd"), data)
    print(_header(rso) + "\n" + _header(sgd).split("\n")[-1], flush=True)
    histories = drive(rso, "RSO") + drive(sgd, "SGD")
    print(history_table(histories))
    print()
    rows = []
    for t in (rso, sgd):
        last = t.history[-1]
        rows.append((t.algorithm, last.cycle, f"{last.seconds:.1f}", last.test_loss, last.test_accuracy,
                     last.weight_updates, last.forward_samples))
    print(format_table(("algorithm", "cycles/epochs", "time (s)", "test loss", "test acc", "weight updates",
                        "fwd samples"), rows))
    if args.history:
        print(f"histories written to {save_history(args.history, histories, cfg)}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    base = config_from_args(args).replace(algorithm="rso")
    data = _load_data(base)
    rows, histories = [], []
    for i, b in enumerate(args.batch_sizes):
        trainer = make_trainer(base.replace(batch_size=b), data)
        if i == 0:
            print(_header(trainer).rsplit("\n", 1)[0], flush=True)
        t0 = time.perf_counter()
        histories += drive(trainer, f"batch {b}")
        last = trainer.history[-1]
        rows.append((base.model, b, f"{time.perf_counter() - t0:.1f}", last.test_loss, last.test_accuracy))
        print(format_table(("model", "batch", "time (s)", "test loss", "test accuracy"), rows[-1:]).split("\n")[-1],
              flush=True)
    print()
    print(format_table(("model", "batch", "time (s)", "test loss", "test accuracy"), rows))
    if args.history:
        print(f"histories written to {save_history(args.history, histories, base)}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .data import describe_datasets  # noqa: PLC0415
    from .evaluators import evaluator_names  # noqa: PLC0415

    backend = get_backend()
    print(f"rso {__version__}")
    print(f"backend: {backend.describe()}")
    why = cupy_unavailable_reason()
    print(f"GPU (CuPy): {'usable' if not why else why}")
    print(f"evaluators: {', '.join(evaluator_names())} (auto picks the first that fits the model)")
    print("models:")
    for name, (_, desc) in MODELS.items():
        print(f"  {name:10s} {desc}")
    print("datasets:")
    for name, status in describe_datasets():
        print(f"  {name:14s} {status}")
    return 0


COMMANDS = {"train": cmd_train, "compare": cmd_compare, "sweep": cmd_sweep, "info": cmd_info}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rso`` console script."""
    from .data import DataError  # noqa: PLC0415

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "backend", None):
            os.environ["RSO_BACKEND"] = args.backend
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except (ConfigError, DataError, BackendError, TrainingError, CheckpointError, CLIError, ValueError,
            OSError) as exc:
        if os.environ.get("RSO_DEBUG"):
            raise
        print(f"rso: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
