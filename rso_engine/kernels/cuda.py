"""GPU kernels: the output layer's sweep as CUDA kernels (CuPy RawKernels), and the GPU kernel set.

The sweep of a chunk of output-layer weights is sequential — each weight's pick moves the cached logits
the next weight is scored on — so it runs as two kernels per weight, queued back to back on the device's
stream without a host synchronisation in between (the host only waits once, for the chunk's results):

- ``dense_score``: ``ceil(B / TPB)`` blocks of :data:`TPB` threads, one sample of the weight's batch per
  thread; each thread computes its sample's cross-entropy for the three candidates, each block sums its
  threads' in shared memory (a fixed tree) and writes one partial sum per candidate;
- ``dense_apply``: ``ceil(S / TPB)`` blocks, one cached sample per thread: every block adds the partial
  sums in block order (the same numbers in every block), picks with the reference's rule (NaN never
  wins, a tie keeps w, plus beats minus), block 0 writes the weight and the results, and every thread
  adds the accepted change to its sample's logit — the whole device updates the S cached logits.

Indices are int32 (the batches' sample indices, the flat weight indices, the labels); addresses are
computed in 64 bits. The kernels are compiled with ``--fmad=false`` (:data:`~rso_engine.backend.NVRTC_OPTIONS`):
NVRTC would otherwise contract ``z + d·x`` into a fused multiply-add, which rounds once where the CPU
rounds twice, and float64 picks must equal the CPU's. CuPy adds ``-ftz=true`` to every kernel it
compiles: float32 subnormals (below ~1.2e-38) are flushed to zero; float64, in which the losses and
logits are computed here, is unaffected.

:func:`dense_sweep` is the host side, written once for any array module; :data:`EMULATED` runs the two
kernels' arithmetic with NumPy, block by block and in the kernels' order of additions, so the host side
and the kernels' logic are tested on a machine without a GPU (``tests/test_kernels_cuda.py``).

:data:`GPU_KERNELS` is the kernel set of :mod:`.forward` with convolution chunks of
:data:`GPU_CHUNK_BYTES`: the CPU's 32 MB chunks mean hundreds of tiny launches per conv at batch 5000.
It is array-module generic, so it is tested with NumPy too.

CuPy is imported only when a kernel is compiled; the engine never needs it on a CPU machine.
"""

from __future__ import annotations

import numpy as np

from ..backend import NVRTC_OPTIONS, to_numpy
from .forward import Kernels

#: threads per block of both sweep kernels
TPB = 128

_SOURCE = r"""
#define RSO_INF __longlong_as_double(0x7ff0000000000000LL)

/* the three candidates [w + delta, w * sf, w - delta], rounded to the weights' type (as candidates()) */
__device__ __forceinline__ void rso_cands(const double w, const double delta, const double sf, double* c) {
    c[0] = (double)(WT)(w + delta);
    c[1] = (double)(WT)(w * sf);
    c[2] = (double)(WT)(w - delta);
}

extern "C" __global__ void dense_score_WT(
    const WT* wflat, const int k, const int fin, const int is_bias, const WT* hT, const double* zT,
    const int* lab, const int C, const int S, const int* flat, const double* deltas, const int* rows,
    const int shared, const int B, const double sf, double* partials, double* old)
{
    __shared__ double red0[TPB], red1[TPB], red2[TPB];
    const int t = threadIdx.x;
    const int f = flat[k];
    const int i = is_bias ? f : f / fin;
    const int j = is_bias ? -1 : f - i * fin;
    const double w = (double)wflat[f];
    double c[3];
    rso_cands(w, deltas[k], sf, c);
    const int b = blockIdx.x * TPB + t;
    double l0 = 0.0, l1 = 0.0, l2 = 0.0;
    if (b < B) {
        const long long s = rows[(long long)(shared ? 0 : k) * B + b];
        const int y = lab[s];
        const double x = (j < 0) ? 1.0 : (double)hT[(long long)j * S + s];
        const double zi = zT[(long long)i * S + s];
        double m = -RSO_INF;
        for (int q = 0; q < C; ++q) if (q != i) m = fmax(m, zT[(long long)q * S + s]);
        double R = 0.0;
        for (int q = 0; q < C; ++q) if (q != i) R += exp(zT[(long long)q * S + s] - m);
        const double zy = (y == i) ? 0.0 : zT[(long long)y * S + s];
        double l[3];
        for (int q = 0; q < 3; ++q) {
            const double zc = zi + (c[q] - w) * x;
            const double M = fmax(m, zc);
            const double lse = M + log(R * exp(m - M) + exp(zc - M));
            l[q] = lse - ((y == i) ? zc : zy);
        }
        l0 = l[0]; l1 = l[1]; l2 = l[2];
    }
    red0[t] = l0; red1[t] = l1; red2[t] = l2;
    __syncthreads();
    for (int h = TPB / 2; h > 0; h >>= 1) {
        if (t < h) { red0[t] += red0[t + h]; red1[t] += red1[t + h]; red2[t] += red2[t + h]; }
        __syncthreads();
    }
    if (t == 0) {
        partials[3 * blockIdx.x] = red0[0];
        partials[3 * blockIdx.x + 1] = red1[0];
        partials[3 * blockIdx.x + 2] = red2[0];
        if (blockIdx.x == 0) old[k] = w;  /* the apply kernel reads w here: block 0 rewrites wflat[f] */
    }
}

extern "C" __global__ void dense_apply_WT(
    WT* wflat, const int k, const int fin, const int is_bias, const WT* hT, double* zT, const int S,
    const int* flat, const double* deltas, const double sf, const double* partials, const int nparts,
    double* losses, signed char* choices, double* old, double* newv)
{
    __shared__ double dd_sh;
    const int f = flat[k];
    const int i = is_bias ? f : f / fin;
    const int j = is_bias ? -1 : f - i * fin;
    if (threadIdx.x == 0) {
        double l0 = 0.0, l1 = 0.0, l2 = 0.0;
        for (int p = 0; p < nparts; ++p) {
            l0 += partials[3 * p]; l1 += partials[3 * p + 1]; l2 += partials[3 * p + 2];
        }
        const double w = old[k];
        double c[3];
        rso_cands(w, deltas[k], sf, c);
        const double lp = isnan(l0) ? RSO_INF : l0, ls = isnan(l1) ? RSO_INF : l1, lm = isnan(l2) ? RSO_INF : l2;
        signed char ch;
        double v;
        if (ls <= lp && ls <= lm) { ch = 0; v = c[1]; }
        else if (lp <= lm) { ch = 1; v = c[0]; }
        else { ch = -1; v = c[2]; }
        if (blockIdx.x == 0) {
            losses[3 * k] = l0; losses[3 * k + 1] = l1; losses[3 * k + 2] = l2;
            choices[k] = ch;
            newv[k] = v;
            wflat[f] = (WT)v;
        }
        dd_sh = v - w;
    }
    __syncthreads();
    const double dd = dd_sh;
    const long long s = (long long)blockIdx.x * TPB + threadIdx.x;
    if (dd != 0.0 && s < S) zT[(long long)i * S + s] += dd * ((j < 0) ? 1.0 : (double)hT[(long long)j * S + s]);
}
"""

_kernels: dict[str, tuple] = {}


def kernel_source(dtype: np.dtype) -> str:
    """The CUDA source of both sweep kernels for float32 or float64 weights."""
    name = "float" if np.dtype(dtype) == np.float32 else "double"
    return _SOURCE.replace("WT", name).replace("TPB", str(TPB))


def sweep_kernels(dtype: np.dtype) -> tuple:
    """The compiled (score, apply) kernels for float32 or float64 weights (compiled once per process, with
    :data:`~rso_engine.backend.NVRTC_OPTIONS`; raises if they cannot be compiled)."""
    import cupy  # noqa: PLC0415 - optional dependency, only on a GPU

    name = "float" if np.dtype(dtype) == np.float32 else "double"
    if name not in _kernels:
        src = kernel_source(dtype)
        pair = tuple(cupy.RawKernel(src, f"dense_{what}_{name}", options=NVRTC_OPTIONS) for what in ("score", "apply"))
        for kernel in pair:  # CuPy compiles on first launch otherwise: fail here, before the sweep starts,
            compile_now = getattr(kernel, "compile", None)  # so the caller can fall back cleanly
            if compile_now is not None:
                compile_now()
        _kernels[name] = pair
    return _kernels[name]


def _i32(n: int, what: str) -> np.int32:
    if not 0 <= n < 2**31:
        raise ValueError(f"{what} ({n}) does not fit the sweep kernel's 32-bit indices")
    return np.int32(n)


def dense_sweep(kernels, xp, view, fin: int, is_bias: bool, hT, zT, lab32, flat, deltas, rows, sf: float):
    """Sweep the output-layer weights at ``flat`` (host indices, in order) with ``kernels`` (the (score,
    apply) pair of :func:`sweep_kernels`, or :data:`EMULATED` with NumPy arrays), ``xp`` the arrays' module:
    ``view`` the flat weights (updated), ``hT`` (F, S) the layer's input, ``zT`` (C, S) the float64 logits
    (kept exact), ``lab32`` the labels as int32, ``rows`` (K, B) or (1, B) the batches' sample indices, Δs
    ``deltas``, the stay factor ``sf``. Two launches per weight, no host synchronisation until the chunk's
    results are copied back. Returns host arrays (losses (K, 3), choices (K,), old (K,), new (K,))."""
    score, apply = kernels
    K = len(flat)
    C, S = (int(n) for n in zT.shape)
    B = int(rows.shape[1])
    _i32(int(hT.shape[0]) * S, "the layer's input size")
    _i32(int(view.size), "the weight count")
    rows_d = xp.asarray(np.ascontiguousarray(rows, np.int32))
    flat_d = xp.asarray(np.ascontiguousarray(flat, np.int32))
    deltas_d = xp.asarray(np.ascontiguousarray(deltas, np.float64))
    nparts, nupd = -(-B // TPB), max(1, -(-S // TPB))
    partials = xp.empty(3 * nparts, xp.float64)
    losses = xp.empty((K, 3), xp.float64)
    choices = xp.empty(K, xp.int8)
    old = xp.empty(K, xp.float64)
    new = xp.empty(K, xp.float64)
    fin32, bias32, C32, S32, B32 = _i32(fin, "fin"), np.int32(bool(is_bias)), np.int32(C), np.int32(S), np.int32(B)
    shared, sf64, np32 = np.int32(rows.shape[0] == 1), np.float64(sf), np.int32(nparts)
    for k in range(K):
        k32 = np.int32(k)
        score((nparts,), (TPB,), (view, k32, fin32, bias32, hT, zT, lab32, C32, S32, flat_d, deltas_d, rows_d,
                                  shared, B32, sf64, partials, old))  # fmt: skip
        apply((nupd,), (TPB,), (view, k32, fin32, bias32, hT, zT, S32, flat_d, deltas_d, sf64, partials, np32,
                                losses, choices, old, new))  # fmt: skip
    return to_numpy(losses), to_numpy(choices), to_numpy(old), to_numpy(new)


# ---------------------------------------------------------------------------------------------- emulation
def _emulated_cands(w: float, delta: float, sf: float, wt: type) -> np.ndarray:
    return np.array([w + delta, w * sf, w - delta], np.float64).astype(wt).astype(np.float64)


def _emulate_score(grid, block, args) -> None:
    """``dense_score`` with NumPy: every block's samples, each thread's losses, the block's tree sum."""
    (wflat, k, fin, is_bias, hT, zT, lab, C, S, flat, deltas, rows, shared, B, sf, partials, old) = args
    (nblocks,), (tpb,) = grid, block
    f = int(flat[k])
    i, j = (f, -1) if is_bias else divmod(f, int(fin))
    w = float(wflat[f])
    c = _emulated_cands(w, float(deltas[k]), float(sf), wflat.dtype.type)
    r = rows[0 if shared else int(k)]
    others = np.arange(int(C)) != i
    for blk in range(nblocks):
        b = np.arange(blk * tpb, (blk + 1) * tpb)
        live = b < B
        s = r[b[live]]
        y = lab[s]
        x = np.ones(len(s)) if j < 0 else hT[j, s].astype(np.float64)
        zi = zT[i, s]
        zo = zT[others][:, s]
        m = np.fmax.reduce(zo, axis=0, initial=-np.inf)  # fmax: as the kernel, NaN-ignoring
        R = np.zeros(len(s))
        for q in range(zo.shape[0]):  # the kernel's loop over the classes, in order
            R = R + np.exp(zo[q] - m)
        zy = np.where(y == i, 0.0, zT[y, s])
        red = np.zeros((3, tpb))
        for q in range(3):
            zc = zi + (c[q] - w) * x
            M = np.fmax(m, zc)
            lse = M + np.log(R * np.exp(m - M) + np.exp(zc - M))
            red[q, : len(s)] = lse - np.where(y == i, zc, zy)
        h = tpb // 2
        while h > 0:
            red[:, :h] += red[:, h : 2 * h]
            h //= 2
        partials[3 * blk : 3 * blk + 3] = red[:, 0]
    old[k] = w


def _emulate_apply(grid, block, args) -> None:
    """``dense_apply`` with NumPy: the partial sums in block order, the pick, the update of every sample."""
    (wflat, k, fin, is_bias, hT, zT, S, flat, deltas, sf, partials, nparts, losses, choices, old, new) = args
    f = int(flat[k])
    i, j = (f, -1) if is_bias else divmod(f, int(fin))
    sums = np.zeros(3)
    for p in range(int(nparts)):
        sums = sums + partials[3 * p : 3 * p + 3]
    w = float(old[k])
    c = _emulated_cands(w, float(deltas[k]), float(sf), wflat.dtype.type)
    lp, ls, lm = (np.inf if v != v else v for v in sums)
    ch, v = (0, c[1]) if (ls <= lp and ls <= lm) else ((1, c[0]) if lp <= lm else (-1, c[2]))
    losses[k], choices[k], new[k] = sums, ch, v
    wflat[f] = v
    dd = v - w
    if dd != 0.0:
        zT[i] += dd * (1.0 if j < 0 else hT[j].astype(np.float64))


#: the two sweep kernels emulated with NumPy (same arguments as the CUDA ones, same order of additions)
EMULATED = (_emulate_score, _emulate_apply)

#: bytes of im2col patches per matrix product on the GPU
GPU_CHUNK_BYTES = 1 << 30

#: the GPU's kernel set: the layers' own code with large convolution chunks
GPU_KERNELS = Kernels(GPU_CHUNK_BYTES)
