"""Random sequences of the window's real actions (issue 12, "keep them out"): hypothesis drives the
window like a person at the keyboard would (transport, stepping, reset, speed, views, zoom, help,
presentation, settings changes, a garbage session file, short waits) and checks after every step that
nothing raised, the state is a known one, at most one engine thread runs and the snapshot is in range;
each example ends by closing its window, which must leave no engine thread and not take long."""

from __future__ import annotations

import time
import traceback

import pytest
import shiboken6
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from PySide6.QtCore import Qt

from rso_engine.vocabulary import RunState
from rso_gui.controller import Controller, running_threads
from rso_gui.window import MainWindow

WAIT = 30_000  # ms; generous for a loaded 2-core machine (never a timing assertion)
CLOSE_BUDGET_S = 10.0  # generous: the old bug (a close blocked ~20 s, then Qt aborted) fails it
STATES = {str(s) for s in RunState}
SHIFT = Qt.KeyboardModifier.ShiftModifier
NONE = Qt.KeyboardModifier.NoModifier


def _first_traceback(exceptions) -> str:
    """The first captured Qt-callback exception with its traceback (to find the callback that raised)."""
    return "".join(traceback.format_exception(*exceptions[0])) if exceptions else ""


def alive(widget) -> bool:
    return widget is not None and shiboken6.isValid(widget)


#: garbage that File › Open may be given: none of these is a session
GARBAGE = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"", b"{", b"[]", b'"session"', b"{}", b'{"format": "rso-session"}', b"PK\x03\x04junk"]),
)


@pytest.mark.slow
def test_random_action_sequences_keep_the_window_sound(qtbot, tiny, tmp_path):
    close_times: list[float] = []

    class WindowActions(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.c = Controller(tiny)
            self.w = MainWindow(self.c, restore=False)
            self.w.resize(1400, 900)
            self.w.show()
            self.files = 0
            self.steps = -1  # the invariants also run once before the first action
            self._capture = qtbot.captureExceptions()  # Qt-callback exceptions, checked after every step
            self.exceptions = self._capture.__enter__()
            qtbot.waitUntil(lambda: self.c.info is not None and self.c.latest() is not None, timeout=WAIT)

        # ---------------------------------------------------------------- helpers
        def press(self, key, modifier=NONE):
            w = self.w
            if not w.isActiveWindow():  # a dialog or message box took the focus: shortcuts go to it
                w.activateWindow()
                qtbot.waitUntil(w.isActiveWindow, timeout=WAIT)
            qtbot.keyClick(w, key, modifier)

        # ---------------------------------------------------------------- rules: the window's actions
        @rule()
        def play_pause(self):
            self.press(Qt.Key.Key_Space)

        @rule()
        def step_weight(self):
            self.press(Qt.Key.Key_Right)

        @rule()
        def step_layer(self):
            self.press(Qt.Key.Key_Right, SHIFT)

        @rule()
        def reset(self):
            self.press(Qt.Key.Key_R)

        @rule(key=st.sampled_from([Qt.Key.Key_S, Qt.Key.Key_F]))
        def speed(self, key):
            self.press(key)

        @rule(key=st.sampled_from([Qt.Key.Key_D, Qt.Key.Key_X]))
        def view(self, key):
            self.press(key)

        @rule(key=st.sampled_from([Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3, Qt.Key.Key_4, Qt.Key.Key_0]))
        def zoom(self, key):
            self.press(key)

        @rule()
        def help_then_escape(self):
            w = self.w
            self.press(Qt.Key.Key_F1)
            qtbot.waitUntil(lambda: alive(getattr(w, "help_dialog", None)) and w.help_dialog.isVisible(),
                            timeout=WAIT)  # fmt: skip
            dlg = w.help_dialog
            dlg.activateWindow()  # as the window manager leaves it: Escape then goes to the dialog
            qtbot.waitUntil(dlg.isActiveWindow, timeout=WAIT)
            qtbot.keyClick(dlg, Qt.Key.Key_Escape)
            qtbot.waitUntil(lambda: not (alive(dlg) and dlg.isVisible()), timeout=WAIT)  # deleted on close

        @rule()
        def presentation(self):
            before = self.w.presentation
            self.press(Qt.Key.Key_F5)
            assert self.w.presentation is not before

        @rule(batch=st.integers(8, 32))
        def change_batch(self, batch):
            self.w.controls.batch.setValue(batch)
            self.w.controls.flush()  # the settings debounce, without waiting for it
            assert self.c.config.batch_size == batch

        @rule()
        def switch_model(self):
            combo = self.w.controls.model
            model = "mlp" if combo.currentData() == "oneconv" else "oneconv"
            combo.setCurrentIndex(combo.findData(model))
            self.w.controls.flush()
            assert self.c.config.model == model

        @rule(data=GARBAGE)
        def open_garbage_session(self, data):
            self.files += 1
            path = tmp_path / f"garbage-{id(self)}-{self.files}.rsosession"
            path.write_bytes(data)
            tools = self.w.tools
            before = self.c.runner
            assert tools.open_session(path) is False  # a message, not an exception and not a new run
            assert str(path) in tools.last_error or path.name in tools.last_error, tools.last_error
            assert self.c.runner is before
            box = tools.message_box
            qtbot.waitUntil(box.isVisible, timeout=WAIT)
            box.close()

        @rule(ms=st.integers(20, 200))
        def wait(self, ms):
            qtbot.wait(ms)

        @rule()
        def wait_for_the_run(self):
            """As a person would: wait until a restarted run has come up (then a step or play moves it)."""
            c = self.c
            qtbot.waitUntil(lambda: c.latest() is not None and c.state != RunState.PREPARING, timeout=WAIT)

        # ---------------------------------------------------------------- invariants, after every step
        @invariant()
        def nothing_raised(self):
            self.steps += 1
            assert not self.exceptions, "Qt callbacks raised: " + _first_traceback(self.exceptions)

        @invariant()
        def state_is_known(self):
            assert self.c.state in STATES, self.c.state

        @invariant()
        def at_most_one_engine_thread(self):
            n = len(running_threads())
            assert n <= 1, f"{n} engine threads running"

        @invariant()
        def snapshot_in_range(self):
            snap = self.c.latest()
            if snap is not None:
                total = self.c.config.cycles * snap.weights_per_cycle
                assert 0 <= snap.steps <= total, (snap.steps, total)

        def teardown(self):
            snap = self.c.latest()
            try:
                t0 = time.perf_counter()
                self.w.close()
                took = time.perf_counter() - t0
                close_times.append(took)
                print(f"{self.steps} actions, {snap.steps if snap else '-'} weights tried; close took {took:.3f} s")
                left = running_threads()
                assert not left, f"close left {len(left)} engine thread(s) running"
                assert self.c.state == RunState.STOPPED
                assert took < CLOSE_BUDGET_S, f"close took {took:.1f} s"
            finally:
                self._capture.__exit__(None, None, None)
                self.w.deleteLater()
                qtbot.wait(1)
            assert not self.exceptions, "Qt callbacks raised: " + _first_traceback(self.exceptions)

    run_state_machine_as_test(
        WindowActions,
        settings=settings(
            max_examples=8,
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    print(f"{len(close_times)} windows closed; slowest close {max(close_times):.3f} s")
