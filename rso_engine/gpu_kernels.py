"""GPU path: the incremental evaluator on CuPy, with the output layer's sweep as one CUDA kernel.

:class:`CupyIncrementalEvaluator` runs :class:`~rso_engine.incremental.IncrementalEvaluator`'s
incremental math on CuPy arrays (a conv weight's candidate is a handful of launches over one channel,
the next layer's slice of weights and the rest of the network). The output layer's sweep, where each
weight's work is tiny, is a single-block :class:`cupy.RawKernel` that walks a whole chunk of weights:
for each weight the block's threads score the three candidates on the batch (one sample per thread and
step), reduce the three sums in shared memory, thread 0 picks with the reference's rule, and the block
applies an accepted change to the cached logits before the next weight.

If the kernel cannot be compiled (no NVRTC, an unusual CuPy), the vectorised CuPy loop of the base
class is used instead and :attr:`CupyIncrementalEvaluator.engine` says so.

This module imports CuPy lazily; the engine never needs it on a CPU machine.
"""

from __future__ import annotations

import logging

import numpy as np

from .backend import array_module
from .evaluators import SweepResult
from .incremental import DenseStore, IncrementalEvaluator, incremental_unavailable
from .layers import Conv2d
from .models import Model

log = logging.getLogger(__name__)

BLOCK = 256

_SOURCE = r"""
#define RSO_INF __longlong_as_double(0x7ff0000000000000LL)
extern "C" __global__ void dense_sweep_WT(
    WT* wflat, const long long fin, const int is_bias, const WT* hT, double* zT, const long long* lab,
    const long long C, const long long S, const long long* flat, const double* deltas,
    const long long* rows, const long long nrows, const long long B, const long long K, const double sf,
    double* losses, signed char* choices, double* old, double* newv)
{
    __shared__ double red0[BLOCK], red1[BLOCK], red2[BLOCK];
    __shared__ double cand[3];
    __shared__ double dd_sh;
    const int t = threadIdx.x;
    for (long long k = 0; k < K; ++k) {
        const long long f = flat[k];
        const long long i = is_bias ? f : f / fin;
        const long long j = is_bias ? -1 : f - i * fin;
        const double w = (double)wflat[f];
        if (t == 0) {
            double c0 = w + deltas[k], c1 = w * sf, c2 = w - deltas[k];
            cand[0] = (double)(WT)c0; cand[1] = (double)(WT)c1; cand[2] = (double)(WT)c2;
        }
        __syncthreads();
        const double d0 = cand[0] - w, d1 = cand[1] - w, d2 = cand[2] - w;
        const long long* r = rows + (nrows == 1 ? 0 : k) * B;
        double acc0 = 0.0, acc1 = 0.0, acc2 = 0.0;
        for (long long b = t; b < B; b += BLOCK) {
            const long long s = r[b];
            const long long y = lab[s];
            const double x = (j < 0) ? 1.0 : (double)hT[j * S + s];
            const double zi = zT[i * S + s];
            double m = -RSO_INF;
            for (long long c = 0; c < C; ++c) if (c != i) m = fmax(m, zT[c * S + s]);
            double R = 0.0;
            for (long long c = 0; c < C; ++c) if (c != i) R += exp(zT[c * S + s] - m);
            const double zy = (y == i) ? 0.0 : zT[y * S + s];
            double zc[3] = {zi + d0 * x, zi + d1 * x, zi + d2 * x};
            double l[3];
            for (int q = 0; q < 3; ++q) {
                const double M = fmax(m, zc[q]);
                const double lse = M + log(R * exp(m - M) + exp(zc[q] - M));
                l[q] = lse - ((y == i) ? zc[q] : zy);
            }
            acc0 += l[0]; acc1 += l[1]; acc2 += l[2];
        }
        red0[t] = acc0; red1[t] = acc1; red2[t] = acc2;
        __syncthreads();
        for (int h = BLOCK / 2; h > 0; h >>= 1) {
            if (t < h) { red0[t] += red0[t + h]; red1[t] += red1[t + h]; red2[t] += red2[t + h]; }
            __syncthreads();
        }
        if (t == 0) {
            const double l0 = red0[0], l1 = red1[0], l2 = red2[0];
            losses[3 * k] = l0; losses[3 * k + 1] = l1; losses[3 * k + 2] = l2;
            const double lp = isnan(l0) ? RSO_INF : l0, ls = isnan(l1) ? RSO_INF : l1,
                         lm = isnan(l2) ? RSO_INF : l2;
            double v;
            if (ls <= lp && ls <= lm) { choices[k] = 0; v = cand[1]; }
            else if (lp <= lm) { choices[k] = 1; v = cand[0]; }
            else { choices[k] = -1; v = cand[2]; }
            wflat[f] = (WT)v;
            old[k] = w; newv[k] = v;
            dd_sh = v - w;
        }
        __syncthreads();
        const double dd = dd_sh;
        if (dd != 0.0) {
            for (long long s = t; s < S; s += BLOCK)
                zT[i * S + s] += dd * ((j < 0) ? 1.0 : (double)hT[j * S + s]);
        }
        __syncthreads();
    }
}
"""

_kernels: dict[str, object] = {}


def _kernel(dtype: np.dtype):
    """The compiled sweep kernel for float32 or float64 weights (compiled once per process)."""
    import cupy  # noqa: PLC0415

    name = "float" if dtype == np.float32 else "double"
    if name not in _kernels:
        src = _SOURCE.replace("WT", name).replace("BLOCK", str(BLOCK))
        kernel = cupy.RawKernel(src, "dense_sweep_" + name)
        compile_now = getattr(kernel, "compile", None)  # CuPy compiles on first launch otherwise: fail here,
        if compile_now is not None:  # before the sweep starts, so the caller can fall back cleanly
            compile_now()
        _kernels[name] = kernel
    return _kernels[name]


#: bytes of im2col patches per matrix product on the GPU (the engine's layers use 32 MB chunks, which
#: on a GPU means hundreds of tiny launches per conv at batch 5000)
GPU_CHUNK_BYTES = 1 << 30


def conv_forward(layer: Conv2d, P: dict, x, chunk_bytes: int = GPU_CHUNK_BYTES):
    """``layer.forward`` with patches in ``chunk_bytes`` chunks (written for any array module, so it is
    tested with NumPy)."""
    p = layer.pad
    xpad = array_module(x).pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
    return layer.forward_padded(P, xpad, chunk_bytes)


def forward_range(model: Model, x, start: int, stop: int, chunk_bytes: int = GPU_CHUNK_BYTES):
    """``model.forward(x, train=True, start, stop)`` with the convolutions in large chunks."""
    P = model.params
    for layer in model.layers[start:stop]:
        x = conv_forward(layer, P, x, chunk_bytes) if isinstance(layer, Conv2d) else layer.forward(P, x, True)[0]
    return x


class CupyIncrementalEvaluator(IncrementalEvaluator):
    """The incremental evaluator on the GPU; the output layer's sweep is one CUDA kernel per chunk and the
    convolutions run in large chunks."""

    name = "incremental-cupy"
    description = "incremental evaluator on CuPy, output-layer sweep as a CUDA kernel"
    engine = "cupy+rawkernel"

    def forward_range(self, x, start, stop):
        return forward_range(self.model, x, start, stop)

    def store_forward(self, x, stop):
        return forward_range(self.model, x, 0, stop)

    BUILD_CHUNK = 16384
    chunk_bytes = GPU_CHUNK_BYTES

    def dense_kernel(self, store: DenseStore, view, fin, is_bias, flat, deltas, rows, sf) -> SweepResult:
        if self.engine != "cupy+rawkernel":
            return super().dense_kernel(store, view, fin, is_bias, flat, deltas, rows, sf)
        import cupy  # noqa: PLC0415

        try:
            kern = _kernel(np.dtype(view.dtype))
        except Exception as exc:  # NVRTC missing or failing: keep going with the vectorised loop
            log.warning("CUDA sweep kernel unavailable (%s); using the vectorised CuPy loop", exc)
            self.engine = "cupy"
            return super().dense_kernel(store, view, fin, is_bias, flat, deltas, rows, sf)
        K = len(flat)
        C, S = (int(n) for n in store.zT.shape)
        rows_d = cupy.ascontiguousarray(cupy.asarray(rows, dtype=cupy.int64))
        losses = cupy.empty((K, 3), cupy.float64)
        choices = cupy.empty(K, cupy.int8)
        old = cupy.empty(K, cupy.float64)
        new = cupy.empty(K, cupy.float64)
        kern(
            (1,),
            (BLOCK,),
            (
                view,
                np.int64(fin),
                np.int32(bool(is_bias)),
                store.hT,
                store.zT,
                cupy.ascontiguousarray(store.lab, dtype=cupy.int64),
                np.int64(C),
                np.int64(S),
                cupy.asarray(np.ascontiguousarray(flat, np.int64)),
                cupy.asarray(np.ascontiguousarray(deltas, np.float64)),
                rows_d,
                np.int64(rows_d.shape[0]),
                np.int64(rows_d.shape[1]),
                np.int64(K),
                np.float64(sf),
                losses,
                choices,
                old,
                new,
            ),
        )
        return SweepResult(cupy.asnumpy(losses), cupy.asnumpy(choices), cupy.asnumpy(old), cupy.asnumpy(new))


def cupy_evaluator_unavailable(model: Model) -> str:
    if model.backend.name != "cupy":
        return f"the model computes with {model.backend.name}, not CuPy"
    return incremental_unavailable(model)
