"""The shared vocabulary: x-axis names (and the old spelling), the log-x rule, landscape modes, run states."""

from __future__ import annotations

import inspect
import json

import pytest

from rso_engine.events import Evaluated
from rso_engine.vocabulary import (
    DEFAULT_X_AXIS,
    LANDSCAPE_LABELS,
    LANDSCAPE_MODES,
    X_AXES,
    LandscapeMode,
    RunState,
    log_x_by_default,
    state_text,
    x_axis_name,
)


def test_x_axes_read_evaluated_fields_and_accept_the_old_spelling():
    fields = set(inspect.signature(Evaluated).parameters)
    assert all(axis.field in fields for axis in X_AXES.values())
    assert list(X_AXES) == ["cycles", "weight_updates", "forward_samples", "seconds"]
    assert DEFAULT_X_AXIS == x_axis_name("cycle") == x_axis_name("cycles") == "cycles"
    with pytest.raises(ValueError, match="unknown x-axis 'epochs'"):
        x_axis_name("epochs")


def test_log_x_only_for_the_budget_axes():
    assert [name for name in X_AXES if log_x_by_default(name)] == ["weight_updates", "forward_samples"]
    assert not log_x_by_default("cycle")


def test_landscape_modes_and_run_states_are_their_plain_strings():
    assert LANDSCAPE_MODES == ("1d", "2d-weights", "2d-directions")
    assert set(LANDSCAPE_LABELS) == set(LandscapeMode)
    assert LandscapeMode.TWO_D_WEIGHTS == "2d-weights" and str(LandscapeMode.ONE_D) == "1d"
    states = ["preparing", "paused", "running", "finished", "error", "stopped"]
    assert [s.value for s in RunState] == states
    assert all(RunState(s) == s and f"{RunState(s)}" == s for s in states)
    assert json.dumps([RunState.PAUSED]) == '["paused"]'
    assert state_text("preparing") == state_text(RunState.PREPARING) == "preparing…"
    assert state_text("something else") == "something else"


def test_landscape_modes_are_checked_and_a_bad_remembered_one_falls_back(tmp_path):
    from PySide6.QtCore import QSettings

    from rso_engine.vocabulary import DEFAULT_LANDSCAPE, LANDSCAPE_MODES, landscape_mode
    from rso_gui.settings import read_landscape

    assert [landscape_mode(m) for m in LANDSCAPE_MODES] == list(LANDSCAPE_MODES)
    with pytest.raises(ValueError, match="unknown landscape mode 'banana'"):
        landscape_mode("banana")
    s = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    s.setValue("view/landscape", "banana")
    assert read_landscape(s) == DEFAULT_LANDSCAPE
    s.setValue("view/landscape", "2d-weights")
    assert read_landscape(s) == "2d-weights"


def test_the_evaluator_names_are_the_registrys():
    from rso_engine.evaluators import EVALUATORS, evaluator_names
    from rso_engine.vocabulary import EVALUATOR_NAMES

    assert evaluator_names() == list(EVALUATOR_NAMES) and set(EVALUATORS) == set(EVALUATOR_NAMES)
