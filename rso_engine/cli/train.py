"""``rso train`` (one RSO or SGD run) and ``rso compare`` (RSO and SGD on the same model, data and seed)."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager

from ..experiment import load_checkpoint, make_trainer, save_checkpoint, save_history
from ..plots import save_histories_plot
from ..report.tables import plural
from ..session import load_session, save_session, session_path
from ..training import TrainingError
from ..trajectory import TrajectoryRecorder, load_trajectory, trajectory_path
from .cluster import cluster_from_args, cluster_options
from .options import (
    CLIError,
    apply_resume_options,
    check_figure_names,
    check_output_files,
    config_from_args,
    load_data,
    plot_options,
)
from .presets import maybe_save_preset, save_preset_options
from .progress import drive_with_progress, format_table, history_table, run_header


def add_parsers(sub, run: argparse.ArgumentParser) -> None:
    """Register ``rso train`` and ``rso compare`` (``run``: the shared run options)."""
    t = sub.add_parser("train", parents=[run], help="one RSO (or SGD) run with a progress bar and a final table",
                       description="Train one model with RSO (or SGD with --algorithm sgd).")
    t.set_defaults(handler=cmd_train)
    t.add_argument("--algorithm", choices=("rso", "sgd"), help="rso (default) or sgd")
    t.add_argument("--history", metavar="FILE", help="write the per-cycle history to FILE (.csv or .json)")
    t.add_argument("--checkpoint", metavar="FILE", help="save a checkpoint (.npz) after every cycle and on Ctrl-C")
    t.add_argument("--resume", metavar="FILE",
                   help="continue the run saved in checkpoint FILE with its saved settings (--cycles N may add "
                        "cycles; other run options must match the saved run's)")
    t.add_argument("--trajectories", action="store_true",
                   help="with --checkpoint/--resume FILE: also keep the weights after every cycle in "
                        "FILE.trajectory.npz (for `rso landscape --plane pca`)")
    t.add_argument("--save-config", metavar="FILE", help="write the run's config JSON to FILE")
    cluster_options(t, runs=False, what="with --update layer-parallel, each layer's weights are scored in chunks on "
                                         "the workers (see docs/distributed.md)")
    save_preset_options(t)
    plot_options(t, "plot the run's history to FILE (.png, .svg or .pdf; may be given twice)")

    c = sub.add_parser("compare", parents=[run], help="RSO and SGD on the same model, data and seed, one table",
                       description="Train RSO and the SGD baseline on the same model, data and seed.")
    c.set_defaults(handler=cmd_compare)
    c.add_argument("--history", metavar="FILE", help="write both histories to FILE (.csv or .json)")
    plot_options(c, "render the RSO-vs-SGD figure to FILE (.png, .svg or .pdf; may be given twice), headless")
    c.add_argument("--session", metavar="FILE",
                   help="save both runs as a session (.rso.npz) after every cycle/epoch, at the end and on Ctrl-C")
    c.add_argument("--resume", metavar="FILE",
                   help="continue the session saved in FILE with its saved settings (--cycles N may add cycles; "
                        "other run options must match the saved runs')")
    c.add_argument("--trajectories", action="store_true",
                   help="with --session/--resume FILE: also keep both runs' weights after every cycle/epoch beside "
                        "it (FILE.rso.trajectory.npz, .sgd.…; for `rso landscape --plane pca`)")
    save_preset_options(c)


def _recorder(args: argparse.Namespace, trainer, run_file, role: str | None = None):
    """With --trajectories, a recorder of ``trainer``'s per-cycle weights kept beside ``run_file`` (continuing
    the one saved there on a resume); else None."""
    if not getattr(args, "trajectories", False):
        return None
    if not run_file:
        raise CLIError("--trajectories keeps the weights beside the run's file: give --checkpoint, --session or "
                       "--resume FILE")
    path = trajectory_path(run_file, role)
    previous = load_trajectory(path) if trainer.history and path.exists() else None
    return TrajectoryRecorder(trainer, previous, path)


def write_plots(args: argparse.Namespace, histories, title: str) -> None:
    """Render ``histories`` to every ``--plot`` file."""
    for path in args.plot or ():
        out = save_histories_plot(path, histories, x_axis=args.x_axis, size=args.plot_size, dpi=args.dpi,
                                  title=title)
        print(f"figure written to {out}")


def cmd_train(args: argparse.Namespace) -> int:
    """One run (or its continuation from a checkpoint), a history table and the files asked for."""
    check_figure_names(args)
    check_output_files(checkpoint=args.checkpoint, history=args.history, save_config=args.save_config)
    if args.resume:
        trainers, _ = load_checkpoint(args.resume)
        trainer = trainers[0]
        changed = apply_resume_options(args, trainers)
        print(f"resuming {args.resume} after {plural(len(trainer.history) - 1, 'cycles')} of "
              f"{trainer.config.cycles}, with its saved settings" + (f" ({', '.join(changed)})" if changed else ""))
        if trainer.finished:
            print(f"the run is already finished; add --cycles N (more than {trainer.config.cycles}) to continue it")
    else:
        cfg = config_from_args(args)
        trainer = make_trainer(cfg, load_data(cfg))
    if args.save_config:
        trainer.config.save(args.save_config)
    maybe_save_preset(args, trainer.config)
    print(run_header(trainer), flush=True)
    run_file = args.checkpoint or args.resume
    recorder = _recorder(args, trainer, run_file)

    def save():
        if recorder is not None:
            recorder.save()
        return save_checkpoint(run_file, trainer)

    with _cluster_for(args, trainer):
        history = drive_with_progress(trainer, trainer.algorithm.upper(),
                                      save=save if args.checkpoint or recorder else None, on_event=recorder)
    print(history_table(history))
    if args.history:
        print(f"history written to {save_history(args.history, history, trainer.config)}")
    write_plots(args, {trainer.algorithm.upper(): history}, f"{trainer.config.model}, {trainer.dataset.name}")
    return 0


@contextmanager
def _cluster_for(args: argparse.Namespace, trainer):
    """With --workers/--scheduler: a layer-parallel run's layers scored on a Dask cluster for the block."""
    if getattr(args, "workers", None) is None and getattr(args, "scheduler", None) is None:
        yield
        return
    from ..distributed import open_client  # noqa: PLC0415
    from ..distributed.layer_scoring import use_cluster  # noqa: PLC0415

    if trainer.algorithm != "rso" or trainer.config.update != "layer-parallel":
        raise CLIError("--workers and --scheduler spread a layer-parallel RSO run over a cluster: add --update "
                       "layer-parallel (the other updates run in one process)")
    options = cluster_from_args(args)
    with open_client(options) as client:
        use_cluster(trainer, client)
        print(f"scoring each layer on a {options.describe()}", flush=True)
        yield


def cmd_compare(args: argparse.Namespace) -> int:
    """RSO then SGD (or the continuation of a session), both histories and a summary table."""
    check_figure_names(args)
    check_output_files(history=args.history, session=args.session)
    if args.resume:
        session = load_session(args.resume)
        rso, sgd = session.rso, session.sgd
        if sgd is None:
            sgd = make_trainer(rso.config.replace(algorithm="sgd"), rso.dataset)
        changed = apply_resume_options(args, [rso, sgd])
        cfg = rso.config
        print(f"resuming session {args.resume} with its saved settings"
              + (f" ({', '.join(changed)})" if changed else "")
              + f": RSO after {plural(rso.history[-1].cycle if rso.history else 0, 'cycles')} of {cfg.cycles}, "
              f"SGD after {plural(sgd.history[-1].cycle if sgd.history else 0, 'epochs')} of {sgd.config.cycles}")
    else:
        cfg = config_from_args(args).replace(algorithm="rso")
        data = load_data(cfg)
        rso = make_trainer(cfg, data)
        sgd = make_trainer(cfg.replace(algorithm="sgd"), data)
    maybe_save_preset(args, cfg)
    session_file = session_path(args.session) if args.session else args.resume

    recorders = {t.algorithm: _recorder(args, t, session_file, t.algorithm) for t in (rso, sgd)}

    def save():
        for recorder in recorders.values():
            if recorder is not None:
                recorder.save()
        return save_session(session_file, rso, sgd, extra={"command": "compare"})

    on_save = save if session_file else None
    print(run_header(rso) + "\n" + run_header(sgd).split("\n")[-1], flush=True)
    failed: dict[str, str] = {}  # RSO and SGD fail independently: the other's results are kept
    histories = []
    for t, label in ((rso, "RSO"), (sgd, "SGD")):
        try:
            histories += drive_with_progress(t, label, save=on_save, on_event=recorders[t.algorithm])
        except TrainingError as exc:
            failed[t.algorithm] = str(exc)
            print(f"{label} failed: {exc}", file=sys.stderr)
            histories += t.history
    if session_file:
        print(f"session saved to {save()}")
    print(history_table(histories))
    print()
    rows = []
    for t in (rso, sgd):
        if t.algorithm in failed or not t.history:
            rows.append((t.algorithm, "failed" if t.algorithm in failed else "–", "", "", "", "", ""))
            continue
        last = t.history[-1]
        rows.append((t.algorithm, last.cycle, f"{last.seconds:.1f}", last.test_loss, last.test_accuracy,
                     last.weight_updates, last.forward_samples))
    print(format_table(("algorithm", "cycles/epochs", "time (s)", "test loss", "test acc", "weight updates",
                        "fwd samples"), rows))
    if args.history:
        print(f"histories written to {save_history(args.history, histories, cfg)}")
    write_plots(args, {"RSO": rso.history, "SGD": sgd.history},
                f"RSO vs SGD: {cfg.model}, {rso.dataset.name} ({rso.dataset.n_train} training images)")
    if failed:
        print(f"rso: error: {' and '.join(a.upper() for a in failed)} failed (see above); "
              "the other run's results are shown and saved", file=sys.stderr)
        return 1
    return 0
