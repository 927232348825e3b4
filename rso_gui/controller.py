"""The controller: owns the engine thread and turns the window's requests into commands.

API (what the window, tests and later tools such as a recorder or presets use)::

    c = Controller(config)          # nothing runs until reset()/start()
    c.reset()                       # a fresh run, prepared in the background and paused at cycle 0
    c.start(); c.pause(); c.toggle()
    c.step_weight(); c.step_layer()
    c.set_speed(5)                  # weights per second; None = full speed
    c.apply_config(c.config.replace(model="twoconv"))   # restarts with the new settings
    c.set_lanes([LaneSpec("RSO batch 256", cfg)], "samples")   # race lanes (live/lanes.py); restarts
    c.latest()                      # the newest Snapshot (pull it on a timer; never per event)
    c.shutdown()                    # stop and join every engine thread (closeEvent calls it)

One :class:`~rso_gui.live.runner.Runner` runs per :class:`EngineThread`, and one engine thread at a time. A reset
or a change of settings asks the old runner to stop (its engine work stops at the next check, well under a
second) and starts the new one as soon as the old thread has ended; the window never waits for it.
"""

from __future__ import annotations

import weakref

from PySide6.QtCore import QObject, QThread, Signal

from rso_engine.config import RunConfig
from rso_engine.vocabulary import DEFAULT_LANDSCAPE, RunState

from .live.lanes import DEFAULT_FAIRNESS, MAX_LANES, LaneSpec, check_fairness, max_lanes
from .live.runner import PAUSE, PLAY, STEP_LAYER, STEP_WEIGHT, Runner
from .live.snapshot import RunInfo, Snapshot

#: every EngineThread ever made, so tests can fail when one is left running
_ALL_THREADS: weakref.WeakSet[EngineThread] = weakref.WeakSet()

#: the GUI's default run: small and quick on the bundled sample, so the demo moves at once
DEFAULT_CONFIG = RunConfig(model="oneconv", dataset="mnist-sample", batch_size=64, cycles=10, seed=0)


def running_threads() -> list[EngineThread]:
    """Engine threads that are still running (anywhere in the process)."""
    out = []
    for t in list(_ALL_THREADS):
        try:
            if t.isRunning():
                out.append(t)
        except RuntimeError:  # the C++ object is gone: it had finished
            pass
    return out


class EngineThread(QThread):
    """A QThread whose body is :meth:`Runner.run`; the runner's callbacks become queued signals."""

    stateChanged = Signal(str)
    errorOccurred = Signal(str)
    noticed = Signal(str)
    ready = Signal(object)

    def __init__(self, runner: Runner, parent: QObject | None = None):
        super().__init__(parent)
        self.runner = runner
        runner.on_state = self.stateChanged.emit
        runner.on_error = self.errorOccurred.emit
        runner.on_notice = self.noticed.emit
        runner.on_ready = self.ready.emit
        self.setObjectName("rso-engine")
        _ALL_THREADS.add(self)

    def run(self) -> None:  # the worker thread
        self.runner.run()


class Controller(QObject):
    """Runs RSO (and the SGD baseline) in a background thread on command; see the module docstring."""

    stateChanged = Signal(str)  # a RunState's value
    errorOccurred = Signal(str)  # a message for people: the run stopped
    noticed = Signal(str)  # a message for people: something failed, the run goes on (a diverging SGD baseline)
    runReady = Signal(object)  # RunInfo of a new run, once its trainers are built
    configChanged = Signal(object)  # RunConfig
    lanesChanged = Signal(object)  # tuple[LaneSpec, ...] of the race's extra lanes

    def __init__(
        self,
        config: RunConfig | None = None,
        *,
        sgd: bool = True,
        speed: float | None = None,
        dataset=None,
        landscape: str = DEFAULT_LANDSCAPE,
        digit: int = 0,
        features: bool = True,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self._config = (config or DEFAULT_CONFIG).validated()
        self._sgd = sgd
        self._speed = speed
        self._dataset = dataset  # a fixed Dataset (tests, benchmarks) instead of loading config.dataset
        self._view = {"landscape": landscape, "digit": int(digit), "features": bool(features)}
        self._thread: EngineThread | None = None
        self._retired: list[EngineThread] = []
        self._state = RunState.STOPPED
        self._error: str | None = None
        self._lanes: tuple[LaneSpec, ...] = ()
        self._fairness = DEFAULT_FAIRNESS

    # ------------------------------------------------------------------ properties
    @property
    def config(self) -> RunConfig:
        """The settings of the current run."""
        return self._config

    @property
    def lanes(self) -> tuple[LaneSpec, ...]:
        """The race's extra lanes (the main run is lane 1)."""
        return self._lanes

    @property
    def fairness(self) -> str:
        """How the lanes are kept level: a key of ``rso_gui.live.lanes.FAIRNESS``."""
        return self._fairness

    @property
    def sgd_enabled(self) -> bool:
        return self._sgd

    @property
    def speed(self) -> float | None:
        """Weights per second, or None for full speed."""
        return self._speed

    @property
    def runner(self) -> Runner | None:
        return self._thread.runner if self._thread is not None else None

    @property
    def state(self) -> str:
        return self._state

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def info(self) -> RunInfo | None:
        r = self.runner
        return r.info if r is not None else None

    @property
    def playing(self) -> bool:
        """True when the engine is asked to run (playing, or running a layer step)."""
        r = self.runner
        over = (RunState.ERROR, RunState.FINISHED, RunState.STOPPED)
        return r is not None and r.mode in (PLAY, STEP_LAYER) and self._state not in over

    def latest(self) -> Snapshot | None:
        r = self.runner
        return r.latest if r is not None else None

    def view_options(self) -> dict:
        return dict(self._view)

    # ------------------------------------------------------------------ commands
    def reset(self, config: RunConfig | None = None, autoplay: bool = False, session: str | None = None) -> None:
        """Stop the current run (without waiting for it) and prepare a new one, paused unless ``autoplay``;
        with ``session`` (a saved session's path) the new run continues that session instead."""
        if config is not None:
            config = config.validated()
            changed = config != self._config
            self._config = config
            if changed:
                self.configChanged.emit(config)
        self._retire()
        self._error = None
        runner = Runner(
            self._config,
            sgd=self._sgd,
            dataset=self._dataset,
            rate=self._speed,
            autoplay=autoplay,
            session=session,
            lanes=self._lanes,
            fairness=self._fairness,
            **self._view,
        )
        thread = EngineThread(runner, self)
        thread.stateChanged.connect(self._on_state)
        thread.errorOccurred.connect(self._on_error)
        thread.noticed.connect(self._on_notice)
        thread.ready.connect(self._on_ready)
        thread.finished.connect(self._reap)
        self._thread = thread
        self._set_state(RunState.PREPARING)
        self._start_when_alone()

    def open_session(self, path: str, config: RunConfig, sgd: bool, lanes=(), fairness: str | None = None) -> None:
        """Continue the saved session at ``path`` (its run ``config``, with an SGD baseline or not, and its
        race ``lanes``), paused."""
        self._sgd = bool(sgd)
        self._set_lanes(lanes, fairness)
        self.reset(config, session=str(path))

    def set_lanes(self, lanes, fairness: str | None = None) -> None:
        """Race these extra lanes (``LaneSpec``s; at most ``MAX_LANES``) beside the main run, kept level by
        ``fairness`` (None: as it is): the race starts again from the initial weights, playing if it was."""
        self._set_lanes(lanes, fairness)
        self.reset(autoplay=self.playing)

    def _set_lanes(self, lanes, fairness: str | None) -> None:
        lanes = tuple(lanes)
        if len(lanes) > MAX_LANES or not all(isinstance(s, LaneSpec) for s in lanes):
            raise ValueError(f"at most {MAX_LANES} lanes, each a LaneSpec")
        self._fairness = check_fairness(fairness) if fairness is not None else self._fairness
        if lanes != self._lanes:
            self._lanes = lanes
            self.lanesChanged.emit(lanes)

    def apply_config(self, config: RunConfig) -> None:
        """Use new settings: restart the run with them, still playing if it was."""
        self.reset(config, autoplay=self.playing)

    def set_sgd_enabled(self, enabled: bool) -> None:
        if enabled != self._sgd:
            self._sgd = enabled
            if len(self._lanes) > max_lanes(enabled):  # four runs at most: the baseline takes the last lane's place
                dropped = self._lanes[-1]
                self._set_lanes(self._lanes[:-1], None)
                self.noticed.emit(f"Four runs at most: the lane “{dropped.label}” gave way to the SGD baseline.")
            self.reset(autoplay=self.playing)

    def start(self) -> None:
        """Play. A run that is over (finished, failed or not started) is replaced by a fresh one."""
        r = self.runner
        if r is None or self._state in (RunState.ERROR, RunState.STOPPED, RunState.FINISHED) or r.stopping:
            self.reset(autoplay=True)
            return
        r.play()
        self._set_state(RunState.PREPARING if self._state == RunState.PREPARING else RunState.RUNNING)

    def pause(self) -> None:
        r = self.runner
        if r is not None:
            r.pause()

    def toggle(self) -> None:
        """Space: play when paused, pause when playing."""
        if self.playing:
            self.pause()
        else:
            self.start()

    def _steppable(self) -> Runner | None:
        r = self.runner
        if r is None or self._state in (RunState.ERROR, RunState.STOPPED):
            self.reset()
            r = self.runner
        if self._state == RunState.FINISHED:
            return None
        return r

    def step_weight(self) -> None:
        """Try exactly one more weight, then pause (from playing: after the chunk in progress)."""
        r = self._steppable()
        if r is not None:
            r.step_weight()

    def step_layer(self) -> None:
        """Run to the end of the layer being swept, then pause."""
        r = self._steppable()
        if r is not None:
            r.step_layer()

    def set_speed(self, rate: float | None) -> None:
        self._speed = None if rate is None or rate <= 0 else float(rate)
        r = self.runner
        if r is not None:
            r.set_rate(self._speed)

    def set_view_options(self, **options) -> None:
        """landscape (one of vocabulary.LANDSCAPE_MODES), digit (test image index), features (bool)."""
        self._view.update(options)
        r = self.runner
        if r is not None:
            r.set_view(**options)

    def shutdown(self, timeout_ms: int = 5_000) -> bool:
        """Stop every engine thread and wait for them (engine work stops at its next check, well under a
        second); True when all ended in time."""
        self._retire()
        ok = True
        for t in list(self._retired):
            ok = t.wait(timeout_ms) and ok
        self._reap()
        self._set_state(RunState.STOPPED)
        return ok

    def wait_retired(self, timeout_ms: int = 20_000) -> bool:
        """Wait for threads of earlier runs to end (tests)."""
        ok = True
        for t in list(self._retired):
            ok = t.wait(timeout_ms) and ok
        self._reap()
        return ok

    # ------------------------------------------------------------------ internals
    def _retire(self) -> None:
        t = self._thread
        self._thread = None
        if t is None:
            return
        for sig in (t.stateChanged, t.errorOccurred, t.noticed, t.ready):
            try:
                sig.disconnect()
            except (RuntimeError, TypeError):
                pass
        t.runner.stop()
        if t.isRunning():
            self._retired.append(t)
        else:  # finished, or never started (it waited for an older thread): nothing to join
            t.wait()
            t.deleteLater()

    def _reap(self) -> None:
        keep = []
        for t in self._retired:
            if t.isFinished() or not t.isRunning():
                t.wait()
                t.deleteLater()
            else:
                keep.append(t)
        self._retired = keep
        self._start_when_alone()

    def _start_when_alone(self) -> None:
        """Start the current run's thread once every retired one has ended: one engine thread at a time, so
        quick changes of settings never pile up threads that compete for the cores."""
        t = self._thread
        if t is None or t.isRunning() or t.isFinished() or any(r.isRunning() for r in self._retired):
            return
        t.start()

    def _on_state(self, state: str) -> None:
        if self.sender() is not self._thread:  # a late signal of a retired run
            return
        self._set_state(state)

    def _on_ready(self, info: RunInfo) -> None:
        if self.sender() is self._thread:
            self.runReady.emit(info)

    def _on_notice(self, message: str) -> None:
        if self.sender() is self._thread:
            self.noticed.emit(message)

    def _on_error(self, message: str) -> None:
        if self.sender() is not self._thread:
            return
        self._error = message
        self._set_state(RunState.ERROR)
        self.errorOccurred.emit(message)

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.stateChanged.emit(state)


__all__ = [
    "DEFAULT_CONFIG",
    "Controller",
    "EngineThread",
    "PAUSE",
    "PLAY",
    "STEP_LAYER",
    "STEP_WEIGHT",
    "running_threads",
]
