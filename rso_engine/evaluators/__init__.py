"""How RSO scores candidate weights: the evaluators, one per way of computing the same choices.

- :mod:`.base`: the interface (:class:`Evaluator`, :class:`SweepResult`) and the pick (:func:`choose`);
- :mod:`.reference`: the oracle, three full forward passes per weight;
- :mod:`.caching`: the cache bookkeeping the fast evaluators share;
- :mod:`.layer_cached`: the authors' method (the swept layer's input cached);
- :mod:`.routes` and :mod:`.incremental`: exact incremental scoring, vectorised with NumPy/CuPy;
- :mod:`.numba` and :mod:`.cupy`: the same on compiled CPU kernels and on the GPU;
- :mod:`.registry`: the names, the order ``"auto"`` prefers, :func:`make_evaluator`.

The compiled inner loops live in :mod:`rso_engine.kernels`, which never imports this package.
"""

from .base import Evaluator, SweepResult, candidates, choose, choose_many
from .registry import AUTO_ORDER, EVALUATORS, evaluator_names, make_evaluator

__all__ = [
    "AUTO_ORDER",
    "EVALUATORS",
    "Evaluator",
    "SweepResult",
    "candidates",
    "choose",
    "choose_many",
    "evaluator_names",
    "make_evaluator",
]
