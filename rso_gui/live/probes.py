"""What the window computes on the engine's state besides training: the loss landscape around the weight
being decided (1-D curve or 2-D slice) and the feature maps of one test digit.

Each probe reads the trainer only through its public questions (``upcoming``, ``sigma``, ``neighbour``,
``batch_for_step``, ``steps``) and runs on the engine's thread between bursts, when the state is exact.
"""

from __future__ import annotations

import numpy as np

from rso_engine import landscape as L
from rso_engine.backend import to_numpy
from rso_engine.events import WeightTried
from rso_engine.layers import BatchNorm2d, GlobalAvgPool, ReLU, Residual
from rso_engine.training import RSOTrainer
from rso_engine.vocabulary import LandscapeMode

from .snapshot import BATCH_THUMBS, CURVE_POINTS, AlgorithmView, CurveView, SliceView

GRID_WEIGHTS = 21  # points per axis of the 2-D slice along two weights
GRID_DIRECTIONS = 13  # ... along two random directions (one full pass per point)
DIRECTION_SEED = 77  # the random directions' stream, with the run's seed: the same raw directions all run long


def _first_batch(rso: RSOTrainer) -> np.ndarray:
    return np.arange(min(rso.config.batch_size, rso.n_train))


def curve_view(rso: RSOTrainer, last: WeightTried | None, previous: CurveView | None = None) -> CurveView | None:
    """The loss along the weight of ``last`` on its own mini-batch (or, before any decision, along the
    weight tried next on the first images); ``previous`` when ``last``'s batch is no longer known."""
    if last is not None:
        idx = rso.batch_for_step(last.step)
        if idx is None:
            return previous
        param, index, center, sigma = last.param, last.index, last.old, rso.sigma(last.param, last.cycle)
    else:
        up = rso.upcoming()
        if up is None:
            return None
        param, index, sigma = up.param, up.index, up.sigma
        idx = _first_batch(rso)
        center = float(to_numpy(rso.model.params[param][index]))
    stay = center * (1.0 - rso.config.stay_decay)
    include = [0.0, stay - center]
    span = 3.0 * sigma
    if last is not None:
        include += [last.delta, -last.delta]
        span = max(span, 1.25 * abs(last.delta))
    d = rso.backend.xp.asarray(idx)
    curve = L.weight_curve(rso.model, param, index, rso.x_train[:, d], rso.y_train[d],
                           span=span, n=CURVE_POINTS, center=center, include=include)
    exact = last is not None and last.step == rso.steps
    return CurveView(curve, last, sigma, stay, exact)


def slice_view(rso: RSOTrainer, last: WeightTried | None, mode: str) -> SliceView | None:
    """A 2-D slice of the loss: over the weight of ``last`` (or the next one) and the one the sweep visits
    after it (``"2d-weights"``), or over two filter-normalised random directions (``"2d-directions"``)."""
    cfg = rso.config
    model = rso.model
    idx = rso.batch_for_step(last.step) if last is not None else None
    if idx is None:
        idx = _first_batch(rso)
    d = rso.backend.xp.asarray(idx)
    x, y = rso.x_train[:, d], rso.y_train[d]
    if mode == LandscapeMode.TWO_D_DIRECTIONS:
        rng = np.random.default_rng([cfg.seed, DIRECTION_SEED])
        d1 = L.filter_normalized_direction(model, rng)
        d2 = L.filter_normalized_direction(model, rng)
        grid = np.linspace(-1.0, 1.0, GRID_DIRECTIONS)
        return SliceView(L.direction_grid(model, d1, d2, x, y, grid, grid))
    if last is not None:
        param, index, sigma = last.param, last.index, rso.sigma(last.param, last.cycle)
    else:
        up = rso.upcoming()
        if up is None:
            return None
        param, index, sigma = up.param, up.index, up.sigma
    other = rso.neighbour(param, index)
    span = 3.0 * sigma
    before = None
    if last is not None:
        span = max(span, 1.25 * abs(last.delta), 1.25 * abs(last.old - last.new))
        before = (last.old - last.new, 0.0)
    grid = np.linspace(-span, span, GRID_WEIGHTS)
    return SliceView(L.weight_grid(model, (param, index), (param, other), x, y, grid, grid), before)


def algorithm_view(rso: RSOTrainer, last: WeightTried | None, every_weight: bool) -> AlgorithmView:
    """What the Algorithm panel binds to its lines (see :class:`AlgorithmView`): the trainer's answers for
    the weight tried next and for the mini-batch and σ of ``last``."""
    cfg = rso.config
    up = rso.upcoming()
    upcoming = None if up is None else (up.cycle, up.layer, up.param, up.index, up.position, up.layer_size, up.sigma)
    idx = rso.batch_for_step(last.step) if last is not None else None
    images, labels, first = None, (), ()
    if idx is not None and len(idx):
        first = np.asarray(to_numpy(idx))[:BATCH_THUMBS].astype(np.int64)
        d = rso.backend.xp.asarray(first)
        images = np.array(to_numpy(rso.x_train[:, d]), dtype=np.float32).transpose(1, 0, 2, 3)
        labels = tuple(int(v) for v in to_numpy(rso.y_train[d]))
    return AlgorithmView(
        update=str(getattr(cfg, "update", "sequential")),
        batch_mode=cfg.batch_mode,
        layer_order=cfg.layer_order,
        cycles=cfg.cycles,
        stay_decay=float(cfg.stay_decay),
        upcoming=upcoming,
        sigma=rso.sigma(last.param, last.cycle) if last is not None else None,
        batch_size=cfg.batch_size,
        batch_index=tuple(int(i) for i in first),
        batch_images=images,
        batch_labels=labels,
        every_weight=bool(every_weight),
    )


def feature_maps(rso: RSOTrainer, digit: int, with_maps: bool = True):
    """(image (H, W), or (H, W, 3) for colour images, label, prediction, ((layer name, maps (C, H, W)), ...))
    for test image ``digit`` (modulo the test set's size): the output of each conv block, i.e. of each ReLU on
    4-d activations and of the batch norm that feeds global average pooling directly (the paper net's last
    block) or a residual block (the CIFAR net's blocks 1, 3, 5, 7, whose outputs the links carry).
    Without ``with_maps`` only the image and its label (prediction −1)."""
    model = rso.model
    n_test = int(rso.y_test.shape[0])
    if n_test == 0:
        return None, -1, -1, ()
    i = int(digit) % n_test
    x = rso.x_test[:, i : i + 1]
    image = np.array(to_numpy(x[:, 0]), dtype=np.float32)  # (C, H, W)
    image = image[0] if image.shape[0] == 1 else np.ascontiguousarray(image.transpose(1, 2, 0))  # RGB: (H, W, 3)
    label = int(to_numpy(rso.y_test[i]))
    if not with_maps:
        return image, label, -1, ()
    P = model.all_tensors()
    train = not model.bn_layers() or not model.buffers
    maps = []
    h = x
    previous = None
    for layer in model.layers:
        feeds = isinstance(layer, GlobalAvgPool) or (isinstance(layer, Residual) and isinstance(previous, BatchNorm2d))
        if feeds and previous is not None and not isinstance(previous, ReLU):
            maps.append((previous.name, np.array(to_numpy(h[:, 0]), dtype=np.float32)))
        h, _ = layer.forward(P, h, train)
        if isinstance(layer, ReLU) and h.ndim == 4:
            maps.append((layer.name, np.array(to_numpy(h[:, 0]), dtype=np.float32)))
        previous = layer
    pred = int(to_numpy(h.argmax(axis=1))[0])
    return image, label, pred, tuple(maps)
