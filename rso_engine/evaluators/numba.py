"""The incremental evaluator on the CPU's compiled kernels (Numba): ``incremental-numba``."""

from __future__ import annotations

import weakref

import numpy as np

from ..kernels.dense_sweep import BLOCK, collects_changes, column_blocks, dense_records, dense_sweep
from ..kernels.jit import NUMBA_ERROR
from ..kernels.numba_layers import NUMBA_KERNELS
from ..models import Model
from .base import SweepResult
from .incremental import DenseStore, IncrementalEvaluator
from .routes import incremental_unavailable


class NumbaIncrementalEvaluator(IncrementalEvaluator):
    """:class:`IncrementalEvaluator` on the compiled kernels: the output layer's sweep
    (:func:`~rso_engine.kernels.dense_sweep.dense_sweep`) and every forward and per-channel piece
    (:data:`~rso_engine.kernels.numba_layers.NUMBA_KERNELS`)."""

    name = "incremental-numba"
    description = "incremental evaluator, output-layer sweep compiled with Numba (CPU)"
    engine = "numba"

    kernels = NUMBA_KERNELS
    BUILD_CHUNK = 512  # small chunks keep each block's activations in cache
    _spare_blocks: tuple = (None, None)  # (weak reference to the store that owns them, column blocks)

    def dense_kernel(self, store: DenseStore, view, fin, is_bias, flat, deltas, rows, sf) -> SweepResult:
        """The output layer's sweep in one compiled call per chunk (records and column blocks kept in
        ``store.aux`` between calls)."""
        aux = store.aux
        C, S = store.zT.shape
        if "rec" not in aux:
            aux["rec"] = np.empty((S, C + 2))
            aux["row_rec"] = np.empty((S, 4))
            dense_records(store.zT, store.lab, aux["rec"])
            aux["state"] = np.array([-1, -1, 0, 0], np.int64)
            aux["pending"] = np.zeros(BLOCK)
        if "hB" not in aux:  # column blocks only where changes are collected (batches of < S/BLOCK samples)
            if collects_changes(rows.shape[1], S):
                # the blocks of a store that has been replaced (its layer's input changed) lend their memory
                ref, spare = self._spare_blocks
                owner = ref() if ref is not None else None
                if owner is not None and (owner is self._train_store or owner is self._batch_store):
                    spare = None  # still in use
                aux["hB"] = column_blocks(store.hT, spare)
                self._spare_blocks = (weakref.ref(store), aux["hB"])
            else:
                aux["hB"] = np.zeros((1, 1, BLOCK), store.hT.dtype)
        K = len(flat)
        res = SweepResult.empty(K)
        losses, choices, old, new = res.losses, res.choices, res.old, res.new
        B = rows.shape[1]
        dense_sweep(view, int(fin), bool(is_bias), view.dtype == np.float32, store.hT, aux["hB"], store.zT,
                    store.lab, aux["rec"], aux["row_rec"], aux["state"], aux["pending"],
                    np.ascontiguousarray(flat, np.int64), np.ascontiguousarray(deltas, np.float64),
                    np.ascontiguousarray(rows, np.int64), float(sf),
                    np.empty(B), np.empty(B), np.empty(B), losses, choices, old, new)  # fmt: skip
        return res


def numba_evaluator_unavailable(model: Model) -> str:
    """Why the Numba evaluator cannot run on ``model`` ('' if it can)."""
    if NUMBA_ERROR:
        return NUMBA_ERROR
    if model.backend.name != "numpy":
        return "the model lives on the GPU (the Numba kernels are for NumPy arrays)"
    return incremental_unavailable(model)
