"""The authors' speed trick as an evaluator (:class:`LayerCachedEvaluator`).

The MXNet code of arXiv 2005.05955 freezes the layers before layer d while d is swept, so their output is
computed once and each of the three trials runs the network from layer d on. Where batch norm precedes
d and every weight draws a fresh batch, the input of d depends on the batch's statistics; this evaluator
then runs the prefix once per weight (shared by the three trials) so that it stays exact.
"""

from __future__ import annotations

import numpy as np

from ..models import cross_entropy
from .base import SweepResult, candidates, choose
from .caching import CachingEvaluator


class LayerCachedEvaluator(CachingEvaluator):
    """The authors' method: cache the input of the layer being swept, run the network from there.

    Three forward passes from the swept layer per weight. The swept layer's input comes from a
    training-set cache (no batch norm before it), from the shared batch (batch modes "layer" and
    "cycle"), or, with batch norm before it and a fresh batch per weight, from one prefix pass per
    weight shared by the three trials.
    """

    name = "layer-cached"
    description = "caches the swept layer's input; three passes from that layer per weight (the authors' method)"

    def __init__(self, model, x_train, y_train):
        super().__init__(model, x_train, y_train)
        self._shared: tuple | None = None  # (L, batch indices, deps, xin, yb)

    def drop_caches(self):
        self._shared = None

    def _shared_input(self, L: int, idx: np.ndarray):
        deps = self.deps(self.params_before(L))
        s = self._shared
        if s is not None and s[0] == L and s[2] == deps and np.array_equal(s[1], idx):
            return s[3], s[4]
        d = self.to_dev(idx)
        xin, yb = self.boundary_rows(L, d), self.y_train[d]
        self._shared = (L, idx.copy(), deps, xin, yb)
        return xin, yb

    def sweep(self, param, flat, deltas, batches, stay_factor):
        """Three passes from the swept layer's cached input per weight; see :meth:`Evaluator.sweep`."""
        self.check_external_changes()
        model = self.model
        L = self.group_start(param)
        use_store = self.store_worthwhile(L)
        view = model.params[param].reshape(-1)
        K = len(flat)
        res = SweepResult.empty(K)
        losses, choices, old, new = res.losses, res.choices, res.old, res.new
        shared = len(batches) == 1
        if shared:
            xin, yb = self._shared_input(L, batches[0])
        for k in range(K):
            if not shared:
                d = self.to_dev(batches[k])
                xin, yb = self.boundary_rows(L, d, use_store), self.y_train[d]
            f = int(flat[k])
            w = float(view[f])
            cands = candidates(w, float(deltas[k]), stay_factor, model.dtype)
            for c in range(3):
                view[f] = cands[c]
                losses[k, c] = float(cross_entropy(model.forward(xin, train=True, start=L), yb))
            choices[k] = choose(*losses[k])
            value = cands[1 - int(choices[k])]
            view[f] = value
            old[k], new[k] = w, float(value)
        self.record_sweep(param, flat, res)
        return res
