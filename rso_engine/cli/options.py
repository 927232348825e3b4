"""What the commands share: the parser class, argument types, the run options and the config they build.

A run's config is built in layers, each overriding only the fields it names: the defaults (for
``rso report``, the study's defaults), then ``--preset NAME``, then ``--config FILE``, then the
individual options (``--batch-size`` …).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from ..config import BATCH_MODES, DTYPES, IN_LAYER_ORDERS, LAYER_ORDERS, UPDATES, RunConfig
from ..data import load_dataset
from ..models import MODELS
from ..plots import FORMATS, PlotError, parse_size
from ..presets import load_preset
from ..vocabulary import DEFAULT_X_AXIS, X_AXES

#: argparse dest -> RunConfig field, for the run options that map one to one
FIELD_OPTIONS = (
    "model", "dataset", "data_dir", "n_train", "n_test", "seed", "dtype", "cycles", "batch_size", "batch_mode",
    "update", "anneal", "anneal_to", "stay_decay", "layer_order", "in_layer_order", "search_bn", "train_layers",
    "evaluator", "lr", "momentum", "nesterov", "weight_decay", "sgd_batch_size", "eval_train_samples",
)  # fmt: skip


class CLIError(Exception):
    """An error to report as one line."""


class CLIParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (plus where to look), not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# --------------------------------------------------------------------------- argument types
def positive_int(text: str) -> int:
    """argparse type: a whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be ≥ 1")
    return value


def number(text: str) -> float:
    """argparse type: a finite number (the config checks its range and names the field)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def nonneg_float(text: str) -> float:
    """argparse type: a number ≥ 0."""
    value = number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be ≥ 0")
    return value


def plot_size(text: str) -> tuple[int, int]:
    """argparse type: a figure size ``WxH`` in pixels."""
    try:
        return parse_size(text)
    except PlotError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --------------------------------------------------------------------------- option groups
def run_options() -> argparse.ArgumentParser:
    """Options shared by train, compare, sweep, report and presets save. Defaults are None so only given
    ones override the layers below them."""
    p = CLIParser(add_help=False)
    g = p.add_argument_group("run")
    g.add_argument("--preset", metavar="NAME", help="start from a preset (`rso presets` lists them)")
    g.add_argument("--config", metavar="FILE",
                   help="a run config JSON file; its fields override the preset's, options below override both")
    g.add_argument("--model", choices=list(MODELS), help="network (default oneconv)")
    g.add_argument("--dataset", help="mnist-sample (default, bundled), mnist, fashion-mnist or cifar10")
    g.add_argument("--data-dir", metavar="DIR", help="a folder holding the four MNIST-style IDX files")
    g.add_argument("--n-train", type=positive_int, metavar="N", help="use only the first N training images")
    g.add_argument("--n-test", type=positive_int, metavar="N", help="use only the first N test images")
    g.add_argument("--seed", type=int, help="random seed (default 0)")
    g.add_argument("--dtype", choices=DTYPES, help="float32 (default) or float64")
    g.add_argument("--cycles", type=positive_int, help="RSO cycles / SGD epochs (default 10)")
    g.add_argument("--backend", choices=("auto", "numpy", "cupy"), help="array backend (default auto; env RSO_BACKEND)")
    r = p.add_argument_group("RSO (Algorithm 1 and its variants)")
    r.add_argument("--batch-size", type=positive_int, help="RSO mini-batch size (default 256)")
    r.add_argument("--batch-mode", choices=BATCH_MODES,
                   help="a fresh batch per weight (default), one per layer or cycle, or 'authors': a fresh batch "
                        "per weight of the swept layer's input, computed once when its sweep begins")
    r.add_argument("--update", choices=UPDATES,
                   help="sequential (default, Algorithm 1), layer-parallel (every weight scored against the "
                        "layer's starting state, merged at its end) or neuron-parallel (each neuron's weights in "
                        "turn from the layer's starting state)")
    r.add_argument("--no-anneal", dest="anneal", action="store_false", default=None,
                   help="keep σ constant instead of annealing it linearly towards α·σ_d")
    r.add_argument("--anneal-to", type=number, metavar="ALPHA",
                   help="α, in (0, 1]: cycle e = 0 … C − 1 runs at σ_d·(α + (1 − α)(C − e)/C), so the first at σ_d and "
                        "the last at σ_d·(α + (1 − α)/C) (default 0.1, the authors' code)")
    r.add_argument("--stay-decay", type=nonneg_float, metavar="λ",
                   help="the stay candidate is w·(1−λ) (authors' code: 1e-4; default 0)")
    r.add_argument("--layer-order", choices=LAYER_ORDERS, help="sweep the output layer first (default) or last")
    r.add_argument("--in-layer-order", choices=IN_LAYER_ORDERS, help="order of weights inside a layer")
    r.add_argument("--freeze-bn", dest="search_bn", action="store_false", default=None,
                   help="do not search batch norm γ/β")
    r.add_argument("--train-layers", metavar="NAMES", help="comma-separated layers to search, e.g. fc,conv1")
    r.add_argument("--evaluator", help="auto (default), reference, or a fast exact evaluator")
    s = p.add_argument_group("SGD baseline")
    s.add_argument("--lr", type=nonneg_float, help="learning rate (default 0.01)")
    s.add_argument("--momentum", type=nonneg_float, help="momentum (default 0)")
    s.add_argument("--nesterov", action="store_true", default=None, help="Nesterov momentum")
    s.add_argument("--weight-decay", type=nonneg_float, help="L2 weight decay (default 0)")
    s.add_argument("--sgd-batch-size", type=positive_int, help="SGD mini-batch size (default 32)")
    e = p.add_argument_group("evaluation")
    e.add_argument("--eval-train-samples", type=positive_int, metavar="N",
                   help="training images the per-cycle train loss uses (default 10000)")
    return p


def figure_size_options(g) -> None:
    """``--plot-size`` and ``--dpi`` in argument group (or parser) ``g``."""
    g.add_argument("--plot-size", type=plot_size, metavar="WxH", default=(1200, 500),
                   help="figure size in pixels (default 1200x500)")
    g.add_argument("--dpi", type=positive_int, default=100, help="dots per inch (default 100; SVG size = pixels/dpi)")


def plot_options(p: argparse.ArgumentParser, help_text: str, x_axis: bool = True) -> None:
    """``--plot FILE`` (repeatable), the figure size and, with ``x_axis``, ``--x-axis``."""
    g = p.add_argument_group("figures (headless: no display needed)")
    g.add_argument("--plot", metavar="FILE", action="append", help=help_text)
    figure_size_options(g)
    if x_axis:
        g.add_argument("--x-axis", choices=list(X_AXES), default=DEFAULT_X_AXIS,
                       help="what the x-axis counts (default cycles)")


def check_figure_names(args: argparse.Namespace) -> None:
    """Refuse a ``--plot`` name whose format is unknown, before hours of training rather than after."""
    for path in getattr(args, "plot", None) or ():
        if Path(path).suffix.lower().lstrip(".") not in FORMATS:
            raise CLIError(f"cannot tell the image format of {path}: use a .png, .svg or .pdf file name")


# --------------------------------------------------------------------------- the config
def _config_file_layer(cfg: RunConfig, path: str) -> RunConfig:
    """``cfg`` with the fields that config file ``path`` names replaced by the file's values."""
    loaded = RunConfig.load(path)  # validates, with the file's name in every message
    data = json.loads(Path(path).read_text(encoding="utf-8"))  # load() has checked it is UTF-8 JSON
    return cfg.replace(**{k: getattr(loaded, k) for k in data})


def config_from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """The RunConfig an invocation describes, in layers: ``base`` (default: RunConfig()), --preset,
    --config (only the fields the file names), then the options given."""
    cfg = base if base is not None else RunConfig()
    if getattr(args, "preset", None):
        cfg = load_preset(args.preset)
    if getattr(args, "config", None):
        cfg = _config_file_layer(cfg, args.config)
    if getattr(args, "anneal", None) is False and getattr(args, "anneal_to", None) is not None:
        raise CLIError("--anneal-to sets where annealing heads, and --no-anneal turns annealing off: give one")
    changes: dict[str, Any] = {k: getattr(args, k) for k in FIELD_OPTIONS if getattr(args, k, None) is not None}
    if getattr(args, "algorithm", None):
        changes["algorithm"] = args.algorithm
    return cfg.replace(**changes)


def check_output_files(**paths: str | None) -> None:
    """Refuse, before any training, output files (``--checkpoint run.npz`` ...) that cannot be written: a
    folder's path, or a file in a folder that does not exist."""
    for option, path in paths.items():
        if not path:
            continue
        p = Path(path)
        flag = "--" + option.replace("_", "-")
        if p.is_dir():
            raise CLIError(f"{flag} {path} is a folder; give a file name in it, e.g. {p / 'run.npz'}")
        if not p.parent.is_dir():
            raise CLIError(f"{flag} {path}: the folder {p.parent} does not exist; create it first")


def check_output_folder(option: str, path: str) -> None:
    """Refuse an output folder (``--out``) that is an existing file."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CLIError(f"--{option} {path} is a file, not a folder; give a folder for the report")


#: run options a resumed run may change
RESUMABLE_OPTIONS = ("cycles",)


def apply_resume_options(args: argparse.Namespace, trainers) -> list[str]:
    """Apply to resumed ``trainers`` the run options ``args`` may change (more cycles); refuse, in one
    line, options that differ from the saved run's settings. Returns what changed, in words."""
    if getattr(args, "preset", None) or getattr(args, "config", None):
        raise CLIError("--preset and --config describe a new run; a resumed run keeps its saved settings "
                       "(drop them, or start a new run without --resume)")
    saved = trainers[0].config
    clash = []
    for k in FIELD_OPTIONS:
        value = getattr(args, k, None)
        if value is None or k in RESUMABLE_OPTIONS:
            continue
        if getattr(saved.replace(**{k: value}), k) != getattr(saved, k):
            clash.append(f"--{k.replace('_', '-')} {value} (saved: {getattr(saved, k)})")
    if clash:
        raise CLIError(f"a resumed run keeps its saved settings, and these options differ: {'; '.join(clash)}; "
                       "drop them, or start a new run without --resume (only --cycles can change)")
    changed = []
    if args.cycles is not None and args.cycles != saved.cycles:
        for t in trainers:
            t.set_cycles(args.cycles)
        changed.append(f"cycles {saved.cycles} → {args.cycles}")
    return changed


def load_data(cfg: RunConfig):
    """The dataset ``cfg`` names, with a download progress bar when it has to be fetched."""
    return load_dataset(cfg.dataset, data_dir=cfg.data_dir, progress=True)
