"""How the change of one weight travels through a network: the incremental evaluators' routes.

A weight of a conv layer or a batch norm changes one channel of that layer's output, a weight of a dense
layer one output column. :func:`find_route` follows that channel through the per-channel layers after it
(batch norm with the channel's own statistics, ReLU, max/average pooling, a global average pool that turns
it into a column) to the first layer that mixes channels — the next conv, or the dense layer after a
flatten or a global average pool — after which everything runs in full. The route depends only on the
layer types, so any order of them is followed: e.g. the paper net's blocks [ReLU] → conv → [avg-pool] → BN
give conv2 → pool1 → bn2 → relu2 → mix at conv3, and conv6 → bn6 → GAP → mix at the dense layer.
:func:`incremental_unavailable` says why a network has a layer without a route. A residual block (the paper's
CIFAR net) has none: a change inside it reaches the add through the body while the skip carries the block's
input unchanged, and a change before it takes both branches; the registry then stands the authors' layer
cache in for the incremental evaluators (exact, see :mod:`.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..layers import (
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
)
from ..models import Model

CHANNEL_LAYERS = (ReLU, MaxPool2d, AvgPool2d, BatchNorm2d)


@dataclass(frozen=True)
class Route:
    """How a change of one output channel of layer ``anchor`` reaches the logits."""

    anchor: int  # index of the layer whose output changes
    kind: str  # "conv", "bn" or "dense": what the anchor is
    chain: tuple[int, ...]  # per-channel layers after the anchor (may end with a global average pool)
    mix: int  # index of the first channel-mixing layer: Conv2d, Flatten (+ Dense) or Dense
    mix_kind: str  # "conv", "flatten" or "dense"
    rest: int  # first layer run in full after the mix (== number of layers: the mix gives the logits)


def find_route(layers: list[Layer], anchor: int) -> Route:
    """The :class:`Route` from ``layers[anchor]``; raises ValueError for an unsupported structure."""
    layer = layers[anchor]
    kind = {Conv2d: "conv", BatchNorm2d: "bn", Dense: "dense"}.get(type(layer))
    if kind is None:
        raise ValueError(f"{layer.name}: no incremental rule for a {layer.kind} layer")
    col = kind == "dense"
    chain = []
    i = anchor + 1
    while i < len(layers) and (isinstance(layers[i], CHANNEL_LAYERS) or isinstance(layers[i], GlobalAvgPool)):
        if col and not isinstance(layers[i], ReLU):
            raise ValueError(f"{layers[i].name}: a {layers[i].kind} layer cannot follow a dense layer")
        col = col or isinstance(layers[i], GlobalAvgPool)
        chain.append(i)
        i += 1
    if i == len(layers):
        raise ValueError(f"nothing mixes the channels of {layer.name} before the loss")
    mixer = layers[i]
    if isinstance(mixer, Conv2d) and not col:
        return Route(anchor, kind, tuple(chain), i, "conv", i + 1)
    if isinstance(mixer, Flatten) and not col and i + 1 < len(layers) and isinstance(layers[i + 1], Dense):
        return Route(anchor, kind, tuple(chain), i, "flatten", i + 2)
    if isinstance(mixer, Dense) and col:
        return Route(anchor, kind, tuple(chain), i, "dense", i + 1)
    raise ValueError(f"{mixer.name}: no incremental rule for a {mixer.kind} layer after {layer.name}")


def residual_blocks(model: Model) -> list[Residual]:
    """The model's residual blocks, in forward order."""
    return [layer for layer in model.layers if isinstance(layer, Residual)]


def incremental_unavailable(model: Model) -> str:
    """Why the incremental evaluators cannot run on ``model`` ('' if they can).

    A residual link is refused as a whole: a change inside a block reaches the add through the block's body
    while the skip carries the block's unchanged input, and a change before the block travels both ways at
    once, which no per-channel route describes."""
    layers = model.layers
    if not layers or not isinstance(layers[-1], Dense):
        return "the model does not end with a dense layer"
    blocks = residual_blocks(model)
    if blocks:
        names = ", ".join(b.name for b in blocks)
        return (f"{model.name} has residual links ({names}); a weight's change cannot be followed "
                "channel by channel across a link")
    for idx, layer in enumerate(layers[:-1]):
        if layer.params:
            try:
                find_route(layers, idx)
            except ValueError as exc:
                return str(exc)
    return ""
