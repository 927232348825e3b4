"""``rso session FILE``: what a saved session holds (runs, progress, settings), and whether it can go on."""

from __future__ import annotations

import argparse

from ..config import RunConfig
from ..data import DataError, load_dataset
from ..session import SessionError, load_session, read_session_info
from .progress import format_table


def add_parser(sub) -> None:
    """Register ``rso session``."""
    s = sub.add_parser("session", help="show what a saved session file holds",
                       description="Show the runs, progress and settings saved in a session file (.rso.npz), "
                                   "and check that it can be continued.")
    s.set_defaults(handler=cmd_session)
    s.add_argument("file", metavar="FILE", help="a session file")


def cmd_session(args: argparse.Namespace) -> int:
    """Print the session's version, its runs and how far each got; then load it to say whether it can go on
    (a damaged session is an error, after the table)."""
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
    print(next_step(args.file, info))
    return 0


def next_step(path: str, info: dict) -> str:
    """What the user can do with the session: it is loaded first (every weight, position and random state
    checked), so "continue it" is said only of a session that can be continued."""
    resume = f"`rso compare --resume {path}`"
    cfg = RunConfig.from_dict(info["runs"][0]["config"])
    try:
        data = load_dataset(cfg.dataset, data_dir=cfg.data_dir, progress=False, download=False)
    except DataError as exc:
        return f"its data cannot be loaded here, so it was not checked further ({exc}); once it can, " \
               f"continue it with {resume}"
    try:
        session = load_session(path, dataset=data)
    except SessionError as exc:
        raise SessionError(f"the session cannot be continued: {exc}") from exc
    if session.sgd is None and session.rso.finished:
        return f"its RSO run is finished; {resume} trains the SGD baseline beside it"
    if all(t.finished for t in session.trainers):
        return f"its runs are finished; {resume} prints their results"
    return f"continue it with {resume}"
