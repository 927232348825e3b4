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
    """Read a history written by :func:`save_history` (CSV or JSON)."""
    path = Path(path)
    text = path.read_text()
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        rows = json.loads(text)["history"]
    out = []
    for row in rows:
        out.append(Evaluated(
            str(row["algorithm"]), int(row["cycle"]), float(row["train_loss"]), float(row["test_loss"]),
            float(row["test_accuracy"]), int(row["weight_updates"]), int(row["forward_samples"]),
            float(row["seconds"]),
        ))
    return out


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


def read_checkpoint(path: str | Path, kind: str = CHECKPOINT_FORMAT) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of a checkpoint, refusing other formats and newer versions clearly."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: no such file") from exc
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError: a damaged or foreign file
        raise CheckpointError(f"{path} is not a readable rso file ({exc.__class__.__name__}: {exc}); "
                              "it may be truncated or not a checkpoint") from exc
    if "__header__" not in arrays:
        raise CheckpointError(f"{path} is an .npz file but not an rso checkpoint (no header)")
    header = json.loads(arrays.pop("__header__").tobytes().decode())
    if header.get("format") != kind:
        raise CheckpointError(f"{path} holds a {header.get('format')!r} file, not a {kind!r}")
    version = header.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} was written by a newer rso (format version {version}; this one reads up "
                              f"to {CHECKPOINT_VERSION}); upgrade rso to open it")
    for entry in header.get("trainers", []):
        model = str(entry.get("config", {}).get("model", "")).lower() if isinstance(entry, dict) else ""
        changed = CHANGED_MODELS.get(version, {}).get(model)
        if changed:
            raise CheckpointError(f"{path} was made by an older version of rso (format version {version}): "
                                  f"{changed}, so its weights do not fit the network this rso trains; "
                                  "start a new run (the old rso can still open the file)")
    return header, arrays


def load_checkpoint(path: str | Path, dataset=None, backend: Backend | None = None, evaluator=None,
                    kind: str = CHECKPOINT_FORMAT) -> tuple[list[Trainer], dict[str, Any]]:
    """Rebuild the trainers saved by :func:`save_checkpoint`, ready to continue; returns (trainers, extra)."""
    header, arrays = read_checkpoint(path, kind)
    trainers = []
    for i, entry in enumerate(header["trainers"]):
        config = RunConfig.from_dict(entry["config"])
        trainer = make_trainer(config, dataset, backend, evaluator)
        prefix = f"t{i}/"
        mine = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        try:
            trainer.load_state_dict(entry["state"], mine)
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: the saved state does not fit its config ({exc})") from exc
        trainers.append(trainer)
    return trainers, header.get("extra", {})
