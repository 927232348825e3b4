"""Guided lessons in the window: the subtitle bar, PageDown / PageUp (N / P), and driving each step.

A lesson (:mod:`rso_gui.live.lessons` reads and checks its file) is walked through step by step. When a
step begins, its run settings, panels, view options and speed are applied, and the run's exact state is
saved as a session (:mod:`rso_gui.sessions`, in a temporary folder); then the step runs until its
condition, one engine command at a time (:func:`~rso_gui.live.lessons.next_command` says which). Going
back (PageUp, P) reopens the saved session of the step before and runs it again, so the same moment
repeats exactly. PageDown during a step's run starts the next step from where the run is.

A deterministic recording (Record, *frame every k weights*; Ctrl+R) of a window with a lesson open
records the whole lesson from its first step: the recorder asks :meth:`LessonPlayer.advance` what to do
between two frames, each step's caption is held for a reading time, and the recording ends with the lesson.
"""

from __future__ import annotations

import html
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMessageBox, QVBoxLayout

from rso_engine.session import SessionError
from rso_engine.vocabulary import RunState

from .controller import DEFAULT_CONFIG
from .live.lessons import (
    Command,
    Lesson,
    LessonError,
    LessonStep,
    StepStart,
    list_lessons,
    load_lesson,
    next_command,
    result_row,
)
from .live.runner import PAUSE, SLOW_RATE, STEP_LAYER, STEP_WEIGHT
from .sessions import open_window_session, save_window_session
from .tools import hint_speed

POLL_MS = 10  # how often the player looks whether the engine has done what it was asked
WORDS_PER_SECOND = 2.5  # reading speed for how long a recording holds a caption
MIN_HOLD_S = 3.0
RESULT_COLUMNS = ("our run", "time (s)", "images × 10⁶", "test loss", "test accuracy")


def _html_table(title: str, columns, rows) -> str:
    def cell(v):
        return "–" if v is None else html.escape(f"{v:,}" if isinstance(v, int) else str(v))

    head = "".join(f"<th align='left'>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<b>{html.escape(title)}</b><table cellspacing='0' cellpadding='3'><tr>{head}</tr>{body}</table>"


class SubtitleBar(QFrame):
    """The lesson's caption under the panels: step n of N and its title, the caption, what happened."""

    def __init__(self, window):
        super().__init__()
        self.window = window
        self.setObjectName("lessonBar")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 6, 12, 6)
        text = QVBoxLayout()
        self.head = QLabel("")
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.status = QLabel("")
        for w in (self.head, self.caption, self.status):
            w.setTextFormat(Qt.TextFormat.RichText)
            text.addWidget(w)
        lay.addLayout(text, 3)
        self.table = QLabel("")
        self.table.setTextFormat(Qt.TextFormat.RichText)
        self.table.hide()
        lay.addWidget(self.table, 2)
        self._styled: tuple = ()
        self.restyle()
        self.hide()

    def restyle(self) -> None:
        t = self.window.theme
        key = (t.name, t.presentation)
        if key == self._styled:
            return
        self._styled = key
        big = t.presentation
        self.head.setFont(t.font(1.05 if big else 1.0, bold=True))
        self.caption.setFont(t.font(1.25 if big else 1.15))
        self.status.setFont(t.font(0.85 if big else 0.9))
        self.table.setFont(t.font(0.8 if big else 0.9))
        self.setStyleSheet(
            f"QFrame#lessonBar {{ background: {'#101418' if t.dark else '#1d232b'}; border-radius: 4px; }}"
            "QFrame#lessonBar QLabel { color: #ffffff; background: transparent; }"
        )

    def changeEvent(self, event) -> None:  # noqa: N802
        super().changeEvent(event)
        if event.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange, QEvent.Type.PaletteChange):
            QTimer.singleShot(0, self.restyle)  # the window's theme changed (presentation mode, light/dark)

    def show_step(self, lesson: Lesson, index: int) -> None:
        step = lesson.steps[index]
        self.head.setText(f"{html.escape(lesson.title)} · step {index + 1} of {len(lesson.steps)}: "
                          f"{html.escape(step.title)}")  # fmt: skip
        self.caption.setText(html.escape(step.caption))
        self.show()

    def set_status(self, text: str) -> None:
        keys = "PageDown / N: next step · PageUp / P: again from the step before"
        self.status.setText(f"{html.escape(text)} &nbsp;·&nbsp; <i>{keys}</i>" if text else f"<i>{keys}</i>")

    def set_table(self, html_text: str | None) -> None:
        self.table.setText(html_text or "")
        self.table.setVisible(bool(html_text))


class LessonPlayer(QObject):
    """Walks ``window`` through a lesson: :meth:`open`, :meth:`next`, :meth:`previous`, :meth:`go`.

    ``phase``: "idle" (no lesson), "wait" (a step's run is being prepared or restored), "run" (driving the
    step to its condition), "done" (its condition met: paused), "manual" (the user took over: Space, R, …).
    """

    stepStarted = Signal(int)  # a step's state was saved and its run begins
    stepDone = Signal(int, str)  # a step's condition was met: (index, why)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.lesson: Lesson | None = None
        self.index = -1
        self.phase = "idle"
        self.reason = ""
        self.results: list[list] = []
        self.start: StepStart | None = None
        self.recording = False
        self._dir = tempfile.TemporaryDirectory(prefix="rso-lesson-")
        self._saved: dict[int, Path] = {}
        self._need_save = False
        self._runner = None
        self._pending = False
        self._cmd_seq = -1
        self._due = 0.0
        self._hold = 0
        self.bar = SubtitleBar(window)
        central = window.centralWidget()
        if central is not None and central.layout() is not None:
            central.layout().addWidget(self.bar)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._tick)
        window.destroyed.connect(self._dir.cleanup)

    # ------------------------------------------------------------------ commands
    @property
    def step(self) -> LessonStep | None:
        return self.lesson.steps[self.index] if self.lesson is not None and self.index >= 0 else None

    def open(self, lesson: Lesson | str) -> Lesson:
        """Open ``lesson`` (a :class:`Lesson`, a name or a path) at its first step; LessonError if unreadable."""
        if not isinstance(lesson, Lesson):
            lesson = load_lesson(lesson, DEFAULT_CONFIG)
        self.lesson = lesson
        self._saved = {}
        self.results = []
        self.go(0)
        return lesson

    def close_lesson(self) -> None:
        self.timer.stop()
        self.lesson, self.index, self.phase = None, -1, "idle"
        self.bar.hide()

    def next(self) -> None:
        if self.lesson is None:
            self.window.statusBar().showMessage("no lesson is open: pick one in the Lessons menu", 4000)
        elif self.index + 1 < len(self.lesson.steps):
            self.go(self.index + 1)
        else:
            self.window.statusBar().showMessage("that was the lesson's last step (PageUp goes back)", 4000)

    def previous(self) -> None:
        """Back one step (the first: this step again), restored to its saved state and run again."""
        if self.lesson is not None:
            self.go(max(self.index - 1, 0), restore=True)

    def go(self, index: int, restore: bool = False) -> None:
        """Begin step ``index``: from its saved state when ``restore`` (and it has one), else from where the
        run is now, with the step's settings applied."""
        lesson = self.lesson
        if lesson is None or not 0 <= index < len(lesson.steps):
            return
        w, c = self.window, self.window.controller
        c.pause()
        self.index, self._pending, self._hold = index, False, 0
        step = lesson.steps[index]
        self.bar.show_step(lesson, index)
        self.bar.set_status("preparing…")
        self._show_table(step)
        saved = self._saved.get(index) if restore else None
        if saved is not None:
            try:
                open_window_session(w, saved)
                self._need_save = False
            except SessionError as exc:
                QMessageBox.warning(w, "Lesson", f"cannot go back to this step: {exc}")
                saved = None
        if saved is None:
            if step.sgd is not None and step.sgd != c.sgd_enabled:
                w.controls.set_sgd(step.sgd)
                c.set_sgd_enabled(step.sgd)
            if step.config != c.config:
                w.apply_config(step.config)
            self._need_save = True
        self._apply_view(step)
        self.phase = "wait"
        if not self.recording:
            self.timer.start()
            self._tick()

    # ------------------------------------------------------------------ the step's look
    def _apply_view(self, step: LessonStep) -> None:
        w = self.window
        if step.speed is not None:
            hints = {"speed": step.speed, "seconds_per_weight": step.seconds_per_weight}
            _, rate = hint_speed({k: v for k, v in hints.items() if v is not None})
            w.set_speed(rate)
        view = dict(step.view)
        x_axis = view.pop("x_axis", None)
        if view or x_axis:
            w.apply_view_options(x_axis=x_axis, **view)
        if step.panels is not None:
            show_panels(w, step.panels)

    def _show_table(self, step: LessonStep) -> None:
        lesson = self.lesson
        if not step.table or lesson.table is None:
            self.bar.set_table(None)
            return
        t = lesson.table
        ours = _html_table("ours (this window)", RESULT_COLUMNS, self.results) if self.results else ""
        self.bar.set_table(_html_table(t["title"], t["columns"], t["rows"]) + ours)

    # ------------------------------------------------------------------ driving
    def _ready(self) -> bool:
        """The step's run is prepared and paused: save its state (once) and note where it starts."""
        c = self.window.controller
        r = c.runner
        snap = r.latest if r is not None else None
        still = (RunState.PAUSED, RunState.FINISHED)
        if r is None or c.info is None or snap is None or r.mode != PAUSE or r.state not in still:
            return False
        if c.state not in still or snap.state == RunState.RUNNING:  # (the controller hears of it a bit later)
            return False
        if self._need_save:
            path = Path(self._dir.name) / f"step-{self.index + 1}.rso.npz"
            try:
                self._saved[self.index] = save_window_session(self.window, path)
            except SessionError as exc:
                self.bar.set_status(f"(going back to this step will not work: {exc})")
            self._need_save = False
        self.start = StepStart.of(snap)
        self._runner = r
        self.phase = "run"
        self.stepStarted.emit(self.index)
        return True

    def _cap(self) -> tuple[int | None, float]:
        """(most weights per command, seconds between commands) at the window's speed."""
        rate = self.window.controller.speed
        if rate is None:
            return None, 0.0
        cap = max(1, round(rate / 10)) if rate > SLOW_RATE else 1
        return cap, cap / rate

    def _finish(self, reason: str) -> None:
        self.phase, self.reason = "done", reason
        step = self.step
        snap = self.window.controller.latest()
        if step.record and snap is not None:
            self.results = [r for r in self.results if r[0] != step.record] + [result_row(step.record, snap)]
            self._show_table(step)
        self.bar.set_status(f"✓ {reason}")
        self.timer.stop()
        self.stepDone.emit(self.index, reason)

    def _issue(self, cmd: Command, snap) -> None:
        r = self._runner
        self._cmd_seq, self._pending = snap.seq, True
        if cmd.kind == "weights":
            r.step_weight(cmd.n)
        else:
            r.step_layer()

    def _tick(self) -> None:
        if self.recording or self.lesson is None:
            return
        if self.phase == "wait":
            if not self._ready():
                return
            self.bar.set_status(f"this step {self.step.until.describe()}…")
        if self.phase != "run":
            self.timer.stop()
            return
        c = self.window.controller
        r = c.runner
        if r is not self._runner:  # reset, new settings, a session opened: the user took over
            self._manual()
            return
        mode, snap = r.mode, r.latest
        if self._pending:
            if mode != PAUSE or snap.seq <= self._cmd_seq or snap.state == RunState.RUNNING:
                if mode not in (PAUSE, STEP_WEIGHT, STEP_LAYER):
                    self._manual()
                return
            self._pending = False
        if mode != PAUSE:
            self._manual()
            return
        now = time.monotonic()
        if now < self._due:
            return
        cap, delay = self._cap()
        cmd = next_command(self.step.until, self.start, snap, cap)
        if cmd.kind == "done":
            self._finish(cmd.reason)
            return
        self._issue(cmd, snap)
        self._due = now + delay

    def _manual(self) -> None:
        self.phase = "manual"
        self.timer.stop()
        self.bar.set_status("you took over (PageDown goes on with the lesson)")

    # ------------------------------------------------------------------ deterministic recording
    def begin_recording(self) -> bool:
        """A deterministic recording starts: record the lesson from its first step (True if one is open)."""
        if self.lesson is None:
            return False
        self.timer.stop()
        self.recording = True
        self.go(0, restore=True)
        return True

    def end_recording(self) -> None:
        self.recording = False

    def advance(self, snap, every: int) -> int | None:
        """Between two frames of a deterministic recording: move the lesson on by at most ``every`` weights.
        Returns the weights the next frame waits for, or None when the lesson is over."""
        if self.phase == "wait":
            if not self._ready():
                return snap.steps
            self.bar.set_status(f"this step {self.step.until.describe()}…")
            snap = self._runner.latest
        if self.phase == "run":
            if self._runner is not self.window.controller.runner:
                self._manual()
                return None
            cmd = next_command(self.step.until, self.start, snap, every)
            if cmd.kind != "done":
                self._runner = self.window.controller.runner
                self._issue(cmd, snap)
                self._pending = False
                return snap.steps + (cmd.n if cmd.kind == "weights" else 1)
            self._finish(cmd.reason)
            words = len(self.step.caption.split()) + len(cmd.reason.split())
            fps = self.window.tools.recorder.options.fps
            self._hold = round(fps * max(MIN_HOLD_S, words / WORDS_PER_SECOND))
        if self.phase == "done" and self._hold > 0:
            self._hold -= 1
            return snap.steps
        if self.phase == "done" and self.index + 1 < len(self.lesson.steps):
            runner = self.window.controller.runner
            self.go(self.index + 1)
            return snap.steps if self.window.controller.runner is runner else 0
        return None


def show_panels(window, keys) -> None:
    """Show the panels named ``keys`` (landscape, weights, filters, compare, digit, algorithm; the first
    large; in presentation mode only as many as the stage holds on this screen). All of them: the window's
    default layout (every panel; in presentation mode the stage). Panels this window does not have are
    left out."""
    names = [k for k in keys if getattr(window, k, None) is not None]
    if len(names) >= len(window.export_targets()):  # all: the layout for the mode and screen
        window.default_layout() if hasattr(window, "default_layout") else window.zoom(None)
    elif hasattr(window, "show_panels"):
        area = getattr(window, "area", None)
        if getattr(window, "presentation", False) and hasattr(area, "stage_slots"):
            names = names[: max(1, area.stage_slots())]  # a small projector: the first panel, large
        window.show_panels(names)
    else:
        window.zoom(getattr(window, names[0]) if len(names) == 1 else None)


def install_lessons(window) -> LessonPlayer:
    """Give ``window`` its lesson player (``window.lessons``), the lesson keys and the Lessons menu."""
    player = LessonPlayer(window)
    window.lessons = player
    window.add_action("Next lesson step", ["PgDown", "N"], player.next,
                      "Lesson: the next step (a presenter's clicker sends PageDown)")  # fmt: skip
    window.add_action("Previous lesson step", ["PgUp", "P"], player.previous,
                      "Lesson: back one step, restored exactly and run again")  # fmt: skip
    menu = window.menuBar().addMenu("&Lessons")

    def fill() -> None:
        menu.clear()
        for entry in list_lessons():
            act = menu.addAction(f"{entry.title}  ({entry.name})")
            act.triggered.connect(lambda _=False, n=entry.name: open_lesson(window, n))
        menu.addSeparator()
        menu.addAction("Close lesson", player.close_lesson).setEnabled(player.lesson is not None)

    menu.aboutToShow.connect(fill)
    fill()
    tools = getattr(window, "tools", None)
    recorder = getattr(tools, "recorder", None)
    if recorder is not None and hasattr(recorder, "advance"):

        def started() -> None:
            if recorder.options.every > 0 and player.begin_recording():
                recorder.advance = player.advance

        def stopped(_result) -> None:
            recorder.advance = None
            player.end_recording()

        recorder.started.connect(started)
        recorder.stopped.connect(stopped)
    return player


def open_lesson(window, name: str) -> Lesson | None:
    """Open lesson ``name`` in ``window``; a message box says what is wrong with a malformed one."""
    try:
        return window.lessons.open(name)
    except LessonError as exc:
        QMessageBox.warning(window, "Lesson", str(exc))
        return None


__all__ = ["LessonPlayer", "SubtitleBar", "install_lessons", "open_lesson", "show_panels"]
