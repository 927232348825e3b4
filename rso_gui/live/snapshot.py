"""What the engine thread hands to the views: plain, immutable data, copied out at one consistent moment.

Qt-free. The views import these types (and nothing else from the engine loop); the runner
(:mod:`rso_gui.live.runner`) builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rso_engine import landscape as L
from rso_engine.config import RunConfig
from rso_engine.events import Evaluated, WeightTried

CURVE_POINTS = 41  # points of the 1-D landscape along a weight
TRACE_LEN = 240  # decisions kept for the decision trace
TRACE_EMPTY = 2  # trace value of a slot not filled yet (choices are -1, 0, 1)


@dataclass(frozen=True)
class RunChoices:
    """What a run's settings can be set to, for the controls: models (name, description), datasets and
    evaluators ("auto" first) by name."""

    models: tuple[tuple[str, str], ...]
    datasets: tuple[str, ...]
    evaluators: tuple[str, ...]


@dataclass(frozen=True)
class LayerInfo:
    """One layer of the network for drawing: name, kind, description, parameters, activation shapes."""

    name: str
    kind: str
    description: str
    params: tuple[str, ...]
    in_shape: tuple[int, ...]  # per sample: (C, H, W) or (features,)
    out_shape: tuple[int, ...]


@dataclass(frozen=True)
class RunInfo:
    """What stays fixed during a run: the model's structure, data, backend, sweep plan."""

    config: RunConfig
    model: str
    model_description: str
    dataset: str
    dataset_source: str
    n_train: int
    n_test: int
    classes: tuple[str, ...]
    backend: str
    is_gpu: bool
    evaluator: str
    layers: tuple[LayerInfo, ...]
    plan: tuple[tuple[str, tuple[str, ...]], ...]  # sweep order: (layer name, its searched tensors)
    param_shapes: dict[str, tuple[int, ...]]
    sigma: dict[str, float]  # σ_d of each tensor's layer (before annealing)
    layer_sizes: dict[str, int]  # weights in each layer's sweep
    weights_per_cycle: int
    cycles: int
    sgd: bool
    sgd_steps_per_epoch: int
    dense_inputs: dict[str, tuple[int, ...] | None]  # dense weight -> (C, H, W) of its flattened input
    filter_params: tuple[str, ...]  # tensors the filter panel shows (conv weights, or a first dense layer)

    def layer(self, name: str) -> LayerInfo:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


@dataclass(frozen=True)
class CurveView:
    """The landscape along one weight, with the decision RSO took there (losses as mean per image)."""

    curve: L.Curve
    event: WeightTried | None  # None: the weight about to be tried (no decision yet)
    sigma: float  # σ its Δ is drawn with in this cycle (annealed)
    stay_value: float
    exact: bool  # the curve is on the engine's exact state, so it passes through the event's losses

    def mean(self, summed: float) -> float:
        return summed / max(self.curve.batch_size, 1)


@dataclass(frozen=True)
class SliceView:
    """A 2-D slice; ``before`` is where the weights were before the last decision (weights mode)."""

    slice: L.Slice2D
    before: tuple[float, float] | None = None


@dataclass
class LayerStats:
    """Weights tried and changed in one layer: over the whole run and in its sweep in progress."""

    tried: int = 0  # all cycles
    changed: int = 0
    tried_sweep: int = 0  # the sweep in progress (or the last one)
    changed_sweep: int = 0
    plus: int = 0  # of the changed ones, those that kept w + Δ (the others kept w − Δ)
    plus_sweep: int = 0

    def add(self, choice: int, first_of_sweep: bool) -> None:
        """Count one decision (a ``WeightTried.choice``); ``first_of_sweep`` starts the layer's sweep."""
        if first_of_sweep:
            self.tried_sweep = self.changed_sweep = self.plus_sweep = 0
        self.tried += 1
        self.tried_sweep += 1
        if choice:
            self.changed += 1
            self.changed_sweep += 1
            if choice > 0:
                self.plus += 1
                self.plus_sweep += 1


BATCH_THUMBS = 8  # images of a weight's mini-batch the Algorithm panel shows


@dataclass(frozen=True)
class AlgorithmView:
    """What the Algorithm panel binds to Algorithm 1's lines, as the engine knows it (the decision itself
    is the snapshot's ``last``): the variant that runs, the weight tried next (with its σ), the σ the last
    weight's Δ was drawn with, and the first images of that weight's mini-batch."""

    update: str  # RunConfig.update: "sequential", "layer-parallel" or "neuron-parallel"
    batch_mode: str  # RunConfig.batch_mode: "weight", "layer", "cycle" or "authors"
    layer_order: str  # RunConfig.layer_order
    cycles: int
    stay_decay: float
    upcoming: tuple[int, str, str, tuple[int, ...], int, int, float] | None  # cycle, layer, param, index,
    # position, layer size, σ of the weight tried next (None: finished)
    sigma: float | None  # σ the last weight's Δ was drawn with (annealed for its cycle)
    batch_size: int
    batch_index: tuple[int, ...]  # the first training indices of the last weight's mini-batch (empty: unknown)
    batch_images: np.ndarray | None  # (k, C, H, W) float32, those images (as the network sees them)
    batch_labels: tuple[int, ...]
    every_weight: bool  # every weight is shown (paused, stepping or slow motion): bind the values


@dataclass(frozen=True)
class LaneView:
    """One extra lane of a race (rso_gui/live/lanes.py), copied out with the snapshot: its number (the main
    run is lane 1), name, algorithm, history, first-layer filters and forward samples."""

    number: int
    label: str
    algorithm: str  # "rso" or "sgd"
    history: tuple[Evaluated, ...]
    filter_param: str | None  # the tensor ``filters`` is (the first the filter panel shows)
    filters: np.ndarray | None
    forward_samples: int
    finished: bool
    error: str | None = None  # the lane stopped (e.g. an SGD lane diverged)


@dataclass(frozen=True)
class Snapshot:
    """Everything the views draw, copied out of the engine at one consistent moment."""

    seq: int
    wall: float
    state: str
    steps: int  # weights tried so far
    cycle: int  # 1-based cycle of the weight shown in ``current`` (just tried, or next)
    weights_per_cycle: int
    current: tuple[str, str, tuple[int, ...], int, int] | None  # layer, param, index, position, layer size
    last: WeightTried | None
    params: dict[str, np.ndarray]
    cycle_weights: int  # weights of ``cycle`` tried so far (the cycle of the weight shown in ``current``)
    curve: CurveView | None
    slice2d: SliceView | None
    digit: np.ndarray | None  # (H, W) the chosen test image; (H, W, 3) RGB for colour images
    digit_label: int
    digit_prediction: int
    feature_maps: tuple[tuple[str, np.ndarray], ...]  # (layer name, (C, H, W)) after each conv block
    trace: np.ndarray  # int8 (TRACE_LEN,), oldest first; TRACE_EMPTY where not filled
    layer_stats: dict[str, LayerStats]
    rso_history: tuple[Evaluated, ...]
    sgd_history: tuple[Evaluated, ...]
    sgd_steps: int
    rso_seconds: float
    finished: bool
    extra: dict[str, Any] = field(default_factory=dict)
    algorithm: AlgorithmView | None = None
    lanes: tuple[LaneView, ...] = ()  # the race's extra lanes (none: the main run and its SGD baseline only)
