"""The vocabulary of a sweep: where it stands, the weight tried next, the planned layers, the σ schedule."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import RunConfig
from ..models import ParamGroup


def sigma_scale(e: int, cycles: int, anneal: bool = True, anneal_to: float = 0.1) -> float:
    """σ multiplier for the **0-based** cycle ``e`` of ``cycles``, as the authors' ``get_random_perturbation``:
    α + (1 − α)·(C − e)/C with α = ``anneal_to`` when annealing, else 1.

    So the first cycle (e = 0) runs at the full σ_d, the last at σ_d·(α + (1 − α)/C), and a single-cycle
    run is not annealed at all.
    """
    if not anneal:
        return 1.0
    return anneal_to + (1.0 - anneal_to) * (cycles - e) / cycles


def describe_sigma_schedule(config: RunConfig) -> str:
    """The σ schedule of ``config`` in words: ``"σ annealed from σ_d to σ_d·0.19 over 10 cycles"`` or
    ``"σ constant"`` (for reports, headers and tooltips)."""
    if not config.anneal or config.anneal_to == 1:
        return "σ constant"
    if config.cycles == 1:
        return "σ constant (a single cycle is not annealed)"
    last = sigma_scale(config.cycles - 1, config.cycles, config.anneal, config.anneal_to)
    return f"σ annealed from σ_d to σ_d·{last:.3g} over {config.cycles} cycles"


@dataclass
class SweepPosition:
    """Where the sweep stands: 0-based cycle, layer (index in the sweep plan), tensor in it, weight."""

    cycle: int = 0
    group: int = 0
    param: int = 0
    pos: int = 0


@dataclass(frozen=True)
class NextWeight:
    """The weight RSO tries next, and everything a driver needs to show it without knowing the order."""

    cycle: int  # 1-based
    layer: str
    param: str
    index: tuple[int, ...]  # position inside the tensor
    position: int  # 0-based position in its layer's sweep
    layer_size: int  # weights in the layer's sweep
    sigma: float  # σ its Δ is drawn with (σ_d, annealed for this cycle)


@dataclass(frozen=True)
class PlannedLayer:
    """One layer of the sweep plan: its group and the tensors searched, in sweep order."""

    group: ParamGroup
    params: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.group.name


#: a batch mode in words, for "RSO: batch 256 …" lines
BATCH_MODE_WORDS = {
    "weight": "a fresh batch per weight",
    "layer": "one batch per layer",
    "cycle": "one batch per cycle",
    "authors": "a fresh batch per weight of the layer's input cached when its sweep began (the authors' code)",
}
#: an update variant in words
UPDATE_WORDS = {
    "sequential": "sequential updates",
    "layer-parallel": "layer-parallel updates (every weight scored against the layer's starting state, "
                      "merged when the layer ends)",
    "neuron-parallel": "neuron-parallel updates (each neuron's weights in turn from the layer's starting "
                       "state, the neurons merged when the layer ends)",
}


def describe_batching(config: RunConfig) -> str:
    """How a run's batches are drawn and its chosen values applied, in words (headers and reports)."""
    words = BATCH_MODE_WORDS[config.batch_mode]
    if config.update != "sequential":
        words += ", " + UPDATE_WORDS[config.update]
    return words
