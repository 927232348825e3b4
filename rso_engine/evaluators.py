"""How RSO scores candidate weights: one interface, a plain reference, and a registry for fast ones.

An evaluator owns the inner loop of a layer's sweep. :meth:`Evaluator.sweep` is handed a run of
consecutive weights of one parameter tensor, with each weight's Δ and mini-batch already drawn by the
trainer, and must, for each weight in turn: compute the summed cross-entropy on that weight's batch for
w + Δ, the stay value and w − Δ, pick with :func:`choose`, and write the chosen value into the model
before the next weight. Because the trainer draws all randomness, every evaluator sees the same inputs;
a fast evaluator is correct exactly when it returns the same choices and leaves the same weights as
:class:`ReferenceEvaluator`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .events import MINUS, PLUS, STAY
from .models import Model, ParamGroup, cross_entropy

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

    def __init__(self, model: Model, x_train: Array, y_train: Array):
        self.model = model
        self.xp = model.xp
        self.x_train = x_train
        self.y_train = y_train

    def begin_group(self, group: ParamGroup, params: tuple[str, ...]) -> None:
        """Called before a layer's sweep starts (or resumes); ``params`` are the ones to be swept."""

    def end_group(self, group: ParamGroup) -> None:
        """Called after a layer's sweep ends."""

    def invalidate(self) -> None:
        """The model's parameters were changed from outside (loaded, reset): drop any caches."""

    def sweep(self, param: str, flat: np.ndarray, deltas: np.ndarray, batches: np.ndarray,
              stay_factor: float) -> SweepResult:
        raise NotImplementedError

    def batch(self, idx: np.ndarray) -> tuple[Array, Array]:
        """The batch's inputs (model layout) and labels on the backend."""
        d = self.xp.asarray(idx)
        return self.x_train[:, d], self.y_train[d]


class ReferenceEvaluator(Evaluator):
    """The oracle: three plain full forward passes per weight, exactly Algorithm 1 as written."""

    name = "reference"
    description = "three full forward passes per weight (the plain algorithm)"

    def loss(self, xb: Array, yb: Array) -> float:
        return float(cross_entropy(self.model.forward(xb, train=True), yb))

    def sweep(self, param, flat, deltas, batches, stay_factor):
        K = len(flat)
        flat_view = self.model.params[param].reshape(-1)
        res = SweepResult.empty(K)
        losses, choices, old, new = res.losses, res.choices, res.old, res.new
        shared = self.batch(batches[0]) if len(batches) == 1 else None
        for k in range(K):
            xb, yb = shared if shared is not None else self.batch(batches[k])
            i = int(flat[k])
            w = float(flat_view[i])
            cands = candidates(w, float(deltas[k]), stay_factor, self.model.dtype)
            for c in range(3):
                flat_view[i] = cands[c]
                losses[k, c] = self.loss(xb, yb)
            choices[k] = choose(*losses[k])
            value = cands[1 - int(choices[k])]  # PLUS=1 -> 0, STAY=0 -> 1, MINUS=-1 -> 2
            flat_view[i] = value
            old[k], new[k] = w, float(value)
        return res


#: name -> (factory(model, x_train, y_train) -> Evaluator, availability check returning "" or a reason)
EvaluatorFactory = Callable[[Model, Array, Array], Evaluator]
_REGISTRY: dict[str, tuple[EvaluatorFactory, Callable[[Model], str]]] = {}
#: evaluator names in order of preference for "auto"
_PREFERENCE: list[str] = []


def register(name: str, factory: EvaluatorFactory, unavailable: Callable[[Model], str] = lambda m: "",
             preference: int | None = None) -> None:
    """Register an evaluator; ``unavailable(model)`` returns why it cannot run on that model ('' if it can)."""
    _REGISTRY[name] = (factory, unavailable)
    if name in _PREFERENCE:
        _PREFERENCE.remove(name)
    _PREFERENCE.insert(len(_PREFERENCE) if preference is None else preference, name)


register("reference", ReferenceEvaluator)


# --- the fast exact evaluators (imported lazily: they import this module) --------------------------
def _layer_cached(model: Model, x_train: Array, y_train: Array) -> Evaluator:
    from .layer_cached import LayerCachedEvaluator  # noqa: PLC0415

    return LayerCachedEvaluator(model, x_train, y_train)


def _incremental(model: Model, x_train: Array, y_train: Array) -> Evaluator:
    from .incremental import IncrementalEvaluator  # noqa: PLC0415

    return IncrementalEvaluator(model, x_train, y_train)


def _incremental_unavailable(model: Model) -> str:
    from .incremental import incremental_unavailable  # noqa: PLC0415

    return incremental_unavailable(model)


def _incremental_numba(model: Model, x_train: Array, y_train: Array) -> Evaluator:
    from .jit import NumbaIncrementalEvaluator  # noqa: PLC0415

    return NumbaIncrementalEvaluator(model, x_train, y_train)


def _incremental_numba_unavailable(model: Model) -> str:
    from .jit import numba_evaluator_unavailable  # noqa: PLC0415

    return numba_evaluator_unavailable(model)


def _incremental_cupy(model: Model, x_train: Array, y_train: Array) -> Evaluator:
    from .gpu_kernels import CupyIncrementalEvaluator  # noqa: PLC0415

    return CupyIncrementalEvaluator(model, x_train, y_train)


def _incremental_cupy_unavailable(model: Model) -> str:
    from .gpu_kernels import cupy_evaluator_unavailable  # noqa: PLC0415

    return cupy_evaluator_unavailable(model)


# "auto" takes the first that can run: the GPU kernels, the CPU JIT, the vectorised NumPy/CuPy one,
# the authors' layer cache, and the reference last (it always can).
register("layer-cached", _layer_cached, preference=0)
register("incremental", _incremental, _incremental_unavailable, preference=0)
register("incremental-numba", _incremental_numba, _incremental_numba_unavailable, preference=0)
register("incremental-cupy", _incremental_cupy, _incremental_cupy_unavailable, preference=0)


def evaluator_names() -> list[str]:
    return list(_PREFERENCE)


def make_evaluator(name: str, model: Model, x_train: Array, y_train: Array) -> Evaluator:
    """Build the named evaluator, or for ``"auto"`` the most preferred one that can run on ``model``."""
    if name == "auto":
        for candidate in _PREFERENCE:
            factory, unavailable = _REGISTRY[candidate]
            if not unavailable(model):
                return factory(model, x_train, y_train)
        name = "reference"
    if name not in _REGISTRY:
        raise ValueError(f"unknown evaluator {name!r}: choose auto or one of {', '.join(_PREFERENCE)}")
    factory, unavailable = _REGISTRY[name]
    why = unavailable(model)
    if why:
        raise ValueError(f"evaluator {name!r} cannot run here: {why}")
    return factory(model, x_train, y_train)
