"""The engine loop the GUI runs in its background thread: RSO and the SGD baseline side by side.

No Qt in here: :class:`Runner` is a plain object whose :meth:`Runner.run` is the body of the worker
thread and whose command methods (:meth:`play`, :meth:`pause`, :meth:`step_weight`, ...) may be called
from any thread. The controller (``rso_gui/controller.py``) wraps it in a QThread and turns its
callbacks into signals.

How it keeps the window smooth and the engine fast:

- Events are consumed in *bursts* that end where the trainer says its state is exact: a
  :class:`~rso_engine.events.ChunkDone` (the end of a chunk of weights handed to the evaluator), a
  ``LayerDone`` or an ``Evaluated``. Everything published there is consistent. Commands are looked at only
  between bursts (a chunk takes about the trainer's chunk time), so a pause is prompt and lands on an
  exact state; while paused or single-stepping the chunk size is 1, so each step is exactly one weight.
- The loop never draws. At most :data:`PUBLISH_HZ` times a second it stores a
  :class:`~rso_gui.live.snapshot.Snapshot` (copies of the weights, statistics, histories) in
  :attr:`Runner.latest`; the window's timer picks up the newest one. The loss landscape
  (:mod:`rso_gui.live.probes`) is computed here, on the engine's own state and the weight's own
  mini-batch, for every weight in slow motion and at full speed only as often as
  :data:`LANDSCAPE_SHARE` of the time allows.
- The SGD baseline advances between bursts so that it has done the same fraction of its run as RSO:
  both curves grow together and end together.
- What the algorithm knows (which weight is next, its σ, the sweep order) is asked of the trainer;
  nothing here re-derives it.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from rso_engine.backend import to_numpy
from rso_engine.cancel import Cancelled, CancelToken, cancellable
from rso_engine.config import RunConfig
from rso_engine.events import ChunkDone, Evaluated, LayerDone, WeightTried
from rso_engine.session import load_session
from rso_engine.training import RSOTrainer, SGDTrainer, TrainingError
from rso_engine.vocabulary import DEFAULT_LANDSCAPE, LandscapeMode, RunState, landscape_mode

from . import probes
from .info import build_info
from .lanes import DEFAULT_FAIRNESS, LaneSet, LaneSpec, run_lanes
from .loading import error_message, expected_error, load_dataset_stoppable
from .snapshot import TRACE_EMPTY, TRACE_LEN, CurveView, LayerStats, RunInfo, SliceView, Snapshot

# what the loop is asked to do
PAUSE, PLAY, STEP_WEIGHT, STEP_LAYER = "pause", "play", "step_weight", "step_layer"

PUBLISH_HZ = 60.0  # at full speed, snapshots are stored at most this often
SLOW_RATE = 20.0  # at or below this many weights/s every weight is shown, each with its landscape
LANDSCAPE_SHARE = 0.05  # at full speed the landscape may take at most this share of the time...
LANDSCAPE_MAX_HZ = 10.0  # ...and is computed at most this often


# ------------------------------------------------------------------------------------------ the runner
class Runner:
    """Runs one RSO run (and its SGD baseline) on command; see the module docstring.

    ``dataset`` (optional) replaces loading ``config.dataset``; ``rate`` limits weights per second
    (None: full speed); ``autoplay`` starts playing as soon as the run is ready. Callbacks are called
    from the worker thread: ``on_state(state)``, ``on_error(message)`` (the run stopped), ``on_notice(message)``
    (something failed but the run goes on, e.g. the SGD baseline diverged), ``on_ready(info)``.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        sgd: bool = True,
        dataset=None,
        rate: float | None = None,
        autoplay: bool = False,
        landscape: str = DEFAULT_LANDSCAPE,
        digit: int = 0,
        features: bool = True,
        on_state: Callable[[str], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
        on_ready: Callable[[RunInfo], None] | None = None,
        session: str | None = None,
        lanes: tuple[LaneSpec, ...] = (), fairness: str = DEFAULT_FAIRNESS,  # extra race lanes (lanes.py)
    ):
        self.config = config.validated()
        self.session = session  # a saved session (rso_engine.session) to continue instead of a fresh run
        self._calls: list[tuple[Callable[[], Any], Future]] = []
        self.sgd_enabled = sgd
        self.dataset = dataset
        self._cond = threading.Condition()
        self._mode = PLAY if autoplay else PAUSE
        self._steps_pending = 0
        self._layer_weights = 0  # weights tried since the last command (a layer step needs at least one)
        self._stop = False
        self._cancel = CancelToken()  # stops long engine work (evaluations, cache builds, landscapes) at once
        self._rate = rate
        self._view = {"landscape": landscape_mode(landscape), "digit": int(digit), "features": bool(features)}
        self._view_dirty = False
        self.on_state = on_state or (lambda s: None)
        self.on_error = on_error or (lambda m: None)
        self.on_notice = on_notice or (lambda m: None)
        self.on_ready = on_ready or (lambda i: None)
        self.state = RunState.PREPARING
        self.error: str | None = None
        self.sgd_error: str | None = None  # the SGD baseline failed (RSO goes on without it)
        self.latest: Snapshot | None = None
        # name -> fn(runner), called on this thread at every publish; its result goes to Snapshot.extra[name]
        self.publish_extras: dict[str, Callable[[Runner], Any]] = {}
        self.info: RunInfo | None = None
        self.rso: RSOTrainer | None = None
        self.sgd: SGDTrainer | None = None
        self.lanes = LaneSet(lanes, fairness)
        # counters, for tests and benchmarks
        self.weight_events = 0
        self.bursts = 0
        self.thread_id: int | None = None
        self.landscape_seconds = 0.0
        self.publish_seconds = 0.0
        self._seq = 0
        self._last: WeightTried | None = None
        self._trace = np.full(TRACE_LEN, TRACE_EMPTY, np.int8)
        self._ti = 0
        self._stats: dict[str, LayerStats] = {}
        self._curve: CurveView | None = None
        self._slice: SliceView | None = None
        self._last_publish = 0.0
        self._next_landscape = 0.0
        self._landscape_cost = 0.0
        self._due = 0.0
        self._probe = True

    # ------------------------------------------------------------------ commands (any thread)
    @property
    def mode(self) -> str:
        return self._mode

    @property
    def rate(self) -> float | None:
        return self._rate

    def _command(self, mode: str, steps: int = 0) -> None:
        with self._cond:
            if mode == STEP_WEIGHT:
                self._steps_pending = (self._steps_pending if self._mode == STEP_WEIGHT else 0) + steps
            else:
                self._steps_pending = 0
            self._layer_weights = 0
            self._mode = mode
            self._due = time.monotonic()
            self._cond.notify_all()

    def play(self) -> None:
        self._command(PLAY)

    def pause(self) -> None:
        self._command(PAUSE)

    def step_weight(self, n: int = 1) -> None:
        """Advance exactly ``n`` weights (after finishing the chunk in progress, if playing), then pause."""
        self._command(STEP_WEIGHT, n)

    def step_layer(self) -> None:
        """Run at full speed to the end of the layer being swept, then pause."""
        self._command(STEP_LAYER)

    def set_rate(self, rate: float | None) -> None:
        with self._cond:
            self._rate = None if rate is None or rate <= 0 else float(rate)
            self._due = time.monotonic()
            self._cond.notify_all()

    def set_view(self, **options: Any) -> None:
        """Change what is computed for the views (landscape mode, digit, features); redraws when paused."""
        with self._cond:
            for key, value in options.items():
                if key not in self._view:
                    raise KeyError(key)
                if key == "landscape":
                    value = landscape_mode(value)
                self._view[key] = value
            self._view_dirty = True
            self._next_landscape = 0.0
            self._cond.notify_all()

    def call_between(self, fn: Callable[[], Any]) -> Future:
        """Run ``fn()`` on the worker thread between two bursts (the trainers then are exactly at an event
        boundary, e.g. to save a session); the returned future holds its result or exception."""
        fut: Future = Future()
        with self._cond:
            if self._stop:
                fut.set_exception(RuntimeError("the run has stopped"))
                return fut
            self._calls.append((fn, fut))
            self._cond.notify_all()
        return fut

    def _run_calls(self) -> None:
        with self._cond:
            calls, self._calls = self._calls, []
        for fn, fut in calls:
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as exc:  # handed to the caller
                    fut.set_exception(exc)

    def stop(self) -> None:
        """Ask the loop to end: engine work in progress stops at its next check (well under a second: an
        evaluation chunk, a landscape pass, a chunk of weights) and :meth:`run` returns."""
        with self._cond:
            self._stop = True
            self._cancel.cancel()
            self._cond.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stop

    # ------------------------------------------------------------------ the thread body
    def run(self) -> None:
        self.thread_id = threading.get_native_id()  # for benchmarks that read the thread's CPU time
        try:
            with cancellable(self._cancel):
                self._set_state(RunState.PREPARING)
                if not self._prepare():
                    return
                self._loop()
        except Cancelled:  # stopped while the engine was busy: nothing to report
            pass
        except Exception as exc:  # the engine failed: say so, leave the app usable
            self.error = error_message(exc)
            if not expected_error(exc):
                traceback.print_exc(file=sys.stderr)
            try:
                self._publish(state=RunState.ERROR)
            except Exception:
                pass
            self._set_state(RunState.ERROR)
            self.on_error(self.error)
        finally:
            with self._cond:
                calls, self._calls = self._calls, []
            for _, fut in calls:
                if fut.set_running_or_notify_cancel():
                    fut.set_exception(RuntimeError("the run has stopped"))
            if self.state != RunState.ERROR:
                self._set_state(RunState.STOPPED)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.on_state(state)

    def _prepare(self) -> bool:
        cfg = self.config
        dataset = self.dataset
        if dataset is None:
            dataset = load_dataset_stoppable(cfg.dataset, cfg.data_dir, lambda: self._stop)
        if self._stop or dataset is None:
            return False
        if self.session is not None:
            opened = load_session(self.session, dataset=dataset)
            self.rso, self.sgd = opened.rso, opened.sgd
            self.sgd_enabled = self.sgd is not None
        else:
            self.rso = RSOTrainer(cfg, dataset=dataset)
            if self.sgd_enabled:
                self.sgd = SGDTrainer(cfg.replace(algorithm="sgd"), dataset=dataset)
        self.lanes.prepare(cfg, dataset, opened.lanes if self.session is not None else None)
        fresh = not self.rso.history  # a restored run continues without a first Evaluated(0)
        self._gen = self.rso.events()
        if fresh:
            next(self._gen)  # Evaluated(0)
        self._sgd_gen = None
        if self.sgd is not None:
            self._sgd_gen = self.sgd.events()
            if not self.sgd.history:
                next(self._sgd_gen)
        self.rso.set_chunking(1)
        self.info = build_info(self.rso, self.sgd)
        self._stats = {name: LayerStats() for name, _ in self.info.plan}
        self._rso_total = max(1, cfg.cycles * self.rso.weights_per_cycle)
        self._sgd_total = max(1, cfg.cycles * self.sgd.steps_per_epoch) if self.sgd is not None else 1
        if self._stop:
            return False
        self._publish(landscape=True, state=RunState.PAUSED)
        self.on_ready(self.info)
        return True

    def _loop(self) -> None:
        rso = self.rso
        while not self._stop:
            if self._calls:
                self._run_calls()
            mode = self._mode
            over = rso.finished and self.lanes.finished
            if over or mode == PAUSE:
                self._idle(RunState.FINISHED if over else RunState.PAUSED, mode)
                continue
            self._set_state(RunState.RUNNING)
            if rso.finished:  # the main run is over and other lanes still race
                run_lanes(self)
                continue
            rate = self._rate
            slow = mode == STEP_WEIGHT or (mode == PLAY and rate is not None and rate <= SLOW_RATE)
            if mode == STEP_WEIGHT or slow or self._probe:
                # a new layer can cost 100× more per weight than the last one: one weight first, so the
                # trainer's chunk-size estimate adapts before it hands the evaluator a long chunk
                rso.set_chunking(1)
            elif mode == PLAY and rate is not None:
                rso.set_chunking(max(1, int(rate / 30)))
            else:
                rso.set_chunking()
            kind, n = self._burst()
            self._layer_weights += n
            self.bursts += 1
            self._probe = kind in ("layer", "cycle")
            if kind == "end" or rso.finished:
                self._finish()
                continue
            self._sync_sgd()
            for message in self.lanes.catch_up(rso, stop=lambda m=mode: self._stop or self._mode != m):
                self.on_notice(message)
            step_done = (mode == STEP_WEIGHT and kind == "weight") or (
                # a layer step that starts right at a layer's end (after single steps) runs the next layer
                mode == STEP_LAYER and kind in ("layer", "cycle") and self._layer_weights > 0
            )
            paused_now = self._mode == PAUSE or (
                step_done and (mode == STEP_LAYER or self._steps_pending <= 1) and self._mode == mode
            )
            now = time.monotonic()
            ahead = 0.0
            if mode == PLAY and rate is not None:
                self._due = max(self._due + n / rate, now - 0.25)
                ahead = self._due - now
            landscape = (
                slow or paused_now or now >= self._next_landscape or (ahead > 0 and ahead > 1.5 * self._landscape_cost)
            )
            if slow or paused_now or kind == "cycle" or now - self._last_publish >= 1.0 / PUBLISH_HZ or landscape:
                self._publish(landscape=landscape, state=RunState.PAUSED if paused_now else None)
            if step_done:  # only now, so a test or view that sees the pause also sees its snapshot
                with self._cond:
                    if self._mode == STEP_WEIGHT == mode:
                        self._steps_pending -= 1
                        if self._steps_pending <= 0:
                            self._mode = PAUSE
                    elif self._mode == STEP_LAYER == mode:
                        self._mode = PAUSE
            if ahead > 0:
                with self._cond:
                    if not self._stop and self._mode == mode and self._rate == rate:
                        self._cond.wait(min(ahead, 1.0))

    def _idle(self, state: str, mode: str) -> None:
        last = self.latest
        stale = last is None or last.state != state or last.steps != self.rso.steps
        if self._view_dirty or stale:
            # a pause requested after the burst's snapshot was taken: show the state it landed on, with an
            # exact landscape, before anyone sees the new state
            self._view_dirty = False
            self._publish(landscape=True, state=state)
        self._set_state(state)
        with self._cond:
            if not self._stop and self._mode == mode and not self._view_dirty and not self._calls:
                self._cond.wait(0.5)

    def _burst(self) -> tuple[str, int]:
        """Consume events up to the next exact state; return (kind, weights consumed)."""
        gen = self._gen
        trace = self._trace
        stats = self._stats
        n = 0
        for ev in gen:
            t = type(ev)
            if t is WeightTried:
                n += 1
                trace[self._ti % TRACE_LEN] = ev.choice
                self._ti += 1
                stats[ev.layer].add(ev.choice, ev.position == 0)
                self._last = ev
            elif t is ChunkDone:
                self.weight_events += n
                return "weight", n
            elif t is LayerDone:
                if not ev.ends_cycle:
                    self.weight_events += n
                    return "layer", n
                # the cycle ended: its CycleDone and Evaluated are already computed, take them too
            elif t is Evaluated:
                self.weight_events += n
                return "cycle", n
        self.weight_events += n
        return "end", n

    def _sync_sgd(self, to_end: bool = False) -> None:
        """Advance SGD to the same fraction of its run as RSO (or to its end)."""
        sgd = self.sgd
        if sgd is None or self._sgd_gen is None:
            return
        target = self._sgd_total if to_end else self.rso.steps * self._sgd_total
        scale = 1 if to_end else self._rso_total
        gen = self._sgd_gen
        try:
            while not sgd.finished and sgd.steps * scale < target and not self._stop:
                if next(gen, None) is None:
                    break
            if to_end and not self._stop:
                for _ in gen:  # the last epoch's CycleDone/Evaluated
                    pass
        except TrainingError as exc:  # the baseline diverged: keep its history so far, RSO goes on
            self.sgd_error = error_message(exc)
            self._sgd_gen = None
            self.on_notice(f"The SGD baseline stopped: {self.sgd_error}. RSO goes on.")

    def _finish(self) -> None:
        self._sync_sgd(to_end=True)
        if not self.lanes.finished:  # the other lanes finish their race first (lanes.run_lanes)
            return
        self._publish(landscape=True, state=RunState.FINISHED)  # first: whoever sees the pause sees this
        with self._cond:
            self._mode = PAUSE
        self._set_state(RunState.FINISHED)

    # ------------------------------------------------------------------ what the views get
    def _publish(self, landscape: bool = False, state: str | None = None) -> None:
        rso = self.rso
        if rso is None:
            return
        t0 = time.perf_counter()
        extra: dict[str, Any] = {}
        if landscape:
            mode = self._view["landscape"]
            try:
                if mode == LandscapeMode.ONE_D:
                    self._curve, self._slice = probes.curve_view(rso, self._last, self._curve), None
                else:
                    self._slice, self._curve = probes.slice_view(rso, self._last, mode), None
            except Exception as exc:  # a view's extra computation must not stop training
                self._curve = self._slice = None
                extra["landscape_error"] = error_message(exc)
            cost = time.perf_counter() - t0
            self.landscape_seconds += cost
            self._landscape_cost = 0.7 * self._landscape_cost + 0.3 * cost if self._landscape_cost else cost
            now = time.monotonic()
            self._next_landscape = now + max(cost / LANDSCAPE_SHARE, 1.0 / LANDSCAPE_MAX_HZ)
        ev = self._last
        cycle, cycle_weights = rso.cycle_progress(ev.step if ev is not None else None)
        if ev is not None:
            current = (ev.layer, ev.param, ev.index, ev.position, ev.layer_size)
        else:
            up = rso.upcoming()
            current = (up.layer, up.param, up.index, up.position, up.layer_size) if up is not None else None
        digit, label, pred, maps = probes.feature_maps(rso, self._view["digit"], self._view["features"])
        for name, fn in list(self.publish_extras.items()):
            try:
                extra[name] = fn(self)
            except Exception as exc:  # a view's extra computation must not stop training
                extra[f"{name}_error"] = error_message(exc)
        k = self._ti % TRACE_LEN
        trace = np.concatenate([self._trace[k:], self._trace[:k]])
        self._seq += 1
        self.latest = Snapshot(
            seq=self._seq,
            wall=time.monotonic(),
            state=state or self.state,
            steps=rso.steps,
            cycle=cycle,
            weights_per_cycle=rso.weights_per_cycle,
            current=current,
            last=ev,
            params={name: np.array(to_numpy(v)) for name, v in rso.model.params.items()},
            cycle_weights=cycle_weights,
            curve=self._curve,
            slice2d=self._slice,
            digit=digit,
            digit_label=label,
            digit_prediction=pred,
            feature_maps=maps,
            trace=trace,
            layer_stats={k: LayerStats(**vars(v)) for k, v in self._stats.items()},
            rso_history=tuple(rso.history),
            sgd_history=tuple(self.sgd.history) if self.sgd is not None else (),
            sgd_steps=self.sgd.steps if self.sgd is not None else 0,
            rso_seconds=rso.seconds,
            finished=rso.finished,
            extra=extra,
            lanes=self.lanes.views(next(iter(self.info.filter_params), None)) if self.info is not None else (),
            algorithm=probes.algorithm_view(rso, ev, self._mode in (PAUSE, STEP_WEIGHT) or (
                self._mode == PLAY and self._rate is not None and self._rate <= SLOW_RATE)),
        )
        self._last_publish = time.monotonic()
        self.publish_seconds += time.perf_counter() - t0
