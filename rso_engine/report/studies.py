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


_COURSE_DEFAULTS = {"dataset": "mnist", "cycles": 10, "lr": 0.01, "sgd_batch_size": 32}

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
            cfg = base.replace(model=model, batch_size=int(b), algorithm="rso")
            out.append((f"{model_label(cfg.model)} RSO b{b}", cfg))
    return out
