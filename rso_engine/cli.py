"""The headless command line: ``rso train | compare | sweep | report | presets | session | info``.

Every training command prints the backend it computes on first, shows a progress bar on stderr and ends
with a table. Bad arguments and bad input end with one ``rso: error: …`` line and exit status 2, never a
traceback.

A run's config is built in layers, each overriding only the fields it names: the defaults (for
``rso report``, the study's defaults), then ``--preset NAME``, then ``--config FILE``, then the
individual options (``--batch-size`` …).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
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
    g.add_argument("--preset", metavar="NAME", help="start from a preset (`rso presets` lists them)")
    g.add_argument("--config", metavar="FILE",
                   help="a run config JSON file; its fields override the preset's, options below override both")
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
    _save_preset_options(t)
    _plot_options(t, "plot the run's history to FILE (.png, .svg or .pdf; may be given twice)")

    c = sub.add_parser("compare", parents=[run], help="RSO and SGD on the same model, data and seed, one table",
                       description="Train RSO and the SGD baseline on the same model, data and seed.")
    c.add_argument("--history", metavar="FILE", help="write both histories to FILE (.csv or .json)")
    _plot_options(c, "render the RSO-vs-SGD figure to FILE (.png, .svg or .pdf; may be given twice), headless")
    c.add_argument("--session", metavar="FILE",
                   help="save both runs as a session (.rso.npz) after every cycle/epoch, at the end and on Ctrl-C")
    c.add_argument("--resume", metavar="FILE", help="continue the session saved in FILE (other run options ignored)")
    _save_preset_options(c)

    w = sub.add_parser("sweep", parents=[run], help="the course project's batch-size study",
                       description="Train RSO once per batch size and tabulate time, test loss and accuracy.")
    w.add_argument("--batch-sizes", type=_positive_int, nargs="+", metavar="B", default=[32, 64, 256, 512],
                   help="batch sizes to try (default 32 64 256 512)")
    w.add_argument("--history", metavar="FILE", help="write all histories to FILE (.csv or .json)")
    _plot_options(w, "plot accuracy and time against the batch size to FILE (.png, .svg or .pdf)", x_axis=False)
    _save_preset_options(w)

    _add_report_parser(sub, run)
    _add_presets_parser(sub, run)
    s = sub.add_parser("session", help="show what a saved session file holds",
                       description="Show the runs, progress and settings saved in a session file (.rso.npz).")
    s.add_argument("file", metavar="FILE", help="a session file")

    sub.add_parser("info", help="backend, evaluators and datasets available here",
                   description="Show the array backend, the evaluators and which datasets are available.")
    return parser


def _save_preset_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("presets")
    g.add_argument("--save-preset", metavar="NAME", help="also save this run's settings as your preset NAME")
    g.add_argument("--description", metavar="TEXT", help="the saved preset's description")
    g.add_argument("--overwrite", action="store_true", help="replace an existing user preset of that name")


def _size(text: str) -> tuple[int, int]:
    from .plots import PlotError, parse_size  # noqa: PLC0415

    try:
        return parse_size(text)
    except PlotError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _plot_options(p: argparse.ArgumentParser, help_text: str, x_axis: bool = True) -> None:
    from .plots import X_AXES  # noqa: PLC0415  (plots imports matplotlib lazily, so this is cheap)

    g = p.add_argument_group("figures (headless: no display needed)")
    g.add_argument("--plot", metavar="FILE", action="append", help=help_text)
    g.add_argument("--plot-size", type=_size, metavar="WxH", default=(1200, 500),
                   help="figure size in pixels (default 1200x500)")
    g.add_argument("--dpi", type=_positive_int, default=100, help="dots per inch (default 100; SVG size = pixels/dpi)")
    if x_axis:
        g.add_argument("--x-axis", choices=list(X_AXES), default="cycles",
                       help="what the x-axis counts (default cycles)")


def _config_file_layer(cfg: RunConfig, path: str) -> RunConfig:
    """``cfg`` with the fields that config file ``path`` names replaced by the file's values."""
    loaded = RunConfig.load(path)  # validates, with the file's name in every message
    data = json.loads(Path(path).read_text())
    return cfg.replace(**{k: getattr(loaded, k) for k in data})


def config_from_args(args: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    """The RunConfig an invocation describes, in layers: ``base`` (default: RunConfig()), --preset,
    --config (only the fields the file names), then the options given."""
    cfg = base if base is not None else RunConfig()
    if getattr(args, "preset", None):
        from .presets import load_preset  # noqa: PLC0415

        cfg = load_preset(args.preset)
    if getattr(args, "config", None):
        cfg = _config_file_layer(cfg, args.config)
    changes: dict[str, Any] = {k: getattr(args, k) for k in _FIELD_OPTIONS if getattr(args, k, None) is not None}
    if getattr(args, "algorithm", None):
        changes["algorithm"] = args.algorithm
    return cfg.replace(**changes)


def _preset_description(args: argparse.Namespace, cfg: RunConfig) -> str | None:
    """--description, or for settings derived from a preset, what they changed (not the preset's own text)."""
    if args.description is not None or not getattr(args, "preset", None):
        return args.description
    from .presets import load_preset  # noqa: PLC0415

    old, new = load_preset(args.preset).to_dict(), cfg.to_dict()
    changed = [f"{k}={new[k]}" for k in new if k != "notes" and new[k] != old[k]]
    return f"based on preset {args.preset}" + (f"; changed: {', '.join(changed)}" if changed else "")


def _maybe_save_preset(args: argparse.Namespace, cfg: RunConfig) -> None:
    if getattr(args, "save_preset", None):
        from .presets import save_preset  # noqa: PLC0415

        path = save_preset(args.save_preset, cfg, _preset_description(args, cfg), overwrite=args.overwrite)
        print(f"preset {args.save_preset!r} saved to {path}")


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


def drive(trainer: Trainer, label: str, checkpoint: str | None = None,
          stop: Callable[[Trainer], bool] | None = None, on_save: Callable[[], Any] | None = None) -> list[Evaluated]:
    """Run ``trainer`` to the end with a progress bar and return its history.

    ``checkpoint``: save a checkpoint there after each cycle and on Ctrl-C. ``on_save``: call it
    instead (e.g. to save a session) at the same moments. ``stop(trainer)``: checked after every
    event; true ends the run early (the equal-budget study stops SGD at a forward-pass budget).
    """
    if checkpoint and on_save is None:
        def on_save():
            return save_checkpoint(checkpoint, trainer)

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
                if on_save is not None and ev.cycle > 0:
                    on_save()
            if stop is not None and stop(trainer):
                break
    except KeyboardInterrupt:
        bar.close()
        if on_save is not None:
            path = on_save()
            print(f"\ninterrupted; saved the run to {path} (continue with --resume {path})", file=sys.stderr)
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
        if cfg.anneal and cfg.cycles == 1:
            line += ("\nnote: annealing ends at σ_d/10, so a single cycle runs at σ_d/10 throughout; "
                     "use more cycles, or --no-anneal to keep σ_d")
    else:
        line += (f"\nSGD: lr {cfg.lr}, momentum {cfg.momentum}, batch {trainer.batch_size}, "
                 f"{cfg.cycles} epochs")
    return line


# --------------------------------------------------------------------------- commands
def _load_data(cfg: RunConfig):
    from .data import load_dataset  # noqa: PLC0415

    return load_dataset(cfg.dataset, data_dir=cfg.data_dir, progress=True)


def cmd_train(args: argparse.Namespace) -> int:
    for path in args.plot or ():  # refuse a bad figure name before training, not after
        _check_figure_name(path)
    if args.resume:
        trainers, _ = load_checkpoint(args.resume)
        trainer = trainers[0]
        print(f"resuming {args.resume} at cycle {len(trainer.history) - 1} of {trainer.config.cycles}")
    else:
        cfg = config_from_args(args)
        trainer = make_trainer(cfg, _load_data(cfg))
    if args.save_config:
        trainer.config.save(args.save_config)
    _maybe_save_preset(args, trainer.config)
    print(_header(trainer), flush=True)
    history = drive(trainer, trainer.algorithm.upper(), checkpoint=args.checkpoint)
    print(history_table(history))
    if args.history:
        print(f"history written to {save_history(args.history, history, trainer.config)}")
    _write_plots(args, {trainer.algorithm.upper(): history}, f"{trainer.config.model}, {trainer.dataset.name}")
    return 0


def _write_plots(args: argparse.Namespace, histories, title: str) -> None:
    from .plots import save_histories_plot  # noqa: PLC0415

    for path in args.plot or ():
        out = save_histories_plot(path, histories, x_axis=args.x_axis, size=args.plot_size, dpi=args.dpi,
                                  title=title)
        print(f"figure written to {out}")


def cmd_compare(args: argparse.Namespace) -> int:
    from .session import load_session, save_session, session_path  # noqa: PLC0415

    for path in args.plot or ():  # refuse a bad figure name before hours of training, not after
        _check_figure_name(path)
    if args.resume:
        session = load_session(args.resume)
        rso, sgd = session.rso, session.sgd
        if sgd is None:
            sgd = make_trainer(rso.config.replace(algorithm="sgd"), rso.dataset)
        cfg = rso.config
        print(f"resuming session {args.resume}: RSO at cycle {rso.history[-1].cycle} of {cfg.cycles}, "
              f"SGD at epoch {sgd.history[-1].cycle if sgd.history else 0} of {sgd.config.cycles}")
    else:
        cfg = config_from_args(args).replace(algorithm="rso")
        data = _load_data(cfg)
        rso = make_trainer(cfg, data)
        sgd = make_trainer(cfg.replace(algorithm="sgd"), data)
    _maybe_save_preset(args, cfg)
    session_file = session_path(args.session) if args.session else args.resume

    def save():
        return save_session(session_file, rso, sgd, extra={"command": "compare"}) if session_file else None

    on_save = save if session_file else None
    print(_header(rso) + "\n" + _header(sgd).split("\n")[-1], flush=True)
    histories = drive(rso, "RSO", on_save=on_save) + drive(sgd, "SGD", on_save=on_save)
    if session_file:
        print(f"session saved to {save()}")
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
    _write_plots(args, {"RSO": rso.history, "SGD": sgd.history},
                 f"RSO vs SGD: {cfg.model}, {rso.dataset.name} ({rso.dataset.n_train} training images)")
    return 0


def _check_figure_name(path: str) -> None:
    from .plots import FORMATS  # noqa: PLC0415

    if Path(path).suffix.lower().lstrip(".") not in FORMATS:
        raise CLIError(f"cannot tell the image format of {path}: use a .png, .svg or .pdf file name")


def cmd_sweep(args: argparse.Namespace) -> int:
    for path in args.plot or ():
        _check_figure_name(path)
    base = config_from_args(args).replace(algorithm="rso")
    _maybe_save_preset(args, base)
    data = _load_data(base)
    rows, histories, plot_rows = [], [], []
    for i, b in enumerate(args.batch_sizes):
        trainer = make_trainer(base.replace(batch_size=b), data)
        if i == 0:
            print(_header(trainer).rsplit("\n", 1)[0], flush=True)
        t0 = time.perf_counter()
        histories += drive(trainer, f"batch {b}")
        last = trainer.history[-1]
        rows.append((base.model, b, f"{time.perf_counter() - t0:.1f}", last.test_loss, last.test_accuracy))
        plot_rows.append({"model": base.model, "batch_size": b, "seconds": last.seconds,
                          "test_accuracy": last.test_accuracy})
        print(format_table(("model", "batch", "time (s)", "test loss", "test accuracy"), rows[-1:]).split("\n")[-1],
              flush=True)
    print()
    print(format_table(("model", "batch", "time (s)", "test loss", "test accuracy"), rows))
    if args.history:
        print(f"histories written to {save_history(args.history, histories, base)}")
    if args.plot:
        from .plots import batch_sweep_figure, save_figure  # noqa: PLC0415
        from .report import COURSE_RESULTS  # noqa: PLC0415

        ref = [r for r in COURSE_RESULTS if r["model"] == base.model and r["cycles"] == base.cycles]
        for path in args.plot:
            fig = batch_sweep_figure(plot_rows, ref, title=f"RSO batch-size sweep: {base.model}, {data.name}",
                                     size=args.plot_size, dpi=args.dpi)
            print(f"figure written to {save_figure(fig, path, size=args.plot_size, dpi=args.dpi)}")
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


# --------------------------------------------------------------------------- report
def _add_report_parser(sub, run: argparse.ArgumentParser) -> None:
    from .report import STUDIES  # noqa: PLC0415

    studies = "\n".join(textwrap.fill(s.description, 100, initial_indent=f"  {s.name:20s} ", subsequent_indent=" " * 23)
                        for s in STUDIES.values())
    r = sub.add_parser(
        "report", parents=[run], help="run a named study and write a folder with plots, CSV and a Markdown table",
        description="Run one of the course project's studies and write DIR/report.md (a table laid out like the "
                    "course project's, its numbers side by side), results.csv, histories.json, config.json and "
                    "PNG/SVG figures. Run options override the study's defaults (full MNIST, 10 cycles), e.g. "
                    "--dataset mnist-sample --cycles 2 for a quick run.",
        epilog="studies:\n" + studies, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("study", choices=list(STUDIES), metavar="STUDY", help=", ".join(STUDIES))
    r.add_argument("--out", metavar="DIR", required=True, help="folder to write (created; files in it replaced)")
    r.add_argument("--batch-sizes", type=_positive_int, nargs="+", metavar="B", help="RSO batch sizes to run")
    r.add_argument("--models", nargs="+", choices=list(MODELS), metavar="MODEL", help="models to run")
    r.add_argument("--no-sgd", dest="sgd", action="store_false", default=None, help="leave out the SGD runs")
    r.add_argument("--max-sgd-epochs", type=_positive_int, default=200, metavar="N",
                   help="equal-budget: the most SGD epochs one budget may take (default 200)")
    r.add_argument("--plot-size", type=_size, metavar="WxH", default=(1200, 500), help="figure size in pixels")
    r.add_argument("--dpi", type=_positive_int, default=100, help="dots per inch (default 100)")


def cmd_report(args: argparse.Namespace) -> int:
    from .report import run_study, study_base  # noqa: PLC0415

    cfg = config_from_args(args, base=study_base(args.study))
    data = _load_data(cfg)
    print(f"backend: {get_backend().describe()}")
    print(f"study {args.study}: data {data.name} ({cfg.n_train or data.n_train} training images), "
          f"{cfg.cycles} cycles, writing to {args.out}", flush=True)

    def drive_run(trainer: Trainer, label: str, stop=None):
        return drive(trainer, label, stop=stop)

    command = "rso " + " ".join(shlex.quote(a) for a in (args.argv or []))
    # a single --model/--batch-size stands for --models/--batch-sizes with one entry
    models = args.models or ([args.model] if args.model else None)
    batch_sizes = args.batch_sizes or ([args.batch_size] if args.batch_size else None)
    result = run_study(args.study, args.out, cfg, models=models, batch_sizes=batch_sizes, sgd=args.sgd,
                       max_sgd_epochs=args.max_sgd_epochs, dataset=data, drive=drive_run,
                       plot_size=args.plot_size, dpi=args.dpi, command=command,
                       log=lambda line: print(line, flush=True))
    rows = [(r.label, r.batch_size, f"{r.history[-1].seconds:.1f}", r.history[-1].test_loss,
             r.history[-1].test_accuracy) for r in result.runs]
    print()
    print(format_table(("run", "batch", "time (s)", "test loss", "test accuracy"), rows))
    print(f"\nreport written to {result.report} ({len(result.files)} files in {result.out_dir})")
    return 0


# --------------------------------------------------------------------------- presets
def _add_presets_parser(sub, run: argparse.ArgumentParser) -> None:
    p = sub.add_parser("presets", help="list, show, save or delete presets",
                       description="Presets are named run configs: built-in ones shipped with rso and your own "
                                   "(saved in $RSO_CONFIG_DIR/presets, $XDG_CONFIG_HOME/rso/presets or "
                                   "~/.config/rso/presets). Without an action, list them.")
    ps = p.add_subparsers(dest="action", metavar="ACTION")
    ps.add_parser("list", help="list the presets (the default)")
    show = ps.add_parser("show", help="print a preset's description and config JSON")
    show.add_argument("name", metavar="NAME")
    save = ps.add_parser("save", parents=[run], help="save settings as your own preset",
                         description="Save a run config as your preset NAME: from a config file (--from-config), "
                                     "a preset (--preset) and/or run options.")
    save.add_argument("name", metavar="NAME")
    save.add_argument("--from-config", dest="config", metavar="FILE", help="the run config JSON file to save")
    save.add_argument("--description", metavar="TEXT", help="one paragraph shown in lists")
    save.add_argument("--overwrite", action="store_true", help="replace an existing user preset of that name")
    save.add_argument("--shadow-builtin", action="store_true",
                      help="allow a built-in's name (your preset then hides the built-in)")
    delete = ps.add_parser("delete", help="delete one of your presets")
    delete.add_argument("name", metavar="NAME")


def cmd_presets(args: argparse.Namespace) -> int:
    from . import presets  # noqa: PLC0415

    action = args.action or "list"
    if action == "list":
        items = presets.list_presets()
        width = max((len(p.name) for p in items), default=4)
        for p in items:
            desc = p.description if len(p.description) <= 100 else p.description[:99] + "…"
            print(f"{p.name:{width}s}  {p.source:10s}  {desc}")
        print(f"\nyour presets live in {presets.user_presets_dir()}; use one with `rso train --preset NAME`")
    elif action == "show":
        preset = presets.find_preset(args.name)
        cfg = preset.load()
        print(f"{preset.name} ({preset.source}, {preset.path})")
        if preset.description:
            print(preset.description)
        print(cfg.to_json())
    elif action == "save":
        cfg = config_from_args(args)
        path = presets.save_preset(args.name, cfg, _preset_description(args, cfg), overwrite=args.overwrite,
                                   shadow_builtin=args.shadow_builtin)
        print(f"preset {args.name!r} saved to {path}")
    elif action == "delete":
        print(f"deleted {presets.delete_preset(args.name)}")
    return 0


def cmd_session(args: argparse.Namespace) -> int:
    from .session import read_session_info  # noqa: PLC0415

    info = read_session_info(args.file)
    print(f"{args.file}: rso session version {info['session_version']}, saved {info['saved_at']} by "
          f"rso {info['rso_version']}")
    rows = []
    for run in info["runs"]:
        cfg = run["config"]
        last = run["history"][-1] if run["history"] else None
        rows.append((run["role"], cfg["model"], cfg["dataset"], f"{run['finished_cycles']} of {cfg['cycles']}",
                     last[4] if last else "–", last[6] if last else 0))
    print(format_table(("run", "model", "data", "cycles done", "test acc", "fwd samples"), rows))
    print(f"continue it with `rso compare --resume {args.file}`")
    return 0


COMMANDS = {"train": cmd_train, "compare": cmd_compare, "sweep": cmd_sweep, "report": cmd_report,
            "presets": cmd_presets, "session": cmd_session, "info": cmd_info}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rso`` console script."""
    from .data import DataError  # noqa: PLC0415

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
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
