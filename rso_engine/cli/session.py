"""``rso session FILE``: what a saved session holds (runs, progress, settings)."""

from __future__ import annotations

import argparse

from ..session import read_session_info
from .progress import format_table


def add_parser(sub) -> None:
    """Register ``rso session``."""
    s = sub.add_parser("session", help="show what a saved session file holds",
                       description="Show the runs, progress and settings saved in a session file (.rso.npz).")
    s.set_defaults(handler=cmd_session)
    s.add_argument("file", metavar="FILE", help="a session file")


def cmd_session(args: argparse.Namespace) -> int:
    """Print the session's version, its runs and how far each got."""
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
