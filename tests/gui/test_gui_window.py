"""The real window, driven offscreen with pytest-qt: transport, stepping, reset, settings, errors, drawing."""

from __future__ import annotations

import numpy as np
import pytest
import shiboken6
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from rso_engine.vocabulary import RunState
from rso_gui.controller import Controller, running_threads
from rso_gui.live.runner import PAUSE
from rso_gui.views.base import image_has_content
from rso_gui.window import PANEL_SPECS, MainWindow

WAIT = 30_000  # ms; generous for a loaded 2-core machine (never a timing assertion)


def press(qtbot, w, key, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(w, key, modifier)


def test_opens_paused_at_cycle_zero_with_everything_drawn(make_window, qtbot):
    w = make_window()
    c = w.controller
    qtbot.waitUntil(lambda: c.state == RunState.PAUSED, timeout=WAIT)
    snap = c.latest()
    assert snap.steps == 0 and len(snap.rso_history) == 1 and len(snap.sgd_history) == 1
    assert c.info.model == "oneconv" and c.info.evaluator == "reference"
    assert c.runner.weight_events == 0
    qtbot.waitUntil(lambda: all(p.has_content() for p in w.panels), timeout=WAIT)
    lo, hi = w.compare.acc.getViewBox().viewRange()[0]
    assert -0.1 < lo <= 0 and 1 <= hi < 1.1  # the lone cycle-0 points at the left of a 0..1 cycle axis
    assert w.act_play.text() == "Start"
    assert "oneconv" in w.status["model"].text() and "CPU" in w.status["backend"].text()


def test_space_starts_and_pauses(make_window, qtbot):
    w = make_window()
    c = w.controller
    press(qtbot, w, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: c.state == RunState.RUNNING and c.latest().steps > 3, timeout=WAIT)
    assert c.playing and w.act_play.text() == "Pause"
    press(qtbot, w, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: c.state == RunState.PAUSED, timeout=WAIT)
    assert not c.playing
    n = c.runner.weight_events
    assert c.latest().steps == n == c.runner.rso.steps  # paused on an exact state, snapshot up to date
    qtbot.wait(200)
    assert c.runner.weight_events == n  # nothing moves while paused
    assert w.act_play.text() == "Resume"


def test_right_arrow_steps_exactly_one_weight(make_window, qtbot):
    w = make_window()
    c = w.controller
    qtbot.waitUntil(lambda: c.state == RunState.PAUSED, timeout=WAIT)
    for expected in (1, 2, 3):
        press(qtbot, w, Qt.Key.Key_Right)
        qtbot.waitUntil(lambda e=expected: c.latest().steps == e and c.runner.mode == PAUSE, timeout=WAIT)
        qtbot.wait(100)
        r = c.runner
        assert r.weight_events == expected == r.rso.steps
        snap = c.latest()
        ev = snap.last
        assert ev.step == expected and ev.param == "conv1.weight"
        assert snap.current[:3] == (ev.layer, ev.param, ev.index)
        cv = snap.curve  # drawn on the engine's exact state: passes through its three losses
        assert cv is not None and cv.exact and cv.event is ev
        assert cv.curve.loss_at(ev.delta) == pytest.approx(ev.loss_plus, rel=1e-5)
        assert cv.curve.loss_at(0.0) == pytest.approx(ev.loss_stay, rel=1e-5)
        assert cv.curve.loss_at(-ev.delta) == pytest.approx(ev.loss_minus, rel=1e-5)
        np.testing.assert_allclose(snap.params[ev.param][ev.index], ev.new, rtol=1e-6)
    assert c.state == RunState.PAUSED


def test_step_layer_runs_to_the_end_of_the_layer(make_window, qtbot):
    w = make_window()
    c = w.controller
    press(qtbot, w, Qt.Key.Key_Right)  # one weight into conv1 (40 weights: 36 + 4 biases)
    qtbot.waitUntil(lambda: c.latest().steps == 1 and c.runner.mode == PAUSE, timeout=WAIT)
    press(qtbot, w, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: c.runner.mode == PAUSE and c.latest().steps > 1, timeout=WAIT)
    qtbot.wait(100)
    r = c.runner
    assert r.weight_events == 40 == c.latest().steps
    assert r.rso.position.group == 1 and r.rso.position.pos == 0  # the next layer, fc, is next
    stats = c.latest().layer_stats["conv1"]
    assert stats.tried == 40 == stats.tried_sweep
    press(qtbot, w, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: c.latest().steps == 41 and c.runner.mode == PAUSE, timeout=WAIT)
    assert c.latest().last.layer == "fc"


def test_reset_starts_over_and_joins_the_old_thread(make_window, qtbot):
    w = make_window()
    c = w.controller
    press(qtbot, w, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: c.latest().steps > 5, timeout=WAIT)
    old = c.runner
    press(qtbot, w, Qt.Key.Key_R)
    assert c.runner is not old and old.stopping
    qtbot.waitUntil(lambda: c.latest() is not None and c.state == RunState.PAUSED, timeout=WAIT)
    assert c.latest().steps == 0 and c.runner.weight_events == 0
    assert c.wait_retired(WAIT)
    assert len(running_threads()) == 1


def test_change_model_mid_run_restarts_and_keeps_playing(make_window, qtbot):
    w = make_window()
    c = w.controller
    press(qtbot, w, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: c.latest().steps > 3, timeout=WAIT)
    old = c.runner
    w.controls.model.setCurrentIndex(w.controls.model.findData("mlp"))
    w.controls.flush()  # the settings debounce, without waiting for it
    assert c.config.model == "mlp" and c.runner is not old
    qtbot.waitUntil(lambda: c.info is not None and c.info.model == "mlp", timeout=WAIT)
    qtbot.waitUntil(lambda: c.latest().steps > 3 and c.state == RunState.RUNNING, timeout=WAIT)
    assert c.latest().current[1].startswith("fc1")  # input-first: mlp's first layer
    assert c.wait_retired(WAIT)
    assert w.weights.info.model == "mlp" and w.filters.info.model == "mlp"


def test_settings_edits_are_debounced_into_one_restart(make_window, qtbot):
    w = make_window()
    c = w.controller
    first = c.runner
    for v in (17, 18, 19):
        w.controls.batch.setValue(v)
    assert c.runner is first  # nothing yet: waiting for the typing to stop
    qtbot.waitUntil(lambda: c.config.batch_size == 19, timeout=WAIT)
    assert c.runner is not first
    qtbot.waitUntil(lambda: c.info is not None and c.info.config.batch_size == 19, timeout=WAIT)


def test_close_mid_run_stops_and_joins(qtbot, tiny):
    c = Controller(tiny)
    w = MainWindow(c, restore=False)
    w.show()
    c.start()
    qtbot.waitUntil(lambda: c.latest() is not None and c.latest().steps > 3, timeout=WAIT)
    assert running_threads()
    w.close()
    assert not running_threads()
    assert c.state == "stopped"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_sgd_baseline_is_reported_and_rso_goes_on(make_window, qtbot, tiny):
    w = make_window(tiny.replace(lr=1e9, train_layers=["conv1"]))  # SGD diverges: its loss becomes inf/NaN
    c = w.controller
    press(qtbot, w, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not w.banner.isHidden(), timeout=WAIT)
    assert "SGD baseline stopped" in w.banner_text.text() and "learning rate" in w.banner_text.text()
    qtbot.waitUntil(lambda: c.state == RunState.FINISHED, timeout=60_000)  # RSO ran to its end
    snap = c.latest()
    assert c.error is None and snap.steps == 80 and [e.cycle for e in snap.rso_history] == [0, 1, 2]
    assert len(snap.sgd_history) == 1  # the baseline's evaluation before it diverged is kept
    w.controls.lr.setValue(0.01)
    w.controls.flush()
    qtbot.waitUntil(lambda: c.state == RunState.PAUSED, timeout=WAIT)
    assert w.banner.isHidden()


def test_engine_failure_shows_a_message_and_the_app_stays_usable(make_window, qtbot, tiny):
    w = make_window()
    c = w.controller
    c.runner.call_between(lambda: c.runner.rso.model.params["fc.weight"].fill(float("nan")))
    press(qtbot, w, Qt.Key.Key_Space)  # RSO's loss is NaN: the run stops with a message
    qtbot.waitUntil(lambda: not w.banner.isHidden(), timeout=WAIT)
    assert "The engine stopped" in w.banner_text.text() and "NaN" in w.banner_text.text()
    assert c.state == "error" and c.error
    qtbot.waitUntil(lambda: not running_threads(), timeout=WAIT)  # the failed run's thread ended
    w.controls.batch.setValue(17)
    w.controls.flush()
    qtbot.waitUntil(lambda: c.state == RunState.PAUSED, timeout=WAIT)
    assert w.banner.isHidden()
    press(qtbot, w, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: c.latest().steps == 1, timeout=WAIT)


def test_bad_dataset_is_reported_not_raised(make_window, qtbot, tiny, tmp_path):
    w = make_window()
    c = w.controller
    c.apply_config(tiny.replace(data_dir=str(tmp_path / "nowhere")))
    qtbot.waitUntil(lambda: not w.banner.isHidden(), timeout=WAIT)
    assert "nowhere" in w.banner_text.text()
    c.apply_config(tiny)
    qtbot.waitUntil(lambda: c.state == RunState.PAUSED, timeout=WAIT)


def test_a_run_finishes_with_rso_and_sgd_curves(make_window, qtbot, tiny):
    w = make_window(tiny.replace(train_layers=["conv1"]))  # 40 weights per cycle
    c = w.controller
    press(qtbot, w, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: c.state == RunState.FINISHED, timeout=60_000)
    snap = c.latest()
    assert snap.finished and snap.steps == 80
    assert [e.cycle for e in snap.rso_history] == [0, 1, 2]
    assert [e.cycle for e in snap.sgd_history] == [0, 1, 2]
    qtbot.waitUntil(lambda: w._snap is snap and len(w.compare._hist["sgd"]) == 3, timeout=WAIT)  # drawn
    assert "SGD" in w.compare.summary.text()
    for key in ("cycle", "weight_updates", "forward_samples", "seconds"):
        w.compare.set_x_axis(key)
        x, y = w.compare.curves["sgd"][0].getData()
        assert x is not None and len(x) >= 2
    assert w.act_play.text() == "Run again"
    press(qtbot, w, Qt.Key.Key_Space)  # runs again from the start
    qtbot.waitUntil(lambda: c.latest() is not None and 0 < c.latest().steps < 80, timeout=WAIT)


def test_every_panel_draws_content(make_window, qtbot):
    w = make_window()
    c = w.controller
    press(qtbot, w, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: c.latest().steps == 1, timeout=WAIT)
    qtbot.wait(150)  # a couple of frames
    images = w.panel_images()
    assert len(images) == len(PANEL_SPECS) >= 5  # the Algorithm panel too
    for title, img in images.items():
        assert img.width() > 100 and img.height() > 100, title
        assert image_has_content(img, min_colors=6), title
    assert all(p.has_content() for p in w.panels)
    full = w.grab().toImage()
    assert image_has_content(full, min_colors=10)
    for mode in ("2d-weights", "2d-directions"):
        w.landscape.set_mode(mode)
        qtbot.waitUntil(
            lambda m=mode: c.latest().slice2d is not None and c.latest().slice2d.slice.kind in m, timeout=WAIT
        )
        qtbot.waitUntil(lambda: w.landscape.stack.currentWidget() is w.landscape.plot2, timeout=WAIT)
        assert image_has_content(w.landscape.grab().toImage(), min_colors=6)


def test_keyboard_help_and_tooltips(make_window, qtbot):
    w = make_window()
    keyed = [a for a in w.actions() if a.shortcuts()]
    assert len(keyed) >= 15
    for a in keyed:
        assert a.shortcuts()[0].toString() in a.toolTip() or a.data()["keys"] in a.toolTip()
    assert w.act_play.shortcut().toString() == "Space"
    assert w.act_step.shortcut().toString() == "Right"
    press(qtbot, w, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: getattr(w, "help_dialog", None) is not None and w.help_dialog.isVisible(), timeout=WAIT)
    w.help_dialog.close()
    press(qtbot, w, Qt.Key.Key_Up)  # speed: full -> already the top
    assert c_speed(w) is None
    press(qtbot, w, Qt.Key.Key_Down)
    assert c_speed(w) == 10000
    press(qtbot, w, Qt.Key.Key_S)
    assert c_speed(w) == 2 and w.controller.runner.rate == 2
    press(qtbot, w, Qt.Key.Key_F)
    assert c_speed(w) is None and w.controller.runner.rate is None
    press(qtbot, w, Qt.Key.Key_2)
    assert w.weights.isVisible() and not w.landscape.isVisible() and not w.compare.isVisible()
    press(qtbot, w, Qt.Key.Key_0)
    assert all(p.isVisible() for p in w.panels)
    press(qtbot, w, Qt.Key.Key_X)
    assert w.compare.x_axis == "weight_updates" and w.compare.log_box.isChecked()
    press(qtbot, w, Qt.Key.Key_D)
    assert w.controller.view_options()["landscape"] == "2d-weights"


def c_speed(w):
    return w.controller.speed


def test_presentation_and_theme(make_window, qtbot):
    w = make_window()
    small = w.theme.font_pt
    press(qtbot, w, Qt.Key.Key_F5)
    assert w.presentation and w.theme.font_pt > small and w.theme.line >= 4
    press(qtbot, w, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    assert w.theme_name == "light" and w.theme.background == "#ffffff"
    # every panel, on the presentation stage or off it, draws in the new theme (a loaded machine: wait for it)
    qtbot.waitUntil(lambda: all(image_has_content(p.grab().toImage()) for p in w.panels), timeout=WAIT)


def test_settings_are_remembered(qtbot, tiny, settings_dir):
    c = Controller(tiny.replace(model="twoconv", seed=7), speed=5.0, sgd=False)
    w = MainWindow(c)
    w.set_theme("light")
    w.set_presentation(True)
    w.compare.set_x_axis("forward_samples")
    w.landscape.set_mode("2d-directions")
    w.close()
    files = list(settings_dir.rglob("*.ini"))
    assert files, "settings were not written to the temporary folder"
    w2 = MainWindow()  # from the remembered settings
    try:
        c2 = w2.controller
        assert c2.config.model == "twoconv" and c2.config.seed == 7 and c2.config.batch_size == tiny.batch_size
        assert c2.speed == 5.0 and not c2.sgd_enabled
        assert w2.theme_name == "light" and w2.presentation
        assert w2.compare.x_axis == "forward_samples"
        assert c2.view_options()["landscape"] == "2d-directions"
        assert w2.controls.model.currentData() == "twoconv" and w2.controls.current_speed() == 5
    finally:
        w2.close()
    s = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "rso", "rso-gui")
    s.setValue("run/config", "{not json")
    s.sync()
    w3 = MainWindow()  # a damaged entry falls back to the defaults
    try:
        assert w3.controller.config.model == "oneconv"
    finally:
        w3.close()


def test_panel_splitters_depend_on_their_size_alone(qtbot):
    """Two windows of one size lay their panels out alike, whatever sizes they passed through (so
    deterministic recordings are identical); a dragged handle sets new proportions."""
    from PySide6.QtWidgets import QWidget  # noqa: PLC0415

    from rso_gui.window import ProportionalSplitter  # noqa: PLC0415

    sizes = []
    for path in ((900,), (613, 1207, 777, 900)):
        sp = ProportionalSplitter(Qt.Orientation.Horizontal, (1, 2))
        qtbot.addWidget(sp)
        sp.addWidget(QWidget())
        sp.addWidget(QWidget())
        sp.show()
        for w in path:
            sp.resize(w, 300)
            qtbot.wait(1)
        sizes.append(sp.sizes())
    assert sizes[0] == sizes[1] and abs(sizes[0][1] - 2 * sizes[0][0]) <= 2
    sp.moveSplitter(450, 1)  # what a drag does
    dragged = sp.sizes()
    sp.resize(1800, 300)
    qtbot.wait(1)
    assert abs(sp.sizes()[0] / sum(sp.sizes()) - dragged[0] / sum(dragged)) < 0.01


@pytest.mark.parametrize("where", ["help", "message box"])
def test_ctrl_q_quits_from_a_dialog(make_window, qtbot, where):
    w = make_window()
    dialog = w.show_help() or w.help_dialog if where == "help" else w.tools.show_error("Oops", "something")
    qtbot.waitExposed(dialog)
    dialog.activateWindow()  # as a person's click leaves it: the main window's shortcuts are then inactive
    qtbot.waitUntil(lambda: dialog.isActiveWindow(), timeout=WAIT)
    qtbot.keyClick(dialog, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=WAIT)
    assert not (shiboken6.isValid(dialog) and dialog.isVisible()) and not running_threads()


def test_closing_while_the_paper_net_is_evaluated_stops_the_evaluation(qtbot, tiny, monkeypatch):
    """The first evaluation of a big run used to run to its end (20 s) before a close could join the
    engine thread, and Qt then aborted: now the evaluation stops at its next chunk."""
    import threading
    import time

    import rso_engine.training.base as trainer_base

    started, calls = threading.Event(), []
    run_layers = trainer_base.run_layers

    def slow_chunk(*args, **kw):  # one evaluation chunk (the evaluation's forward passes go through here)
        calls.append(1)
        started.set()
        time.sleep(0.2)  # a big chunk
        return run_layers(*args, **kw)

    monkeypatch.setattr(trainer_base, "run_layers", slow_chunk)
    c = Controller(tiny.replace(model="papernet", n_train=4000, n_test=1000, eval_train_samples=4000), sgd=False)
    w = MainWindow(c, restore=False)
    w.show()
    qtbot.waitUntil(started.is_set, timeout=WAIT)
    w.close()  # joins the engine thread (Controller.shutdown)
    assert not running_threads()
    assert c.info is None and len(calls) < 5  # 4 training + 1 test chunks: the evaluation did not finish


def test_zooming_panels_leaves_the_keys_to_the_window(make_window, qtbot):
    w = make_window()
    c = w.controller
    qtbot.waitUntil(lambda: c.state == RunState.PAUSED, timeout=WAIT)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=WAIT)
    w.weights.setFocus()  # as a click into panel 2 leaves it
    for key in (Qt.Key.Key_3, Qt.Key.Key_0):
        qtbot.keyClick(QApplication.focusWidget() or w, key)  # keys go where the focus is, as a person's do
        assert not w.filters.digit_box.hasFocus()
    qtbot.keyClick(QApplication.focusWidget() or w, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: c.latest().steps == 1 and c.runner.mode == PAUSE, timeout=WAIT)
