"""The forward pass, written once, with a pluggable kernel set.

:func:`run_layers` runs layers ``start .. stop-1`` of a network; *how* each layer is computed is the
business of a kernel set (:class:`Kernels`). Every forward pass that wants a stretch of layers' output
goes through it: :meth:`~rso_engine.models.Model.forward` with :data:`LAYER_KERNELS` (the layers' own
NumPy/CuPy code, in training or evaluation mode), and the evaluators' training-set caches and incremental
passes with the kernel set of their backend — :data:`LAYER_KERNELS` for NumPy/CuPy,
``numba_layers.NUMBA_KERNELS`` compiled for the CPU, ``cuda.GPU_KERNELS`` (the same code with larger
convolution chunks) on the GPU. A kernel set may fuse a layer with the next one (batch norm + ReLU) and
then reports that it ran two. (Only passes that need every layer's own intermediate walk the layers
themselves: backprop's ``Model.forward_keep`` and ``Model.calibrate_bn``, which records each batch norm's
statistics.)

A kernel set also owns the per-channel pieces of the incremental evaluators: one output channel of a
convolution, a convolution applied to the change of one of its input channels, batch norm and pooling of
one channel, and the transposed (features, samples) layout of the output layer's cache. An incremental
evaluator's backend is therefore just the kernel set it holds (plus its output-layer sweep).

Every kernel set computes exactly what the layers compute (same operations; float64 results agree to
rounding, tested against :data:`LAYER_KERNELS`).
"""

from __future__ import annotations

from typing import Any

from ..backend import array_module
from ..cancel import check_cancelled
from ..layers import BatchNorm2d, Conv2d, Layer

Array = Any

#: bytes of im2col patches per matrix product on the CPU (the layers' own default)
CONV_CHUNK_BYTES = 32 << 20


class Kernels:
    """The layers' own vectorised code (NumPy or CuPy, whichever the arrays are); convolutions as im2col
    plus one matrix product per chunk of about ``chunk_bytes`` of patches."""

    name = "xp"

    def __init__(self, chunk_bytes: int = CONV_CHUNK_BYTES):
        self.chunk_bytes = chunk_bytes

    # ------------------------------------------------------------------ whole layers
    def run(self, layers: list[Layer], i: int, stop: int, P: dict, x: Array, train: bool) -> tuple[Array, int]:
        """Run ``layers[i]`` on ``x`` (and possibly layers after it, before ``stop``): (output, layers run)."""
        layer = layers[i]
        if isinstance(layer, Conv2d):
            p = layer.pad
            xpad = array_module(x).pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
            return self.conv_from_padded(layer, P, xpad), 1
        return layer.forward(P, x, train)[0], 1

    def conv_from_padded(self, layer: Conv2d, P: dict, xpad: Array) -> Array:
        """A conv layer's full output (C_out, n, Ho, Wo) from its already zero-padded input."""
        return layer.forward_padded(P, xpad, self.chunk_bytes)

    def write_T(self, a: Array, out: Array, s: int) -> None:
        """Store a chunk's activation ``a`` (model layout) as columns ``s..`` of a (features, N) array,
        features in flatten order."""
        n = a.shape[1] if a.ndim == 4 else a.shape[0]
        out[:, s : s + n] = a.transpose(0, 2, 3, 1).reshape(-1, n) if a.ndim == 4 else a.T

    # ------------------------------------------------------------------ one channel
    def conv_out_channel(self, layer: Conv2d, P: dict, xpad: Array, o: int) -> Array:
        """Output channel ``o`` (n, Ho, Wo) of a conv for its zero-padded input (C, n, H+2p, W+2p)."""
        C, n, Hp, Wp = xpad.shape
        k = layer.k
        Ho, Wo = Hp - k + 1, Wp - k + 1
        w = P[layer.full("weight")][o].reshape(-1)
        out = array_module(xpad).empty((n, Ho * Wo), dtype=xpad.dtype)
        step = _chunk_step(C * k * k * Ho * Wo * xpad.itemsize, n, self.chunk_bytes)
        for s in range(0, n, step):
            e = min(n, s + step)
            out[s:e] = (w @ layer.im2col(xpad[:, s:e], Ho, Wo)).reshape(e - s, Ho * Wo)
        out = out.reshape(n, Ho, Wo)
        if layer.bias:
            out += P[layer.full("bias")][o]
        return out

    def conv_one_input(self, layer: Conv2d, P: dict, delta: Array, o: int) -> Array:
        """The conv applied to a change ``delta`` (n, H, W) of its input channel ``o``: the change of every
        output channel (C_out, n, Ho, Wo), bias excluded."""
        xp = array_module(delta)
        w = P[layer.full("weight")][:, o]
        k, p = layer.k, layer.pad
        n, H, W = delta.shape
        dp = xp.pad(delta, ((0, 0), (p, p), (p, p))) if p else delta
        Ho, Wo = H + 2 * p - k + 1, W + 2 * p - k + 1
        cout = w.shape[0]
        w2 = w.reshape(cout, k * k)
        out = xp.empty((cout, n, Ho * Wo), dtype=delta.dtype)
        step = _chunk_step(k * k * Ho * Wo * delta.itemsize, n, self.chunk_bytes)
        for s in range(0, n, step):
            e = min(n, s + step)
            cols = xp.stack([dp[s:e, i : i + Ho, j : j + Wo] for i in range(k) for j in range(k)], axis=0)
            out[:, s:e] = (w2 @ cols.reshape(k * k, -1)).reshape(cout, e - s, Ho * Wo)
        return out.reshape(cout, n, Ho, Wo)

    def bn_channel(self, layer: BatchNorm2d, a: Array, gamma: Array, beta: Array) -> Array:
        """Batch norm (training mode) of one channel ``a`` (n, H, W) with scale ``gamma`` and shift ``beta``
        (1-element arrays)."""
        sub = {layer.full("gamma"): gamma, layer.full("beta"): beta}
        return layer.forward(sub, a[None], True)[0][0]

    def pool_channel(self, layer: Layer, a: Array) -> Array:
        """A pooling layer applied to one channel (n, H, W)."""
        return layer.forward({}, a[None], True)[0][0]


#: the layers' own code with their default chunking: what :meth:`Model.forward` runs
LAYER_KERNELS = Kernels()


def run_layers(layers: list[Layer], P: dict, x: Array, start: int = 0, stop: int | None = None,
               kernels: Kernels = LAYER_KERNELS, train: bool = True) -> Array:  # fmt: skip
    """Layers ``start .. stop-1`` (as ``layers[start:stop]``) on ``x`` with parameters ``P``, each computed by
    ``kernels``; ``train`` selects batch statistics in batch norm (``False``: population statistics)."""
    span = range(len(layers))[start:stop]
    i, stop = span.start, span.stop
    while i < stop:
        check_cancelled()  # a window closing stops a long pass between two layers
        x, ran = kernels.run(layers, i, stop, P, x, train)
        i += ran
    return x


def _chunk_step(per_sample_bytes: int, n: int, chunk_bytes: int) -> int:
    return max(1, min(n, chunk_bytes // max(1, per_sample_bytes)))
