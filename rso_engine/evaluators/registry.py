"""Which evaluators exist, which one ``"auto"`` picks, and building one by name.

:data:`AUTO_ORDER` is the order of preference: the GPU kernels, the CPU's compiled kernels, the
vectorised NumPy/CuPy incremental evaluator, the authors' layer cache, and the reference last (it can
always run). ``"auto"`` takes the first whose availability check passes for the model.

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
from .routes import incremental_unavailable

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


def make_evaluator(name: str, model: Model, x_train: Array, y_train: Array) -> Evaluator:
    """Build the named evaluator, or for ``"auto"`` the first of :data:`AUTO_ORDER` that can run on ``model``."""
    if name == "auto":
        name = next((n for n in AUTO_ORDER if not unavailable(n, model)), "reference")
    if name not in EVALUATORS:
        raise ValueError(f"unknown evaluator {name!r}: choose auto or one of {', '.join(AUTO_ORDER)}")
    why = unavailable(name, model)
    if why:
        raise ValueError(f"evaluator {name!r} cannot run here: {why}")
    return EVALUATORS[name][0](model, x_train, y_train)
