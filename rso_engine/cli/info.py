"""``rso info``: the backend, the evaluators, the models and which datasets are available here."""

from __future__ import annotations

import argparse

from .. import __version__
from ..backend import cupy_unavailable_reason, get_backend
from ..data import describe_datasets
from ..evaluators import evaluator_names
from ..models import MODELS


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
    print("models:")
    for name, (_, desc) in MODELS.items():
        print(f"  {name:10s} {desc}")
    print("datasets:")
    for name, status in describe_datasets():
        print(f"  {name:14s} {status}")
    return 0
