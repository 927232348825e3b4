"""A finished run as small plain data: what a Dask task sends back and what a study folder keeps per run.

A :class:`RunRecord` holds the run's config, its per-cycle history and the few facts a report needs about
where it ran (dataset, evaluator, backend, batch size), never the data or the trainer, so it travels
between processes and machines cheaply and is written as one JSON file per run (``DIR/runs/KEY.json``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

import numpy as np

from ..config import RunConfig
from ..events import Evaluated

RECORD_FORMAT = "rso-run"
RECORD_VERSION = 1


@dataclass
class RunRecord:
    """One finished run: ``config`` and ``history`` decide its numbers; the rest describes it."""

    label: str
    config: RunConfig
    history: list[Evaluated]
    wall_seconds: float
    dataset: str
    dataset_source: str
    n_train: int
    n_test: int
    evaluator: str
    backend: str
    batch_size: int  # RSO's batch, or the SGD trainer's
    forward_samples: int  # the trainer's count at the end (an equal-budget SGD run stops mid-epoch)
    budget: int | None = None
    note: str = ""
    worker: str = ""  # where it finished ("" in this process)
    resumed_from: int = 0  # cycles/epochs it found done in its checkpoint when it (re)started
    weights: dict[str, np.ndarray] | None = field(default=None, repr=False)  # only when asked for

    @property
    def algorithm(self) -> str:
        return self.config.algorithm

    @classmethod
    def from_trainer(cls, label: str, trainer, wall_seconds: float, budget: int | None = None, note: str = "",
                     worker: str = "", resumed_from: int = 0, keep_weights: bool = False) -> RunRecord:
        """The record of a trainer that has finished (its history as it stands)."""
        rso = trainer.algorithm == "rso"
        weights = None
        if keep_weights:
            from ..backend import to_numpy  # noqa: PLC0415

            weights = {k: np.asarray(to_numpy(v)) for k, v in trainer.model.params.items()}
        return cls(
            label=label, config=trainer.config, history=list(trainer.history), wall_seconds=float(wall_seconds),
            dataset=trainer.dataset.name, dataset_source=str(trainer.dataset.source),
            n_train=int(trainer.n_train), n_test=int(trainer.dataset.n_test),
            evaluator=getattr(getattr(trainer, "scoring", None), "name", ""), backend=trainer.backend.describe(),
            batch_size=int(trainer.config.batch_size if rso else trainer.batch_size),
            forward_samples=int(trainer.forward_samples), budget=budget, note=note, worker=worker,
            resumed_from=int(resumed_from), weights=weights,
        )  # fmt: skip

    def to_json(self) -> str:
        """The record as JSON (the weights, if any, are not part of it)."""
        doc = {"format": RECORD_FORMAT, "version": RECORD_VERSION}
        doc.update({k: v for k, v in self.__dict__.items() if k not in ("config", "history", "weights")})
        doc["config"] = self.config.to_dict()
        doc["history"] = [list(ev) for ev in self.history]
        return json.dumps(doc, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        """Read :meth:`to_json`'s text; ``ValueError`` if it is not a run record of this version."""
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("format") != RECORD_FORMAT or doc.get("version") != RECORD_VERSION:
            raise ValueError("not an rso run record of version 1")
        doc.pop("format")
        doc.pop("version")
        doc["config"] = RunConfig.from_dict(doc["config"])
        doc["history"] = [Evaluated(str(r[0]), int(r[1]), *map(float, r[2:5]), int(r[5]), int(r[6]), float(r[7]))
                          for r in doc["history"]]
        return cls(**doc)


def run_key(label: str, config: RunConfig, budget: int | None = None) -> str:
    """A file-name-safe key for a run: its label and a digest of everything that decides its numbers.

    The same label, config and budget give the same key, so a study run again finds its finished runs.
    """
    ident = json.dumps({"config": config.to_dict(), "budget": budget}, sort_keys=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower() or "run"
    return f"{slug}-{hashlib.sha1(ident.encode()).hexdigest()[:10]}"
