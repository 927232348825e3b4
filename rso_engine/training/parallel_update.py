"""The paper's parallel updates: a layer's starting state and the values chosen so far, merged at its end.

With ``update="layer-parallel"`` every weight of a layer is scored against the state the network had when
the layer's sweep began; with ``update="neuron-parallel"`` the weights feeding one output neuron (one row
of a dense weight, one filter of a conv weight; each element of a bias or batch-norm vector is a neuron of
its own) are searched one after the other, every neuron starting from the layer's starting state. Either
way the chosen values wait in :class:`LayerMerge` and are applied together when the layer ends.

What is kept is a copy of the swept layer's tensors only (its starting values and the pending ones), never
of the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import to_numpy
from . import state as check

Array = Any


def neuron_size(shape: tuple[int, ...]) -> int:
    """How many consecutive weights of a tensor feed one output neuron: the product of all axes but the
    first for a weight tensor, 1 for a vector (bias, batch-norm γ/β)."""
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


class LayerMerge:
    """One layer of a parallel update in progress: ``start`` (its tensors when the sweep began) and
    ``pending`` (the values chosen so far; the starting value where nothing was chosen yet)."""

    def __init__(self, start: dict[str, np.ndarray], pending: dict[str, np.ndarray]):
        self.start, self.pending = start, pending

    @classmethod
    def begin(cls, params: dict[str, Array], names: tuple[str, ...]) -> LayerMerge:
        """Start a layer whose swept tensors are ``names`` (host copies of their current values)."""
        start = {p: np.array(to_numpy(params[p])) for p in names}
        return cls(start, {p: a.copy() for p, a in start.items()})

    def record(self, param: str, flat: np.ndarray, values: np.ndarray) -> None:
        """The values chosen for weights ``flat`` of ``param``."""
        self.pending[param].reshape(-1)[flat] = values

    def restored(self, param: str, current: Array, flat: np.ndarray) -> np.ndarray | None:
        """``current`` with weights ``flat`` put back to their starting values, or None if they already are."""
        now = np.array(to_numpy(current))
        view, start = now.reshape(-1), self.start[param].reshape(-1)
        if np.array_equal(view[flat], start[flat]):
            return None
        view[flat] = start[flat]
        return now

    # ------------------------------------------------------------------ state
    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays a checkpoint keeps: ``rso/start/<param>`` and ``rso/pending/<param>``."""
        out = {f"rso/start/{p}": a.copy() for p, a in self.start.items()}
        out.update({f"rso/pending/{p}": a.copy() for p, a in self.pending.items()})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any], params: dict[str, Array], names: tuple[str, ...]) -> LayerMerge:
        """A merge in progress read back from a checkpoint's :meth:`arrays` (each checked against the
        layer's tensors: a :class:`~rso_engine.training.state.StateError` if one is missing or does not fit)."""
        parts: dict[str, dict[str, np.ndarray]] = {"start": {}, "pending": {}}
        for kind, out in parts.items():
            for p in names:
                key = f"rso/{kind}/{p}"
                a = arrays.get(key)
                if a is None:
                    raise check.StateError(f"the array {key} is missing: the run stopped inside a parallel "
                                           "update's layer, whose starting and chosen values it needs")
                a = np.asarray(a)
                shape = tuple(params[p].shape)
                if a.shape != shape or not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
                    raise check.StateError(f"the array {key} must hold finite numbers of shape {shape}")
                out[p] = np.array(a, dtype=params[p].dtype)
        return cls(parts["start"], parts["pending"])


def merge_keys(arrays: dict[str, Any]) -> list[str]:
    """The names of a checkpoint's arrays that belong to a parallel update's layer in progress."""
    return [k for k in arrays if k.startswith(("rso/start/", "rso/pending/"))]
