"""The oracle evaluator: Algorithm 1 as written, three full forward passes per weight."""

from __future__ import annotations

from ..models import cross_entropy
from .base import Array, Evaluator, SweepResult, candidates, choose


class ReferenceEvaluator(Evaluator):
    """The oracle: three plain full forward passes per weight, exactly Algorithm 1 as written."""

    name = "reference"
    description = "three full forward passes per weight (the plain algorithm)"

    def loss(self, xb: Array, yb: Array) -> float:
        """The summed cross-entropy of one full training-mode forward pass of the batch."""
        return float(cross_entropy(self.model.forward(xb, train=True), yb))

    def sweep(self, param, flat, deltas, batches, stay_factor):
        """Score each weight's three candidates with full forward passes; see :meth:`Evaluator.sweep`."""
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
