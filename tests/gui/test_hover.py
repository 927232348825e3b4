"""Hover read-outs: the curves say their value under the cursor (RSO vs SGD; the landscape's loss at Δ)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from rso_engine.vocabulary import RunState
from rso_gui.live.runner import PAUSE

WAIT = 30_000


def move_mouse_to(plot, x: float, y: float | None = None) -> None:
    """What a mouse move over data point (x, y) of ``plot`` does (the scene's signal, in scene coordinates);
    y None: the middle of the plot's height."""
    if y is None:
        y = float(np.mean(plot.getViewBox().viewRange()[1]))
    plot.scene().sigMouseMoved.emit(plot.getViewBox().mapViewToScene(QPointF(x, y)))


def test_rso_vs_sgd_says_cycle_accuracy_and_loss_under_the_cursor(make_window, qtbot):
    w = make_window()
    c = w.controller
    qtbot.waitUntil(lambda: c.state == RunState.PAUSED and w._snap is c.latest(), timeout=WAIT)
    snap = c.latest()
    rso, sgd = snap.rso_history[0], snap.sgd_history[0]  # the cycle-0 evaluation of both
    hover = w.compare.hover["accuracy"]
    move_mouse_to(w.compare.acc, 0.1)  # near cycle 0
    assert hover.label.isVisible()
    assert f"RSO cycle 0: {100 * rso.test_accuracy:.1f}% · loss {rso.test_loss:.3f}" in hover.text
    assert f"SGD epoch 0: {100 * sgd.test_accuracy:.1f}%" in hover.text
    move_mouse_to(w.compare.loss, 0.0)
    assert f"RSO cycle 0: loss {rso.test_loss:.3f} · {100 * rso.test_accuracy:.1f}%" in w.compare.hover["loss"].text
    w.compare.set_x_axis("seconds")  # another axis: the point's x in its units
    text = w.compare.hover["accuracy"].show_at(0.0, 50.0)
    assert "RSO cycle 0 · training time 0" in text
    w.compare.set_x_axis("forward_samples")  # a log axis leaves out x = 0: no point to read
    assert w.compare.hover["accuracy"].show_at(1.0, 50.0) is None
    w.compare.acc.scene().sigMouseMoved.emit(QPointF(-50, -50))  # off the plot: the read-out goes
    assert not hover.label.isVisible()


def test_the_landscape_says_the_loss_at_the_cursors_delta(make_window, qtbot):
    w = make_window()
    c = w.controller
    w.step_weight()
    qtbot.waitUntil(lambda: c.latest().steps == 1 and c.runner.mode == PAUSE, timeout=WAIT)
    snap = c.latest()
    qtbot.waitUntil(lambda: w._snap is snap and w.landscape._n > 0, timeout=WAIT)
    ev, cv = snap.last, snap.curve
    B = ev.batch_size
    move_mouse_to(w.landscape.plot1.getPlotItem(), ev.delta, ev.loss_plus / B)
    # the curve passes through the engine's losses, so at +Δ the read-out is the loss of w + Δ
    assert f"loss {ev.loss_plus / B:.4f}" in w.landscape.hover1.text
    assert f"Δ = {ev.delta:+.4g}" in w.landscape.hover1.text
    mid = 0.5 * ev.delta
    expected = np.interp(mid, cv.curve.offsets, cv.curve.losses / B)
    assert w.landscape.readout_1d(mid) == f"Δ = {mid:+.4g}\nloss {expected:.4f}"
    assert w.landscape.readout_1d(10 * float(np.max(cv.curve.offsets))) is None  # past the curve: nothing
    assert cv.curve.loss_at(ev.delta) == pytest.approx(ev.loss_plus, rel=1e-5)
