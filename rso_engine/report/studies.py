"""The named studies (``rso report STUDY``) and how one is planned: its base config and its RSO runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import RunConfig
from .course import model_label


class StudyError(ValueError):
    """A study cannot be run as asked (unknown study, impossible options)."""


@dataclass(frozen=True)
class Study:
    """A named experiment: which models and batch sizes, with or without SGD, and how SGD is budgeted."""

    name: str
    title: str
    description: str
    models: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    defaults: dict[str, Any] = field(default_factory=dict)  # RunConfig fields the study starts from
    sgd: bool = True  # add the SGD baseline (one run per model)
    equal_budget: bool = False  # one SGD run per RSO run, stopped at the RSO run's forward-pass budget
    #: (label, RunConfig changes): each model and batch size is run once per variant
    variants: tuple[tuple[str, dict[str, Any]], ...] = (("", {}),)
    sections: str = ""  # extra report sections by name (see report.markdown.SECTIONS)


_COURSE_DEFAULTS = {"dataset": "mnist", "cycles": 10, "lr": 0.01, "sgd_batch_size": 32}
#: the authors' settings: batch 5,000 of the layer's cached input, weight decay 1e-4 as the stay candidate, 50
#: cycles; Fashion-MNIST is the offline stand-in for MNIST (pass --dataset mnist where it can be downloaded)
_PAPER_DEFAULTS = {"dataset": "fashion-mnist", "cycles": 50, "batch_mode": "authors", "stay_decay": 1e-4,
                   "lr": 0.01, "sgd_batch_size": 32}
#: the paper's variants, each against the first (the authors' own setting)
PAPER_VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("sequential", {}),
    ("layer-parallel", {"update": "layer-parallel"}),
    ("neuron-parallel", {"update": "neuron-parallel"}),
    ("fresh prefix per batch", {"batch_mode": "weight"}),
    ("input-first", {"layer_order": "input-first"}),
    ("reversed in-layer order", {"in_layer_order": "reverse"}),
)

STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "course-batch-sweep",
            "RSO batch-size sweep (the course project's study)",
            "OneConv trained by RSO once per mini-batch size (32, 64, 256, 512), 10 cycles on full MNIST as in "
            "the course project, plus the SGD baseline (lr 0.01, batch 32, as many epochs as cycles).",
            ("oneconv",),
            (32, 64, 256, 512),
            dict(_COURSE_DEFAULTS),
        ),
        Study(
            "model-comparison",
            "Model comparison (the course project's study)",
            "OneConv and TwoConv trained by RSO at batch 32 and 512, 10 cycles on full MNIST, each with its SGD "
            "baseline; add the paper's net with --models oneconv twoconv papernet.",
            ("oneconv", "twoconv"),
            (32, 512),
            dict(_COURSE_DEFAULTS),
        ),
        Study(
            "equal-budget",
            "RSO against SGD at equal forward-pass budgets",
            "OneConv trained by RSO at batch 32 and 256, 10 cycles on full MNIST; after each RSO run, SGD (lr "
            "0.01, batch 32) trains the same model on the same data until it has pushed as many images through "
            "the network as RSO did (3 × batch size per weight tried), stopping mid-epoch if need be (at most "
            "--max-sgd-epochs epochs).",
            ("oneconv",),
            (32, 256),
            dict(_COURSE_DEFAULTS),
            sgd=True,
            equal_budget=True,
        ),
        Study(
            "paper",
            "The paper's claims and variants (Tripathi & Singh, arXiv 2005.05955)",
            "The paper's 6-conv net trained by RSO as the authors' code does (batch 5,000 drawn from the swept "
            "layer's cached input, stay candidate w·(1 − 1e-4), σ annealed, 50 cycles) on Fashion-MNIST as the "
            "offline stand-in for MNIST, against SGD per epoch; then one run per variant the paper discusses: "
            "layer-parallel and neuron-parallel updates, a fresh prefix per batch instead of the cached input, "
            "input-first layers, the reversed order inside a layer. Fit it to a budget with --n-train, --cycles "
            "and --batch-sizes; the CIFAR-10 net with --models papercifar --dataset cifar10.",
            ("papernet",),
            (5000,),
            dict(_PAPER_DEFAULTS),
            variants=PAPER_VARIANTS,
            sections="paper",
        ),
    )
}


def get_study(name: str) -> Study:
    """The study named ``name``, or :class:`StudyError` listing the known ones."""
    try:
        return STUDIES[name]
    except KeyError:
        raise StudyError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}") from None


def study_base(name: str, config: RunConfig | None = None, changes: dict[str, Any] | None = None) -> RunConfig:
    """The base config of a study: its defaults, then ``config``'s fields, then ``changes``.

    With ``config=None`` the study's defaults (e.g. full MNIST, 10 cycles) apply to the fields
    ``changes`` leaves out; the CLI passes its --preset/--config layers as ``config``.
    """
    study = get_study(name)
    base = config if config is not None else RunConfig().replace(**study.defaults)
    return base.replace(**(changes or {})).replace(algorithm="rso")


def plan_runs(
    study: Study, base: RunConfig, models: Sequence[str] | None = None, batch_sizes: Sequence[int] | None = None
) -> list[tuple[str, RunConfig]]:
    """The RSO runs of a study as (label, config), in the order they run."""
    models = list(models or study.models)
    batch_sizes = list(batch_sizes or study.batch_sizes)
    if not models or not batch_sizes:
        raise StudyError("a study needs at least one model and one batch size")
    out = []
    for model in models:
        for b in batch_sizes:
            for name, changes in study.variants:
                cfg = base.replace(model=model, batch_size=int(b), algorithm="rso", **changes)
                out.append((f"{model_label(cfg.model)} RSO b{b}" + (f" {name}" if name else ""), cfg))
    return out
