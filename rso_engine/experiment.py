"""Runs as reproducible experiments: building trainers from configs, histories, checkpoints.

A checkpoint is one ``.npz`` file (``np.savez``, no pickle) holding, for one or more trainers, the
config, the weights, the RNG streams, the sweep position and the history; loading it and iterating
``events()`` continues exactly as the uninterrupted run would have. Files are written atomically: to
a temporary file beside the target, then renamed over it, so a crash never leaves half a file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backend import Backend
from .config import RunConfig
from .events import Evaluated
from .files import write_atomic
from .training import RSOTrainer, SGDTrainer, Trainer
from .training import state as check

CHECKPOINT_FORMAT = "rso-checkpoint"
CHECKPOINT_VERSION = 2
#: models whose network changed since an older checkpoint version, with what changed: their saved
#: weights cannot be continued (version 1: the paper net before it followed the authors' layer order)
CHANGED_MODELS: dict[int, dict[str, str]] = {
    1: {"papernet": "the paper net then put batch norm before pooling and a ReLU before global pooling"},
}
HISTORY_FIELDS = tuple(Evaluated._fields)


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or does not fit; the message names the file and the fix."""


def make_trainer(config: RunConfig, dataset=None, backend: Backend | None = None, evaluator=None) -> Trainer:
    """An RSO or SGD trainer for ``config`` (``config.algorithm`` decides)."""
    if config.algorithm == "sgd":
        return SGDTrainer(config, dataset, backend)
    return RSOTrainer(config, dataset, backend, evaluator=evaluator)


# --------------------------------------------------------------------------- histories
def history_rows(history: Iterable[Evaluated]) -> list[dict[str, Any]]:
    """The history as a list of plain dicts (one per evaluation)."""
    return [ev._asdict() for ev in history]


def history_csv(history: Iterable[Evaluated]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history_rows(history))
    return buf.getvalue()


def save_history(path: str | Path, history: Sequence[Evaluated], config: RunConfig | None = None) -> Path:
    """Write a history as CSV (``.csv``) or JSON (any other suffix; the JSON includes the config)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        text = history_csv(history)
    else:
        doc = {"config": config.to_dict() if config else None, "history": history_rows(history)}
        text = json.dumps(doc, indent=2) + "\n"
    write_atomic(path, text.encode())
    return path


def load_history(path: str | Path) -> list[Evaluated]:
    """Read a history written by :func:`save_history` (CSV or JSON); a ``ValueError`` naming the file if
    it cannot be read or a row lacks a field or holds a value of the wrong type."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".csv":
            rows = list(csv.DictReader(io.StringIO(text)))
        else:
            rows = json.loads(text)["history"]
        return [Evaluated(
            str(row["algorithm"]), int(row["cycle"]), float(row["train_loss"]), float(row["test_loss"]),
            float(row["test_accuracy"]), int(row["weight_updates"]), int(row["forward_samples"]),
            float(row["seconds"]),
        ) for row in rows]
    except OSError as exc:
        raise ValueError(f"cannot read the history {path}: {exc.strerror or exc}") from exc
    except (ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        raise ValueError(f"{path} is not a readable rso history ({exc.__class__.__name__}: {exc}); "
                         "write it again with --history") from exc


# --------------------------------------------------------------------------- checkpoints
def _json_array(obj: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)


def save_checkpoint(path: str | Path, trainers: Trainer | Sequence[Trainer], extra: dict | None = None,
                    kind: str = CHECKPOINT_FORMAT) -> Path:
    """Save one or more trainers (e.g. an RSO run and its SGD baseline) to one ``.npz`` file, atomically.

    ``extra`` is any JSON-able dict stored alongside (a GUI can keep its view settings there).
    """
    if isinstance(trainers, Trainer):
        trainers = [trainers]
    header: dict[str, Any] = {"format": kind, "version": CHECKPOINT_VERSION, "trainers": [], "extra": extra or {}}
    arrays: dict[str, np.ndarray] = {}
    for i, trainer in enumerate(trainers):
        meta, arr = trainer.state_dict()
        header["trainers"].append({"config": trainer.config.to_dict(), "state": meta})
        arrays.update({f"t{i}/{k}": np.ascontiguousarray(v) for k, v in arr.items()})
    arrays["__header__"] = _json_array(header)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = Path(path)
    write_atomic(path, buf.getvalue())
    return path


def _noun(kind: str) -> str:
    return kind.removeprefix("rso-")  # "checkpoint", "session"


def _damaged(path: Path, kind: str, problem: str) -> CheckpointError:
    return CheckpointError(f"{path} is damaged: {problem}; use an earlier copy of the {_noun(kind)} "
                           "or start a new run")


def _parse_header(path: Path, raw: np.ndarray, kind: str) -> dict[str, Any]:
    try:
        header = json.loads(raw.tobytes().decode())
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deeply
        raise _damaged(path, kind, f"its header is not readable JSON ({exc.__class__.__name__})") from exc
    if not isinstance(header, dict):
        raise _damaged(path, kind, f"its header is a JSON {type(header).__name__}, not an object")
    return header


def _check_header(path: Path, header: dict[str, Any], kind: str) -> None:
    """The structure every checkpoint header has: format, version, trainers with config and state, extra."""
    fmt = header.get("format")
    if fmt != kind:
        if isinstance(fmt, str) and fmt.startswith("rso-"):
            raise CheckpointError(f"{path} holds a {fmt!r} file, not a {kind!r}")
        raise CheckpointError(f"{path} is damaged or not an rso {_noun(kind)}: its header names the format "
                              f"{check.describe(fmt)}, not {kind!r}")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path} has an unknown format version {version!r}; it was not written by a "
                              f"released rso and cannot be opened (the file may be damaged)")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} was written by a newer rso (format version {version}; this one reads up "
                              f"to {CHECKPOINT_VERSION}); upgrade rso to open it")
    entries = header.get("trainers")
    if not isinstance(entries, list) or not entries:
        raise _damaged(path, kind, "its header lists no runs ('trainers' must be a non-empty list)")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict) or not isinstance(
            entry.get("state"), dict
        ):
            raise _damaged(path, kind, f"run {i + 1} in its header is not an object with a config and a state")
    if not isinstance(header.get("extra", {}), dict):
        raise _damaged(path, kind, "the extra data in its header is not a JSON object")


def read_checkpoint(path: str | Path, kind: str = CHECKPOINT_FORMAT) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of a checkpoint, refusing other formats and newer versions clearly.

    The header is checked for its structure (a JSON object with a known format and version and a
    non-empty list of runs, each with a config and a state); the values are checked by
    :func:`checkpoint_configs` and the trainers' ``load_state_dict``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
        if magic != b"PK\x03\x04":  # np.load would take anything else for a pickle
            what = "it is empty" if not magic else "it is not an .npz archive"
            raise CheckpointError(f"{path} is not a readable rso file ({what}); it may be truncated, damaged or "
                                  f"not a {_noun(kind)}")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except CheckpointError:
        raise
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: no such file") from exc
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError: a damaged or foreign file
        raise CheckpointError(f"{path} is not a readable rso file ({exc.__class__.__name__}: {exc}); "
                              f"it may be truncated or not a {_noun(kind)}") from exc
    if "__header__" not in arrays:
        raise CheckpointError(f"{path} is an .npz file but not an rso {_noun(kind)} (no header)")
    header = _parse_header(path, arrays.pop("__header__"), kind)
    _check_header(path, header, kind)
    version = header["version"]
    for entry in header["trainers"]:
        changed = CHANGED_MODELS.get(version, {}).get(str(entry["config"].get("model", "")).lower())
        if changed:
            raise CheckpointError(f"{path} was made by an older version of rso (format version {version}): "
                                  f"{changed}, so its weights do not fit the network this rso trains; "
                                  "start a new run (the old rso can still open the file)")
    return header, arrays


def checkpoint_configs(path: str | Path, header: dict[str, Any], kind: str = CHECKPOINT_FORMAT) -> list[RunConfig]:
    """The validated config of each run in a header from :func:`read_checkpoint`, and its history checked."""
    path = Path(path)
    configs = []
    for i, entry in enumerate(header["trainers"]):
        try:
            config = RunConfig.from_dict(entry["config"])
        except Exception as exc:  # noqa: BLE001 - ConfigError, or a type the validation did not foresee
            raise _damaged(path, kind, f"the config of run {i + 1} is not valid ({exc})") from exc
        try:
            check.history(entry["state"].get("history"), config.algorithm)
        except check.StateError as exc:
            raise _damaged(path, kind, f"run {i + 1} ({config.algorithm}): {exc}") from exc
        configs.append(config)
    return configs


def load_checkpoint(path: str | Path, dataset=None, backend: Backend | None = None, evaluator=None,
                    kind: str = CHECKPOINT_FORMAT) -> tuple[list[Trainer], dict[str, Any]]:
    """Rebuild the trainers saved by :func:`save_checkpoint`, ready to continue; returns (trainers, extra).

    Every value read from the file is checked before it reaches a trainer (see
    :mod:`rso_engine.training.state`): anything that does not fit raises a :class:`CheckpointError`
    naming the file and the field; so does any other failure while rebuilding a run. A
    :class:`~rso_engine.data.DataError` (the run's data cannot be loaded here) passes through.
    """
    from .data import DataError  # noqa: PLC0415 - the data layer (and pooch) only when a run is rebuilt

    path = Path(path)
    header, arrays = read_checkpoint(path, kind)
    trainers = []
    for i, (entry, config) in enumerate(zip(header["trainers"], checkpoint_configs(path, header, kind))):
        run = f"run {i + 1} ({config.algorithm})"
        try:
            trainer = make_trainer(config, dataset, backend, evaluator)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - a config that validates yet cannot be built
            raise CheckpointError(f"{path}: {run} cannot be rebuilt from its saved config ({exc})") from exc
        prefix = f"t{i}/"
        mine = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        try:
            trainer.load_state_dict(entry["state"], mine)
        except check.StateError as exc:
            raise _damaged(path, kind, f"{run}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - nothing read from a file may escape as a traceback
            raise _damaged(path, kind, f"the saved state of {run} cannot be restored "
                                       f"({exc.__class__.__name__}: {exc})") from exc
        trainers.append(trainer)
    return trainers, header.get("extra", {})
