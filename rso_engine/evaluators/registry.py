"""Which evaluators exist, which one ``"auto"`` picks, and building one by name.

:data:`AUTO_ORDER` is the order of preference: the GPU kernels, the CPU's compiled kernels, the
vectorised NumPy/CuPy incremental evaluator, the authors' layer cache, and the reference last (it can
always run). ``"auto"`` takes the first whose availability check passes for the model.

The incremental evaluators cannot follow a residual link (:func:`~.routes.incremental_unavailable`); asked
for one by name on such a model (the paper's CIFAR net), :func:`make_evaluator` builds a
:class:`StandInEvaluator` instead: the authors' layer cache, exact on any network, whose
:meth:`~StandInEvaluator.describe` says what it stands in for and why. ``"auto"`` picks ``layer-cached``
there directly.

This module imports every implementation; none of them imports it (an import-linter contract in
``pyproject.toml`` keeps it so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..models import Model
from ..vocabulary import EVALUATOR_NAMES
from .base import Evaluator
from .cupy import CupyIncrementalEvaluator, cupy_evaluator_unavailable
from .incremental import IncrementalEvaluator
from .layer_cached import LayerCachedEvaluator
from .numba import NumbaIncrementalEvaluator, numba_evaluator_unavailable
from .reference import ReferenceEvaluator
from .routes import incremental_unavailable, residual_blocks

Array = Any


def _always(model: Model) -> str:
    return ""


#: name -> (evaluator class, availability check: '' if it can run on the model, else why not)
EVALUATORS: dict[str, tuple[type[Evaluator], Callable[[Model], str]]] = {
    "incremental-cupy": (CupyIncrementalEvaluator, cupy_evaluator_unavailable),
    "incremental-numba": (NumbaIncrementalEvaluator, numba_evaluator_unavailable),
    "incremental": (IncrementalEvaluator, incremental_unavailable),
    "layer-cached": (LayerCachedEvaluator, _always),
    "reference": (ReferenceEvaluator, _always),
}

#: the order "auto" tries them in (and the order they are listed in): the vocabulary's list of names
AUTO_ORDER: tuple[str, ...] = EVALUATOR_NAMES
assert set(AUTO_ORDER) == set(EVALUATORS), "vocabulary.EVALUATOR_NAMES must name every evaluator"


def evaluator_names() -> list[str]:
    """Every evaluator's name, in the order "auto" prefers them."""
    return list(AUTO_ORDER)


def unavailable(name: str, model: Model) -> str:
    """Why evaluator ``name`` cannot run on ``model`` ('' if it can)."""
    return EVALUATORS[name][1](model)


#: the evaluators that follow a change channel by channel (:mod:`.routes`)
INCREMENTAL: tuple[str, ...] = ("incremental-cupy", "incremental-numba", "incremental")


class StandInEvaluator(LayerCachedEvaluator):
    """The authors' layer cache standing in for an incremental evaluator asked for by name on a model it
    cannot follow (residual links): the same, exact choices, and a description that says so."""

    def __init__(self, model: Model, x_train: Array, y_train: Array, requested: str, why: str):
        super().__init__(model, x_train, y_train)
        self.requested, self.why = requested, why

    def describe(self) -> str:
        return f"{self.name} in place of {self.requested} ({self.why})"


def auto_choice(model: Model) -> str:
    """The evaluator ``"auto"`` picks for ``model``: the first of :data:`AUTO_ORDER` that can run on it."""
    return next((n for n in AUTO_ORDER if not unavailable(n, model)), "reference")


def stand_in_reason(name: str, model: Model) -> str:
    """Why :func:`make_evaluator` builds the layer cache in place of ``name`` on ``model`` ('' if it does not):
    ``name`` is an incremental evaluator that could run here but for the model's residual links."""
    if name not in INCREMENTAL or not residual_blocks(model):
        return ""
    why = unavailable(name, model)
    return why if why and why == incremental_unavailable(model) else ""


def make_evaluator(name: str, model: Model, x_train: Array, y_train: Array) -> Evaluator:
    """Build the named evaluator, or for ``"auto"`` the first of :data:`AUTO_ORDER` that can run on ``model``.

    An incremental evaluator asked for on a model with residual links is a :class:`StandInEvaluator`."""
    if name == "auto":
        name = auto_choice(model)
    if name not in EVALUATORS:
        raise ValueError(f"unknown evaluator {name!r}: choose auto or one of {', '.join(AUTO_ORDER)}")
    stand_in = stand_in_reason(name, model)
    if stand_in:
        return StandInEvaluator(model, x_train, y_train, name, stand_in)
    why = unavailable(name, model)
    if why:
        raise ValueError(f"evaluator {name!r} cannot run here: {why}")
    return EVALUATORS[name][0](model, x_train, y_train)
