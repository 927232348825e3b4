"""The loss landscape around the network's current weights: along one weight, and 2-D slices.

RSO changes one scalar weight at a time, so the natural picture of one decision is the mini-batch loss
as a function of that weight, all others fixed, with the three candidates w − Δ, w, w + Δ on the curve.
:func:`weight_curve` computes that curve; :func:`weight_grid` the 2-D slice along two weights (RSO's
axis-aligned moves are the horizontal and vertical steps in it); :func:`direction_grid` the 2-D slice
along two random directions normalised filter by filter (Li et al., "Visualizing the Loss Landscape of
Neural Nets", NeurIPS 2018), the usual picture of a network's landscape.

Nothing here changes the model: candidate values go into copies of the parameter dict. Every loss is the
summed softmax cross-entropy on the given batch with batch statistics in batch norm (``train=True``),
exactly what RSO's evaluators score.

Speed: every searchable layer (conv, dense, batch norm's γ/β) is affine in its own parameters, so the
layer's output for any value of one of its weights is ``y0 + t·dy``. The curve is then one pass to the
layer, two passes of the layer, and one batched pass of the rest of the network for all points at once
(``method="affine"``). Batch norm after the layer would mix the points' statistics in a batched pass, so
then (and with ``method="direct"``, the plain reference) each point gets its own pass from the layer on.
A weight inside a residual block (the paper's CIFAR net) is computed from the block on, which is not affine
in it (ReLUs inside): always "direct".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import array_module, to_numpy
from .cancel import check_cancelled
from .layers import Residual, uses_batch_statistics
from .models import Model, cross_entropy

Array = Any

#: the most images (points × batch) pushed through the network in one batched pass
MAX_IMAGES = 8192

METHODS = ("auto", "affine", "direct")


@dataclass(frozen=True)
class Curve:
    """The summed mini-batch loss along one weight: ``losses[i]`` at value ``center + offsets[i]``."""

    param: str
    index: tuple[int, ...]
    center: float
    offsets: np.ndarray  # float64 (n,), increasing
    losses: np.ndarray  # float64 (n,), summed cross-entropy on the batch
    batch_size: int

    @property
    def values(self) -> np.ndarray:
        return self.center + self.offsets

    def loss_at(self, offset: float) -> float:
        """The loss at ``center + offset`` (linear interpolation between the computed points)."""
        return float(np.interp(offset, self.offsets, self.losses))


@dataclass(frozen=True)
class Slice2D:
    """The summed mini-batch loss on a grid: ``losses[i, j]`` at ``a_offsets[i]``, ``b_offsets[j]``.

    ``kind`` is "weights" (offsets of two weights from their current values) or "directions" (multiples
    of two filter-normalised random directions, Li et al. 2018). The current point is (0, 0).
    """

    kind: str
    a_label: str
    b_label: str
    a_offsets: np.ndarray  # (na,)
    b_offsets: np.ndarray  # (nb,)
    losses: np.ndarray  # (na, nb)
    batch_size: int


# ------------------------------------------------------------------------------------------ helpers
def _layer_index(model: Model, param: str) -> int:
    layer = model.layer_of(param)
    for i, candidate in enumerate(model.layers):
        if candidate is layer:
            return i
    raise KeyError(param)


def _bn_after(model: Model, li: int) -> bool:
    return any(uses_batch_statistics(layer) for layer in model.layers[li + 1 :])


def _affine_refused(model: Model, li: int, method: str) -> str:
    """The method to use at layer ``li``: "direct" for a residual block (not affine in its parameters:
    ReLUs inside), an error if "affine" was asked for there."""
    if isinstance(model.layers[li], Residual):
        if method == "affine":
            raise ValueError(f"{model.layers[li].name} is a residual block, not affine in its weights: "
                             "use method 'direct' or 'auto'")
        return "direct"
    return method


def _check_index(model: Model, param: str, index: Sequence[int]) -> tuple[int, ...]:
    if param not in model.params:
        raise KeyError(f"{model.name} has no parameter {param!r}; it has {', '.join(model.params)}")
    shape = tuple(model.params[param].shape)
    index = tuple(int(i) for i in index)
    if len(index) != len(shape) or any(not 0 <= i < s for i, s in zip(index, shape, strict=True)):
        raise IndexError(f"index {list(index)} is outside {param} of shape {shape}")
    return index


def _with_values(P: dict, changes: Sequence[tuple[str, tuple[int, ...], float]]) -> dict:
    """A shallow copy of ``P`` whose changed tensors are copies holding the given values."""
    out = dict(P)
    for name, index, value in changes:
        if out[name] is P[name]:
            out[name] = P[name].copy()
        out[name][index] = value
    return out


def _summed_losses(logits: Array, labels: Array, n_points: int) -> np.ndarray:
    """Per-point summed cross-entropy of logits stacked point-major: (n_points·B, K) -> (n_points,)."""
    xp = _xp(logits)
    per = cross_entropy(logits, xp.tile(labels, n_points), reduction="none")
    return np.asarray(to_numpy(per.reshape(n_points, -1).sum(axis=1)), dtype=np.float64)


def _xp(a: Array):
    return array_module(a)


def _sample_axis(y: Array) -> int:
    """The sample axis of an activation: 1 for the conv layout (C, N, H, W), 0 for (N, features)."""
    return 1 if y.ndim == 4 else 0


def _affine_pieces(
    model: Model, li: int, P: dict, h: Array, directions: Sequence[tuple[str, tuple[int, ...]]]
) -> tuple[Array, list[Array]]:
    """The layer's output at ``P`` and its change per unit step of each (param, index) direction.

    The layer is linear in its parameters jointly, so the change for weight e is the layer run with
    every parameter of the layer zero except a 1 at e: exact, with no cancellation error.
    """
    layer = model.layers[li]
    y0, _ = layer.forward(P, h, True)
    xp = model.xp
    slopes = []
    for name, index in directions:
        Pe = dict(P)
        for p in layer.params:
            Pe[p] = xp.zeros_like(P[p])
        Pe[name][index] = 1
        slopes.append(layer.forward(Pe, h, True)[0])
    return y0, slopes


def _rest_losses(model: Model, li: int, P: dict, y: Array, n_points: int, make_point) -> np.ndarray:
    """Summed losses of ``n_points`` layer outputs ``make_point(i)`` pushed through layers li+1….

    Points are batched along the sample axis, at most :data:`MAX_IMAGES` images per pass.
    """
    xp = model.xp
    B = int(y.shape[0])
    out = np.empty(n_points)
    per_pass = max(1, MAX_IMAGES // max(B, 1))
    for s in range(0, n_points, per_pass):
        check_cancelled()
        e = min(n_points, s + per_pass)
        pieces = [make_point(i) for i in range(s, e)]
        stacked = xp.concatenate(pieces, axis=_sample_axis(pieces[0]))
        logits = model.forward(stacked, train=True, start=li + 1, P=P)
        out[s:e] = _summed_losses(logits, y, e - s)
    return out


# ------------------------------------------------------------------------------------------ 1-D
def loss_along_weight(
    model: Model,
    param: str,
    index: Sequence[int],
    x: Array,
    y: Array,
    offsets: Sequence[float] | np.ndarray,
    center: float | None = None,
    method: str = "auto",
) -> np.ndarray:
    """Summed cross-entropy on batch ``(x, y)`` with weight ``param[index]`` set to ``center + offset``
    for each offset (``center`` defaults to the weight's current value); all other weights as they are.

    ``x`` is in the model's layout (C, N, H, W) on the model's backend, ``y`` the labels. The model is
    not changed. ``method``: "affine" (fast, see the module docstring), "direct" (one full pass from
    the weight's layer per point) or "auto" (affine unless batch norm follows the layer).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)} (got {method!r})")
    index = _check_index(model, param, index)
    offsets = np.asarray(offsets, dtype=np.float64).reshape(-1)
    P = model.params
    if center is None:
        center = float(to_numpy(P[param][index]))
    li = _layer_index(model, param)
    if method == "auto":
        method = "direct" if _bn_after(model, li) else "affine"
    method = _affine_refused(model, li, method)
    h = model.forward(x, train=True, start=0, stop=li, P=P)
    if method == "direct":
        out = np.empty(len(offsets))
        for i, t in enumerate(offsets):
            check_cancelled()
            Pi = _with_values(P, [(param, index, center + t)])
            logits = model.forward(h, train=True, start=li, P=Pi)
            out[i] = float(cross_entropy(logits, y))
        return out
    Pc = _with_values(P, [(param, index, center)])
    y0, (dy,) = _affine_pieces(model, li, Pc, h, [(param, index)])
    dtype = y0.dtype
    return _rest_losses(model, li, Pc, y, len(offsets), lambda i: y0 + dtype.type(offsets[i]) * dy)


def weight_curve(
    model: Model,
    param: str,
    index: Sequence[int],
    x: Array,
    y: Array,
    span: float,
    n: int = 41,
    center: float | None = None,
    include: Sequence[float] = (),
    method: str = "auto",
) -> Curve:
    """The loss along one weight over ``center ± span`` at ``n`` evenly spaced points, plus the offsets
    in ``include`` (e.g. 0 and ±Δ, so the curve passes exactly through RSO's candidates)."""
    if not span > 0 or not np.isfinite(span):
        raise ValueError(f"span must be a positive number (got {span})")
    if n < 2:
        raise ValueError(f"a curve needs at least 2 points (got {n})")
    index = _check_index(model, param, index)
    if center is None:
        center = float(to_numpy(model.params[param][index]))
    offsets = np.unique(np.concatenate([np.linspace(-span, span, n), np.asarray(include, np.float64)]))
    losses = loss_along_weight(model, param, index, x, y, offsets, center=center, method=method)
    return Curve(param, index, float(center), offsets, losses, int(y.shape[0]))


# ------------------------------------------------------------------------------------------ 2-D
def weight_grid(
    model: Model,
    a: tuple[str, Sequence[int]],
    b: tuple[str, Sequence[int]],
    x: Array,
    y: Array,
    a_offsets: Sequence[float],
    b_offsets: Sequence[float],
    method: str = "auto",
) -> Slice2D:
    """The loss on a grid of offsets of two weights ``a = (param, index)`` and ``b`` from their current
    values. Two weights of one layer use the affine shortcut (the layer is linear in them jointly)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)} (got {method!r})")
    pa, ia = a[0], _check_index(model, *a)
    pb, ib = b[0], _check_index(model, *b)
    if (pa, ia) == (pb, ib):
        raise ValueError("a 2-D slice needs two different weights")
    ao = np.asarray(a_offsets, np.float64).reshape(-1)
    bo = np.asarray(b_offsets, np.float64).reshape(-1)
    P = model.params
    ca, cb = float(to_numpy(P[pa][ia])), float(to_numpy(P[pb][ib]))
    la, lb = _layer_index(model, pa), _layer_index(model, pb)
    same = la == lb
    if method == "auto":
        method = "affine" if same and not _bn_after(model, la) else "direct"
    method = _affine_refused(model, min(la, lb), method)
    if method == "affine" and not same:
        raise ValueError("the affine method needs two weights of the same layer")
    li = min(la, lb)
    h = model.forward(x, train=True, start=0, stop=li, P=P)
    if method == "direct":
        losses = np.empty((len(ao), len(bo)))
        for i, s in enumerate(ao):
            for j, t in enumerate(bo):
                check_cancelled()
                Pij = _with_values(P, [(pa, ia, ca + s), (pb, ib, cb + t)])
                losses[i, j] = float(cross_entropy(model.forward(h, train=True, start=li, P=Pij), y))
    else:
        y0, (da, db) = _affine_pieces(model, li, P, h, [(pa, ia), (pb, ib)])
        dt = y0.dtype.type
        nb = len(bo)
        flat = _rest_losses(model, li, P, y, len(ao) * nb, lambda k: y0 + dt(ao[k // nb]) * da + dt(bo[k % nb]) * db)
        losses = flat.reshape(len(ao), nb)
    return Slice2D("weights", f"{pa}{list(ia)}", f"{pb}{list(ib)}", ao, bo, losses, int(y.shape[0]))


def filter_normalized_direction(
    model: Model, rng: np.random.Generator, params: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """A random direction in weight space, normalised filter by filter (Li et al. 2018).

    Each conv filter (one output channel's weights) and each dense neuron's weight row of the direction
    is scaled to the norm of the same filter/row of the current weights. Biases and batch norm's γ/β
    get zero, as in the paper. ``params`` limits the direction to those tensors (others zero).
    Returns NumPy arrays keyed by parameter name.
    """
    out: dict[str, np.ndarray] = {}
    for name, value in model.params.items():
        w = np.asarray(to_numpy(value), dtype=np.float64)
        d = rng.standard_normal(w.shape)
        if w.ndim < 2 or (params is not None and name not in params):
            out[name] = np.zeros_like(w)
            continue
        axes = tuple(range(1, w.ndim))
        wn = np.sqrt((w * w).sum(axis=axes, keepdims=True))
        dn = np.sqrt((d * d).sum(axis=axes, keepdims=True))
        out[name] = d * (wn / np.maximum(dn, 1e-12))
    return out


def direction_grid(
    model: Model,
    d1: dict[str, np.ndarray],
    d2: dict[str, np.ndarray],
    x: Array,
    y: Array,
    alphas: Sequence[float],
    betas: Sequence[float],
) -> Slice2D:
    """The loss at W + α·d1 + β·d2 on the grid ``alphas`` × ``betas`` (one full pass per point)."""
    xp = model.xp
    al = np.asarray(alphas, np.float64).reshape(-1)
    be = np.asarray(betas, np.float64).reshape(-1)
    W = model.params
    D1 = {k: xp.asarray(v, dtype=W[k].dtype) for k, v in d1.items() if np.any(v)}
    D2 = {k: xp.asarray(v, dtype=W[k].dtype) for k, v in d2.items() if np.any(v)}
    moved = sorted(set(D1) | set(D2), key=list(W).index)
    li = min((_layer_index(model, k) for k in moved), default=len(model.layers))
    h = model.forward(x, train=True, start=0, stop=li, P=W)
    losses = np.empty((len(al), len(be)))
    for i, a in enumerate(al):
        for j, b in enumerate(be):
            check_cancelled()
            P = dict(W)
            for k in moved:
                v = W[k]
                if k in D1:
                    v = v + W[k].dtype.type(a) * D1[k]
                if k in D2:
                    v = v + W[k].dtype.type(b) * D2[k]
                P[k] = v
            losses[i, j] = float(cross_entropy(model.forward(h, train=True, start=li, P=P), y))
    return Slice2D(
        "directions",
        "direction 1 (filter-normalised)",
        "direction 2 (filter-normalised)",
        al,
        be,
        losses,
        int(y.shape[0]),
    )
