"""The networks: OneConv, TwoConv, the paper's 6-conv MNIST net with batch norm, a plain MLP, and the paper's
9-conv residual CIFAR-10 net (its links are :class:`~rso_engine.layers.Residual` layers of the list).

A :class:`Model` is a list of layers plus one ordered dict of named parameter tensors. The names and
their order are stable and documented (see ``docs/engine.md``):

- parameters are grouped by *layer* (:class:`ParamGroup`): a conv or dense layer's ``weight`` then its
  ``bias``; for the paper net a conv's ``weight`` then its batch norm's ``gamma`` and ``beta`` (the
  authors search γ/β right after their conv);
- RSO sweeps the groups from the output layer to the input layer, and inside a tensor in C order:
  output filter → input channel → kh → kw for conv weights, output neuron → input for dense weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import Backend, array_module, get_backend, to_numpy
from .cancel import check_cancelled
from .kernels.forward import LAYER_KERNELS, run_layers
from .layers import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dense,
    Flatten,
    GlobalAvgPool,
    Layer,
    MaxPool2d,
    ReLU,
    Residual,
    to_cnhw,
)

Array = Any


@dataclass(frozen=True)
class ParamGroup:
    """One searchable layer: its display name and its parameters in sweep order."""

    name: str
    params: tuple[str, ...]
    kind: str  # "conv" or "dense"


def one_conv() -> list[Layer]:
    """The course project's model: Conv 3×3 1→4 pad 1, ReLU, MaxPool 2, Dense 784→10 (7,890 params)."""
    return [Conv2d("conv1", 1, 4), ReLU("relu1"), MaxPool2d("pool1"), Flatten("flatten"), Dense("fc", 784, 10)]


def two_conv() -> list[Layer]:
    """Conv 1→16, ReLU, MaxPool, Conv 16→16, ReLU, MaxPool, Dense 784→10 (10,330 params)."""
    return [
        Conv2d("conv1", 1, 16), ReLU("relu1"), MaxPool2d("pool1"),
        Conv2d("conv2", 16, 16), ReLU("relu2"), MaxPool2d("pool2"),
        Flatten("flatten"), Dense("fc", 784, 10),
    ]  # fmt: skip


def paper_net() -> list[Layer]:
    """The paper's MNIST net as the authors' code builds it (12,016 params): 6 blocks, block i =
    [ReLU if i > 1] → Conv 3×3 16 filters pad 1 no bias → [2×2 average pool in blocks 2 and 4] → BatchNorm;
    global average pooling of block 6's batch norm output (no ReLU before it), Dense 16→10 without bias.

    The ReLU opening block i + 1 is named ``relu{i}`` (it rectifies ``bn{i}``); the pools ``pool1``
    (block 2) and ``pool2`` (block 4)."""
    layers: list[Layer] = []
    cin = 1
    for i in range(1, 7):
        if i > 1:
            layers.append(ReLU(f"relu{i - 1}"))
        layers.append(Conv2d(f"conv{i}", cin, 16, bias=False))
        if i in (2, 4):
            layers.append(AvgPool2d(f"pool{i // 2}"))
        layers.append(BatchNorm2d(f"bn{i}", 16))
        cin = 16
    return layers + [GlobalAvgPool("gap"), Dense("fc", 16, 10, bias=False)]


#: the paper CIFAR net's filters per block, and the blocks that end in a 2×2 average pool
CIFAR_FILTERS = (16, 16, 16, 32, 32, 32, 32, 32, 32)
CIFAR_POOLED = (3, 5)


def paper_cifar() -> list[Layer]:
    """The paper's CIFAR-10 net as the authors' code builds it (``--layers 9``, 57,104 params): 9 blocks like
    :func:`paper_net`'s with [16,16,16,32,32,32,32,32,32] filters on 3×32×32 inputs, 2×2 average pools in
    blocks 3 and 5, GAP on bn9's output, Dense 32→10 without bias.

    Residual links: blocks 3, 5, 7 and 9 add to their conv output, before their pool and batch norm, the
    batch norm output (before the ReLU) of blocks 1, 3, 5 and 7. Each link is a :class:`Residual` layer
    ``res{i}`` whose input is bn{i−2}'s output, whose body is block i−1 and block i up to its conv
    (``relu{i-2} → conv{i-1} → bn{i-1} → relu{i-1} → conv{i}``) and whose skip is the identity, or for
    block 5 (16→32 channels) the projection ``proj5`` (1×1 conv, no bias) → ``proj5bn``. Adding before the
    pool makes the sizes agree with no downsampling in the skip: the source and the conv output are both
    32×32 (block 3), 16×16 (block 5) or 8×8 (blocks 7, 9). The pools are ``pool1`` (block 3), ``pool2``
    (block 5)."""
    layers: list[Layer] = [Conv2d("conv1", 3, CIFAR_FILTERS[0], bias=False), BatchNorm2d("bn1", CIFAR_FILTERS[0])]
    for i in range(3, 10, 2):
        cin, mid, cout = CIFAR_FILTERS[i - 3], CIFAR_FILTERS[i - 2], CIFAR_FILTERS[i - 1]
        body = [ReLU(f"relu{i - 2}"), Conv2d(f"conv{i - 1}", cin, mid, bias=False), BatchNorm2d(f"bn{i - 1}", mid),
                ReLU(f"relu{i - 1}"), Conv2d(f"conv{i}", mid, cout, bias=False)]  # fmt: skip
        skip = [] if cin == cout else [Conv2d(f"proj{i}", cin, cout, k=1, pad=0, bias=False),
                                       BatchNorm2d(f"proj{i}bn", cout)]  # fmt: skip
        layers.append(Residual(f"res{i}", body, skip))
        if i in CIFAR_POOLED:
            layers.append(AvgPool2d(f"pool{CIFAR_POOLED.index(i) + 1}"))
        layers.append(BatchNorm2d(f"bn{i}", cout))
    return layers + [GlobalAvgPool("gap"), Dense("fc", CIFAR_FILTERS[-1], 10, bias=False)]


def mlp(hidden: int = 32) -> list[Layer]:
    """A plain MLP: Flatten, Dense 784→hidden, ReLU, Dense hidden→10 (25,450 params for 32)."""
    return [Flatten("flatten"), Dense("fc1", 784, hidden), ReLU("relu1"), Dense("fc2", hidden, 10)]


#: model name -> (builder, one-line description)
MODELS: dict[str, tuple[Callable[[], list[Layer]], str]] = {
    "oneconv": (one_conv, "Conv 3×3 1→4, ReLU, MaxPool 2, Dense 784→10 (the course project's model)"),
    "twoconv": (two_conv, "2 × (Conv 3×3 →16, ReLU, MaxPool 2), Dense 784→10"),
    "papernet": (paper_net, "the paper's 6-conv MNIST net: [ReLU] → conv → [avg-pool] → BN blocks, GAP, Dense 16→10"),
    "mlp": (mlp, "Dense 784→32, ReLU, Dense 32→10"),
    "papercifar": (paper_cifar, "the paper's 9-conv residual CIFAR-10 net (3×32×32): links 3←1, 5←3 (1×1 conv + BN), "
                                "7←5, 9←7, GAP, Dense 32→10"),
}


class Model:
    """A network: layers, named parameters (arrays on the backend), RSO's per-parameter σ.

    ``params`` holds the searchable/trainable tensors in a stable order; ``buffers`` holds BN population
    statistics. ``sigma[name]`` is σ_d of the parameter's layer: the He std √(2 / fan_in) its weights are
    drawn with (the authors' code; biases use their layer's σ_d; BN γ/β use 0.167 as the authors' code does).
    """

    def __init__(self, name: str, layers: list[Layer], backend: Backend | None = None, dtype: str = "float32"):
        self.name = name
        self.layers = layers
        self.backend = backend or get_backend()
        self.xp = self.backend.xp
        self.dtype = np.dtype(dtype)
        self.params: dict[str, Array] = {}
        self.buffers: dict[str, Array] = {}
        self.sigma: dict[str, float] = {}
        self.groups: list[ParamGroup] = self._make_groups()

    # ----------------------------------------------------------------- structure
    def walk(self) -> list[Layer]:
        """Every layer in forward order, the inner layers of a :class:`~rso_engine.layers.Residual` in
        its place (its skip branch, then its body) instead of the block itself."""
        out: list[Layer] = []
        for layer in self.layers:
            out.extend(layer.sublayers() if isinstance(layer, Residual) else [layer])
        return out

    def top_level_index(self) -> dict[str, int]:
        """Layer name -> index in :attr:`layers` of the layer that holds it (a residual block for the layers
        inside one, and for the block itself): where a forward pass must start to recompute that layer."""
        index: dict[str, int] = {}
        for i, layer in enumerate(self.layers):
            index[layer.name] = i
            if isinstance(layer, Residual):
                index.update((inner.name, i) for inner in layer.sublayers())
        return index

    def _make_groups(self) -> list[ParamGroup]:
        groups: list[ParamGroup] = []
        for layer in self.walk():
            if isinstance(layer, (Conv2d, Dense)):
                groups.append(ParamGroup(layer.name, layer.params, layer.kind))
            elif isinstance(layer, BatchNorm2d):
                prev = groups[-1]
                groups[-1] = ParamGroup(prev.name, prev.params + layer.params, prev.kind)
        return groups

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in self.layers:
            shapes.update(layer.param_shapes())
        return shapes

    def param_order(self) -> list[str]:
        """All parameter names in forward (input → output) order."""
        return [p for g in self.groups for p in g.params]

    @property
    def n_params(self) -> int:
        return int(sum(math.prod(s) for s in self.param_shapes().values()))

    def layer_of(self, param: str) -> Layer:
        """The layer of :attr:`layers` that holds ``param``: its own layer, or the residual block around it."""
        return self.layers[self.top_level_index()[param.rsplit(".", 1)[0]]]

    def owner_of(self, param: str) -> Layer:
        """The layer that owns ``param`` itself (inside a residual block for the layers in one)."""
        prefix = param.rsplit(".", 1)[0]
        for layer in self.walk():
            if layer.name == prefix:
                return layer
        raise KeyError(param)

    def group_of(self, param: str) -> ParamGroup:
        for g in self.groups:
            if param in g.params:
                return g
        raise KeyError(param)

    def bn_layers(self) -> list[BatchNorm2d]:
        return [layer for layer in self.walk() if isinstance(layer, BatchNorm2d)]

    def summary(self) -> str:
        return " → ".join(layer.describe() for layer in self.layers)

    # ----------------------------------------------------------------- state
    def init(self, seed: int) -> Model:
        """He-initialise every parameter from ``seed`` (NumPy RNG, so it is backend-independent)."""
        rng = np.random.default_rng(seed)
        host: dict[str, np.ndarray] = {}
        for layer in self.layers:
            host.update(layer.init_params(rng, self.dtype))
        self.set_params(host)
        for g in self.groups:
            # the authors' code: σ_d is the He std √(2 / fan_in) the weights are drawn with, not their sample std
            sigma_d = math.sqrt(2.0 / self.owner_of(g.params[0]).fan_in)
            for p in g.params:
                self.sigma[p] = BatchNorm2d.SIGMA if p.endswith((".gamma", ".beta")) else sigma_d
        return self

    def set_params(self, host: dict[str, np.ndarray]) -> None:
        """Replace parameter values (NumPy or backend arrays), checking names and shapes."""
        shapes = self.param_shapes()
        missing = set(shapes) - set(host)
        if missing:
            raise ValueError(f"parameters missing for model {self.name}: {sorted(missing)}")
        for name in self.param_order():
            value = host[name]
            if tuple(value.shape) != shapes[name]:
                raise ValueError(
                    f"{name}: shape {tuple(value.shape)} does not fit {self.name} (expects {shapes[name]})"
                )
            self.params[name] = self.xp.array(value, dtype=self.dtype)

    def params_numpy(self) -> dict[str, np.ndarray]:
        """A NumPy copy of every parameter."""
        return {k: np.array(to_numpy(v)) for k, v in self.params.items()}

    # ----------------------------------------------------------------- computation
    def to_input(self, x_nchw: Array) -> Array:
        """Dataset images (N, 1, H, W), NumPy or backend -> the model's input: backend (C, N, H, W)."""
        return to_cnhw(self.xp.asarray(x_nchw, dtype=self.dtype))

    def forward(self, x: Array, train: bool = True, start: int = 0, stop: int | None = None,
                P: dict | None = None) -> Array:
        """Run layers ``start`` to ``stop`` (exclusive) on ``x`` (model layout) and return the output.

        ``train=True`` uses batch statistics in batch norm (RSO's search, SGD); ``False`` the population
        statistics from :meth:`calibrate_bn`.
        """
        P = self.params if P is None else P
        return run_layers(self.layers, P, x, start, stop, LAYER_KERNELS, train)

    def forward_keep(self, x: Array, train: bool = True) -> tuple[Array, list]:
        """Forward pass that keeps each layer's cache for :meth:`backward`."""
        caches = []
        for layer in self.layers:
            x, cache = layer.forward(self.all_tensors(), x, train, keep=True)
            caches.append(cache)
        return x, caches

    def backward(self, dlogits: Array, caches: list) -> dict[str, Array]:
        """Gradients of every parameter given d(loss)/d(logits) and the caches of :meth:`forward_keep`."""
        grads: dict[str, Array] = {}
        dx = dlogits
        for layer, cache in zip(reversed(self.layers), reversed(caches)):
            dx, g = layer.backward(self.params, dx, cache)
            grads.update(g)
        return grads

    def all_tensors(self) -> dict[str, Array]:
        if not self.buffers:
            return self.params
        return {**self.params, **self.buffers}

    def calibrate_bn(self, x: Array) -> None:
        """Set BN population statistics to the statistics of ``x`` (model layout) under the current weights.

        One pass in training mode over ``x`` as a single batch: each BN records its batch mean and
        variance, so evaluation (``train=False``) normalises exactly as a batch of ``x`` would.
        """
        if self.bn_layers():
            self._calibrate(self.layers, x)

    def _calibrate(self, layers: list[Layer], x: Array) -> Array:
        """:meth:`calibrate_bn` over ``layers``, into residual blocks (each branch from the block's input)."""
        for layer in layers:
            check_cancelled()
            if isinstance(layer, Residual):  # the same sum as Residual.forward
                s = self._calibrate(layer.skip, x)
                x = self._calibrate(layer.body, x) + s
                continue
            if isinstance(layer, BatchNorm2d):
                mean = x.mean(axis=(1, 2, 3))
                var = ((x - mean[:, None, None, None]) ** 2).mean(axis=(1, 2, 3))
                mean_name, var_name = layer.buffer_names()
                self.buffers[mean_name], self.buffers[var_name] = mean, var
            x, _ = layer.forward(self.params, x, train=True)
        return x

    def logits(self, x: Array, train: bool = False) -> Array:
        """Logits (N, classes) for model-layout input, in evaluation mode by default."""
        return self.forward(x, train=train, P=self.all_tensors())


def build_model(name: str, seed: int = 0, backend: Backend | None = None, dtype: str = "float32") -> Model:
    """Build and He-initialise a model by name (see :data:`MODELS`)."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return Model(key, MODELS[key][0](), backend=backend, dtype=dtype).init(seed)


def models_for(image_shape: tuple[int, ...]) -> list[str]:
    """The names of the models (:data:`MODELS`) that take images of ``image_shape`` (C, H, W): one zero image
    is pushed through each, on NumPy (for messages that say which model to choose)."""
    fits = []
    x = np.zeros((image_shape[0], 1, *image_shape[1:]), dtype=np.float32)
    for name in MODELS:
        try:
            with np.errstate(all="ignore"):
                build_model(name, backend=get_backend("numpy")).forward(x, train=True)
        except (ValueError, IndexError, TypeError):
            continue
        fits.append(name)
    return fits


# --------------------------------------------------------------------------- losses and metrics
def cross_entropy(logits: Array, labels: Array, reduction: str = "sum") -> Array:
    """Softmax cross-entropy of (N, K) logits, accumulated in float64 (the authors' summed loss).

    Returns a 0-d backend array (``reduction`` "sum" or "mean") or per-sample losses ("none").
    """
    xp = get_xp(logits)
    z = logits.astype(xp.float64)
    zmax = z.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf logits give a NaN loss the caller reports
        lse = xp.log(xp.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
    per = lse - xp.take_along_axis(z, labels[:, None], axis=1)[:, 0]
    if reduction == "none":
        return per
    if reduction == "mean":
        return per.mean()
    return per.sum()


def softmax_grad(logits: Array, labels: Array) -> Array:
    """d(mean cross-entropy)/d(logits), in the logits' dtype."""
    xp = get_xp(logits)
    z = logits - logits.max(axis=1, keepdims=True)
    e = xp.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    p[xp.arange(len(labels)), labels] -= 1
    return p / len(labels)


def get_xp(a: Array):
    """The array module (numpy or cupy) of ``a``."""
    return array_module(a)
