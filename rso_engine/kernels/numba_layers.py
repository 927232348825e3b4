"""Compiled layer forwards for the CPU (Numba), and :data:`NUMBA_KERNELS`, the kernel set built on them.

Convolutions (a generic one, one unrolled for the small filter banks of first layers, and for larger 3×3
banks the register-blocked kernel of :mod:`.conv3x3`), batch norm with the batch's statistics, max and 2×2
average pooling, global average pooling and the blocked transpose into a (features, samples) cache.
:class:`NumbaKernels` runs them through :func:`~.forward.run_layers`, fusing conv → [ReLU] → 2×2 max-pool,
batch norm with a ReLU after it and a ReLU with a max-pool after it (the ReLU then runs on the pooled
array: it commutes with the max); each kernel splits its work over the engine's threads (convolutions
by image or output channel, the others by channel: :func:`by_channels`); the fusion points are found from
the layer types, so they follow any network's order (the paper net's blocks [ReLU] → conv → [avg-pool] →
BN fuse BN + ReLU in blocks 1–5, and block 6's BN feeds the global average pool unfused). Evaluation mode
runs the same kernels, batch norm with the population statistics (:func:`bn_eval_forward`); layers without
a compiled kernel run the layers' own code.

Each kernel computes what the layer computes, in the same order of operations where that matters for
rounding (the convolution sums over (c, kh, kw) as im2col's rows, batch norm accumulates its statistics in
float64 and applies (x − mean)·(γ·inv) + β).
"""

from __future__ import annotations

import numpy as np

from ..layers import BN_EPS, AvgPool2d, BatchNorm2d, Conv2d, GlobalAvgPool, Layer, MaxPool2d, ReLU
from ..parallel import for_each, split
from . import conv3x3
from .forward import Kernels
from .jit import nanmax as _nanmax
from .jit import njit

#: work a thread's share of a channel-wise kernel should hold at least, in elements read (a multiply-add counts
#: 1/8): below ~50 µs a share, handing it to another thread costs more than it saves
MIN_SHARE = 131072


def by_channels(C: int, per_channel: int, call) -> None:
    """``call(c0, c1)`` for contiguous channel ranges covering ``range(C)``, spread over the engine's threads
    (each channel is computed alike whatever the split: results never depend on the thread count);
    ``per_channel`` is one channel's work as :data:`MIN_SHARE` counts it."""
    ranges = split(C, minimum=max(1, MIN_SHARE // max(1, per_channel)))
    if len(ranges) == 1:
        call(0, C)
    else:
        for_each(lambda r: call(*r), ranges)


@njit(cache=True, nogil=True)
def conv2d_forward(xpad, W, b, out):
    """Stride-1 convolution of the zero-padded ``xpad`` (C, n, Hp, Wp) with ``W`` (O, C, k, k), plus ``b``
    (O,), into ``out`` (O, n, Ho, Wo). Rows are computed full-width over the padded row stride so the
    inner loop is one long contiguous run (vectorised); the sum runs over (c, kh, kw) like im2col's rows."""
    C, n, Hp, Wp = xpad.shape
    O, _, k, _ = W.shape
    Ho, Wo = out.shape[2], out.shape[3]
    L = (Ho - 1) * Wp + Wo
    acc = np.zeros((O, Ho * Wp), xpad.dtype)
    xq = np.empty((C, Hp * Wp), xpad.dtype)
    wf = W.reshape(O, C * k * k)
    for q in range(n):
        for c in range(C):
            for h in range(Hp):
                for w in range(Wp):
                    xq[c, h * Wp + w] = xpad[c, q, h, w]
        acc[:, :] = 0.0
        for c in range(C):
            for kh in range(k):
                for kw in range(k):
                    off = kh * Wp + kw
                    seg = xq[c, off : off + L]
                    for o in range(W.shape[0]):
                        wt = wf[o, (c * k + kh) * k + kw]
                        ao = acc[o]
                        for p in range(L):
                            ao[p] += wt * seg[p]
        for o in range(O):
            for h in range(Ho):
                for w in range(Wo):
                    out[o, q, h, w] = acc[o, h * Wp + w] + b[o]


_SMALL_CONVS: dict = {}


def small_conv_kernel(O: int, C: int, k: int):
    """A convolution compiled for a fixed, small filter bank (O, C, k, k) — the first layers here have
    C·k·k = 9 taps — with the taps unrolled so the loop over a row's pixels vectorises. Same sum order
    as :func:`conv2d_forward`."""
    key = (O, C, k)
    if key not in _SMALL_CONVS:

        @njit(cache=True, nogil=True)  # Numba's cache key includes the closure's (O, C, k)
        def conv(xpad, W, b, out):
            n = xpad.shape[1]
            Ho, Wo = out.shape[2], out.shape[3]
            for q in range(n):
                for h in range(Ho):
                    for o in range(W.shape[0]):
                        orow = out[o, q, h]
                        for w in range(Wo):
                            acc = orow.dtype.type(0)
                            for c in range(C):
                                for kh in range(k):
                                    xr = xpad[c, q, h + kh]
                                    for kw in range(k):
                                        acc += W[o, c, kh, kw] * xr[w + kw]
                            orow[w] = acc + b[o]

        _SMALL_CONVS[key] = conv
    return _SMALL_CONVS[key]


def conv_kernel(O: int, C: int, k: int):
    """The compiled convolution for a filter bank of shape (O, C, k, k)."""
    return small_conv_kernel(O, C, k) if C * k * k <= 27 else conv2d_forward


_SMALL_CONV_POOLS: dict = {}


def small_conv_pool_kernel(O: int, C: int, k: int, pad: int, relu: bool):
    """conv → [ReLU] → 2×2 max-pool fused for a small filter bank (O, C, k, k) with zero padding ``pad``:
    per image, the input is zero-padded into a small local buffer; per pooled output row, each output
    channel's two conv rows are computed as :func:`small_conv_kernel` computes them (taps unrolled, summed
    over (c, kh, kw) per pixel, then the bias), pooled as :func:`_maxpool2` pools and passed through ReLU
    (which commutes with the max). Neither the padded input nor the conv output is stored: the results
    are bitwise those of the unfused kernels."""
    key = (O, C, k, pad, relu)
    if key not in _SMALL_CONV_POOLS:

        @njit(cache=True, nogil=True)  # Numba's cache key includes the closure's values
        def conv_pool(x, W, b, out):
            n, H, Wd = x.shape[1], x.shape[2], x.shape[3]
            Hq, Wq = out.shape[2], out.shape[3]
            L = 2 * Wq
            xq = np.zeros((C, H + 2 * pad, Wd + 2 * pad), x.dtype)  # its border stays zero
            rows = np.empty((2, L), x.dtype)
            zero = out.dtype.type(0)
            for q in range(n):
                for c in range(C):
                    for h in range(H):
                        for w in range(Wd):
                            xq[c, h + pad, w + pad] = x[c, q, h, w]
                for hq in range(Hq):
                    for o in range(W.shape[0]):
                        for r in range(2):
                            row = rows[r]
                            for w in range(L):
                                acc = row.dtype.type(0)
                                for c in range(C):
                                    for kh in range(k):
                                        xr = xq[c, 2 * hq + r + kh]
                                        for kw in range(k):
                                            acc += W[o, c, kh, kw] * xr[w + kw]
                                row[w] = acc + b[o]
                        orow = out[o, q, hq]
                        r0, r1 = rows[0], rows[1]
                        for w in range(Wq):
                            v = _nanmax(_nanmax(r0[2 * w], r0[2 * w + 1]), _nanmax(r1[2 * w], r1[2 * w + 1]))
                            orow[w] = _nanmax(v, zero) if relu else v

        _SMALL_CONV_POOLS[key] = conv_pool
    return _SMALL_CONV_POOLS[key]


def even_output(layer: Conv2d, x_shape: tuple) -> bool:
    """Whether ``layer``'s output on input of shape ``x_shape`` has an even height and width (a 2×2 max-pool
    after it then covers it whole, and can be fused with it)."""
    grow = 2 * layer.pad - layer.k + 1
    return (x_shape[2] + grow) % 2 == 0 and (x_shape[3] + grow) % 2 == 0


def fuses_conv_pool(layer: Conv2d, x_shape: tuple) -> bool:
    """Whether conv → [ReLU] → 2×2 max-pool runs fused for ``layer`` on input of shape ``x_shape`` in the
    small-bank kernel: C·k·k ≤ 27 (where the unrolled taps pay) and an even conv output."""
    return x_shape[0] * layer.k * layer.k <= 27 and even_output(layer, x_shape)


def conv_pool_forward(layer: Conv2d, P: dict, x: np.ndarray, relu: bool) -> np.ndarray:
    """``layer`` then (ReLU and) 2×2 max pooling on ``x`` (C, n, H, W), fused (:func:`small_conv_pool_kernel`)."""
    C, n, H, Wd = x.shape
    k, p = layer.k, layer.pad
    Ho, Wo = H + 2 * p - k + 1, Wd + 2 * p - k + 1
    W = np.ascontiguousarray(P[layer.full("weight")])
    b = P[layer.full("bias")] if layer.bias else np.zeros(W.shape[0], x.dtype)
    out = np.empty((W.shape[0], n, Ho // 2, Wo // 2), x.dtype)
    kernel = small_conv_pool_kernel(W.shape[0], C, k, p, bool(relu))
    x, b = np.ascontiguousarray(x), np.ascontiguousarray(b)
    by_channels(W.shape[0], out[0].size * C * k * k // 2, lambda o0, o1: kernel(x, W[o0:o1], b[o0:o1], out[o0:o1]))
    return out


@njit(cache=True, nogil=True)
def _maxpool2(x, out):
    C, n, Ho, Wo = out.shape
    for c in range(C):
        for q in range(n):
            for h in range(Ho):
                o = out[c, q, h]
                r0 = x[c, q, 2 * h]
                r1 = x[c, q, 2 * h + 1]
                for w in range(Wo):
                    o[w] = _nanmax(_nanmax(r0[2 * w], r0[2 * w + 1]), _nanmax(r1[2 * w], r1[2 * w + 1]))


@njit(cache=True, nogil=True)
def _maxpool(x, s, out):
    C, n, Ho, Wo = out.shape
    for c in range(C):
        for q in range(n):
            for h in range(Ho):
                for w in range(Wo):
                    m = x[c, q, h * s, w * s]
                    for i in range(s):
                        for j in range(s):
                            m = _nanmax(m, x[c, q, h * s + i, w * s + j])
                    out[c, q, h, w] = m


@njit(cache=True, nogil=True)
def _relu_inplace(a):
    flat = a.reshape(a.size)
    zero = flat.dtype.type(0)
    for p in range(flat.size):
        flat[p] = _nanmax(flat[p], zero)


def relu_maxpool(x: np.ndarray, s: int, relu: bool) -> np.ndarray:
    """Optional ReLU then s×s max pooling (stride s) of ``x`` (C, n, H, W); the ReLU commutes with the
    max, so it is applied to the smaller pooled array. NaN propagates as in ``numpy.maximum``."""
    C, n, H, W = x.shape
    if s == 1:
        out = x.copy()
    else:
        out = np.empty((C, n, H // s, W // s), x.dtype)
        by_channels(C, x[0].size, lambda a, b: _maxpool2(x[a:b], out[a:b]) if s == 2 else _maxpool(x[a:b], s, out[a:b]))
    if relu:
        by_channels(C, out[0].size, lambda a, b: _relu_inplace(out[a:b]))
    return out


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _sum64(row):
    """Σ row in float64, reassociated into vector-wide partial sums (a plain running sum is one long chain
    of dependent adds: ~4× slower)."""
    s = 0.0
    for p in range(row.size):
        s += np.float64(row[p])
    return s


@njit(cache=True, nogil=True, fastmath={"reassoc"})
def _sqdev64(row, mean):
    """Σ (row − mean)² in float64 (the difference taken in the row's dtype), reassociated as :func:`_sum64`."""
    v = 0.0
    for p in range(row.size):
        d = np.float64(row[p] - mean)
        v += d * d
    return v


@njit(cache=True, nogil=True)
def batchnorm_train(x, gamma, beta, eps, relu, out):
    """Batch norm with the batch's own statistics (mean and biased variance per channel of ``x``
    (C, ...) flattened to (C, M)), optionally followed by ReLU, into ``out``; the statistics are
    accumulated in float64, then applied as the layer does: (x − mean)·(γ·inv) + β."""
    C, M = x.shape
    zero = out.dtype.type(0)
    for c in range(C):
        row = x[c]
        mean = row.dtype.type(_sum64(row) / M)
        var = row.dtype.type(_sqdev64(row, mean) / M)
        scale = gamma[c] * (1.0 / np.sqrt(var + eps))
        scale = row.dtype.type(scale)
        b = beta[c]
        o = out[c]
        for p in range(M):
            y = (row[p] - mean) * scale + b
            o[p] = _nanmax(y, zero) if relu else y


@njit(cache=True, nogil=True)
def avgpool2(x, out):
    """2×2 average pooling (stride 2) of ``x`` (C, n, H, W) into ``out``: the four values summed in the
    order numpy's mean over the window axes adds them, then divided by 4."""
    C, n, Ho, Wo = out.shape
    for c in range(C):
        for q in range(n):
            for h in range(Ho):
                o = out[c, q, h]
                r0 = x[c, q, 2 * h]
                r1 = x[c, q, 2 * h + 1]
                for w in range(Wo):
                    o[w] = ((r0[2 * w] + r0[2 * w + 1]) + (r1[2 * w] + r1[2 * w + 1])) / 4


@njit(cache=True, nogil=True)
def global_avgpool(x, out):
    """Mean of each (channel, sample) plane of ``x`` (C, n, H, W) into ``out`` (n, C)."""
    C, n, H, W = x.shape
    for c in range(C):
        for q in range(n):
            s = x.dtype.type(0)
            for h in range(H):
                for w in range(W):
                    s += x[c, q, h, w]
            out[q, c] = s / (H * W)


@njit(cache=True, nogil=True)
def to_features_T(x, outT, col0):
    """Write ``x`` (C, n, H, W) as flatten-order feature rows of ``outT`` (C·H·W, N), columns col0..
    (a transpose blocked by 16 samples, so reads and writes both stay in cache lines)."""
    C, n, H, W = x.shape
    HW = H * W
    for c in range(C):
        for q0 in range(0, n, 16):
            q1 = min(n, q0 + 16)
            for p in range(HW):
                row = outT[c * HW + p]
                h = p // W
                w = p - h * W
                for q in range(q0, q1):
                    row[col0 + q] = x[c, q, h, w]


@njit(cache=True, nogil=True)
def batchnorm_apply(x, mean, scale, beta, relu, out):
    """Batch norm with given statistics (evaluation mode): (x − mean)·scale + β per channel of ``x``
    (C, M), ``scale`` = γ·inv computed as the layer computes it; optionally followed by ReLU."""
    C, M = x.shape
    zero = out.dtype.type(0)
    for c in range(C):
        row = x[c]
        o = out[c]
        m, sc, b = mean[c], scale[c], beta[c]
        for p in range(M):
            y = (row[p] - m) * sc + b
            o[p] = _nanmax(y, zero) if relu else y


def bn_eval_forward(layer: BatchNorm2d, P: dict, x: np.ndarray, relu: bool = False) -> np.ndarray:
    """A batch norm layer in evaluation mode (its population statistics in ``P``; optionally + ReLU)."""
    mean_name, var_name = layer.buffer_names()
    if mean_name not in P:
        raise RuntimeError(f"{layer.name}: population statistics are missing; call calibrate_bn first")
    mean, var = P[mean_name], P[var_name]
    scale = P[layer.full("gamma")] * (1.0 / np.sqrt(var + BN_EPS))  # as BatchNorm2d.forward computes it
    x = np.ascontiguousarray(x)
    C = x.shape[0]
    out = np.empty_like(x)
    x2, out2 = x.reshape(C, -1), out.reshape(C, -1)
    m, sc, beta = (np.ascontiguousarray(v) for v in (mean, scale, P[layer.full("beta")]))
    by_channels(C, x2.shape[1], lambda a, z: batchnorm_apply(x2[a:z], m[a:z], sc[a:z], beta[a:z], relu, out2[a:z]))
    return out


def bn_forward(layer: BatchNorm2d, P: dict, x: np.ndarray, relu: bool = False) -> np.ndarray:
    """A batch norm layer in training mode (optionally + ReLU) on ``x`` (C, n, H, W)."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    C = x.shape[0]
    g, b = np.ascontiguousarray(P[layer.full("gamma")]), np.ascontiguousarray(P[layer.full("beta")])
    x2, out2 = x.reshape(C, -1), out.reshape(C, -1)
    by_channels(C, x2.shape[1], lambda a, z: batchnorm_train(x2[a:z], g[a:z], b[a:z], BN_EPS, relu, out2[a:z]))
    return out


def conv_forward(layer: Conv2d, W: np.ndarray, b: np.ndarray | None, xpad: np.ndarray) -> np.ndarray:
    """The compiled convolution of the zero-padded ``xpad`` (C, n, Hp, Wp) with the filter bank ``W``
    (O, C, k, k) of ``layer`` and bias ``b`` (O,) (None: zero)."""
    C, n, Hp, Wp = xpad.shape
    O, k = W.shape[0], layer.k
    out = np.empty((O, n, Hp - k + 1, Wp - k + 1), xpad.dtype)
    b = np.zeros(O, xpad.dtype) if b is None else b
    kernel, xpad = conv_kernel(O, C, k), np.ascontiguousarray(xpad)
    by_channels(O, out[0].size * C * k * k // 8, lambda o0, o1: kernel(xpad, W[o0:o1], b[o0:o1], out[o0:o1]))
    return out


class NumbaKernels(Kernels):
    """:class:`~.forward.Kernels` with the layers above compiled by Numba (NumPy arrays, training mode)."""

    name = "numba"

    def run(self, layers: list[Layer], i: int, stop: int, P: dict, x, train: bool):
        layer = layers[i]
        after = layers[i + 1] if i + 1 < stop else None
        if isinstance(layer, Conv2d) and x.ndim == 4:
            relu = isinstance(after, ReLU)
            pool = layers[i + 1 + relu] if i + 1 + relu < stop else None
            pooled = isinstance(pool, MaxPool2d) and pool.size == 2
            if pooled and fuses_conv_pool(layer, x.shape):
                return conv_pool_forward(layer, P, x, relu), 2 + relu  # conv → [ReLU] → 2×2 max-pool fused
            if conv3x3.fits(layer, x.shape):  # pads as it goes; the pooling (and ReLU) fused where even
                b = P[layer.full("bias")] if layer.bias else None
                fused = pooled and even_output(layer, x.shape)
                return conv3x3.conv3x3(x, P[layer.full("weight")], b, fused, fused and relu), (2 + relu if fused else 1)
        if x.ndim != 4 or isinstance(layer, Conv2d):  # a conv: padded there, compiled here
            return super().run(layers, i, stop, P, x, train)
        if isinstance(layer, BatchNorm2d):  # the one layer whose result depends on the mode
            relu = isinstance(after, ReLU)
            return (bn_forward if train else bn_eval_forward)(layer, P, x, relu), 1 + relu
        if isinstance(layer, AvgPool2d) and layer.size == 2:
            C, n, H, W = x.shape
            out = np.empty((C, n, H // 2, W // 2), x.dtype)
            x = np.ascontiguousarray(x)
            by_channels(C, x[0].size, lambda a, b: avgpool2(x[a:b], out[a:b]))
            return out, 1
        if isinstance(layer, GlobalAvgPool):
            out = np.empty((x.shape[1], x.shape[0]), x.dtype)
            global_avgpool(np.ascontiguousarray(x), out)
            return out, 1
        if isinstance(layer, ReLU):
            if isinstance(after, MaxPool2d):
                return relu_maxpool(np.ascontiguousarray(x), after.size, True), 2
            return relu_maxpool(np.ascontiguousarray(x), 1, True), 1
        if isinstance(layer, MaxPool2d):
            return relu_maxpool(np.ascontiguousarray(x), layer.size, False), 1
        return super().run(layers, i, stop, P, x, train)

    def conv_from_padded(self, layer, P, xpad):
        b = P[layer.full("bias")] if layer.bias else None
        if conv3x3.fits(layer, xpad.shape):  # it pads as it goes: the padding is taken off again
            return conv3x3.conv3x3(xpad[:, :, 1:-1, 1:-1], P[layer.full("weight")], b)
        return conv_forward(layer, P[layer.full("weight")], b, xpad)

    def conv_out_channel(self, layer, P, xpad, o):
        b = P[layer.full("bias")][o : o + 1] if layer.bias else None
        return conv_forward(layer, P[layer.full("weight")][o : o + 1], b, xpad)[0]

    def conv_one_input(self, layer, P, delta, o):
        p = layer.pad
        dp = np.pad(delta, ((0, 0), (p, p), (p, p)))[None] if p else delta[None]
        return conv_forward(layer, np.ascontiguousarray(P[layer.full("weight")][:, o : o + 1]), None, dp)

    def bn_channel(self, layer, a, gamma, beta):
        out = np.empty_like(a)
        batchnorm_train(np.ascontiguousarray(a).reshape(1, -1), gamma, beta, BN_EPS, False, out.reshape(1, -1))
        return out

    def pool_channel(self, layer, a):
        if isinstance(layer, MaxPool2d):
            return relu_maxpool(np.ascontiguousarray(a[None]), layer.size, False)[0]
        if isinstance(layer, AvgPool2d) and layer.size == 2:
            n, H, W = a.shape
            out = np.empty((1, n, H // 2, W // 2), a.dtype)
            avgpool2(np.ascontiguousarray(a[None]), out)
            return out[0]
        return super().pool_channel(layer, a)

    def write_T(self, a, out, s):
        if a.ndim == 4:
            to_features_T(a, out, s)
        else:
            out[:, s : s + a.shape[0]] = a.T


#: the compiled kernel set of the CPU evaluators
NUMBA_KERNELS = NumbaKernels()
