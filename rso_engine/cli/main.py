"""The parser of ``rso`` and its entry point, which turns every expected error into one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..backend import BackendError
from ..config import ConfigError
from ..data import DataError
from ..distributed import ClusterError
from ..experiment import CheckpointError
from ..training import TrainingError
from . import info, landscape, presets, report, session, sweep, train
from .options import CLIError, CLIParser, run_options


def build_parser() -> argparse.ArgumentParser:
    """The ``rso`` parser; each command's parser sets ``handler``, the function that runs it."""
    parser = CLIParser(
        prog="rso",
        description="Train small CNNs without gradients by RSO (arXiv 2005.05955), and compare with SGD.",
    )
    parser.add_argument("--version", action="version", version=f"rso {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    run = run_options()
    train.add_parsers(sub, run)
    sweep.add_parser(sub, run)
    report.add_parser(sub, run)
    landscape.add_parser(sub)
    presets.add_parser(sub, run)
    session.add_parser(sub)
    info.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rso`` console script: 0 on success, 2 on an error (one line), 130 on Ctrl-C."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        if getattr(args, "backend", None):
            os.environ["RSO_BACKEND"] = args.backend
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `rso info | head`: the reader has gone; nothing more to say, and no traceback at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ConfigError, DataError, BackendError, TrainingError, CheckpointError, CLIError, ClusterError, ValueError,
            OSError) as exc:
        if os.environ.get("RSO_DEBUG"):
            raise
        print(f"rso: error: {exc}", file=sys.stderr)
        return 2
