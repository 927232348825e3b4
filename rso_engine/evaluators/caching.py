"""The cache bookkeeping the fast evaluators share (:class:`CachingEvaluator`).

Every parameter has a generation number that goes up whenever its value changes; a cache records the
generations of the parameters it was computed from and is used only while they are unchanged. A shadow
copy of the parameters catches changes made from outside the evaluator (a loaded checkpoint, an edit in a
GUI): any difference drops every cache, so a cache can never silently go stale.

Two kinds of inputs are cached:

- *training-set boundaries*: the activation entering layer ``l`` for every training image. It is
  per-sample (and so can be gathered for any mini-batch) only when no layer before ``l`` normalises
  with batch statistics, i.e. there is no batch norm before ``l``. It is built lazily, in chunks, and
  only when it saves work (some searchable layer precedes ``l``) and fits :attr:`STORE_BUDGET`.
- *shared-batch inputs*: with batch modes "layer" and "cycle" the batch is fixed for a whole sweep,
  so anything computed on it can be kept, batch norm or not.
- in batch mode "authors" (:attr:`~rso_engine.evaluators.base.Evaluator.frozen_prefix`) the swept
  layer's input is by definition a training-set cache, batch norm or not: built with the earlier batch
  norms on consecutive chunks of ``AUTHORS_PREFIX_CHUNK`` images (whatever its size: the semantics need
  it), and every batch's input to a later layer of the group is computed from it.

The forward passes that fill the caches run through :func:`~rso_engine.kernels.forward.run_layers` with
the evaluator's kernel set (:attr:`CachingEvaluator.kernels`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import AUTHORS_PREFIX_CHUNK
from ..kernels.forward import LAYER_KERNELS, Kernels, run_layers
from ..layers import Conv2d, Dense, uses_batch_statistics
from ..models import Model
from ..parallel import for_each
from .base import Evaluator, SweepResult, take_rows

Array = Any


class CachingEvaluator(Evaluator):
    """Base class: parameter generations, external-change detection and training-set boundaries."""

    #: largest training-set activation (bytes) kept as a per-sample cache
    STORE_BUDGET = 800 << 20  # TwoConv's second conv input for 60,000 images is 752 MB
    #: images per forward pass when building a training-set cache
    BUILD_CHUNK = 2048
    #: how layers are computed (see :mod:`rso_engine.kernels.forward`)
    kernels: Kernels = LAYER_KERNELS

    def __init__(self, model: Model, x_train: Array, y_train: Array):
        super().__init__(model, x_train, y_train)
        self.layers = model.layers
        self.n_layers = len(model.layers)
        self.n_train = int(y_train.shape[0])
        self._gen: dict[str, int] = {p: 0 for p in model.params}
        self._shadow: dict[str, Array] | None = None
        self._boundaries: dict[tuple[int, str], tuple[tuple[int, ...], Array]] = {}
        self._layer_index = model.top_level_index()  # a residual block's inner layers map to the block
        self._probe_shapes: dict[int, tuple[int, ...]] = {}
        self._spare: dict[tuple[int, str], Array] = {}  # stale caches' arrays, reused when rebuilt
        self._group_start: int | None = None  # the layer opening the group being swept

    # ------------------------------------------------------------------ bookkeeping
    def invalidate(self) -> None:
        """Drop every cache and count every parameter as changed."""
        for p in self._gen:
            self._gen[p] += 1
        self._boundaries.clear()
        self._spare.clear()
        self._shadow = None
        self.drop_caches()

    def drop_caches(self) -> None:
        """Subclasses drop their own caches here (called by :meth:`invalidate`)."""

    def begin_group(self, group, params) -> None:
        self._group_start = self._layer_index[group.name]

    def assign(self, param, values) -> None:
        """Set ``param`` from outside a sweep: only the caches computed from it are dropped."""
        target = self.model.params[param]
        target[...] = self.xp.asarray(values, dtype=self.model.dtype).reshape(target.shape)
        self._gen[param] += 1
        if self._shadow is not None:
            self._shadow[param] = self.xp.array(target, copy=True)
        self.drop_caches()

    def check_external_changes(self) -> None:
        """Invalidate everything if a parameter was changed by someone else since the last sweep."""
        xp = self.xp
        params = self.model.params
        if self._shadow is not None and self._shadow.keys() == params.keys():
            if all(bool(xp.array_equal(params[p], s)) for p, s in self._shadow.items()):
                return
            self.invalidate()
        self._shadow = {p: xp.array(v, copy=True) for p, v in params.items()}

    def record_sweep(self, param: str, flat: np.ndarray, res: SweepResult) -> None:
        """After a sweep: bump the parameter's generation if it changed and update the shadow copy."""
        changed = res.new != res.old
        if changed.any():
            self._gen[param] += 1
        if self._shadow is not None:
            xp = self.xp
            self._shadow[param].reshape(-1)[xp.asarray(flat)] = xp.asarray(res.new, dtype=self.model.dtype)

    def deps(self, params) -> tuple[int, ...]:
        """The current generations of ``params``: what a cache computed from them records."""
        return tuple(self._gen[p] for p in params)

    def params_before(self, l: int) -> list[str]:
        """Names of the parameters of layers ``0 .. l-1``."""
        return [p for layer in self.layers[:l] for p in layer.params]

    def bn_before(self, l: int) -> bool:
        """Whether a batch norm precedes layer ``l`` (then its input depends on the whole batch)."""
        return any(uses_batch_statistics(layer) for layer in self.layers[:l])  # inside residual blocks too

    def group_start(self, param: str) -> int:
        """Index of the layer that opens the parameter's group (the conv for a batch norm's γ/β)."""
        return self._layer_index[self.model.group_of(param).name]

    def layer_index(self, param: str) -> int:
        """Index of the layer that owns ``param``."""
        return self._layer_index[param.rsplit(".", 1)[0]]

    def to_dev(self, idx: np.ndarray) -> Array:
        """Host indices as a backend array."""
        return self.xp.asarray(idx)

    # ------------------------------------------------------------------ boundaries
    def boundary_shape(self, l: int, n: int) -> tuple[int, ...]:
        """Shape of the activation entering layer ``l`` for ``n`` images (from a 1-image probe)."""
        if l not in self._probe_shapes:
            self._probe_shapes[l] = tuple(self.model.forward(self.x_train[:, :2], train=True, start=0, stop=l).shape)
        shape = list(self._probe_shapes[l])
        shape[1 if len(shape) == 4 else 0] = n
        return tuple(shape)

    def frozen_at(self, l: int) -> int | None:
        """Batch mode "authors": the layer whose training-set input every batch's input to layer ``l`` is
        computed from (the swept group's first layer), or None."""
        g = self._group_start
        return g if self.frozen_prefix and g is not None and g <= l else None

    def store_worthwhile(self, l: int) -> bool:
        """A training-set cache of boundary ``l`` is exact, useful and small enough (or, in batch mode
        "authors", ``l`` is the swept layer: its training-set input is what the batches are drawn from)."""
        if l > 0 and self.frozen_at(l) == l:
            return True
        if l == 0 or self.bn_before(l):
            return False
        if not any(isinstance(layer, (Conv2d, Dense)) for layer in self.layers[:l]):
            return False  # only reshaping/pooling before l: recomputing on the batch is as cheap
        size = int(np.prod(self.boundary_shape(l, self.n_train))) * self.model.dtype.itemsize
        return size <= self.STORE_BUDGET

    def train_boundary(self, l: int, layout: str = "model") -> Array:
        """The activation entering layer ``l`` for the whole training set (BN-free prefixes only, or the
        swept layer in batch mode "authors").

        ``layout`` "model" keeps the layer's own layout ((C, N, H, W) or (N, F)); "T" gives
        (features, N) with features in flatten order, for column access by sample.
        """
        key = (l, layout)
        deps = self.deps(self.params_before(l))
        hit = self._boundaries.get(key)
        if hit is not None and hit[0] == deps:
            return hit[1]
        # a stale cache of the same boundary lends its memory: a fresh 100 MB array would cost more
        # in page faults than filling it does
        self._boundaries.pop(key, None)
        self.prune_boundaries()
        stale = self._spare.pop(key, None)
        N = self.n_train
        step = AUTHORS_PREFIX_CHUNK if self.frozen_prefix and self.bn_before(l) else self.BUILD_CHUNK
        chunks = [(s, min(N, s + step)) for s in range(0, N, step)]
        first = self.store_forward(self.x_train[:, chunks[0][0] : chunks[0][1]], l)
        out = stale if stale is not None else self._boundary_array(first, layout, N)

        def build(se: tuple[int, int], a: Array | None = None) -> None:
            s, e = se
            a = self.store_forward(self.x_train[:, s:e], l) if a is None else a
            if layout == "T":
                self.kernels.write_T(a, out, s)
            elif a.ndim == 4:
                out[:, s:e] = a
            else:
                out[s:e] = a

        build(chunks[0], first)
        del first
        # images are independent: the chunks fill disjoint parts of the cache (one GPU stream does it all)
        for_each(build, chunks[1:], threads=1 if self.model.backend.is_gpu else None)
        self._boundaries[key] = (deps, out)
        return out

    def _boundary_array(self, a: Array, layout: str, N: int) -> Array:
        """An empty training-set cache for activations shaped like the chunk ``a``."""
        n = a.shape[1] if a.ndim == 4 else a.shape[0]
        if layout == "T":
            return self.xp.empty((int(np.prod(a.shape)) // n, N), dtype=a.dtype)
        shape = list(a.shape)
        shape[1 if a.ndim == 4 else 0] = N
        return self.xp.empty(tuple(shape), dtype=a.dtype)

    def forward_range(self, x: Array, start: int, stop: int) -> Array:
        """Layers ``start .. stop-1`` in training mode (batch statistics), with the evaluator's kernels."""
        return run_layers(self.layers, self.model.params, x, start, stop, self.kernels)

    def store_forward(self, x: Array, stop: int) -> Array:
        """Layers ``0 .. stop-1`` in training mode, for a training-set cache or a batch's prefix."""
        return self.forward_range(x, 0, stop)

    def prune_boundaries(self) -> None:
        """Drop training-set caches whose prefix parameters have changed (frees their memory)."""
        for k in list(self._boundaries):
            if self._boundaries[k][0] != self.deps(self.params_before(k[0])):
                self._spare[k] = self._boundaries.pop(k)[1]  # its memory is reused by the rebuild

    def boundary_rows(self, l: int, idx: Array, use_store: bool | None = None) -> Array:
        """The activation entering layer ``l`` for the mini-batch ``idx`` (device indices), exactly as
        a forward pass of that batch computes it (in batch mode "authors": from the swept layer's
        training-set input, see :meth:`frozen_at`)."""
        g = self.frozen_at(l)
        if g is not None:
            rows = self.x_train[:, idx] if g == 0 else take_rows(self.train_boundary(g), idx)
            return self.forward_range(rows, g, l) if l > g else rows
        if use_store is None:
            use_store = self.store_worthwhile(l)
        if use_store:
            store = self.train_boundary(l)
            return store[:, idx] if store.ndim == 4 else store[idx]
        xb = self.x_train[:, idx]
        return self.store_forward(xb, l) if l else xb
