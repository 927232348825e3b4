"""The incremental evaluator on the GPU (CuPy): ``incremental-cupy``.

:class:`CupyIncrementalEvaluator` runs :class:`~.incremental.IncrementalEvaluator`'s incremental math on
CuPy arrays with the GPU kernel set (:data:`~rso_engine.kernels.cuda.GPU_KERNELS`: convolutions in large
chunks; a conv weight's candidate is a handful of launches over one channel, the next layer's slice of
weights and the rest of the network). The output layer's sweep, where each weight's work is tiny, is one
CUDA kernel launch per chunk (:func:`~rso_engine.kernels.cuda.dense_sweep`).

If the kernel cannot be compiled (no NVRTC, an unusual CuPy), the vectorised CuPy loop of the base class
is used instead and :attr:`CupyIncrementalEvaluator.engine` says so.
"""

from __future__ import annotations

import logging

import numpy as np

from ..kernels.cuda import GPU_KERNELS, dense_sweep, sweep_kernel
from ..models import Model
from .base import SweepResult
from .incremental import DenseStore, IncrementalEvaluator
from .routes import incremental_unavailable

log = logging.getLogger(__name__)


class CupyIncrementalEvaluator(IncrementalEvaluator):
    """The incremental evaluator on the GPU; the output layer's sweep is one CUDA kernel per chunk and the
    convolutions run in large chunks."""

    name = "incremental-cupy"
    description = "incremental evaluator on CuPy, output-layer sweep as a CUDA kernel"
    engine = "cupy+rawkernel"

    kernels = GPU_KERNELS
    BUILD_CHUNK = 16384

    def dense_kernel(self, store: DenseStore, view, fin, is_bias, flat, deltas, rows, sf) -> SweepResult:
        """The output layer's sweep as one CUDA kernel launch (the vectorised loop if it cannot compile)."""
        if self.engine != "cupy+rawkernel":
            return super().dense_kernel(store, view, fin, is_bias, flat, deltas, rows, sf)
        try:
            kernel = sweep_kernel(np.dtype(view.dtype))
        except Exception as exc:  # NVRTC missing or failing: keep going with the vectorised loop
            log.warning("CUDA sweep kernel unavailable (%s); using the vectorised CuPy loop", exc)
            self.engine = "cupy"
            return super().dense_kernel(store, view, fin, is_bias, flat, deltas, rows, sf)
        out = dense_sweep(kernel, view, fin, is_bias, store.hT, store.zT, store.lab, flat, deltas, rows, sf)
        return SweepResult(*out)


def cupy_evaluator_unavailable(model: Model) -> str:
    """Why the CuPy evaluator cannot run on ``model`` ('' if it can)."""
    if model.backend.name != "cupy":
        return f"the model computes with {model.backend.name}, not CuPy"
    return incremental_unavailable(model)
