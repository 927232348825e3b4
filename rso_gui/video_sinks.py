"""Video frames and where they go: the fixed-size frame rule and the recorder's sinks.

Every frame, the first included, goes through :func:`fit_frame` to one size fixed when a recording starts:
the first grab's size rounded down to even sides (:func:`even_size`; H.264 in yuv420p needs even sides,
libx264 pads to its 16-pixel macroblocks itself, so no more is cut). Sinks: :class:`Mp4Sink` (H.264 via the
ffmpeg binary that ``imageio_ffmpeg`` ships), :class:`HashSink` (SHA-256 of each raw frame, for tests) and
:class:`PngSink` (one PNG per frame). A sink may have ``discard()``, called instead of ``close()`` when
nothing was written or writing failed, so no empty or broken file is left.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

FFMPEG_CLOSE_TIMEOUT = 120.0  # seconds ffmpeg may take to finish the file after the last frame

class RecordingError(RuntimeError):
    """The encoder failed (ffmpeg missing, refused its options, died); the message says why, in a line."""


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
