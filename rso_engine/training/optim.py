"""The SGD baseline's update rule as a small optimizer object, in the style of optax.

An optimizer is a :class:`GradientTransformation`: ``init(params) -> state`` and
``update(grads, state, params) -> (updates, state)``; :func:`apply_updates` adds the updates to the
parameters in place. :func:`sgd` chains the pieces the baseline needs (L2 weight decay, (Nesterov)
momentum, the learning rate), so the trainer never writes an update rule inline::

    opt = sgd(lr=0.01, momentum=0.9)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    apply_updates(params, updates)

States are dicts of arrays keyed like the parameters, so a trainer can save and restore them exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..backend import array_module

Arrays = dict[str, Any]  # parameter name -> NumPy or CuPy array


@dataclass(frozen=True)
class GradientTransformation:
    """A named pair of pure functions: ``init(params)`` and ``update(grads, state, params)``."""

    name: str
    init: Callable[[Arrays], Any]
    update: Callable[[Arrays, Any, Arrays], tuple[Arrays, Any]]


def add_decayed_weights(weight_decay: float) -> GradientTransformation:
    """g ← g + weight_decay · p (L2 regularisation folded into the gradient)."""

    def update(grads, state, params):
        if not weight_decay:
            return grads, state
        return {k: g + weight_decay * params[k] for k, g in grads.items()}, state

    return GradientTransformation("weight_decay", lambda params: None, update)


def trace(decay: float, nesterov: bool = False) -> GradientTransformation:
    """Momentum: v ← decay · v + g, then v (or g + decay · v with Nesterov). State: the velocities."""

    def init(params):
        return {k: array_module(p).zeros_like(p) for k, p in params.items()}

    def update(grads, state, params):
        if not decay:
            return grads, state
        out = {}
        for k, g in grads.items():
            v = state[k]
            v *= decay
            v += g
            out[k] = g + decay * v if nesterov else v
        return out, state

    return GradientTransformation("trace", init, update)


def scale(step: float) -> GradientTransformation:
    """g ← step · g (with step = −lr this turns gradients into updates)."""

    def update(grads, state, params):
        return {k: step * g for k, g in grads.items()}, state

    return GradientTransformation("scale", lambda params: None, update)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply ``transforms`` in order; the state is a dict of their states by name."""

    def init(params):
        return {t.name: t.init(params) for t in transforms}

    def update(grads, state, params):
        new_state = dict(state)
        for t in transforms:
            grads, new_state[t.name] = t.update(grads, state[t.name], params)
        return grads, new_state

    return GradientTransformation("chain", init, update)


def sgd(lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0) -> GradientTransformation:
    """Mini-batch SGD with optional L2 weight decay and (Nesterov) momentum, as PyTorch's ``optim.SGD``."""
    return chain(add_decayed_weights(weight_decay), trace(momentum, nesterov), scale(-lr))


def apply_updates(params: Arrays, updates: Arrays) -> None:
    """p ← p + u for every parameter, in place and in the parameter's dtype."""
    for k, p in params.items():
        p += updates[k].astype(p.dtype, copy=False)


