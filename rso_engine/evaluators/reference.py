"""The oracle evaluator: Algorithm 1 as written, three full forward passes per weight."""

from __future__ import annotations

from ..models import cross_entropy
from .base import Array, Evaluator, SweepResult, candidates, choose, prefix_inputs, take_rows


class ReferenceEvaluator(Evaluator):
    """The oracle: three plain full forward passes per weight, exactly Algorithm 1 as written.

    In batch mode "authors" (:attr:`frozen_prefix`) the passes start at the swept layer, from its input
    computed for the whole training set when the layer's sweep began (:func:`prefix_inputs`)."""

    name = "reference"
    description = "three full forward passes per weight (the plain algorithm)"

    def __init__(self, model, x_train, y_train):
        super().__init__(model, x_train, y_train)
        self._start = 0  # the swept layer's index (batch mode "authors")
        self._frozen: Array | None = None  # its input for the training set, computed when first needed

    def begin_group(self, group, params):
        self._start = self.model.top_level_index()[group.name]  # a residual block for the layers in one
        self._frozen = None

    def invalidate(self):
        self._frozen = None

    def batch(self, idx):
        if not self.frozen_prefix:
            return super().batch(idx)
        if self._frozen is None:
            self._frozen = prefix_inputs(self.model, self.x_train, self._start)
        d = self.xp.asarray(idx)
        return take_rows(self._frozen, d), self.y_train[d]

    def loss(self, xb: Array, yb: Array) -> float:
        """The summed cross-entropy of one training-mode forward pass of the batch (from the swept layer's
        frozen input in batch mode "authors")."""
        start = self._start if self.frozen_prefix else 0
        return float(cross_entropy(self.model.forward(xb, train=True, start=start), yb))

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
