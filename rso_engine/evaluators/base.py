"""How RSO scores candidate weights: the interface every evaluator implements, and the rule that picks.

An evaluator owns the inner loop of a layer's sweep. :meth:`Evaluator.sweep` is handed a run of
consecutive weights of one parameter tensor, with each weight's Δ and mini-batch already drawn by the
trainer, and must, for each weight in turn: compute the summed cross-entropy on that weight's batch for
w + Δ, the stay value and w − Δ, pick with :func:`choose`, and write the chosen value into the model
before the next weight. Because the trainer draws all randomness, every evaluator sees the same inputs;
a fast evaluator is correct exactly when it returns the same choices and leaves the same weights as
:class:`~rso_engine.evaluators.reference.ReferenceEvaluator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import AUTHORS_PREFIX_CHUNK
from ..events import MINUS, PLUS, STAY
from ..models import Model, ParamGroup

Array = Any


@dataclass
class SweepResult:
    """What a sweep of K weights did: losses (K, 3) as [plus, stay, minus], choices (K,), values."""

    losses: np.ndarray  # float64 (K, 3)
    choices: np.ndarray  # int8 (K,): PLUS, STAY or MINUS
    old: np.ndarray  # float64 (K,)
    new: np.ndarray  # float64 (K,)

    @classmethod
    def empty(cls, K: int) -> SweepResult:
        """Uninitialised arrays for K weights, to be filled by a sweep."""
        return cls(np.empty((K, 3)), np.empty(K, np.int8), np.empty(K), np.empty(K))


def choose(loss_plus: float, loss_stay: float, loss_minus: float) -> int:
    """Algorithm 1's pick: the lowest loss; a tie with the stay candidate keeps the weight.

    Between w + Δ and w − Δ a tie goes to w + Δ. A NaN loss never wins.
    """
    lp, ls, lm = (np.inf if v != v else v for v in (loss_plus, loss_stay, loss_minus))
    if ls <= lp and ls <= lm:
        return STAY
    return PLUS if lp <= lm else MINUS


def choose_many(losses: np.ndarray) -> np.ndarray:
    """Vectorised :func:`choose` over rows of a (K, 3) [plus, stay, minus] array."""
    lv = np.where(np.isnan(losses), np.inf, losses)
    lp, ls, lm = lv[:, 0], lv[:, 1], lv[:, 2]
    stay = (ls <= lp) & (ls <= lm)
    return np.where(stay, STAY, np.where(lp <= lm, PLUS, MINUS)).astype(np.int8)


def candidates(w: float, delta: float, stay_factor: float, dtype: np.dtype) -> np.ndarray:
    """The three candidate values [w + Δ, w·stay_factor, w − Δ], rounded to the model's dtype."""
    return np.array([w + delta, w * stay_factor, w - delta], dtype=np.float64).astype(dtype)


class Evaluator:
    """Scores and applies candidate weights. Subclasses override :meth:`sweep` (and the hooks).

    ``x_train`` is the training set in model layout (C, N, H, W) on the backend, ``y_train`` its labels
    (int64, backend). Batches arrive as host index arrays of shape (K, B), or (1, B) when every weight
    of the sweep shares one batch (batch modes "layer" and "cycle").
    """

    name = "base"
    description = ""
    #: batch mode "authors": a weight's batch is taken from the swept layer's input computed for the whole
    #: training set when the layer's sweep began (:func:`prefix_inputs`), not by running the earlier layers
    #: on it; set by the trainer through :meth:`set_frozen_prefix`
    frozen_prefix = False

    def __init__(self, model: Model, x_train: Array, y_train: Array):
        self.model = model
        self.xp = model.xp
        self.x_train = x_train
        self.y_train = y_train

    def describe(self) -> str:
        """One line naming the evaluator (and, for the fast ones, the kernels it runs)."""
        return self.name

    def begin_group(self, group: ParamGroup, params: tuple[str, ...]) -> None:
        """Called before a layer's sweep starts (or resumes); ``params`` are the ones to be swept."""

    def end_group(self, group: ParamGroup) -> None:
        """Called after a layer's sweep ends."""

    def invalidate(self) -> None:
        """The model's parameters were changed from outside (loaded, reset): drop any caches."""

    def set_frozen_prefix(self, on: bool) -> None:
        """Switch the authors' batch semantics (batch mode "authors") on or off; see :attr:`frozen_prefix`."""
        self.frozen_prefix = bool(on)
        self.invalidate()

    def assign(self, param: str, values: Array) -> None:
        """Set every value of ``param`` from outside a sweep (a parallel update's merge, a neuron put back
        to the layer's starting state), keeping the evaluator's caches consistent."""
        target = self.model.params[param]
        target[...] = self.xp.asarray(values, dtype=self.model.dtype).reshape(target.shape)
        self.invalidate()

    def sweep(self, param: str, flat: np.ndarray, deltas: np.ndarray, batches: np.ndarray,
              stay_factor: float) -> SweepResult:
        """Score and apply the weights ``flat`` (flat indices into ``param``, in sweep order): weight k
        gets Δ ``deltas[k]``, batch ``batches[k]`` (or ``batches[0]`` for all) and the stay value
        w·``stay_factor``; each chosen value is written before the next weight is scored."""
        raise NotImplementedError

    def batch(self, idx: np.ndarray) -> tuple[Array, Array]:
        """The batch's inputs (model layout) and labels on the backend."""
        d = self.xp.asarray(idx)
        return self.x_train[:, d], self.y_train[d]


def prefix_inputs(model: Model, x_train: Array, layer: int, chunk: int = AUTHORS_PREFIX_CHUNK) -> Array:
    """The input of ``model.layers[layer]`` for every training image, as the authors' code computes it
    when a layer's sweep begins: the earlier layers run in training mode on consecutive chunks of
    ``chunk`` images in dataset order, so each batch norm before ``layer`` uses its chunk's statistics."""
    if layer == 0:
        return x_train
    N = int(x_train.shape[1])
    parts = [model.forward(x_train[:, s : s + chunk], train=True, stop=layer) for s in range(0, N, chunk)]
    xp = model.xp
    return xp.concatenate(parts, axis=1 if parts[0].ndim == 4 else 0)


def take_rows(a: Array, idx: Array) -> Array:
    """Samples ``idx`` of an activation in model layout ((C, N, H, W) or (N, F))."""
    return a[:, idx] if a.ndim == 4 else a[idx]
