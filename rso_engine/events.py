"""The small immutable events that trainers yield.

They carry indices and scalars by value only, never arrays: a view that wants the weights reads the
trainer's current state when it redraws. NamedTuples are used because they are immutable and cheap to
create, which matters when a fast evaluator sweeps 100,000 weights per second.
"""

from __future__ import annotations

from typing import NamedTuple

#: ``WeightTried.choice`` values
PLUS, STAY, MINUS = 1, 0, -1
CHOICE_NAMES = {PLUS: "w+Δ", STAY: "w", MINUS: "w−Δ"}


class WeightTried(NamedTuple):
    """RSO tried one scalar weight: the three losses on its mini-batch and the one it kept."""

    step: int  # weights tried so far in the run, this one included
    cycle: int  # 1-based
    layer: str  # the ParamGroup's name, e.g. "conv1"
    param: str  # full parameter name, e.g. "conv1.weight"
    index: tuple[int, ...]  # position inside the tensor
    position: int  # 0-based position of this weight in its layer's sweep
    layer_size: int  # how many weights the layer's sweep has
    delta: float
    loss_plus: float  # summed cross-entropy on the batch for w + Δ
    loss_stay: float  # ... for w (or w·(1 − decay) with stay decay)
    loss_minus: float  # ... for w − Δ
    choice: int  # PLUS, STAY or MINUS
    old: float
    new: float
    batch_size: int


class ChunkDone(NamedTuple):
    """RSO finished a chunk of weights handed to the evaluator at once.

    It follows the chunk's last :class:`WeightTried`. Here the trainer's state is exactly the state after that
    weight: a driver that publishes, pauses or saves does it here (see ``RSOTrainer.set_chunking``). At
    :class:`LayerDone` and :class:`Evaluated` the state is exact too, but a step further: the layer's caches
    are released and, at the end of a cycle, the trainer already stands at the next cycle (its ``cycle`` and
    σ are the next one's) with the cycle's evaluation in its history.
    """

    step: int  # weights tried so far in the run: the last WeightTried.step of the chunk
    layer: str
    n_weights: int  # weights in the chunk


class LayerDone(NamedTuple):
    """RSO finished sweeping one layer in a cycle."""

    cycle: int
    layer: str
    n_weights: int
    n_changed: int  # weights whose value moved to w ± Δ
    seconds: float  # compute time of this layer's sweep
    ends_cycle: bool = False  # the last layer of the cycle: CycleDone and Evaluated follow


class SGDStep(NamedTuple):
    """SGD took one mini-batch step."""

    epoch: int  # 1-based
    step: int  # steps so far in the run
    loss: float  # mean cross-entropy of the batch before the step
    batch_size: int


class CycleDone(NamedTuple):
    """A full RSO cycle (every weight tried once) or an SGD epoch finished."""

    algorithm: str  # "rso" or "sgd"
    cycle: int  # 1-based: cycles for RSO, epochs for SGD
    weight_updates: int
    forward_samples: int
    seconds: float  # cumulative training compute time


class Evaluated(NamedTuple):
    """The model was evaluated; one row of the run's history."""

    algorithm: str
    cycle: int  # 0 for the evaluation before training
    train_loss: float  # mean cross-entropy on the evaluation subset of the training data
    test_loss: float  # mean cross-entropy on the test split
    test_accuracy: float  # fraction in [0, 1]
    weight_updates: int
    forward_samples: int
    seconds: float
