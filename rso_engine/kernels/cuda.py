"""GPU kernels: the output layer's sweep as one CUDA kernel (a CuPy RawKernel), and the GPU kernel set.

:func:`dense_sweep` launches a single-block kernel that walks a whole chunk of output-layer weights: for
each weight the block's threads score the three candidates on the batch (one sample per thread and
step), reduce the three sums in shared memory, thread 0 picks with the reference's rule, and the block
applies an accepted change to the cached logits before the next weight. :func:`sweep_kernel` compiles it
up front, so a caller can fall back to a vectorised loop when NVRTC is missing or fails.

:data:`GPU_KERNELS` is the kernel set of :mod:`.forward` with convolution chunks of
:data:`GPU_CHUNK_BYTES`: the CPU's 32 MB chunks mean hundreds of tiny launches per conv at batch 5000.
It is array-module generic, so it is tested with NumPy too.

CuPy is imported only when a kernel is compiled or launched; the engine never needs it on a CPU machine.
"""

from __future__ import annotations

import numpy as np

from .forward import Kernels

#: threads of the sweep kernel's single block
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


def sweep_kernel(dtype: np.dtype):
    """The compiled sweep kernel for float32 or float64 weights (compiled once per process; raises if
    the kernel cannot be compiled)."""
    import cupy  # noqa: PLC0415 - optional dependency, only on a GPU

    name = "float" if dtype == np.float32 else "double"
    if name not in _kernels:
        src = _SOURCE.replace("WT", name).replace("BLOCK", str(BLOCK))
        kernel = cupy.RawKernel(src, "dense_sweep_" + name)
        compile_now = getattr(kernel, "compile", None)  # CuPy compiles on first launch otherwise: fail here,
        if compile_now is not None:  # before the sweep starts, so the caller can fall back cleanly
            compile_now()
        _kernels[name] = kernel
    return _kernels[name]


def dense_sweep(kernel, view, fin: int, is_bias: bool, hT, zT, lab, flat, deltas, rows, sf: float):
    """Sweep the output-layer weights at ``flat`` (host int64) with ``kernel`` (:func:`sweep_kernel`):
    ``view`` the flat weights, ``hT`` (F, S) the layer's input, ``zT`` (C, S) the float64 logits kept
    exact, ``lab`` the labels, ``rows`` (K, B) or (1, B) the batches' sample indices, Δs ``deltas``, the stay
    factor ``sf``. Returns host arrays (losses (K, 3), choices (K,), old (K,), new (K,))."""
    import cupy  # noqa: PLC0415 - optional dependency, only on a GPU

    K = len(flat)
    C, S = (int(n) for n in zT.shape)
    rows_d = cupy.ascontiguousarray(cupy.asarray(rows, dtype=cupy.int64))
    losses = cupy.empty((K, 3), cupy.float64)
    choices = cupy.empty(K, cupy.int8)
    old = cupy.empty(K, cupy.float64)
    new = cupy.empty(K, cupy.float64)
    kernel(
        (1,),
        (BLOCK,),
        (
            view,
            np.int64(fin),
            np.int32(bool(is_bias)),
            hT,
            zT,
            cupy.ascontiguousarray(lab, dtype=cupy.int64),
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
    return cupy.asnumpy(losses), cupy.asnumpy(choices), cupy.asnumpy(old), cupy.asnumpy(new)


#: bytes of im2col patches per matrix product on the GPU
GPU_CHUNK_BYTES = 1 << 30

#: the GPU's kernel set: the layers' own code with large convolution chunks
GPU_KERNELS = Kernels(GPU_CHUNK_BYTES)
