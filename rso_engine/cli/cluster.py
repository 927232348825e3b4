"""What the study commands (``rso sweep``, ``rso report``) share for running on Dask: the cluster options,
the progress bar over runs, and the lines printed when a study stops or has failed runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..distributed import ClusterOptions
from ..report import RunResult
from ..report.results import RunFailure
from .options import positive_int


def cluster_options(p: argparse.ArgumentParser, runs: bool = True, what: str | None = None) -> None:
    """``--workers`` and ``--scheduler`` (an argument group of ``p``, titled ``what`` runs on the cluster); with
    ``runs``, also the options of a study's runs: ``--fresh``, ``--checkpoints`` and ``--trajectories``."""
    what = what or ("each run is a Dask task; see docs/distributed.md" if runs
                    else "the points are Dask tasks; see docs/distributed.md")
    g = p.add_argument_group(f"cluster ({what})")
    g.add_argument("--workers", type=positive_int, metavar="N",
                   help="size of the local Dask cluster started for this command (default: one worker process per "
                        "core; 1: one worker in this process)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on an existing Dask cluster instead, e.g. tcp://host:8786 (started with `dask scheduler` "
                        "and `dask worker ADDRESS --nthreads 1`)")
    if not runs:
        return
    g.add_argument("--fresh", action="store_true",
                   help="train every run again, even those already finished in the output folder")
    g.add_argument("--checkpoints", action="store_true",
                   help="save each run after every cycle in DIR/runs/, so a run whose worker dies continues from "
                        "there on another worker (with --scheduler, DIR must be a folder every worker can reach)")
    g.add_argument("--trajectories", action="store_true",
                   help="keep each run's weights after every cycle (DIR/runs/KEY.trajectory.npz) and its final "
                        "checkpoint, for `rso landscape --plane pca`")


def cluster_from_args(args: argparse.Namespace) -> ClusterOptions:
    """The cluster the options describe (``--scheduler`` wins over ``--workers``)."""
    return ClusterOptions(workers=getattr(args, "workers", None), scheduler=getattr(args, "scheduler", None))


class StudyBar:
    """A tqdm bar over a study's runs on stderr; its postfix shows each running run's cycle and progress."""

    def __init__(self, desc: str = "runs"):
        self.desc = desc
        self.bar: Any = None
        self.running: dict[str, dict[str, Any]] = {}

    def planned(self, n_runs: int) -> None:
        self.bar = tqdm(total=n_runs, desc=self.desc, unit="run", dynamic_ncols=True, file=sys.stderr,
                        disable=None, leave=False)

    def _postfix(self) -> None:
        parts = []
        for msg in self.running.values():
            share = msg["done"] / msg["total"] if msg.get("total") else 0.0
            parts.append(f"{msg['label']}: cycle {msg['cycle']} {share:.0%}")
        if self.bar is not None:
            self.bar.set_postfix_str(" | ".join(parts), refresh=True)

    def update(self, event: dict[str, Any]) -> None:
        self.running[event["key"]] = event
        self._postfix()

    def finished(self, result: RunResult, skipped: bool) -> None:
        self._drop(result.label)

    def failed(self, failure: RunFailure) -> None:
        self._drop(failure.label)

    def _drop(self, label: str) -> None:
        self.running = {k: m for k, m in self.running.items() if m.get("label") != label}
        if self.bar is not None:
            self.bar.update(1)
        self._postfix()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def write(self, line: str) -> None:
        """Print ``line`` on stdout without breaking the bar."""
        if self.bar is not None:
            tqdm.write(line, file=sys.stdout)
            sys.stdout.flush()
        else:
            print(line, flush=True)


def interrupted_message(out: str | None) -> str:
    """What Ctrl-C leaves behind, in one line."""
    if out:
        runs = Path(out) / "runs"
        n = len(list(runs.glob("*.json"))) if runs.is_dir() else 0
        return (f"\ninterrupted: {n} finished run(s) are kept in {runs}; run the same command again to train the "
                "rest (finished runs are skipped)")
    return "\ninterrupted: give --out DIR to keep finished runs across invocations"


def failures_message(failures: list[RunFailure]) -> str:
    """The closing error line of a study some of whose runs failed."""
    names = ", ".join(f.label for f in failures)
    return (f"rso: error: {len(failures)} run(s) failed ({names}); the others' results are shown and saved; "
            "run the same command again to retry the failed ones")
