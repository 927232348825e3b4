"""Recording the window (or one panel) to a video, with a visible "● REC" indicator.

Frames are grabbed on the GUI thread (``widget.grab()``) and handed to a writer thread through a bounded
queue, so encoding never stalls the window or the engine. Two modes:

- **real time** (``every=0``): a timer grabs ``fps`` frames a second of whatever the window shows; when
  the writer falls behind, frames are dropped (and counted) instead of waiting.
- **deterministic** (``every=k``): the recorder drives the run itself, ``k`` weights at a time
  (:meth:`Runner.step_weight`), and grabs one frame after each step, whatever the wall time; nothing is
  dropped. A seeded run recorded twice gives the same frames (record a panel, or ``"panels"``: the
  window's status bar also shows the measured speed, which depends on the machine).

Every frame, the first included, goes through :func:`fit_frame` to one size fixed when the recording starts:
the first grab's size rounded down to even sides (:func:`even_size`; H.264 in yuv420p needs even sides,
libx264 pads to its 16-pixel macroblocks itself, so no more is cut). A frame of the start size loses at most
its last odd column and row; after a resize, a larger frame is scaled down to fit (aspect kept) and a smaller
one is centred on black, so the encoder never sees another size.

Sinks: :class:`Mp4Sink` (H.264 via the ffmpeg binary that ``imageio_ffmpeg`` ships), :class:`HashSink`
(SHA-256 of each raw frame, for tests) and :class:`PngSink` (one PNG per frame). A sink may have
``discard()``: the recorder calls it instead of ``close()`` when nothing was written or writing failed, so
no empty or broken file is left (an :class:`Mp4Sink` writes ``NAME.part`` and renames it only when ffmpeg
has finished without error).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QWidget

from rso_engine.vocabulary import RunState

from .video_sinks import HashSink, Mp4Sink, PngSink, RecordingError, even_size, fit_frame, image_to_rgb

REALTIME_QUEUE = 32  # frames waiting for the writer before new ones are dropped (real-time mode)
DETERMINISTIC_QUEUE = 8  # ... before the GUI thread waits for the writer (deterministic mode)
TARGETS_FIXED = ("window", "panels")


@dataclass
class RecordOptions:
    """What to record: ``target`` "window", "panels" (the four panels) or a panel title; ``every`` 0 for
    real time, else a frame every ``every`` weights (deterministic); ``max_frames`` stops by itself."""

    path: str | None = None
    fps: float = 15.0
    target: str = "window"
    every: int = 0
    max_frames: int | None = None


@dataclass
class RecordResult:
    path: str | None  # the file written; None when nothing was (no frame, or an error)
    frames: int  # written
    dropped: int
    size: tuple[int, int]  # (width, height)
    error: str | None = None


# ------------------------------------------------------------------------------------------ recorder
def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RecordingError) else f"{type(exc).__name__}: {exc}"


class Recorder(QObject):
    """Records ``window`` (a MainWindow) on command: ``start(options, sink=None)``, ``stop()``."""

    started = Signal()
    stopped = Signal(object)  # RecordResult

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.options = RecordOptions()
        self.sink = None
        self.result: RecordResult | None = None
        self.frames = 0  # handed to the writer
        self.dropped = 0
        self.size = (0, 0)
        self._queue: queue.Queue | None = None
        self._writer: threading.Thread | None = None
        self._writer_error: str | None = None
        self._written = 0
        self._t0 = 0.0
        self._target_steps = 0
        self._title = ""
        self._window_timer = False
        self._drawn = None
        self._layout: tuple = ()
        # who moves a deterministic recording on between frames: None steps ``every`` weights; a lesson sets
        # advance(snapshot, every) -> the weights the next frame waits for, or None to stop (rso_gui/lessons.py)
        self.advance = None
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.indicator = QLabel("")
        self.indicator.setObjectName("recIndicator")
        self.indicator.setStyleSheet("color: #e0202a; font-weight: bold;")
        self.indicator.setToolTip("recording (Ctrl+R stops)")
        self.indicator.setFont(window.statusBar().font())
        self.indicator.hide()
        window.statusBar().addPermanentWidget(self.indicator)

    # ------------------------------------------------------------------ commands
    @property
    def recording(self) -> bool:
        return self._queue is not None

    def targets(self) -> list[str]:
        return [*TARGETS_FIXED, *(p.title for p in self.window.export_targets())]

    def target_widget(self, target: str) -> QWidget:
        w = self.window
        if target == "window":
            return w
        if target == "panels":
            return w.centralWidget()
        for p in w.export_targets():
            if p.title == target:
                return p
        raise ValueError(f"unknown recording target {target!r}; one of {', '.join(self.targets())}")

    def start(self, options: RecordOptions, sink=None) -> None:
        """Start recording (to ``sink``, default an :class:`Mp4Sink` at ``options.path``)."""
        if self.recording:
            raise RuntimeError("already recording")
        if options.fps <= 0:
            raise ValueError("the frame rate must be positive")
        widget = self.target_widget(options.target)
        if sink is None:
            if not options.path:
                raise ValueError("no file to record to")
            sink = Mp4Sink(options.path, options.fps)
        self.options, self.sink = options, sink
        self.frames = self.dropped = self._written = 0
        self._writer_error = None
        self.result = None
        first = image_to_rgb(widget.grab().toImage())
        self.size = even_size(first.shape[1], first.shape[0])  # every frame is made this size (fit_frame)
        sink.open(self.size)  # errors (no ffmpeg, unwritable folder) surface here, before anything runs
        deterministic = options.every > 0
        self._queue = queue.Queue(DETERMINISTIC_QUEUE if deterministic else REALTIME_QUEUE)
        self._writer = threading.Thread(target=self._write_loop, name="rso-recorder", daemon=True)
        self._writer.start()
        self._t0 = time.monotonic()
        self._title = self.window.windowTitle()
        self.indicator.show()
        self._show_indicator()
        self._window_timer = False
        if deterministic:
            # only the recorder draws while it steps the run: the panels keep state between frames (axis
            # ranges), so which in-between snapshots the window's own timer happened to draw would show
            self._window_timer = self.window.timer.isActive()
            self.window.timer.stop()
            self.window.controller.pause()
            self._drawn = None
            self._layout = ()
            self._target_steps = -1  # first: wait until paused, grab the state as it is
            self.timer.setInterval(5)
        else:
            self._push(fit_frame(first, self.size))
            self.timer.setInterval(max(1, round(1000 / options.fps)))
        self.timer.start()
        self.started.emit()

    def stop(self) -> RecordResult | None:
        """Stop, wait for the writer to finish the file, and return what was written."""
        if not self.recording:
            return self.result
        self.timer.stop()
        if self._window_timer:
            self._window_timer = False
            self.window.timer.start()
        q, self._queue = self._queue, None
        q.put(None)
        self._writer.join()
        self._writer = None
        discard = getattr(self.sink, "discard", None)
        try:
            if discard is not None and (self._writer_error is not None or self._written == 0):
                discard()  # nothing (or a broken stream) was written: leave no file
            else:
                self.sink.close()
        except Exception as exc:  # an encoder that failed at the end
            self._writer_error = self._writer_error or _describe(exc)
        self.indicator.hide()
        self.window.setWindowTitle(self._title)
        saved = None
        if self._written and self._writer_error is None:
            saved = str(self.sink.saved) if getattr(self.sink, "saved", None) else self.options.path
        self.result = RecordResult(saved, self._written, self.dropped, self.size, self._writer_error)
        self.stopped.emit(self.result)
        return self.result

    # ------------------------------------------------------------------ frames
    def _write_loop(self) -> None:
        q = self._queue
        while True:
            frame = q.get()
            if frame is None:
                return
            if self._writer_error is not None:
                continue
            try:
                self.sink.write(frame)
                self._written += 1
            except Exception as exc:  # e.g. ffmpeg died: stop writing, report at stop()
                self._writer_error = _describe(exc)

    def _grab(self) -> np.ndarray:
        widget = self.target_widget(self.options.target)
        return fit_frame(image_to_rgb(widget.grab().toImage()), self.size)

    def _push(self, frame: np.ndarray) -> None:
        q = self._queue
        if self.options.every > 0:
            q.put(frame)  # deterministic: never drop (the run waits for the recorder anyway)
        else:
            try:
                q.put_nowait(frame)
            except queue.Full:
                self.dropped += 1
                return
        self.frames += 1
        self._show_indicator()

    def _show_indicator(self) -> None:
        # the time shown is the video's own time, so that a deterministic recording shows the same text
        secs = int(self.frames / self.options.fps)
        text = f"● REC {secs // 60:02d}:{secs % 60:02d}"
        if self.dropped:
            text += f" ({self.dropped} dropped)"
        self.indicator.setText(text)
        self.window.setWindowTitle(f"● REC — {self._title}")

    def _tick(self) -> None:
        if not self.recording:
            return
        if self._writer_error is not None:
            self.stop()
            return
        if self.options.every > 0:
            self._tick_deterministic()
        else:
            self._push(self._grab())
        if self.recording and self.options.max_frames is not None and self.frames >= self.options.max_frames:
            self.stop()

    def _tick_deterministic(self) -> None:
        c = self.window.controller
        r = c.runner
        if self._drawn is not None:
            # the snapshot was drawn on the last tick; the event loop has since laid out what its texts
            # changed, so the frame does not depend on whether the window had drawn it before. Until the
            # layout has stopped moving (a window just shown settles over a few ticks) draw it again.
            QCoreApplication.sendPostedEvents()
            layout = self._layout_signature()
            if layout != self._layout:
                self._layout = layout
                self.window.refresh()
                return
            snap, self._drawn = self._drawn, None
            self._push(self._grab())
            if snap.finished or (self.options.max_frames is not None and self.frames >= self.options.max_frames):
                self.stop()
                return
            if self.advance is not None:
                target = self.advance(snap, self.options.every)
                if target is None:
                    self.stop()
                else:
                    self._target_steps = target
                return
            self._target_steps = snap.steps + self.options.every
            r.step_weight(self.options.every)
            return
        snap = c.latest()
        if r is None or snap is None or r.mode != "pause" or snap.state == RunState.RUNNING:
            return  # still stepping (or preparing)
        if snap.steps < self._target_steps and not snap.finished:
            return
        self.window.refresh()  # draw exactly this snapshot now
        QCoreApplication.sendPostedEvents()
        self._drawn = snap
        self._layout = self._layout_signature()

    def _layout_signature(self) -> tuple:
        """Where every widget of the recorded target sits, to tell when the layout has settled."""
        widget = self.target_widget(self.options.target)
        return tuple(w.geometry().getRect() for w in [widget, *widget.findChildren(QWidget)] if w.isVisible())


__all__ = [
    "HashSink",
    "Mp4Sink",
    "PngSink",
    "RecordOptions",
    "RecordResult",
    "Recorder",
    "RecordingError",
    "even_size",
    "fit_frame",
    "image_to_rgb",
]
