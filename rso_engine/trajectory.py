"""A run's weight trajectory: its parameters after every cycle (RSO) or epoch (SGD), for loss-surface studies.

Checkpoints and sessions keep only a run's last state, and histories only its losses; the principal
directions of a trajectory (``rso landscape --plane pca``, Li et al. 2018) need the weights of every
cycle. A :class:`TrajectoryRecorder` is an ``on_event`` hook for :func:`rso_engine.driving.drive` that
copies the parameters at every evaluation (cycle 0, the initial weights, included); :func:`save_trajectory`
writes them as one small ``.npz`` (no pickle): a JSON ``__header__`` ``{"format": "rso-trajectory",
"version": 1, "algorithm", "config"}``, ``cycles`` (int, one per point) and ``p/NAME`` (the tensor of each
point stacked on a new first axis). For OneConv that is 7,890 floats per cycle.

With ``--trajectories``, ``rso sweep`` and ``rso report`` write one beside each run
(``DIR/runs/KEY.trajectory.npz``), ``rso train --checkpoint run.npz`` writes ``run.trajectory.npz`` and
``rso compare --session s.rso.npz`` writes ``s.rso.trajectory.npz`` and ``s.sgd.trajectory.npz``; a
continued run (a worker's restart, ``--resume``) keeps the cycles recorded before.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .backend import to_numpy
from .config import RunConfig
from .events import Evaluated
from .files import write_atomic

TRAJECTORY_FORMAT = "rso-trajectory"
TRAJECTORY_VERSION = 1
TRAJECTORY_SUFFIX = ".trajectory.npz"


@dataclass
class Trajectory:
    """The parameters of a run at each of its evaluations: ``params[name][i]`` after cycle ``cycles[i]``."""

    algorithm: str
    config: RunConfig
    cycles: np.ndarray  # int (n,)
    params: dict[str, np.ndarray]  # name -> (n, *shape)

    def __len__(self) -> int:
        return int(len(self.cycles))

    def point(self, i: int) -> dict[str, np.ndarray]:
        """The parameters after the ``i``-th recorded evaluation."""
        return {k: v[i] for k, v in self.params.items()}


class TrajectoryRecorder:
    """An ``on_event`` hook that copies a trainer's parameters at every :class:`Evaluated` event.

    ``previous`` (a :class:`Trajectory` saved before a restart) supplies the cycles up to the
    trainer's current one, so a run continued from a checkpoint keeps its whole trajectory.
    """

    def __init__(self, trainer, previous: Trajectory | None = None, path: str | Path | None = None):
        self.trainer = trainer
        self.path = path  # where save() writes by default
        self.cycles: list[int] = []
        self.points: list[dict[str, np.ndarray]] = []
        done = trainer.history[-1].cycle if trainer.history else -1
        if previous is not None:
            for i, c in enumerate(previous.cycles):
                if c <= done:
                    self.cycles.append(int(c))
                    self.points.append(previous.point(i))

    def __call__(self, ev) -> None:
        if isinstance(ev, Evaluated) and (not self.cycles or ev.cycle > self.cycles[-1]):
            self.cycles.append(int(ev.cycle))
            self.points.append({k: np.array(to_numpy(v)) for k, v in self.trainer.model.params.items()})

    def trajectory(self) -> Trajectory:
        """What was recorded so far."""
        names = list(self.trainer.model.params)
        params = {k: np.stack([p[k] for p in self.points]) if self.points else np.empty((0,)) for k in names}
        return Trajectory(self.trainer.algorithm, self.trainer.config, np.asarray(self.cycles, dtype=np.int64),
                          params)

    def save(self, path: str | Path | None = None) -> Path:
        """Write what was recorded so far to ``path`` (default: the recorder's own), atomically."""
        return save_trajectory(path or self.path, self.trajectory())


def save_trajectory(path: str | Path, trajectory: Trajectory) -> Path:
    """Write ``trajectory`` to ``path`` as an ``.npz`` (see the module docstring), atomically."""
    header = {"format": TRAJECTORY_FORMAT, "version": TRAJECTORY_VERSION, "algorithm": trajectory.algorithm,
              "config": trajectory.config.to_dict()}
    arrays = {f"p/{k}": np.ascontiguousarray(v) for k, v in trajectory.params.items()}
    arrays["cycles"] = np.asarray(trajectory.cycles, dtype=np.int64)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_atomic(Path(path), buf.getvalue())


def load_trajectory(path: str | Path) -> Trajectory:
    """Read a file written by :func:`save_trajectory`; ``ValueError`` naming the file if it is not one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(z["__header__"].tobytes().decode())
            if header.get("format") != TRAJECTORY_FORMAT or header.get("version") != TRAJECTORY_VERSION:
                raise ValueError("its header is not that of an rso trajectory of version 1")
            params = {k[2:]: z[k] for k in z.files if k.startswith("p/")}
            cycles = z["cycles"]
        return Trajectory(str(header["algorithm"]), RunConfig.from_dict(header["config"]), cycles, params)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a readable rso trajectory ({exc})") from exc


def trajectory_path(run_file: str | Path, role: str | None = None) -> Path:
    """Where the trajectory of the run saved in ``run_file`` lives: ``runs/KEY.npz`` →
    ``runs/KEY.trajectory.npz``; for one of the runs of a session, ``role`` ("rso", "sgd") is added:
    ``lecture.rso.npz`` → ``lecture.sgd.trajectory.npz``."""
    p = Path(run_file)
    name = p.name
    for suffix in (".rso.npz", ".npz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return p.with_name(name + (f".{role}" if role else "") + TRAJECTORY_SUFFIX)
