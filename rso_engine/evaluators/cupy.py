"""The incremental evaluator on the GPU (CuPy): ``incremental-cupy``.

:class:`CupyIncrementalEvaluator` runs :class:`~.incremental.IncrementalEvaluator`'s incremental math on
CuPy arrays with the GPU kernel set (:data:`~rso_engine.kernels.cuda.GPU_KERNELS`: convolutions in large
chunks; a conv weight's candidate is a handful of launches over one channel, the next layer's slice of
weights and the rest of the network). The output layer's sweep, where each weight's work is tiny, is two
CUDA kernels per weight queued without a host synchronisation (:func:`~rso_engine.kernels.cuda.dense_sweep`:
the batch's samples over many blocks, then the cached logits' update over the whole device); the host
waits once per chunk.

If the kernels cannot be compiled (no NVRTC, an unusual CuPy), the vectorised CuPy loop of the base class
is used instead and :attr:`CupyIncrementalEvaluator.engine` says so. :attr:`sweep_kernels` can be set to
:data:`~rso_engine.kernels.cuda.EMULATED` to run the same host code with the kernels emulated in NumPy
(how the path is tested without a GPU).
"""

from __future__ import annotations

import logging

import numpy as np

from ..kernels.cuda import GPU_KERNELS, dense_sweep, sweep_kernels
from ..models import Model
from .base import SweepResult
from .incremental import DenseStore, IncrementalEvaluator
from .routes import incremental_unavailable

log = logging.getLogger(__name__)


class CupyIncrementalEvaluator(IncrementalEvaluator):
    """The incremental evaluator on the GPU; the output layer's sweep runs as CUDA kernels and the
    convolutions run in large chunks."""

    name = "incremental-cupy"
    description = "incremental evaluator on CuPy, output-layer sweep as CUDA kernels"
    engine = "cupy+rawkernel"

    kernels = GPU_KERNELS
    BUILD_CHUNK = 16384
    #: the (score, apply) sweep kernels; None: compile them for the weights' dtype on first use
    sweep_kernels: tuple | None = None

    def dense_kernel(self, store: DenseStore, view, fin, is_bias, flat, deltas, rows, sf) -> SweepResult:
        """The output layer's sweep as CUDA kernels (the vectorised loop if they cannot compile)."""
        if self.engine != "cupy+rawkernel":
            return super().dense_kernel(store, view, fin, is_bias, flat, deltas, rows, sf)
        kernels = self.sweep_kernels
        if kernels is None:
            try:
                kernels = sweep_kernels(np.dtype(view.dtype))
            except Exception as exc:  # NVRTC missing or failing: keep going with the vectorised loop
                log.warning("CUDA sweep kernels unavailable (%s); using the vectorised CuPy loop", exc)
                self.engine = "cupy"
                return super().dense_kernel(store, view, fin, is_bias, flat, deltas, rows, sf)
        xp = self.xp
        lab32 = store.aux.get("lab32")
        if lab32 is None:  # the labels as the kernels' int32, once per store
            lab32 = store.aux["lab32"] = xp.ascontiguousarray(store.lab, dtype=xp.int32)
        out = dense_sweep(kernels, xp, view, fin, is_bias, store.hT, store.zT, lab32, flat, deltas, rows, sf)
        return SweepResult(*out)


def cupy_evaluator_unavailable(model: Model) -> str:
    """Why the CuPy evaluator cannot run on ``model`` ('' if it can)."""
    if model.backend.name != "cupy":
        return f"the model computes with {model.backend.name}, not CuPy"
    return incremental_unavailable(model)
