"""Exact incremental scoring: each candidate weight costs what it changes, not a forward pass.

Changing one weight changes one channel of its layer's output (a conv weight ``w[o, c, kh, kw]`` or bias
``b[o]``, a batch norm's ``γ[o]``/``β[o]``) or one output column (a dense weight ``w[i, j]`` or bias
``b[i]``). :class:`IncrementalEvaluator` scores a candidate by pushing only that channel forward:

1. the *anchor channel*: the changed layer's output channel ``o`` (conv: the cached channel plus
   ``Δ`` times a shifted input channel; batch norm: channel ``o`` re-normalised with the candidate γ/β;
   dense: the cached column plus ``Δ`` times an input column);
2. the *channel chain*: the per-channel layers that follow (batch norm with the channel's own batch
   statistics, ReLU, max/average pooling, global average pooling), applied to that channel alone;
3. the *mix*: the first layer that mixes channels (the next conv, or the dense layer after a flatten or
   a global average pool) receives only the change of channel ``o``: its output is the cached output
   plus that layer's weights for channel ``o`` applied to the change;
4. the rest of the network runs from the mixed layer's output (nothing later is per-channel any more).

The route a layer's changes take is found once from the layer types (:mod:`.routes`); the per-channel
pieces and the forward passes run on the evaluator's kernel set (:mod:`rso_engine.kernels.forward`: the
layers' own NumPy/CuPy code here; compiled by the subclasses in :mod:`.numba` and :mod:`.cupy`).

Nothing before the swept layer and no unchanged channel of it is recomputed. A change that vanishes
on the way (a ReLU that stays dead, a max-pool window whose maximum is elsewhere) gives exactly the
cached logits, so the reference's exact ties (which keep the weight) are reproduced exactly.

The output layer (a dense layer feeding the loss) gets its own path, :meth:`dense_kernel`: a candidate
changes logit column ``i`` by ``Δ·h[:, j]``, so its summed cross-entropy needs one ``exp`` per sample.
Its caches are the layer's input ``hT`` (features × samples) and the current logits ``zT`` (classes ×
samples, float64), for the whole training set when no batch norm precedes the layer (so a fresh batch
per weight is gathered from them, never recomputed) or for the shared batch; an accepted change updates
one row of ``zT``. :mod:`rso_engine.kernels.dense_sweep` compiles this loop for the CPU,
:mod:`rso_engine.kernels.cuda` runs it as one CUDA kernel; the loop here is the vectorised NumPy/CuPy
version.

Caches (see :class:`~rso_engine.evaluators.caching.CachingEvaluator`):

- fresh batch per weight (batch mode "weight"): the swept layer's input is gathered from a training-set
  cache when no batch norm precedes it, else computed by running the prefix on the batch; one forward
  pass from the swept layer gives the cached mix and logits; both candidates are then incremental;
- shared batch (modes "layer", "cycle"): everything is computed once for the batch and kept exact after
  every accepted change by storing the accepted candidate's channel, mix and logits. To bound rounding
  drift in float32 the state is recomputed at the start of every output channel/row of a tensor — a
  fixed position, so results do not depend on how the trainer chunks the sweep.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import to_numpy
from ..layers import BatchNorm2d, Conv2d, GlobalAvgPool, Layer, ReLU
from ..models import Model, cross_entropy
from .base import SweepResult, candidates, choose
from .caching import CachingEvaluator
from .routes import Route, find_route, incremental_unavailable

Array = Any


class _State:
    """Everything cached for one batch while one tensor of an anchor layer is swept."""

    __slots__ = ("route", "idx", "yb", "xin", "mix", "logits", "loss", "o", "a_old", "m_old", "deps", "B", "kept")

    def __init__(self, route: Route, idx, yb, xin, mix, logits, loss, deps, B, kept=None):
        self.route, self.idx, self.yb, self.xin = route, idx, yb, xin
        self.mix, self.logits, self.loss, self.deps, self.B = mix, logits, loss, deps, B
        self.o = -1
        self.a_old = self.m_old = None
        # (o, the anchor's output channel o) from the pass that built the state: the first channel made
        # current takes it instead of recomputing it (nothing has changed since)
        self.kept = kept


class DenseStore:
    """Caches of the output layer's sweep: its input ``hT`` (F, S), logits ``zT`` (classes, S) in
    float64 and labels ``lab`` (S,) for S samples (the training set or one batch)."""

    def __init__(self, hT: Array, zT: Array, lab: Array, prefix_deps: tuple, own_deps: tuple):
        self.hT, self.zT, self.lab = hT, zT, lab
        self.prefix_deps, self.own_deps = prefix_deps, own_deps
        self.aux: dict[str, Any] = {}  # per-backend scratch (the JIT's per-row session arrays)

    @property
    def size(self) -> int:
        return int(self.zT.shape[1])


class IncrementalEvaluator(CachingEvaluator):
    """Exact incremental evaluator, vectorised with the model's array module (NumPy or CuPy)."""

    name = "incremental"
    description = "scores each candidate at the cost of the channel it changes (NumPy/CuPy)"
    engine = "xp"

    def __init__(self, model: Model, x_train: Array, y_train: Array):
        super().__init__(model, x_train, y_train)
        why = incremental_unavailable(model)
        if why:
            raise ValueError(f"{self.name} cannot run on {model.name}: {why}")
        self._routes = {i: find_route(self.layers, i) for i, layer in enumerate(self.layers[:-1]) if layer.params}
        self._state: _State | None = None
        self._shared_in: tuple | None = None  # (L, idx, prefix deps, xin) for the shared batch
        self._train_store: DenseStore | None = None
        self._batch_store: DenseStore | None = None
        self._synced: list = []  # caches kept exact by the running sweep

    def describe(self) -> str:
        return f"{self.name} ({self.engine} on {self.model.backend.name})"

    def drop_caches(self):
        self._state = None
        self._shared_in = None
        self._train_store = None
        self._batch_store = None

    # ================================================================== sweep
    def sweep(self, param, flat, deltas, batches, stay_factor):
        self.check_external_changes()
        self.prune_boundaries()
        L = self.layer_index(param)
        if L == self.n_layers - 1:
            res = self._sweep_output_layer(param, flat, deltas, batches, stay_factor)
        else:
            res = self._sweep_channel(param, L, flat, deltas, batches, stay_factor)
        self.record_sweep(param, flat, res)
        # the caches kept exact during the sweep take the parameter's new generation
        for obj in self._synced:
            if isinstance(obj, DenseStore):
                obj.own_deps = self.deps(self.layers[-1].params)
            else:
                obj.deps = self.deps(self.model.params)
        self._synced = []
        return res

    # ================================================================== channel anchors
    def _sweep_channel(self, param, L, flat, deltas, batches, sf):
        route = self._routes[L]
        layer = self.layers[L]
        model = self.model
        view = model.params[param].reshape(-1)
        shape = model.params[param].shape
        period = int(np.prod(shape[1:])) if len(shape) > 1 else int(np.prod(shape))
        per_channel = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        short = param.rsplit(".", 1)[1]
        K = len(flat)
        res = SweepResult.empty(K)
        losses, choices, old, new = res.losses, res.choices, res.old, res.new
        shared = len(batches) == 1
        dtype = model.dtype
        st = None
        for k in range(K):
            f = int(flat[k])
            o = f // per_channel
            if shared:
                st = self._shared_state(route, batches[0], refresh=(f % period == 0), o=o)
            else:
                st = None  # free the previous batch's arrays before building the next
                st = self._build_state(route, batches[k], self.to_dev(batches[k]), o=o)
            if st.o != o:
                self._set_channel(st, o)
            w = float(view[f])
            cands = candidates(w, float(deltas[k]), sf, dtype)
            outs = [None, None, None]  # what the chosen candidate leaves in a shared state (not all kept:
            for c in (0, 2, 1):  # at batch 5000 one candidate's mix output is 250 MB)
                if c == 1 and sf == 1.0:
                    losses[k, 1] = st.loss
                    continue
                out = self._candidate(st, layer, short, f, o, float(cands[c]), float(cands[c]) - w)
                losses[k, c] = out[0]
                if shared:
                    outs[c] = out
                if c == 2 and shared:  # of w ± Δ only the lower loss can be picked (plus on a tie)
                    lp, lm = (np.inf if v != v else v for v in (losses[k, 0], losses[k, 2]))
                    outs[0 if lm < lp else 2] = None
                del out
            choices[k] = choose(*losses[k])
            c = 1 - int(choices[k])
            view[f] = cands[c]
            old[k], new[k] = w, float(cands[c])
            if outs[c] is not None and shared:
                _, st.a_old, st.m_old, st.mix, st.logits = outs[c]
                st.loss = losses[k, c]
        if shared and self._state is not None:
            self._synced.append(self._state)
        return res

    # ------------------------------------------------------------------ states
    def _anchor_input(self, L: int, idx: np.ndarray, idx_dev) -> Array:
        """The anchor layer's input for a batch (conv anchors: zero-padded)."""
        xin = self.boundary_rows(L, idx_dev)
        layer = self.layers[L]
        if isinstance(layer, Conv2d) and layer.pad:
            p = layer.pad
            xin = self.xp.pad(xin, ((0, 0), (0, 0), (p, p), (p, p)))
        return xin

    def _build_state(self, route: Route, idx: np.ndarray, idx_dev, xin=None, o: int = -1) -> _State:
        """A fresh state for a batch: one forward pass from the anchor (for a conv anchor, output channel
        ``o`` of that pass is kept for :meth:`_set_channel`)."""
        L = route.anchor
        if xin is None:
            xin = self._anchor_input(L, idx, idx_dev)
        yb = self.y_train[idx_dev]
        layer = self.layers[L]
        kept = None
        if isinstance(layer, Conv2d) and layer.pad:  # the input is kept padded: no second padded copy
            out = self.kernels.conv_from_padded(layer, self.model.params, xin)
            if route.kind == "conv" and 0 <= o < out.shape[0]:
                kept = (o, out[o].copy())
            x = self.forward_range(out, L + 1, route.rest)
            del out
        else:
            x = self.forward_range(xin, L, route.rest)
        mix = x
        logits = self.forward_range(x, route.rest, self.n_layers) if route.rest < self.n_layers else x
        loss = float(cross_entropy(logits, yb))
        return _State(route, idx, yb, xin, mix, logits, loss, None, int(yb.shape[0]), kept)

    def _shared_state(self, route: Route, idx: np.ndarray, refresh: bool, o: int = -1) -> _State:
        st = self._state
        all_deps = self.deps(self.model.params)
        if not refresh and st is not None and st.route == route and st.deps == all_deps and np.array_equal(st.idx, idx):
            return st
        L = route.anchor
        prefix = self.deps(self.params_before(L))
        si = self._shared_in
        idx_dev = None
        if si is not None and si[0] == L and si[2] == prefix and np.array_equal(si[1], idx):
            xin = si[3]
        else:
            self._shared_in = None
            self._state = None  # let the old arrays go before new ones are made
            idx_dev = self.to_dev(idx)
            xin = self._anchor_input(L, idx, idx_dev)
            self._shared_in = (L, idx.copy(), prefix, xin)
        if idx_dev is None:
            idx_dev = self.to_dev(idx)
        self._state = None
        st = self._build_state(route, idx.copy(), idx_dev, xin, o)
        st.deps = all_deps
        self._state = st
        return st

    def _set_channel(self, st: _State, o: int) -> None:
        """Make channel ``o`` current: its anchor output and its value where it enters the mix."""
        st.o = o
        kept, st.kept = st.kept, None
        st.a_old = kept[1] if kept is not None and kept[0] == o else self._anchor_channel(st, o)
        st.m_old = self._chain(st.route, o, st.a_old)

    # ------------------------------------------------------------------ channel computations
    def _anchor_channel(self, st: _State, o: int, value: float | None = None, short: str | None = None):
        """The anchor layer's output channel/column ``o`` with the current parameters (or, for batch
        norm, with parameter ``short`` set to ``value``)."""
        route = st.route
        layer = self.layers[route.anchor]
        P = self.model.params
        if route.kind == "conv":
            return self.kernels.conv_out_channel(layer, P, st.xin, o)
        if route.kind == "bn":
            g, b = P[layer.full("gamma")][o : o + 1], P[layer.full("beta")][o : o + 1]
            if short == "gamma":
                g = self.xp.asarray([value], dtype=g.dtype)
            elif short == "beta":
                b = self.xp.asarray([value], dtype=b.dtype)
            return self.kernels.bn_channel(layer, st.xin[o], g, b)
        # dense
        y = st.xin @ P[layer.full("weight")][o]
        if layer.bias:
            y = y + P[layer.full("bias")][o]
        return y

    def _chain(self, route: Route, o: int, a):
        """Push channel ``o``'s values through the per-channel layers after the anchor."""
        P = self.model.params
        xp = self.xp
        for i in route.chain:
            layer = self.layers[i]
            if isinstance(layer, ReLU):
                a = xp.maximum(a, 0)
            elif isinstance(layer, BatchNorm2d):
                g, b = P[layer.full("gamma")][o : o + 1], P[layer.full("beta")][o : o + 1]
                a = self.kernels.bn_channel(layer, a, g, b)
            elif isinstance(layer, GlobalAvgPool):
                a = layer.forward(P, a[None], True)[0][:, 0]
            else:  # pooling
                a = self.kernels.pool_channel(layer, a)
        return a

    def _candidate(self, st: _State, layer: Layer, short: str, f: int, o: int, value: float, d: float):
        """(loss, anchor channel, mix-input channel, mix, logits) for the anchor parameter at flat
        index ``f`` set to ``value`` (a change of ``d``)."""
        route = st.route
        xp = self.xp
        if route.kind == "conv":
            if short == "weight":
                _, c, kh, kw = np.unravel_index(f, self.model.params[layer.full("weight")].shape)
                H, W = st.a_old.shape[1:]
                a = st.a_old + d * st.xin[c, :, kh : kh + H, kw : kw + W]
            else:
                a = st.a_old + d
        elif route.kind == "bn":
            a = self._anchor_channel(st, o, value, short)
        else:
            if short == "weight":
                a = st.a_old + d * st.xin[:, f % layer.fin]
            else:
                a = st.a_old + d
        m = self._chain(route, o, a)
        delta = m - st.m_old
        if not bool(xp.any(delta)):
            return st.loss, a, st.m_old, st.mix, st.logits
        P = self.model.params
        mixer = self.layers[route.mix]
        if route.mix_kind == "conv":
            mix = st.mix + self.kernels.conv_one_input(mixer, P, delta, o)
        elif route.mix_kind == "flatten":
            dense = self.layers[route.mix + 1]
            hw = int(np.prod(delta.shape[1:]))
            block = P[dense.full("weight")][:, o * hw : (o + 1) * hw]
            mix = st.mix + delta.reshape(st.B, hw) @ block.T
        else:
            mix = st.mix + delta[:, None] * P[mixer.full("weight")][:, o][None, :]
        logits = self.forward_range(mix, route.rest, self.n_layers) if route.rest < self.n_layers else mix
        return float(cross_entropy(logits, st.yb)), a, m, mix, logits

    # ================================================================== output layer
    def _sweep_output_layer(self, param, flat, deltas, batches, sf):
        L = self.n_layers - 1
        layer = self.layers[L]
        is_bias = param.endswith(".bias")
        view = self.model.params[param].reshape(-1)
        K = len(flat)
        shared = len(batches) == 1
        # the training-set cache whenever it is exact (no batch norm before the layer), for shared batches
        # too: the same numbers whatever the batch mode or chunking
        if self.store_worthwhile(L):
            store = self._training_output_store()
            self._synced.append(store)
            return self.dense_kernel(store, view, layer.fin, is_bias, flat, deltas, batches, sf)
        if shared:
            store = self._batch_output_store(batches[0])
            self._synced.append(store)
            rows = np.arange(store.size, dtype=np.int64)[None]
            return self.dense_kernel(store, view, layer.fin, is_bias, flat, deltas, rows, sf)
        # batch norm before the output layer and a fresh batch per weight: one prefix pass per weight
        self._batch_store = None
        parts = []
        for k in range(K):
            store = self._make_batch_store(batches[k])
            parts.append(
                self.dense_kernel(
                    store,
                    view,
                    layer.fin,
                    is_bias,
                    flat[k : k + 1],
                    deltas[k : k + 1],
                    np.arange(store.size, dtype=np.int64)[None],
                    sf,
                )
            )
        return SweepResult(
            *(np.concatenate([getattr(p, a) for p in parts]) for a in ("losses", "choices", "old", "new"))
        )

    def _output_deps(self):
        L = self.n_layers - 1
        return self.deps(self.params_before(L)), self.deps(self.layers[L].params)

    def _training_output_store(self) -> DenseStore:
        prefix, own = self._output_deps()
        s = self._train_store
        if s is not None and s.prefix_deps == prefix and s.own_deps == own:
            return s
        self._train_store = None
        L = self.n_layers - 1
        hT = self.train_boundary(L, "T")
        layer = self.layers[L]
        P = self.model.params
        z = P[layer.full("weight")] @ hT
        if layer.bias:
            z += P[layer.full("bias")][:, None]
        zT = self.xp.ascontiguousarray(z, dtype=self.xp.float64)
        self._train_store = DenseStore(hT, zT, self.y_train, prefix, own)
        return self._train_store

    def _make_batch_store(self, idx: np.ndarray) -> DenseStore:
        L = self.n_layers - 1
        xp = self.xp
        d = self.to_dev(idx)
        h = self.boundary_rows(L, d)
        z = self.layers[L].forward(self.model.params, h, True)[0]
        prefix, own = self._output_deps()
        return DenseStore(
            xp.ascontiguousarray(h.T),
            xp.ascontiguousarray(z.T, dtype=xp.float64),
            xp.ascontiguousarray(self.y_train[d]),
            prefix,
            own,
        )

    def _batch_output_store(self, idx: np.ndarray) -> DenseStore:
        prefix, own = self._output_deps()
        s = self._batch_store
        if (
            s is not None
            and s.prefix_deps == prefix
            and s.own_deps == own
            and s.aux.get("idx") is not None
            and np.array_equal(s.aux["idx"], idx)
        ):
            return s
        self._batch_store = None
        s = self._make_batch_store(idx)
        s.aux["idx"] = idx.copy()
        self._batch_store = s
        return s

    def dense_kernel(self, store: DenseStore, view, fin: int, is_bias: bool, flat, deltas, rows, sf) -> SweepResult:
        """Sweep output-layer weights (or biases) at ``flat`` using ``store``; ``rows`` (K, B) or (1, B)
        index the store's samples. Applies choices to ``view`` and keeps ``store.zT`` exact."""
        xp = self.xp
        dtype = self.model.dtype
        K = len(flat)
        res = SweepResult.empty(K)
        losses, choices, old, new = res.losses, res.choices, res.old, res.new
        rows_dev = xp.asarray(rows)
        B = rows.shape[1]
        cols = xp.arange(B)
        for k in range(K):
            f = int(flat[k])
            i, j = (f, -1) if is_bias else divmod(f, fin)
            w = float(view[f])
            cands = candidates(w, float(deltas[k]), sf, dtype)
            dc = xp.asarray(cands.astype(np.float64) - w)
            r = rows_dev[0 if len(rows) == 1 else k]
            Zc = xp.repeat(store.zT[:, r][None], 3, axis=0)  # (3, classes, B)
            if j < 0:
                Zc[:, i, :] += dc[:, None]
            else:
                Zc[:, i, :] += dc[:, None] * store.hT[j, r].astype(xp.float64)[None, :]
            zmax = Zc.max(axis=1)
            lse = xp.log(xp.exp(Zc - zmax[:, None, :]).sum(axis=1)) + zmax
            zy = Zc[:, store.lab[r], cols]
            losses[k] = to_numpy((lse - zy).sum(axis=1))
            choices[k] = choose(*losses[k])
            c = 1 - int(choices[k])
            value = float(cands[c])
            view[f] = cands[c]
            old[k], new[k] = w, value
            dd = value - w
            if dd != 0.0:
                if j < 0:
                    store.zT[i] += dd
                else:
                    store.zT[i] += dd * store.hT[j].astype(xp.float64)
        return res
