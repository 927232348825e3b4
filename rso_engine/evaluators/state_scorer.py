"""Scoring weights against a fixed state: the inner loop of the paper's layer-parallel update.

In a layer-parallel sweep every weight of a layer is scored against the state the network had when the
layer's sweep began, and nothing is applied until the layer ends. Since the state does not move, the
weights are independent and are scored many at a time (:meth:`StateScorer.score`):

- the output layer (a dense layer feeding the loss): the logits of the whole training set (or of the
  shared batch) are computed once for the layer's sweep when no batch norm precedes it, and gathered for
  each weight's batch; a candidate changes one logit column by ``Δ·h[:, j]``; the summed cross-entropies
  of all candidates of a chunk are one vectorised expression;
- any other layer: the swept layer's input is computed once per batch (gathered from a training-set
  cache when no batch norm precedes it, or from the frozen input in batch mode "authors"), and each
  candidate runs the network from the swept layer with the candidate's tensor; when nothing after the
  swept layer normalises with batch statistics, a weight's three candidates go through the later layers
  as one stacked batch.

Every weight's numbers are computed the same way whichever chunk it arrives in, so the results do not
depend on how the weights are chunked, nor on which process scores a chunk (the cluster's layer-parallel
update, :mod:`rso_engine.distributed.layer_scoring`).

The plain reference it is tested against scores each weight with full forward passes from the saved
layer state; the choices and values agree exactly in float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import to_numpy
from ..kernels.forward import run_layers
from ..layers import AvgPool2d, Conv2d, Dense, Flatten, GlobalAvgPool, MaxPool2d, ReLU
from ..models import cross_entropy
from .base import SweepResult, choose_many
from .caching import CachingEvaluator

Array = Any

#: layers that treat every sample on its own (candidates can share one pass through them)
PER_SAMPLE = (Conv2d, ReLU, MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten, Dense)
#: float64 elements of candidate logits held at once by the output-layer path
LOGIT_BUDGET = 4 << 20


class StateScorer(CachingEvaluator):
    """Scores candidates of many weights against the current state and leaves the model unchanged."""

    name = "state-scorer"
    description = "scores a layer's weights against its starting state, many at a time (layer-parallel)"

    def __init__(self, model, x_train, y_train):
        super().__init__(model, x_train, y_train)
        self._logits: tuple | None = None  # ((samples, parameter generations), (input, logits)) of the output layer

    def sweep(self, param, flat, deltas, batches, stay_factor):
        """Not a sequential evaluator: :meth:`score` scores without applying."""
        raise TypeError("StateScorer scores against a fixed state; use score() (a parallel update)")

    def score(self, param: str, flat: np.ndarray, deltas: np.ndarray, batches: np.ndarray,
              stay_factor: float) -> SweepResult:
        """Score weights ``flat`` of ``param`` (Δ ``deltas[k]``, batch ``batches[k]`` or ``batches[0]``,
        stay value w·``stay_factor``) against the current state; ``new`` holds each weight's chosen value.
        The model is not changed."""
        self.check_external_changes()
        self.prune_boundaries()
        model = self.model
        K = len(flat)
        w = to_numpy(model.params[param].reshape(-1)[self.xp.asarray(flat)]).astype(np.float64)
        d = np.asarray(deltas, np.float64)
        cands = np.stack([w + d, w * stay_factor, w - d], axis=1).astype(model.dtype)  # as candidates()
        losses = np.empty((K, 3))
        A = self.layer_index(param)
        if A == self.n_layers - 1 and isinstance(self.layers[A], Dense):
            self._score_output(param, flat, cands, w, batches, losses)
        else:
            self._score_layer(param, A, flat, cands, w, batches, losses)
        choices = choose_many(losses)
        new = cands[np.arange(K), 1 - choices.astype(np.int64)].astype(np.float64)
        return SweepResult(losses, choices, w, new)

    # ------------------------------------------------------------------ any layer
    def _score_layer(self, param, A, flat, cands, w, batches, losses):
        model = self.model
        base = model.params[param]
        layer = self.layers[A]
        stacked = all(isinstance(later, PER_SAMPLE) for later in self.layers[A + 1 :])
        conv = isinstance(layer, Conv2d)  # a conv's candidate output is its output plus Δ times one input window
        for ks, idx in _batch_groups(len(flat), batches):
            dev = self.to_dev(idx)
            xin, yb = self.boundary_rows(A, dev), self.y_train[dev]
            if conv:
                p = layer.pad
                xin = self.xp.pad(xin, ((0, 0), (0, 0), (p, p), (p, p))) if p else xin
                out0 = self.kernels.conv_from_padded(layer, model.params, xin)
            pending = []  # (k, c, output of the swept layer) of one weight, for one stacked pass
            for k in ks:
                f = int(flat[k])
                for c in range(3):  # the stay candidate too, computed as the others are (exact ties stay ties)
                    if conv:
                        out = self._conv_candidate(layer, param, f, float(cands[k, c]) - w[k],
                                                   xin, out0)
                    else:
                        t = self.xp.array(base, copy=True)
                        t.reshape(-1)[f] = cands[k, c]
                        out = layer.forward({**model.params, param: t}, xin, True)[0]
                    if stacked:
                        pending.append((k, c, out))
                    else:
                        losses[k, c] = float(cross_entropy(self.forward_with(model.params, out, A + 1), yb))
                if stacked:  # one weight's candidates per pass: the numbers never depend on the chunking
                    self._flush(pending, A, yb, losses)
            del xin

    def _conv_candidate(self, layer: Conv2d, param: str, f: int, d: float, xpad: Array, out0: Array) -> Array:
        """The conv's output with weight ``f`` of ``param`` changed by ``d``: one output channel moves."""
        shape = self.model.params[param].shape
        out = out0.copy()
        if d == 0.0:
            return out
        if param.endswith(".bias"):
            out[f] += d
            return out
        o, c, kh, kw = np.unravel_index(f, shape)
        H, W = out0.shape[2:]
        out[o] += d * xpad[c, :, kh : kh + H, kw : kw + W]
        return out

    def forward_with(self, P: dict, x: Array, start: int) -> Array:
        """Layers ``start ..`` in training mode with the parameters ``P``."""
        return run_layers(self.layers, P, x, start, None, self.kernels)

    def _flush(self, pending, A, yb, losses):
        """One pass of the stacked candidates' swept-layer outputs through the per-sample later layers."""
        xp = self.xp
        outs = [o for _, _, o in pending]
        axis = 1 if outs[0].ndim == 4 else 0
        logits = self.forward_with(self.model.params, xp.concatenate(outs, axis=axis), A + 1)
        B = int(yb.shape[0])
        per = to_numpy(cross_entropy(logits, xp.tile(yb, len(pending)), reduction="none"))
        for n, (k, c, _) in enumerate(pending):
            losses[k, c] = float(per[n * B : (n + 1) * B].sum())
        pending.clear()

    # ------------------------------------------------------------------ the output layer
    def _score_output(self, param, flat, cands, w, batches, losses):
        xp = self.xp
        A = self.n_layers - 1
        layer = self.layers[A]
        is_bias = param.endswith(".bias")
        rows, cols = (flat, None) if is_bias else np.divmod(flat, layer.fin)
        dc = cands.astype(np.float64) - w[:, None]  # (K, 3) changes of the candidates
        K, B = len(flat), batches.shape[1]
        whole = self.store_worthwhile(A)  # per-sample inputs: the training set's logits, gathered per batch
        if whole or len(batches) == 1:
            # the state is fixed: the logits of every sample (the training set, or the shared batch) once
            idx = None if whole else batches[0]
            h, z = self._output_cache(A, idx)
            take = batches if whole else np.arange(B)[None]
            labels = self.y_train if whole else self.y_train[self.to_dev(idx)]
            step = max(1, LOGIT_BUDGET // (3 * B * int(z.shape[1])))
            for s in range(0, K, step):
                e = min(K, s + step)
                shared = len(take) == 1
                sel = take if shared else take[s:e]
                which = np.zeros(e - s, np.int64) if shared else np.arange(e - s)
                losses[s:e] = _output_losses(xp, h, z, labels, sel, which, rows[s:e],
                                             None if cols is None else cols[s:e], dc[s:e])
            return
        for k in range(K):  # batch norm before the output layer and a fresh batch per weight: a prefix per batch
            dev = self.to_dev(batches[k])
            h = self.boundary_rows(A, dev)
            z = layer.forward(self.model.params, h, True)[0]
            losses[k : k + 1] = _output_losses(xp, h, z, self.y_train[dev], np.arange(len(batches[k]))[None],
                                               np.zeros(1, np.int64), rows[k : k + 1],
                                               None if cols is None else cols[k : k + 1], dc[k : k + 1])

    def _output_cache(self, A: int, idx: np.ndarray | None) -> tuple[Array, Array]:
        """The output layer's input and logits for the training set (``idx`` None) or the batch ``idx``,
        kept while no parameter changes (the whole of a layer-parallel sweep)."""
        key = (None if idx is None else idx.tobytes(), self.deps(self.model.params))
        if self._logits is not None and self._logits[0] == key:
            return self._logits[1]
        self._logits = None
        h = self.train_boundary(A) if idx is None else self.boundary_rows(A, self.to_dev(idx))
        z = self.layers[A].forward(self.model.params, h, True)[0]
        self._logits = (key, (h, z))
        return h, z

    def drop_caches(self):
        self._logits = None


def _batch_groups(K: int, batches: np.ndarray):
    """(weights, batch) pairs: every weight on the shared batch, or each weight on its own."""
    if len(batches) == 1:
        return [(list(range(K)), batches[0])]
    return [([k], batches[k]) for k in range(K)]


def _output_losses(xp, h, z, labels, sel, which, rows, cols, dc) -> np.ndarray:
    """Summed cross-entropies (m, 3) of the candidates of m output-layer weights. Samples: ``h`` (S, F) the
    layer's input, ``z`` (S, O) its logits, ``labels`` (S,); weight k is scored on samples ``sel[which[k]]``
    and changes logit column ``rows[k]`` by ``dc[k, c]·h[:, cols[k]]`` (by ``dc[k, c]`` for a bias)."""
    m = len(rows)
    smp = xp.asarray(sel)[xp.asarray(which)]  # (m, B) sample indices
    zb = z[smp].astype(xp.float64)  # (m, B, O)
    r = xp.asarray(rows)
    ar = xp.arange(m)
    base = zb[ar, :, r]  # (m, B): the changed column before the change
    step = xp.ones_like(base) if cols is None else h[smp, xp.asarray(cols)[:, None]].astype(xp.float64)
    lab = labels[smp]  # (m, B)
    out = np.empty((m, 3))
    for c in range(3):
        zc = zb.copy()
        zc[ar, :, r] = base + xp.asarray(dc[:, c])[:, None] * step
        zmax = zc.max(axis=2, keepdims=True)
        lse = xp.log(xp.exp(zc - zmax).sum(axis=2)) + zmax[:, :, 0]
        zy = xp.take_along_axis(zc, lab[:, :, None], axis=2)[:, :, 0]
        out[:, c] = to_numpy((lse - zy).sum(axis=1))
    return out
