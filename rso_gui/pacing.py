"""Frame pacing and the measured speed: how often the window draws, and how fast the run goes.

Qt-free. :class:`FramePacer` decides on each timer tick whether a new snapshot is drawn: always when the
run is still or in slow motion, at full speed only while drawing stays within a share of one core
(:data:`FRAME_CPU_BUDGET`) — but at least :data:`MIN_FPS` times a second. :class:`RateMeter` turns the
snapshots' (wall time, weights tried) into the weights-per-second figure of the status line.
"""

from __future__ import annotations

import time
from collections import deque

FPS = 30
#: at full speed the views may use at most this share of one core (measured on the GUI thread); above it,
#: new snapshots are drawn less often (but at least MIN_FPS times a second). The engine shares the GIL
#: with the GUI thread, so every millisecond spent drawing is one the engine may wait for.
FRAME_CPU_BUDGET = 0.2
MIN_FPS = 10


class FramePacer:
    """The window timer's bookkeeping: tick times, the GUI thread's CPU time, the frames drawn."""

    def __init__(self, fps: int = FPS, budget: float = FRAME_CPU_BUDGET, min_fps: float = MIN_FPS):
        self.budget = budget
        self.min_fps = min_fps
        self.frame_times: deque[float] = deque(maxlen=600)  # perf_counter() of each timer tick
        self.frames_drawn = 0  # snapshots drawn so far
        self._cpu_marks: deque[tuple[float, float]] = deque(maxlen=2 * fps)  # (wall, GUI thread CPU) per tick
        self._last_draw = 0.0

    def tick(self) -> float:
        """Record one timer tick (its wall time and the GUI thread's CPU time so far); returns the time."""
        now = time.perf_counter()
        self.frame_times.append(now)
        self._cpu_marks.append((now, time.thread_time()))
        return now

    def may_draw(self, now: float, still: bool) -> bool:
        """Draw a new snapshot at ``now``? Always when ``still`` (the run is not running, or runs in slow
        motion); at speed when the last draw is 1/``min_fps`` ago or the GUI thread is within its budget."""
        if still or len(self._cpu_marks) < 2:
            return True
        if now - self._last_draw >= 1.0 / self.min_fps:
            return True
        (t0, c0), (t1, c1) = self._cpu_marks[0], self._cpu_marks[-1]
        return t1 - t0 <= 0 or (c1 - c0) / (t1 - t0) <= self.budget

    def drew(self, now: float) -> None:
        """Note that a snapshot was drawn at ``now``."""
        self._last_draw = now
        self.frames_drawn += 1


class RateMeter:
    """Weights tried per second, from the snapshots' (wall time, steps) of about the last ``span`` seconds."""

    def __init__(self, span: float = 1.5, min_span: float = 0.3):
        self.span = span
        self.min_span = min_span
        self._marks: deque[tuple[float, int]] = deque(maxlen=90)

    def clear(self) -> None:
        """Forget the marks (after a reset, new settings or a new speed)."""
        self._marks.clear()

    def add(self, wall: float, steps: int) -> float | None:
        """Add one snapshot's mark; returns the rate, or None while the marks span under ``min_span`` s
        (or the steps went back, as after a restart)."""
        self._marks.append((wall, steps))
        while len(self._marks) > 2 and self._marks[-1][0] - self._marks[0][0] > self.span:
            self._marks.popleft()
        (t0, s0), (t1, s1) = self._marks[0], self._marks[-1]
        if t1 - t0 > self.min_span and s1 >= s0:
            return (s1 - s0) / (t1 - t0)
        return None
