"""A register-blocked, compiled 3×3 "same" convolution (stride 1, zero padding 1) for the CPU.

The paper net's 16→16 convolutions (and TwoConv's conv2) spend most of RSO's time here. The kernel
keeps a group of images' zero-padded planes side by side in one flat buffer per input channel, with a
row stride of ``W + 1`` and one zero row between images: the zero column at the end of a row is also the
left padding of the next row, and the zero row between two images is the bottom padding of one and the
top padding of the other. An output pixel at flat position ``p`` is then ``Σ w[kh, kw] · plane[p + kh·(W+1)
+ kw]`` for every pixel of the group alike, so the loop over ``p`` is one long contiguous run that LLVM
vectorises (the small 7×7 planes of the paper net's last block share one run of ~1,000 pixels instead of
61 each). Four output channels are computed per pass over the input (their 36 weights held in registers,
each input value loaded once for four fused multiply-adds); positions that fall on a padding column or
row are computed and dropped (7 % of the work at 28×28, 23 % at 7×7).

Sums run over (c, kh, kw) in im2col's row order, one fused multiply-add per term; float64 results agree
with the layers' own im2col + matrix product to rounding (tested).
"""

from __future__ import annotations

import numpy as np

from ..parallel import for_each, split
from .jit import nanmax, njit

#: output channels computed per pass over the input (the accumulator block)
BLOCK = 4
#: flat positions are computed in whole steps of this many (one AVX-512 register of float32)
VECTOR = 16
#: flat positions a thread's share should hold at least (below it, the threads' hand-off costs more)
MIN_PIXELS = 4096
#: flat positions per group of images: the accumulators (BLOCK × this) stay in the L1 cache
GROUP_PIXELS = 1536


@njit(cache=True, nogil=True, inline="always")
def _dot9(s, w, x0, x1, x2, x3, x4, x5, x6, x7, x8):
    return s + w[0] * x0 + w[1] * x1 + w[2] * x2 + w[3] * x3 + w[4] * x4 + w[5] * x5 + w[6] * x6 + w[7] * x7 + w[8] * x8


@njit(cache=True, nogil=True, inline="always")
def _taps(W, o, c):
    return (W[o, c, 0, 0], W[o, c, 0, 1], W[o, c, 0, 2], W[o, c, 1, 0], W[o, c, 1, 1], W[o, c, 1, 2],
            W[o, c, 2, 0], W[o, c, 2, 1], W[o, c, 2, 2])  # fmt: skip


@njit(cache=True, nogil=True, fastmath={"contract"}, boundscheck=False)
def conv3x3_same(x, W, b, out, group, q_begin, q_end, pool, relu):
    """``out[:, q]`` (O, H, W) = the 3×3 convolution, zero padding 1, of image ``x[:, q]`` (C, H, W) with the
    filter bank ``W`` (Ob, C, 3, 3) plus ``b`` (Ob,) for ``q_begin <= q < q_end``, where ``Ob`` ≥ O is O
    rounded up to :data:`BLOCK` (the extra filters are computed and dropped); ``group`` images share one
    flat run. With ``pool`` (H and W even), ``out`` (O, n, H/2, W/2) is the 2×2 max-pool of that (after a
    ReLU with ``relu``), taken from the accumulators: the bias is added after the max (exactly the same:
    rounding is monotonic) and the ReLU after the pool (it commutes with the max)."""
    C, n, H, Wd = x.shape
    O = out.shape[0]
    Ob = W.shape[0]
    S = Wd + 1  # the row stride: one shared zero column
    R = H + 1  # rows per image: one shared zero row
    # flat output positions of a full group (the last zero row excluded), rounded up to whole vectors: a
    # scalar remainder loop would cost ~10 % at these lengths
    Lmax = ((group * R - 1) * S + VECTOR - 1) // VECTOR * VECTOR
    planes = np.zeros((C, Lmax + 2 * S + 2 + VECTOR), x.dtype)
    acc = np.empty((BLOCK, Lmax + 2 * VECTOR), x.dtype)  # padded rows: whole-vector steps measured faster
    for q0 in range(q_begin, q_end, group):
        g = min(group, q_end - q0)
        L = (((g - 1) * R + H - 1) * S + Wd + VECTOR - 1) // VECTOR * VECTOR  # the group's last pixel + 1, rounded
        for c in range(C):  # the group's images into the flat planes; padding positions stay zero
            pc = planes[c]
            for j in range(g):
                for h in range(H):
                    base = (j * R + h + 1) * S + 1
                    xr = x[c, q0 + j, h]
                    for w in range(Wd):
                        pc[base + w] = xr[w]
        for o0 in range(0, Ob, BLOCK):
            a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
            for p in range(L):
                a0[p] = 0.0
                a1[p] = 0.0
                a2[p] = 0.0
                a3[p] = 0.0
            for c in range(C):
                w0, w1, w2, w3 = _taps(W, o0, c), _taps(W, o0 + 1, c), _taps(W, o0 + 2, c), _taps(W, o0 + 3, c)
                pc = planes[c]
                s0, s1, s2 = pc[0:], pc[1:], pc[2:]
                s3, s4, s5 = pc[S:], pc[S + 1 :], pc[S + 2 :]
                s6, s7, s8 = pc[2 * S :], pc[2 * S + 1 :], pc[2 * S + 2 :]
                for p in range(L):
                    x0, x1, x2, x3, x4, x5, x6, x7, x8 = s0[p], s1[p], s2[p], s3[p], s4[p], s5[p], s6[p], s7[p], s8[p]
                    a0[p] = _dot9(a0[p], w0, x0, x1, x2, x3, x4, x5, x6, x7, x8)
                    a1[p] = _dot9(a1[p], w1, x0, x1, x2, x3, x4, x5, x6, x7, x8)
                    a2[p] = _dot9(a2[p], w2, x0, x1, x2, x3, x4, x5, x6, x7, x8)
                    a3[p] = _dot9(a3[p], w3, x0, x1, x2, x3, x4, x5, x6, x7, x8)
            for i in range(min(BLOCK, O - o0)):
                ai = acc[i]
                bo = b[o0 + i]
                for j in range(g):
                    if pool:
                        _pool_out(ai, (j * R) * S, S, bo, relu, out[o0 + i, q0 + j])
                        continue
                    for h in range(H):
                        base = (j * R + h) * S
                        orow = out[o0 + i, q0 + j, h]
                        for w in range(Wd):
                            orow[w] = ai[base + w] + bo


@njit(cache=True, nogil=True, inline="always")
def _pool_out(a, base, S, bias, relu, out):
    """One image's 2×2 max-pool (+ bias, [ReLU]) from the flat accumulator row ``a`` into ``out`` (Hq, Wq),
    the four values compared in the order of the unfused max-pool."""
    zero = out.dtype.type(0)
    for hq in range(out.shape[0]):
        r0 = base + 2 * hq * S
        r1 = r0 + S
        orow = out[hq]
        for wq in range(out.shape[1]):
            w = 2 * wq
            v = nanmax(nanmax(a[r0 + w], a[r0 + w + 1]), nanmax(a[r1 + w], a[r1 + w + 1])) + bias
            orow[wq] = nanmax(v, zero) if relu else v


def fits(layer, x_shape: tuple) -> bool:
    """Whether :func:`conv3x3` computes ``layer`` on input of shape ``x_shape``: a 3×3 kernel with zero
    padding 1 on a filter bank too large for the small-bank kernels (C·9 > 27)."""
    return layer.k == 3 and layer.pad == 1 and x_shape[0] * 9 > 27


def conv3x3(x: np.ndarray, W: np.ndarray, b: np.ndarray | None, pool: bool = False, relu: bool = False) -> np.ndarray:
    """The 3×3, padding-1 convolution of ``x`` (C, n, H, W) with ``W`` (O, C, 3, 3) and bias ``b`` (O,) (None:
    zero): (O, n, H, W); with ``pool`` (H, W even), then [ReLU with ``relu``] and 2×2 max-pooling, fused:
    (O, n, H/2, W/2)."""
    C, n, H, Wd = x.shape
    O = W.shape[0]
    Ob = -(-O // BLOCK) * BLOCK
    Wb = np.zeros((Ob, C, 3, 3), x.dtype)
    Wb[:O] = W
    bb = np.zeros(Ob, x.dtype)
    if b is not None:
        bb[:O] = b
    group = max(1, min(n, GROUP_PIXELS // ((H + 1) * (Wd + 1))))
    out = np.empty((O, n, H // 2, Wd // 2) if pool else (O, n, H, Wd), x.dtype)
    x = np.ascontiguousarray(x)
    # images split over the engine's threads, whole groups each (a thread's share is the same run of images
    # whatever the thread count: every pixel's sum is computed alike)
    ranges = split(-(-n // group), minimum=max(1, MIN_PIXELS // (group * (H + 1) * (Wd + 1))))
    for_each(lambda r: conv3x3_same(x, Wb, bb, out, group, r[0] * group, min(n, r[1] * group), pool, relu), ranges)
    return out
