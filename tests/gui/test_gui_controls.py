"""The control panel and what is remembered, without an engine thread: settings round-trip, old spellings."""

from __future__ import annotations

from rso_engine.config import RunConfig
from rso_gui.live.info import run_choices
from rso_gui.views.controls import ControlsPanel


def make_panel(qtbot, cfg: RunConfig) -> tuple[ControlsPanel, list[RunConfig]]:
    panel = ControlsPanel(run_choices())
    qtbot.addWidget(panel)
    panel.set_config(cfg)
    edited: list[RunConfig] = []
    panel.configEdited.connect(edited.append)
    return panel, edited


def test_anneal_to_round_trips_and_is_enabled_only_with_annealing(qtbot):
    cfg = RunConfig(anneal=True, anneal_to=0.25)
    panel, edited = make_panel(qtbot, cfg)
    assert panel.anneal_to.value() == 0.25 and panel.anneal_to.isEnabled()
    assert panel.config() == cfg
    assert "α" in panel.anneal.text() and "(C − e)/C" in panel.anneal.toolTip()
    panel.anneal_to.setValue(0.5)
    panel.flush()
    assert [c.anneal_to for c in edited] == [0.5]
    panel.anneal_to.setValue(0.25)  # back to the first value: an edit too
    panel.flush()
    assert [c.anneal_to for c in edited] == [0.5, 0.25]
    panel.anneal.setChecked(False)
    assert not panel.anneal_to.isEnabled()
    panel.flush()
    assert not edited[-1].anneal and edited[-1].anneal_to == 0.25
    panel.set_config(cfg.replace(anneal=False))
    assert not panel.anneal_to.isEnabled()
    panel.anneal.setChecked(True)
    assert panel.anneal_to.isEnabled()


def test_an_anneal_to_the_box_cannot_show_survives_other_edits(qtbot):
    cfg = RunConfig(anneal_to=0.0005)  # valid, below the box's 0.01
    panel, edited = make_panel(qtbot, cfg)
    assert panel.anneal_to.value() == 0.01
    panel.batch.setValue(cfg.batch_size + 1)
    panel.flush()
    assert edited[-1].anneal_to == 0.0005 and edited[-1].batch_size == cfg.batch_size + 1


def test_the_old_x_axis_spelling_in_settings_and_sessions_is_read(qtbot):
    from PySide6.QtCore import QSettings  # noqa: PLC0415

    from rso_gui.settings import read_x_axis  # noqa: PLC0415
    from rso_gui.views.compare import ComparePanel  # noqa: PLC0415

    s = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "rso", "rso-gui")
    s.setValue("view/x_axis", "cycle")  # what the window stored before the shared vocabulary
    assert read_x_axis(s) == "cycles"
    s.setValue("view/x_axis", "nonsense")
    assert read_x_axis(s) == "cycles" and read_x_axis(None) == "cycles"
    panel = ComparePanel()
    qtbot.addWidget(panel)
    panel.set_x_axis("seconds")
    panel.set_x_axis("cycle")  # a session saved before the vocabulary
    assert panel.x_axis == "cycles" and not panel.log_box.isChecked()
    panel.set_x_axis("forward_samples")
    assert panel.log_box.isChecked()
