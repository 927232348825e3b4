"""Guided lessons in the window: each condition stops where it says, going back restores the exact state,
the keys walk the steps, and a lesson records deterministically."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from rso_engine.events import MINUS, STAY, ChunkDone, LayerDone, WeightTried
from rso_engine.training import RSOTrainer
from rso_gui.live.lessons import parse_lesson
from rso_gui.recorder import HashSink, RecordOptions

WAIT = 60_000


def lesson_of(config, *steps, **top):
    return parse_lesson({"title": "test lesson", "steps": list(steps), **top}, config)


def step(do, **more):
    return {"title": f"do {do}", "caption": f"this step does {do}", "do": do, **more}


def wait_done(qtbot, w, index):
    p = w.lessons
    qtbot.waitUntil(lambda: p.index == index and p.phase == "done", timeout=WAIT)
    return w.controller.latest()


def open_lesson(make_window, config, *steps, sgd=False, **top):
    w = make_window(config, sgd=sgd)
    w.lessons.open(lesson_of(config, *steps, **top))
    return w


def headless_until(config, stop):
    """A trainer stepped one weight per chunk until ``stop(event)`` is true at a ChunkDone or LayerDone."""
    t = RSOTrainer(config)
    t.set_chunking(1)
    last = None
    for ev in t.events():
        if isinstance(ev, WeightTried):
            last = ev
        if isinstance(ev, (ChunkDone, LayerDone)) and last is not None and stop(ev, last):
            break
    return t, last


def assert_same_weights(params, trainer):
    for name, value in trainer.model.params_numpy().items():
        np.testing.assert_array_equal(params[name], value, err_msg=name)


def test_end_of_layer_stops_exactly_at_layer_done(make_window, qtbot, tiny):
    w = open_lesson(make_window, tiny, step("pause"), step("end-of-layer"))
    snap = wait_done(qtbot, w, 0)
    assert snap.steps == 0 and w.lessons.reason == "paused"
    w.lessons.next()
    snap = wait_done(qtbot, w, 1)
    layer = snap.last.layer  # conv1: TINY sweeps the input layer first, 40 weights
    assert snap.steps == snap.last.layer_size == 40 and snap.last.position == 39 and layer == "conv1"
    up = w.controller.runner.rso.upcoming()
    assert up.layer == "fc" and up.position == 0  # nothing of the next layer was tried
    t, _ = headless_until(tiny, lambda ev, last: isinstance(ev, LayerDone))
    assert t.steps == snap.steps
    assert_same_weights(snap.params, t)
    assert "end of layer conv1" in w.lessons.bar.status.text()


@pytest.mark.parametrize("kind, choice", [("first-minus", MINUS), ("first-rejected", STAY)])
def test_first_choice_conditions_stop_at_that_decision(make_window, qtbot, tiny, kind, choice):
    w = open_lesson(make_window, tiny, step(kind))
    snap = wait_done(qtbot, w, 0)
    assert snap.last.choice == choice and snap.steps == snap.last.step
    t, last = headless_until(tiny, lambda ev, last: isinstance(ev, ChunkDone) and last.choice == choice)
    assert last.step == snap.steps  # the first such decision of the run, not a later one
    assert_same_weights(snap.params, t)


def test_weights_in_slow_motion_and_end_of_cycle(make_window, qtbot, tiny):
    cfg = tiny.replace(train_layers=["conv1"])  # a cycle of 40 weights
    w = open_lesson(make_window, cfg, step({"weights": 3}, speed=40), step("end-of-cycle", speed="full"),
                    step({"accuracy": 0.999}))  # fmt: skip
    snap = wait_done(qtbot, w, 0)
    assert snap.steps == 3
    w.lessons.next()
    snap = wait_done(qtbot, w, 1)
    assert snap.steps == 40 and len(snap.rso_history) == 2 and snap.rso_history[-1].cycle == 1
    w.lessons.next()
    snap = wait_done(qtbot, w, 2)  # never reached: the run ends first, and says so
    assert snap.finished and w.lessons.reason == "the run has finished"


def test_going_back_restores_the_exact_state_and_repeats_the_step(make_window, qtbot, tiny):
    w = open_lesson(make_window, tiny, step({"weights": 5}), step({"weights": 7}), step("pause"), sgd=True)
    starts = {}
    w.lessons.stepStarted.connect(lambda i: starts.setdefault(i, []).append(w.controller.latest()))
    wait_done(qtbot, w, 0)
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    end = wait_done(qtbot, w, 1)
    assert end.steps == 12
    qtbot.keyClick(w, Qt.Key.Key_N)
    wait_done(qtbot, w, 2)
    qtbot.keyClick(w, Qt.Key.Key_PageUp)  # back to step 2: its saved start, then run again
    again = wait_done(qtbot, w, 1)
    first, restored = starts[1]
    assert restored.steps == first.steps == 5
    for name in first.params:
        np.testing.assert_array_equal(restored.params[name], first.params[name], err_msg=name)
    assert again.steps == 12
    for name in end.params:
        np.testing.assert_array_equal(again.params[name], end.params[name], err_msg=name)
    assert [e.cycle for e in again.sgd_history] == [e.cycle for e in end.sgd_history]
    assert w.controller.runner.sgd.steps == again.sgd_steps == end.sgd_steps  # the SGD baseline too
    qtbot.keyClick(w, Qt.Key.Key_P)
    wait_done(qtbot, w, 0)
    assert w.controller.latest().steps == 5


def test_a_step_shows_its_panels_caption_and_table(make_window, qtbot, tiny):
    table = {"title": "course", "columns": ["batch", "acc"], "rows": [[32, 0.81]]}
    w = open_lesson(make_window, tiny, step("pause", panels=["landscape"], table=True,
                                             record="mine"), table=table)  # fmt: skip
    wait_done(qtbot, w, 0)
    assert w.lessons.bar.isVisible() and "this step does pause" in w.lessons.bar.caption.text()
    assert "step 1 of 1" in w.lessons.bar.head.text()
    assert [p for p in w.panels if p.isVisible()] == [w.landscape]
    assert "course" in w.lessons.bar.table.text() and "mine" in w.lessons.bar.table.text()
    w.set_presentation(True)
    qtbot.waitUntil(lambda: w.lessons.bar.caption.font().pointSizeF() > 20, timeout=5_000)


def test_user_takeover_stops_driving(make_window, qtbot, tiny):
    w = open_lesson(make_window, tiny, step({"weights": 400}, speed=5))
    qtbot.waitUntil(lambda: w.lessons.phase == "run", timeout=WAIT)
    qtbot.keyClick(w, Qt.Key.Key_Space)  # the lecturer plays: the lesson lets go
    qtbot.waitUntil(lambda: w.lessons.phase == "manual", timeout=WAIT)
    w.controller.pause()


def record_lesson(make_window, qtbot, tiny):
    w = open_lesson(make_window, tiny, step({"weights": 3}), step("first-minus"))
    wait_done(qtbot, w, 0)
    w.lessons.next()  # somewhere later: the recording starts from the first step anyway
    sink = HashSink()
    assert w.tools.start_recording(RecordOptions(None, fps=1, target="panels", every=2), sink)
    qtbot.waitUntil(lambda: not w.tools.recorder.recording, timeout=WAIT)  # ends with the lesson
    res = w.tools.recorder.result
    assert res.error is None and res.frames == len(sink.hashes) > 6
    assert w.lessons.index == 1 and w.lessons.phase == "done" and not w.lessons.recording
    steps = w.controller.latest().steps
    w.close()
    return sink.hashes, steps


def test_a_lesson_records_deterministically(make_window, qtbot, tiny):
    a, steps_a = record_lesson(make_window, qtbot, tiny)
    b, steps_b = record_lesson(make_window, qtbot, tiny)
    assert len(set(a)) > 2 and a == b and steps_a == steps_b
