"""Locate bundled resources (the MNIST sample, presets) in a source checkout or an installed wheel."""

from __future__ import annotations

from importlib import resources as _ir
from pathlib import Path


def resources_dir() -> Path:
    """Return the folder that holds the bundled resources.

    An installed wheel carries them as ``rso_engine/_resources`` (see ``pyproject.toml``); a source
    checkout or editable install has them in the top-level ``resources/`` folder.
    """
    packaged = Path(str(_ir.files("rso_engine"))) / "_resources"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "resources"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        "rso's bundled resources are missing (looked in "
        f"{packaged} and {checkout}); reinstall the package with `pip install .`"
    )


def resource_path(*parts: str) -> Path:
    """Path of one bundled resource, e.g. ``resource_path("mnist_5k.npz")``."""
    return resources_dir().joinpath(*parts)
