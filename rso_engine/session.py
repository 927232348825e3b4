"""Saved sessions: the whole state of an RSO run and its SGD baseline in one file, to continue later.

A session file (suffix ``.rso.npz``) is a checkpoint (see :mod:`rso_engine.experiment`) of format
``"rso-session"``: one ``.npz`` (no pickle) whose JSON header holds, per trainer, the config and the
sweep position, RNG states, counters and history, and whose arrays hold the weights, batch-norm
statistics, batch permutations and SGD momentum. The header's ``extra`` holds::

    {"session_version": 1, "roles": ["rso", "sgd"], "rso_version": "0.1.0", "saved_at": "…", "app": {...}}

A session with race lanes (extra runs on the same data and seed, RSO or SGD) lists them after the main
run and its baseline with the role ``"lane"`` (``"roles": ["rso", "sgd", "lane", "lane"]``) and is of
version 2, so an rso that reads only version 1 says to upgrade rather than misreading it; files without
lanes are still written as version 1 and every earlier session still opens.

where ``app`` is the caller's own JSON-able dict (the window keeps its view settings there) and comes
back as :attr:`Session.extra`. Saving is atomic (a temporary file in the same folder, then a rename),
so a crash or a full disk never leaves a half-written session and the previous file stays as it was.
Files of a newer or unknown version, training checkpoints and foreign files are refused with a
:class:`SessionError` saying what the file is and what to do.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .backend import Backend
from .experiment import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    checkpoint_configs,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from .training import Trainer

SESSION_FORMAT = "rso-session"
SESSION_VERSION = 2  # the newest read; files without lanes are written as version 1
LANES_VERSION = 2  # the first version that has race lanes
MAX_LANES = 3  # extra runs after the main run (a window races at most four runs)
SESSION_SUFFIX = ".rso.npz"
_ROLES = ("rso", "sgd")  # the runs of a session, in the order they are saved (then the lanes)
LANE_ROLE = "lane"
#: for file dialogs
SESSION_FILE_FILTER = f"rso sessions (*{SESSION_SUFFIX})"

__all__ = [
    "SESSION_FILE_FILTER",
    "SESSION_FORMAT",
    "SESSION_SUFFIX",
    "SESSION_VERSION",
    "Session",
    "SessionError",
    "load_session",
    "read_session_info",
    "save_session",
    "session_path",
]


class SessionError(CheckpointError):
    """A session file cannot be saved or opened; the message names the file and what to do."""


@dataclass
class Session:
    """An opened session: the trainers, ready to continue (iterate ``events()``), and the caller's extra."""

    rso: Trainer
    sgd: Trainer | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)  # rso_version, saved_at, session_version
    lanes: list[Trainer] = field(default_factory=list)  # race lanes (RSO or SGD), in their order

    @property
    def trainers(self) -> list[Trainer]:
        return [t for t in (self.rso, self.sgd) if t is not None] + list(self.lanes)


def session_path(path: str | Path) -> Path:
    """``path`` with the session suffix added if it has none (``run`` -> ``run.rso.npz``)."""
    path = Path(path)
    return path if path.name.endswith(SESSION_SUFFIX) or path.suffix else path.with_name(path.name + SESSION_SUFFIX)


def save_session(
    path: str | Path,
    rso_trainer: Trainer,
    sgd_trainer: Trainer | None = None,
    extra: dict[str, Any] | None = None,
    lanes: list[Trainer] | tuple[Trainer, ...] = (),
) -> Path:
    """Save the run (its SGD baseline and race ``lanes``, if any) to ``path`` atomically; return the path.

    Call it between two events of the trainers (e.g. when the window pauses or the user picks Save):
    the state then is exactly what iterating ``events()`` further would continue from. ``extra`` must
    be JSON-able; it is returned as :attr:`Session.extra` by :func:`load_session`.
    """
    path = Path(path)
    if not isinstance(rso_trainer, Trainer):
        raise SessionError(f"save_session needs a trainer, not {type(rso_trainer).__name__}")
    try:
        app = json.loads(json.dumps(extra or {}))
    except (TypeError, ValueError) as exc:
        raise SessionError(f"cannot save session {path}: its extra data is not JSON-able ({exc})") from exc
    trainers = [rso_trainer] + ([sgd_trainer] if sgd_trainer is not None else [])
    for role, trainer in zip(_ROLES, trainers):
        if not isinstance(trainer, Trainer) or trainer.algorithm != role:
            raise SessionError(f"cannot save session {path}: its {role} run is a "
                               f"{getattr(trainer, 'algorithm', type(trainer).__name__)} trainer")
    lanes = list(lanes)
    if len(lanes) > MAX_LANES or not all(isinstance(t, Trainer) for t in lanes):
        raise SessionError(f"cannot save session {path}: at most {MAX_LANES} lanes, each a trainer")
    roles = list(_ROLES[: len(trainers)]) + [LANE_ROLE] * len(lanes)
    header_extra = {
        "session_version": LANES_VERSION if lanes else 1,
        "roles": roles,
        "rso_version": __version__,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "app": app,
    }
    try:
        return save_checkpoint(path, trainers + lanes, extra=header_extra, kind=SESSION_FORMAT)
    except OSError as exc:
        raise SessionError(
            f"cannot save session {path}: {exc.strerror or exc}; the previous file, if any, is unchanged"
        ) from exc


def _check_header(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    extra = header.get("extra")
    if not isinstance(extra, dict) or "session_version" not in extra:
        raise SessionError(f"{path} is damaged or not an rso session (its header has no session version)")
    version = extra["session_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SessionError(
            f"{path} has an unknown session format version {version!r}; it was not written "
            "by a released rso and cannot be opened"
        )
    if version > SESSION_VERSION:
        raise SessionError(
            f"{path} was saved by a newer rso ({extra.get('rso_version', '?')}, session format "
            f"version {version}; this rso {__version__} reads up to {SESSION_VERSION}); "
            "upgrade rso to open it"
        )
    roles = extra.get("roles")
    n = len(header["trainers"])
    main = [r for r in roles if r != LANE_ROLE] if isinstance(roles, list) else None
    lanes = len(roles) - len(main) if main is not None else 0
    if (not main or len(main) > 2 or main != list(_ROLES[: len(main)]) or roles[: len(main)] != main
            or len(roles) != n or lanes > MAX_LANES or (lanes and version < LANES_VERSION)):
        raise SessionError(f"{path} is damaged: its header lists {n} runs for roles {roles!r} "
                           f"(a session holds {_ROLES[0]!r}, optionally {_ROLES[1]!r}, then up to "
                           f"{MAX_LANES} {LANE_ROLE!r} runs)")
    algorithms = [entry["config"].get("algorithm", "rso") for entry in header["trainers"]]
    if algorithms[: len(main)] != main or any(a not in _ROLES for a in algorithms):
        raise SessionError(f"{path} is damaged: its runs are {algorithms!r} for roles {roles!r}")
    if not isinstance(extra.get("app", {}), dict):
        raise SessionError(f"{path} is damaged: the window's settings in it are not a JSON object")
    return extra


def read_session_info(path: str | Path) -> dict[str, Any]:
    """What a session file holds, without building trainers (cheap; for "Open" dialogs and ``rso session``).

    Returns ``{"session_version", "rso_version", "saved_at", "app", "runs": [{"role", "config",
    "history", "finished_cycles"}]}`` with each config validated (a full dict, as ``RunConfig.to_dict``
    writes it) and each history checked. Raises :class:`SessionError` like :func:`load_session`; the
    weights and the rest of the state are checked only when the session is loaded.
    """
    path = Path(path)
    header = _read_header(path)
    extra = _check_header(path, header)
    try:
        configs = checkpoint_configs(path, header, kind=SESSION_FORMAT)
    except CheckpointError as exc:
        raise SessionError(str(exc)) from exc
    runs = []
    for role, entry, config in zip(extra["roles"], header["trainers"], configs):
        history = entry["state"]["history"]
        runs.append(
            {
                "role": role,
                "config": config.to_dict(),
                "history": history,
                "finished_cycles": history[-1][1] if history else 0,
            }
        )
    return {
        "session_version": extra["session_version"],
        "rso_version": extra.get("rso_version"),
        "saved_at": extra.get("saved_at"),
        "app": extra.get("app", {}),
        "runs": runs,
    }


def _read_header(path: Path) -> dict[str, Any]:
    try:
        header, _ = read_checkpoint(path, kind=SESSION_FORMAT)
    except SessionError:
        raise
    except CheckpointError as exc:
        msg = str(exc)
        if f"{CHECKPOINT_FORMAT!r} file" in msg:
            raise SessionError(
                f"{path} is a training checkpoint, not a session; continue it with `rso train --resume {path}`"
            ) from exc
        raise SessionError(msg) from exc
    return header


def load_session(path: str | Path, dataset=None, backend: Backend | None = None, evaluator=None) -> Session:
    """Open a session saved by :func:`save_session`: trainers restored exactly, ready to continue.

    ``dataset`` (a :class:`~rso_engine.data.Dataset`) saves loading the data again; it must be the data
    the session was trained on (by default the config's dataset is loaded). ``evaluator`` overrides
    the saved config's evaluator choice (all evaluators give the same numbers).
    """
    path = Path(path)
    header = _read_header(path)
    extra = _check_header(path, header)
    try:
        trainers, _ = load_checkpoint(path, dataset=dataset, backend=backend, evaluator=evaluator, kind=SESSION_FORMAT)
    except SessionError:
        raise
    except CheckpointError as exc:
        raise SessionError(str(exc)) from exc
    lanes = [t for role, t in zip(extra["roles"], trainers) if role == LANE_ROLE]
    roles = {role: t for role, t in zip(extra["roles"], trainers) if role != LANE_ROLE}
    if "rso" not in roles:
        raise SessionError(f"{path} is damaged: it has no main run")
    info = {k: extra.get(k) for k in ("session_version", "rso_version", "saved_at")}
    return Session(roles["rso"], roles.get("sgd"), dict(extra.get("app") or {}), path, info, lanes)
