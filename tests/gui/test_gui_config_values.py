"""The control panel shows any config that validates, however extreme its values, without raising."""

from __future__ import annotations

import pytest

from rso_engine.config import INT_MAX, RunConfig
from rso_gui.live.info import run_choices
from rso_gui.views.controls import ControlsPanel


@pytest.mark.parametrize("changes", [
    {"seed": INT_MAX, "batch_size": INT_MAX, "cycles": INT_MAX},
    {"seed": 0, "batch_size": 1, "cycles": 1},
    {"lr": 1e300, "anneal_to": 1.0, "anneal": False},
    {"lr": 1e-300, "anneal_to": 1e-300},
    {"evaluator": "reference", "model": "papernet", "dataset": "not-a-known-name"},
])  # fmt: skip
def test_set_config_takes_any_validated_config(qtbot, changes):
    panel = ControlsPanel(run_choices())
    qtbot.addWidget(panel)
    cfg = RunConfig.from_dict(changes)
    panel.set_config(cfg)
    assert panel.anneal.isChecked() is cfg.anneal
    assert panel.config().validated() is not None  # what it shows is a valid config too
