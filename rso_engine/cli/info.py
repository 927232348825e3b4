"""``rso info``: the backend, the evaluators, the models and which datasets are available here."""

from __future__ import annotations

import argparse

from .. import __version__
from ..backend import cupy_unavailable_reason, get_backend
from ..data import describe_datasets
from ..evaluators import evaluator_names
from ..evaluators.registry import auto_choice, stand_in_reason
from ..models import MODELS, Model


def add_parser(sub) -> None:
    """Register ``rso info``."""
    i = sub.add_parser("info", help="backend, evaluators and datasets available here",
                       description="Show the array backend, the evaluators and which datasets are available.")
    i.set_defaults(handler=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    """Print what this installation can compute on and with."""
    backend = get_backend()
    print(f"rso {__version__}")
    print(f"backend: {backend.describe()}")
    why = cupy_unavailable_reason()
    print(f"GPU (CuPy): {'usable' if not why else why}")
    print(f"evaluators: {', '.join(evaluator_names())} (auto picks the first that fits the model)")
    print("models (parameters; the evaluator auto picks here):")
    for name, (builder, desc) in MODELS.items():
        model = Model(name, builder(), backend=backend)  # structure only: no initialisation needed
        print(f"  {name:10s} {model.n_params:>7,d}  auto: {auto_choice(model):17s} {desc}")
        why = stand_in_reason("incremental", model)
        if why:
            print(f"  {'':10s} {'':>7s}  the incremental evaluators run the layer cache instead: {why}")
    print("datasets:")
    for name, status in describe_datasets():
        print(f"  {name:14s} {status}")
    return 0
