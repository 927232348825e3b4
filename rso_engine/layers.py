"""Layers with vectorised forward and backward passes, written once for NumPy and CuPy.

Activations of the convolutional part use the channel-major layout ``(C, N, H, W)`` (channel, sample,
row, column): one conv output channel is then one contiguous block, which is what RSO's per-channel
incremental evaluation works on. The model converts dataset images ``(N, 1, H, W)`` to that layout once
(:func:`to_cnhw`); :class:`Flatten` and :class:`GlobalAvgPool` turn it into ``(N, features)`` rows for
the dense layers, flattening in (channel, row, column) order as PyTorch and Flux do.

Every layer is stateless apart from BatchNorm's population statistics; parameters live in one ordered
dict on the model and are passed in as ``P``. ``forward(P, x, train)`` returns ``(y, cache)`` where
``cache`` is what ``backward`` needs (None when ``keep=False``); ``backward(P, dy, cache)`` returns
``(dx, grads)`` with ``grads`` keyed by full parameter name.

A residual link is one layer too, :class:`Residual`: ``body(x) + skip(x)`` over lists of the layers above,
so a model stays one sequential list that any pass can start at any of its indices.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .backend import array_module

Array = Any  # numpy.ndarray or cupy.ndarray

BN_EPS = 1e-5


def _xp(a: Array):
    return array_module(a)


def to_cnhw(x_nchw: Array) -> Array:
    """Dataset layout (N, C, H, W) -> the model's channel-major layout (C, N, H, W), contiguous."""
    return _xp(x_nchw).ascontiguousarray(x_nchw.transpose(1, 0, 2, 3))


class Layer:
    """Base class: a named layer owning zero or more parameters."""

    kind = "layer"
    #: short parameter names this layer owns, in sweep order (e.g. ("weight", "bias"))
    param_names: tuple[str, ...] = ()

    def __init__(self, name: str):
        self.name = name

    def full(self, short: str) -> str:
        return f"{self.name}.{short}"

    @property
    def params(self) -> tuple[str, ...]:
        """Full parameter names ("conv1.weight", ...) in sweep order."""
        return tuple(self.full(p) for p in self.param_names)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def init_params(self, rng, dtype) -> dict[str, Any]:
        """NumPy initial values, keyed by full name."""
        return {}

    def forward(self, P: dict, x: Array, train: bool, keep: bool = False):
        raise NotImplementedError

    def backward(self, P: dict, dy: Array, cache) -> tuple[Array, dict]:
        raise NotImplementedError

    def describe(self) -> str:
        return self.kind


class Conv2d(Layer):
    """k×k convolution, stride 1, zero padding ``pad``; weight (out, in, k, k), optional bias (out,).

    Computed as im2col (the k·k shifted copies of the input stacked) and one matrix product, in chunks
    of samples so the patch matrix stays small; vectorised over samples and pixels.
    """

    kind = "conv"

    def __init__(self, name: str, cin: int, cout: int, k: int = 3, pad: int = 1, bias: bool = True):
        super().__init__(name)
        self.cin, self.cout, self.k, self.pad, self.bias = cin, cout, k, pad, bias
        self.param_names = ("weight", "bias") if bias else ("weight",)

    @property
    def fan_in(self) -> int:
        return self.cin * self.k * self.k

    def param_shapes(self):
        shapes = {self.full("weight"): (self.cout, self.cin, self.k, self.k)}
        if self.bias:
            shapes[self.full("bias")] = (self.cout,)
        return shapes

    def init_params(self, rng, dtype):
        std = math.sqrt(2.0 / self.fan_in)  # He init, as the paper states
        out = {self.full("weight"): rng.normal(0.0, std, self.param_shapes()[self.full("weight")]).astype(dtype)}
        if self.bias:
            out[self.full("bias")] = _np_zeros((self.cout,), dtype)
        return out

    def _padded(self, x):
        xp = _xp(x)
        if self.pad == 0:
            return x
        p = self.pad
        return xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))

    def im2col(self, xpad, Ho: int, Wo: int):
        """(C, n, H+2p, W+2p) padded input -> (C·k·k, n·Ho·Wo) patches, rows in (c, kh, kw) order."""
        xp = _xp(xpad)
        C, n = xpad.shape[:2]
        k = self.k
        cols = xp.stack([xpad[:, :, i : i + Ho, j : j + Wo] for i in range(k) for j in range(k)], axis=1)
        return cols.reshape(C * k * k, n * Ho * Wo)

    def forward(self, P, x, train, keep=False):
        xpad = self._padded(x)
        return self.forward_padded(P, xpad), (xpad, x.shape) if keep else None

    def forward_padded(self, P, xpad, chunk_bytes: int = 32 << 20):
        """The output (C_out, n, Ho, Wo) for an already zero-padded input: im2col + one matrix product per
        chunk of samples, each chunk's patch matrix about ``chunk_bytes``."""
        xp = _xp(xpad)
        C, N, Hp, Wp = xpad.shape
        Ho, Wo = Hp - self.k + 1, Wp - self.k + 1
        W2 = P[self.full("weight")].reshape(self.cout, -1)
        step = max(1, min(N, chunk_bytes // max(1, C * self.k * self.k * Ho * Wo * xpad.itemsize)))
        y = xp.empty((self.cout, N, Ho * Wo), dtype=xpad.dtype)
        for s in range(0, N, step):
            e = min(N, s + step)
            y[:, s:e] = (W2 @ self.im2col(xpad[:, s:e], Ho, Wo)).reshape(self.cout, e - s, Ho * Wo)
        y = y.reshape(self.cout, N, Ho, Wo)
        if self.bias:
            y += P[self.full("bias")][:, None, None, None]
        return y

    def backward(self, P, dy, cache):
        xp = _xp(dy)
        xpad, in_shape = cache
        W = P[self.full("weight")]
        C, N, H, Wd = in_shape
        O, _, Ho, Wo = dy.shape
        dy2 = dy.reshape(O, -1)
        dW = xp.empty_like(W)
        dxpad = xp.zeros_like(xpad)
        for i in range(self.k):
            for j in range(self.k):
                shifted = xpad[:, :, i : i + Ho, j : j + Wo].reshape(C, -1)
                dW[:, :, i, j] = dy2 @ shifted.T
                dxpad[:, :, i : i + Ho, j : j + Wo] += (W[:, :, i, j].T @ dy2).reshape(C, N, Ho, Wo)
        p = self.pad
        dx = dxpad[:, :, p : p + H, p : p + Wd] if p else dxpad
        grads = {self.full("weight"): dW}
        if self.bias:
            grads[self.full("bias")] = dy.sum(axis=(1, 2, 3))
        return dx, grads

    def describe(self):
        return f"Conv {self.k}×{self.k} {self.cin}→{self.cout}" + ("" if self.bias else " (no bias)")


class BatchNorm2d(Layer):
    """Per-channel batch norm over (N, H, W); γ (``gamma``) and β (``beta``) per channel.

    ``train=True`` normalises with the batch's own statistics (as RSO's search and SGD do);
    ``train=False`` with the population statistics in ``P[name.mean]``/``P[name.var]`` that
    :meth:`Model.calibrate_bn` sets. Those two are buffers, not searched parameters.
    """

    kind = "bn"
    param_names = ("gamma", "beta")
    SIGMA = 0.167  # the σ the authors' code uses when searching γ and β

    def __init__(self, name: str, channels: int):
        super().__init__(name)
        self.channels = channels

    def param_shapes(self):
        return {self.full("gamma"): (self.channels,), self.full("beta"): (self.channels,)}

    def buffer_names(self) -> tuple[str, str]:
        return self.full("mean"), self.full("var")

    def init_params(self, rng, dtype):
        return {
            self.full("gamma"): np.ones(self.channels, dtype),
            self.full("beta"): np.zeros(self.channels, dtype),
        }

    def forward(self, P, x, train, keep=False):
        xp = _xp(x)
        C = x.shape[0]
        x2 = x.reshape(C, -1)  # channel-major layout: a channel's values are one contiguous row
        if train:
            mean = x2.mean(axis=1)
            xc = x2 - mean[:, None]
            var = (xc * xc).mean(axis=1)
        else:
            mean_name, var_name = self.buffer_names()
            if mean_name not in P:
                raise RuntimeError(f"{self.name}: population statistics are missing; call calibrate_bn first")
            mean, var = P[mean_name], P[var_name]
            xc = x2 - mean[:, None]
        inv = 1.0 / xp.sqrt(var + BN_EPS)
        y = xc * (P[self.full("gamma")] * inv)[:, None] + P[self.full("beta")][:, None]
        return y.reshape(x.shape), ((xc * inv[:, None]).reshape(x.shape), inv[:, None, None, None]) if keep else None

    def backward(self, P, dy, cache):
        xhat, inv = cache
        g = P[self.full("gamma")][:, None, None, None]
        m = xhat[0].size
        dgamma = (dy * xhat).sum(axis=(1, 2, 3))
        dbeta = dy.sum(axis=(1, 2, 3))
        dxhat = dy * g
        dx = inv / m * (m * dxhat - dxhat.sum(axis=(1, 2, 3), keepdims=True)
                        - xhat * (dxhat * xhat).sum(axis=(1, 2, 3), keepdims=True))
        return dx, {self.full("gamma"): dgamma, self.full("beta"): dbeta}

    def describe(self):
        return f"BatchNorm {self.channels}"


class ReLU(Layer):
    kind = "relu"

    def forward(self, P, x, train, keep=False):
        y = _xp(x).maximum(x, 0)
        return y, (x > 0) if keep else None

    def backward(self, P, dy, cache):
        return dy * cache, {}

    def describe(self):
        return "ReLU"


class MaxPool2d(Layer):
    """2×2 (size s) max pooling, stride s; a tie routes the gradient to the first maximum."""

    kind = "maxpool"

    def __init__(self, name: str, size: int = 2):
        super().__init__(name)
        self.size = size

    def _windows(self, x):
        C, N, H, W = x.shape
        s = self.size
        xr = x.reshape(C, N, H // s, s, W // s, s).transpose(0, 1, 2, 4, 3, 5)
        return xr.reshape(C, N, H // s, W // s, s * s)

    def forward(self, P, x, train, keep=False):
        if not keep:
            xp = _xp(x)
            s = self.size
            y = x[:, :, ::s, ::s]
            for i in range(s):
                for j in range(s):
                    if i or j:
                        y = xp.maximum(y, x[:, :, i::s, j::s])
            return y, None
        win = self._windows(x)
        arg = win.argmax(axis=-1)
        y = _xp(x).take_along_axis(win, arg[..., None], axis=-1)[..., 0]
        return y, (arg, x.shape)

    def backward(self, P, dy, cache):
        xp = _xp(dy)
        arg, shape = cache
        C, N, H, W = shape
        s = self.size
        onehot = arg[..., None] == xp.arange(s * s)
        dwin = onehot * dy[..., None]
        dx = dwin.reshape(C, N, H // s, W // s, s, s).transpose(0, 1, 2, 4, 3, 5).reshape(shape)
        return dx, {}

    def describe(self):
        return f"MaxPool {self.size}×{self.size}"


class AvgPool2d(Layer):
    kind = "avgpool"

    def __init__(self, name: str, size: int = 2):
        super().__init__(name)
        self.size = size

    def forward(self, P, x, train, keep=False):
        C, N, H, W = x.shape
        s = self.size
        y = x.reshape(C, N, H // s, s, W // s, s).mean(axis=(3, 5))
        return y, x.shape if keep else None

    def backward(self, P, dy, cache):
        xp = _xp(dy)
        s = self.size
        dx = xp.repeat(xp.repeat(dy, s, axis=2), s, axis=3) / (s * s)
        return dx.astype(dy.dtype, copy=False), {}

    def describe(self):
        return f"AvgPool {self.size}×{self.size}"


class GlobalAvgPool(Layer):
    """(C, N, H, W) -> (N, C): the mean of each channel."""

    kind = "gap"

    def forward(self, P, x, train, keep=False):
        return x.mean(axis=(2, 3)).T, x.shape if keep else None

    def backward(self, P, dy, cache):
        xp = _xp(dy)
        C, N, H, W = cache
        dx = xp.broadcast_to((dy.T / (H * W))[:, :, None, None], cache)
        return xp.ascontiguousarray(dx), {}

    def describe(self):
        return "GlobalAvgPool"


class Flatten(Layer):
    """(C, N, H, W) -> (N, C·H·W) in (channel, row, column) order."""

    kind = "flatten"

    def forward(self, P, x, train, keep=False):
        C, N, H, W = x.shape
        y = _xp(x).ascontiguousarray(x.transpose(1, 0, 2, 3)).reshape(N, C * H * W)
        return y, x.shape if keep else None

    def backward(self, P, dy, cache):
        C, N, H, W = cache
        return _xp(dy).ascontiguousarray(dy.reshape(N, C, H, W).transpose(1, 0, 2, 3)), {}

    def describe(self):
        return "Flatten"


class Dense(Layer):
    """y = x @ Wᵀ + b with weight (out, in): row i is output neuron i, swept neuron by neuron."""

    kind = "dense"

    def __init__(self, name: str, fin: int, fout: int, bias: bool = True):
        super().__init__(name)
        self.fin, self.fout, self.bias = fin, fout, bias
        self.param_names = ("weight", "bias") if bias else ("weight",)

    @property
    def fan_in(self) -> int:
        return self.fin

    def param_shapes(self):
        shapes = {self.full("weight"): (self.fout, self.fin)}
        if self.bias:
            shapes[self.full("bias")] = (self.fout,)
        return shapes

    def init_params(self, rng, dtype):
        std = math.sqrt(2.0 / self.fin)
        out = {self.full("weight"): rng.normal(0.0, std, (self.fout, self.fin)).astype(dtype)}
        if self.bias:
            out[self.full("bias")] = _np_zeros((self.fout,), dtype)
        return out

    def forward(self, P, x, train, keep=False):
        y = x @ P[self.full("weight")].T
        if self.bias:
            y = y + P[self.full("bias")]
        return y, x if keep else None

    def backward(self, P, dy, cache):
        W = P[self.full("weight")]
        grads = {self.full("weight"): dy.T @ cache}
        if self.bias:
            grads[self.full("bias")] = dy.sum(axis=0)
        return dy @ W, grads

    def describe(self):
        return f"Dense {self.fin}→{self.fout}" + ("" if self.bias else " (no bias)")


class Residual(Layer):
    """A residual link: ``body(x) + skip(x)``, both branches reading the same input ``x``.

    ``body`` is a list of layers run in turn; ``skip`` is empty (the identity) or a projection (a 1×1
    conv + batch norm where the channel count changes). What follows the add (a pool, the batch norm of
    the block) is outside, in the model's own list. The inner layers keep their own names and parameters,
    so to everything outside the block it is one layer of the sequential model: ``params`` lists every
    inner parameter (skip first), a forward pass from the block's index needs only its input, and
    :meth:`sublayers` gives the inner layers in the model's walk order (skip, then body).
    """

    kind = "residual"

    def __init__(self, name: str, body: list[Layer], skip: list[Layer] | None = None):
        super().__init__(name)
        self.body, self.skip = list(body), list(skip or [])

    def sublayers(self) -> list[Layer]:
        """The inner layers in walk order: the skip branch, then the body."""
        return self.skip + self.body

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(p for layer in self.sublayers() for p in layer.params)

    def param_shapes(self):
        return {k: v for layer in self.sublayers() for k, v in layer.param_shapes().items()}

    def init_params(self, rng, dtype):
        return {k: v for layer in self.sublayers() for k, v in layer.init_params(rng, dtype).items()}

    @staticmethod
    def _run(layers: list[Layer], P, x, train, keep):
        caches = []
        for layer in layers:
            x, cache = layer.forward(P, x, train, keep)
            caches.append(cache)
        return x, caches

    def forward(self, P, x, train, keep=False):
        s, skip_caches = self._run(self.skip, P, x, train, keep)
        b, body_caches = self._run(self.body, P, x, train, keep)
        return b + s, (skip_caches, body_caches) if keep else None

    @staticmethod
    def _back(layers: list[Layer], P, dy, caches, grads: dict):
        for layer, cache in zip(reversed(layers), reversed(caches), strict=True):
            dy, g = layer.backward(P, dy, cache)
            grads.update(g)
        return dy

    def backward(self, P, dy, cache):
        skip_caches, body_caches = cache
        grads: dict = {}
        dx = self._back(self.body, P, dy, body_caches, grads)
        return dx + self._back(self.skip, P, dy, skip_caches, grads), grads

    def describe(self):
        skip = " → ".join(layer.describe() for layer in self.skip) or "identity"
        return f"Residual [{' → '.join(layer.describe() for layer in self.body)}] + [{skip}]"


def uses_batch_statistics(layer: Layer) -> bool:
    """Whether ``layer`` normalises with batch statistics in training mode: a batch norm, or a residual block
    holding one (its output for one image then depends on the rest of the batch)."""
    if isinstance(layer, Residual):
        return any(uses_batch_statistics(inner) for inner in layer.sublayers())
    return isinstance(layer, BatchNorm2d)


def _np_zeros(shape, dtype):
    return np.zeros(shape, dtype)
