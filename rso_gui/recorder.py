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

import hashlib
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QWidget

from rso_engine.vocabulary import RunState

REALTIME_QUEUE = 32  # frames waiting for the writer before new ones are dropped (real-time mode)
DETERMINISTIC_QUEUE = 8  # ... before the GUI thread waits for the writer (deterministic mode)
TARGETS_FIXED = ("window", "panels")
FFMPEG_CLOSE_TIMEOUT = 120.0  # seconds ffmpeg may take to finish the file after the last frame


class RecordingError(RuntimeError):
    """The encoder failed (ffmpeg missing, refused its options, died); the message says why, in a line."""


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


# ------------------------------------------------------------------------------------------ frames
def image_to_rgb(img: QImage) -> np.ndarray:
    """A QImage as an (H, W, 3) uint8 array (a copy)."""
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h = img.width(), img.height()
    bpl = img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, : 3 * w].reshape(h, w, 3).copy()


def even_size(width: int, height: int) -> tuple[int, int]:
    """The largest even size that fits (H.264 with yuv420p needs even sides)."""
    return max(2, width - width % 2), max(2, height - height % 2)


def _scaled(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    h, w, _ = rgb.shape
    rgb = np.ascontiguousarray(rgb)
    img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return image_to_rgb(
        img.scaled(width, height, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
    )


def fit_frame(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` as a frame of exactly ``size`` = (width, height), an even size: an odd last column or row is
    cut, then a frame still larger is scaled down to fit (aspect kept) and one smaller is centred on black."""
    w, h = size
    rh, rw = rgb.shape[0] - rgb.shape[0] % 2, rgb.shape[1] - rgb.shape[1] % 2
    rgb = rgb[:rh, :rw]
    if (rw, rh) == (w, h):
        return np.ascontiguousarray(rgb)
    if rw > w or rh > h:
        k = min(w / rw, h / rh)
        rgb = _scaled(rgb, min(w, max(1, round(rw * k))), min(h, max(1, round(rh * k))))
        rh, rw = rgb.shape[:2]
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - rh) // 2, (w - rw) // 2
    out[y : y + rh, x : x + rw] = rgb
    return out


# ------------------------------------------------------------------------------------------ sinks
class Mp4Sink:
    """H.264 (yuv420p, constant quality ``crf``) MP4 through the ffmpeg binary that ``imageio_ffmpeg``
    ships, fed raw RGB frames of the size given to :meth:`open` on its standard input.

    ffmpeg writes ``NAME.part``; :meth:`close` renames it to ``NAME`` once ffmpeg has exited cleanly, and
    :meth:`discard` (or a failure) removes it, so a failed or empty recording leaves no file (and does not
    replace an older one). ffmpeg's messages are kept and raised as a :class:`RecordingError`."""

    def __init__(self, path: str | Path, fps: float, crf: int = 15, codec: str = "libx264"):
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.codec = codec
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self.saved: Path | None = None  # the finished file, after close()
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def partial(self) -> Path:
        return self.path.with_name(self.path.name + ".part")

    def open(self, size: tuple[int, int]) -> None:
        import imageio_ffmpeg  # noqa: PLC0415

        w, h = size
        if w <= 0 or h <= 0 or w % 2 or h % 2:
            raise ValueError(f"an H.264 video needs even sides, not {w}×{h}")
        try:
            exe = imageio_ffmpeg.get_ffmpeg_exe()
        except RuntimeError as exc:
            raise RecordingError(f"no ffmpeg to encode with: {exc}") from exc
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fps = Fraction(self.fps).limit_denominator(1001)
        cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
        cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0", "-an"]
        cmd += ["-c:v", self.codec, "-pix_fmt", "yuv420p", "-crf", str(self.crf), "-movflags", "+faststart"]
        cmd += ["-f", "mp4", str(self.partial)]
        self._log = tempfile.TemporaryFile()
        # its own process group: a Ctrl+C in the terminal stops the app (which finishes the file), not ffmpeg
        group = {"creationflags": 0x200} if sys.platform.startswith("win") else {"start_new_session": True}
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log, **group
            )
        except OSError as exc:
            self._log.close()
            raise RecordingError(f"cannot start ffmpeg ({exe}): {exc}") from exc
        self.size, self.frames, self.saved = (w, h), 0, None

    def write(self, frame: np.ndarray) -> None:
        w, h = self.size
        if frame.shape != (h, w, 3) or frame.dtype != np.uint8:
            raise ValueError(f"a frame of {frame.shape} {frame.dtype} in a {w}×{h} RGB video")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except (OSError, ValueError) as exc:  # a broken pipe: ffmpeg has exited (its messages say why)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
            why = getattr(exc, "strerror", None) or exc
            raise RecordingError(self._failure(f"ffmpeg stopped while recording ({why})")) from None
        self.frames += 1

    def close(self) -> None:
        """Finish the file (no frame written: :meth:`discard`); a :class:`RecordingError` if ffmpeg failed."""
        if self._proc is None:
            return
        if self.frames == 0:
            self.discard()
            return
        p = self._proc
        try:
            p.stdin.close()
        except OSError:
            pass
        try:
            rc = p.wait(FFMPEG_CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.discard()
            raise RecordingError(f"ffmpeg did not finish the file within {FFMPEG_CLOSE_TIMEOUT:.0f} s") from None
        if rc != 0:
            message = self._failure(f"ffmpeg failed (exit status {rc})")
            self.discard()
            raise RecordingError(message)
        try:
            os.replace(self.partial, self.path)
        except OSError as exc:
            self.discard()
            raise RecordingError(f"cannot save {self.path}: {exc}") from None
        self.saved = self.path
        self._finish()

    def discard(self) -> None:
        """Stop ffmpeg and remove the partial file; nothing is saved."""
        p = self._proc
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()
        self.partial.unlink(missing_ok=True)
        self.saved = None
        self._finish()

    def _finish(self) -> None:
        if self._proc is not None and self._proc.stdin is not None and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _failure(self, what: str) -> str:
        """``what`` and ffmpeg's first messages (the cause comes first), as one line."""
        text = ""
        if self._log is not None:
            self._log.seek(0)
            text = self._log.read(20_000).decode("utf-8", "replace")
        lines: list[str] = []
        for line in text.splitlines():
            line = re.sub(r"^(\[[^]]*@ 0x[0-9a-f]+\] )+", "", line.strip())  # "[vost#0:0 @ 0x55…] "
            if line and line not in lines:
                lines.append(line)
        tail = " / ".join(lines[:3])
        if len(tail) > 400:
            tail = tail[:400] + "…"
        return f"{what}: {tail}" if tail else what


class HashSink:
    """Keeps the SHA-256 of each frame's raw RGB bytes (and the first frame), for tests."""

    def __init__(self):
        self.hashes: list[str] = []
        self.first: np.ndarray | None = None
        self.size: tuple[int, int] | None = None

    def open(self, size: tuple[int, int]) -> None:
        self.size = size

    def write(self, frame: np.ndarray) -> None:
        if self.first is None:
            self.first = frame.copy()
        self.hashes.append(hashlib.sha256(frame.tobytes()).hexdigest())

    def close(self) -> None:
        pass


class PngSink:
    """One PNG per frame in ``folder`` (frame-00000.png, ...)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.n = 0

    def open(self, size: tuple[int, int]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, frame: np.ndarray) -> None:
        h, w, _ = frame.shape
        img = QImage(frame.tobytes(), w, h, 3 * w, QImage.Format.Format_RGB888)
        img.save(str(self.folder / f"frame-{self.n:05d}.png"))
        self.n += 1

    def close(self) -> None:
        pass


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
