"""The engine loop the GUI runs in its background thread: RSO and the SGD baseline side by side.

No Qt in here: :class:`Runner` is a plain object whose :meth:`Runner.run` is the body of the worker
thread and whose command methods (:meth:`play`, :meth:`pause`, :meth:`step_weight`, ...) may be called
from any thread. The controller (``controller.py``) wraps it in a QThread and turns its callbacks into
signals.

How it keeps the window smooth and the engine fast:

- Events are consumed in *bursts* that end at a chunk boundary of the RSO trainer (the last weight of a
  chunk handed to the evaluator) or at the end of a layer. Between bursts the trainer's state is exactly
  the state after the last event, so everything published there is consistent. Commands are looked at
  only between bursts (a chunk takes about ``chunk_seconds``), so a pause is prompt and lands on an
  exact state; while paused or single-stepping the chunk size is 1, so each step is exactly one weight.
- The loop never draws. At most :data:`PUBLISH_HZ` times a second it stores a :class:`Snapshot` (copies
  of the weights, statistics, histories) in :attr:`Runner.latest`; the window's timer picks up the newest
  one. The loss landscape is computed here, on the engine's own state and the weight's own mini-batch,
  for every weight in slow motion and at full speed only as often as :data:`LANDSCAPE_SHARE` of the time
  allows.
- The SGD baseline advances between bursts so that it has done the same fraction of its run as RSO:
  both curves grow together and end together.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rso_engine import landscape as L
from rso_engine.backend import to_numpy
from rso_engine.config import RunConfig
from rso_engine.events import CycleDone, Evaluated, LayerDone, WeightTried
from rso_engine.layers import Dense, Flatten, ReLU
from rso_engine.models import MODELS
from rso_engine.training import RSOTrainer, SGDTrainer, sigma_scale

# runner states, as reported to the GUI
PREPARING, PAUSED, RUNNING, FINISHED, ERROR, STOPPED = "preparing", "paused", "running", "finished", "error", "stopped"
# what the loop is asked to do
PAUSE, PLAY, STEP_WEIGHT, STEP_LAYER = "pause", "play", "step_weight", "step_layer"

LANDSCAPE_MODES = ("1d", "2d-weights", "2d-directions")

PUBLISH_HZ = 60.0  # at full speed, snapshots are stored at most this often
SLOW_RATE = 20.0  # at or below this many weights/s every weight is shown, each with its landscape
LANDSCAPE_SHARE = 0.05  # at full speed the landscape may take at most this share of the time...
LANDSCAPE_MAX_HZ = 10.0  # ...and is computed at most this often
CURVE_POINTS = 41
GRID_WEIGHTS = 21  # points per axis of the 2-D slice along two weights
GRID_DIRECTIONS = 13  # ... along two random directions (one full pass per point)
TRACE_LEN = 240  # decisions kept for the decision trace
TRACE_EMPTY = 2  # trace value of a slot not filled yet (choices are -1, 0, 1)

_DATA_CACHE: dict[tuple[str, str | None], Any] = {}
_DATA_LOCK = threading.Lock()


# ------------------------------------------------------------------------------------------ data
@dataclass(frozen=True)
class LayerInfo:
    """One layer of the network for drawing: name, kind, description, parameters, activation shapes."""

    name: str
    kind: str
    description: str
    params: tuple[str, ...]
    in_shape: tuple[int, ...]  # per sample: (C, H, W) or (features,)
    out_shape: tuple[int, ...]


@dataclass(frozen=True)
class RunInfo:
    """What stays fixed during a run: the model's structure, data, backend, sweep plan."""

    config: RunConfig
    model: str
    model_description: str
    dataset: str
    dataset_source: str
    n_train: int
    n_test: int
    classes: tuple[str, ...]
    backend: str
    is_gpu: bool
    evaluator: str
    layers: tuple[LayerInfo, ...]
    plan: tuple[tuple[str, tuple[str, ...]], ...]  # sweep order: (layer name, its searched tensors)
    param_shapes: dict[str, tuple[int, ...]]
    sigma: dict[str, float]  # σ_d of each tensor's layer (before annealing)
    layer_sizes: dict[str, int]  # weights in each layer's sweep
    weights_per_cycle: int
    cycles: int
    sgd: bool
    sgd_steps_per_epoch: int
    dense_inputs: dict[str, tuple[int, ...] | None]  # dense weight -> (C, H, W) of its flattened input
    filter_params: tuple[str, ...]  # tensors the filter panel shows (conv weights, or a first dense layer)

    def layer(self, name: str) -> LayerInfo:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


@dataclass(frozen=True)
class CurveView:
    """The landscape along one weight, with the decision RSO took there (losses as mean per image)."""

    curve: L.Curve
    event: WeightTried | None  # None: the weight about to be tried (no decision yet)
    sigma: float  # σ_d at this cycle (annealed)
    stay_value: float
    exact: bool  # the curve is on the engine's exact state, so it passes through the event's losses

    def mean(self, summed: float) -> float:
        return summed / max(self.curve.batch_size, 1)


@dataclass(frozen=True)
class SliceView:
    """A 2-D slice; ``before`` is where the weights were before the last decision (weights mode)."""

    slice: L.Slice2D
    before: tuple[float, float] | None = None


@dataclass
class LayerStats:
    tried: int = 0  # all cycles
    changed: int = 0
    tried_sweep: int = 0  # the sweep in progress (or the last one)
    changed_sweep: int = 0


@dataclass(frozen=True)
class Snapshot:
    """Everything the views draw, copied out of the engine at one consistent moment."""

    seq: int
    wall: float
    state: str
    steps: int  # weights tried so far
    cycle: int  # cycle in progress (1-based), or the number of cycles when finished
    weights_per_cycle: int
    current: tuple[str, str, tuple[int, ...], int, int] | None  # layer, param, index, position, layer size
    last: WeightTried | None
    params: dict[str, np.ndarray]
    sigma_scale: float
    curve: CurveView | None
    slice2d: SliceView | None
    digit: np.ndarray | None  # (H, W) the chosen test image
    digit_label: int
    digit_prediction: int
    feature_maps: tuple[tuple[str, np.ndarray], ...]  # (layer name, (C, H, W)) after each conv block
    trace: np.ndarray  # int8 (TRACE_LEN,), oldest first; TRACE_EMPTY where not filled
    layer_stats: dict[str, LayerStats]
    rso_history: tuple[Evaluated, ...]
    sgd_history: tuple[Evaluated, ...]
    sgd_steps: int
    rso_seconds: float
    finished: bool
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ helpers
def load_dataset_cached(name: str, data_dir: str | None = None):
    """Load a dataset once per process (the GUI resets often); thread-safe."""
    from rso_engine.data import load_dataset  # noqa: PLC0415

    key = (name, data_dir)
    with _DATA_LOCK:
        if key in _DATA_CACHE:
            return _DATA_CACHE[key]
    ds = load_dataset(name, data_dir=data_dir, progress=False)
    with _DATA_LOCK:
        _DATA_CACHE[key] = ds
    return ds


def error_message(exc: BaseException) -> str:
    """A message for people: the engine's own errors already say what to do; others get their type."""
    if _expected(exc):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: use a smaller batch size, model or dataset"
    return f"{type(exc).__name__}: {exc}"


def _expected(exc: BaseException) -> bool:
    """An error the engine raises on purpose, with a message that needs no traceback."""
    from rso_engine.backend import BackendError  # noqa: PLC0415
    from rso_engine.config import ConfigError  # noqa: PLC0415
    from rso_engine.data import DataError  # noqa: PLC0415
    from rso_engine.training import TrainingError  # noqa: PLC0415

    return isinstance(exc, (DataError, ConfigError, TrainingError, BackendError, ValueError))


def _shapes(model, x) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Per-sample (input, output) shape of every layer for a model-layout input ``x`` of one image."""
    out = []
    P = model.params
    for layer in model.layers:
        in_shape = _per_sample(x)
        x, _ = layer.forward(P, x, True)
        out.append((in_shape, _per_sample(x)))
    return out


def _per_sample(x) -> tuple[int, ...]:
    if x.ndim == 4:  # (C, N, H, W)
        return (int(x.shape[0]), int(x.shape[2]), int(x.shape[3]))
    return tuple(int(s) for s in x.shape[1:])


def build_info(rso: RSOTrainer, sgd: SGDTrainer | None) -> RunInfo:
    model = rso.model
    shapes = _shapes(model, rso.x_test[:, :1])
    layers = []
    dense_inputs: dict[str, tuple[int, ...] | None] = {}
    for i, layer in enumerate(model.layers):
        layers.append(LayerInfo(layer.name, layer.kind, layer.describe(), layer.params, *shapes[i]))
        if isinstance(layer, Dense):
            prev = model.layers[i - 1] if i else None
            dense_inputs[layer.full("weight")] = shapes[i - 1][0] if isinstance(prev, Flatten) else None
    conv = tuple(g.params[0] for g in model.groups if g.kind == "conv")
    if not conv:
        first = next((p for p, s in dense_inputs.items() if s is not None), None)
        conv = (first,) if first else ()
    cfg = rso.config
    ds = rso.dataset
    return RunInfo(
        config=cfg,
        model=model.name,
        model_description=MODELS[model.name][1],
        dataset=ds.name,
        dataset_source=ds.source,
        n_train=rso.n_train,
        n_test=int(rso.y_test.shape[0]),
        classes=tuple(ds.classes),
        backend=rso.backend.describe(),
        is_gpu=rso.backend.is_gpu,
        evaluator=rso.evaluator.name,
        layers=tuple(layers),
        plan=tuple((pl.name, pl.params) for pl in rso.plan),
        param_shapes={k: tuple(int(s) for s in v.shape) for k, v in model.params.items()},
        sigma=dict(model.sigma),
        layer_sizes={pl.name: rso.layer_size(pl) for pl in rso.plan},
        weights_per_cycle=rso.weights_per_cycle,
        cycles=cfg.cycles,
        sgd=sgd is not None,
        sgd_steps_per_epoch=sgd.steps_per_epoch if sgd is not None else 0,
        dense_inputs=dense_inputs,
        filter_params=conv,
    )


# ------------------------------------------------------------------------------------------ the runner
class Runner:
    """Runs one RSO run (and its SGD baseline) on command; see the module docstring.

    ``dataset`` (optional) replaces loading ``config.dataset``; ``rate`` limits weights per second
    (None: full speed); ``autoplay`` starts playing as soon as the run is ready. Callbacks are called
    from the worker thread: ``on_state(state)``, ``on_error(message)``, ``on_ready(info)``.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        sgd: bool = True,
        dataset=None,
        rate: float | None = None,
        autoplay: bool = False,
        landscape: str = "1d",
        digit: int = 0,
        features: bool = True,
        on_state: Callable[[str], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_ready: Callable[[RunInfo], None] | None = None,
        session: str | None = None,
    ):
        self.config = config.validated()
        self.session = session  # a saved session (rso_engine.session) to continue instead of a fresh run
        self._calls: list[tuple[Callable[[], Any], Future]] = []
        self.sgd_enabled = sgd
        self.dataset = dataset
        self._cond = threading.Condition()
        self._mode = PLAY if autoplay else PAUSE
        self._steps_pending = 0
        self._stop = False
        self._rate = rate
        self._view = {"landscape": landscape, "digit": int(digit), "features": bool(features)}
        self._view_dirty = False
        self.on_state = on_state or (lambda s: None)
        self.on_error = on_error or (lambda m: None)
        self.on_ready = on_ready or (lambda i: None)
        self.state = PREPARING
        self.error: str | None = None
        self.latest: Snapshot | None = None
        self.info: RunInfo | None = None
        self.rso: RSOTrainer | None = None
        self.sgd: SGDTrainer | None = None
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
                if key == "landscape" and value not in LANDSCAPE_MODES:
                    raise ValueError(f"landscape must be one of {', '.join(LANDSCAPE_MODES)}")
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
        """Ask the loop to end; :meth:`run` returns at the next burst boundary."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    @property
    def stopping(self) -> bool:
        return self._stop

    # ------------------------------------------------------------------ the thread body
    def run(self) -> None:
        self.thread_id = threading.get_native_id()  # for benchmarks that read the thread's CPU time
        try:
            self._set_state(PREPARING)
            if not self._prepare():
                return
            self._loop()
        except Exception as exc:  # the engine failed: say so, leave the app usable
            self.error = error_message(exc)
            if not _expected(exc):
                traceback.print_exc(file=sys.stderr)
            try:
                self._publish(state=ERROR)
            except Exception:
                pass
            self._set_state(ERROR)
            self.on_error(self.error)
        finally:
            with self._cond:
                calls, self._calls = self._calls, []
            for _, fut in calls:
                if fut.set_running_or_notify_cancel():
                    fut.set_exception(RuntimeError("the run has stopped"))
            if self.state != ERROR:
                self._set_state(STOPPED)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.on_state(state)

    def _load_dataset(self):
        """Load the dataset in a helper thread, so a stop request during a download is honoured."""
        cfg = self.config
        box: dict[str, Any] = {}

        def load():
            try:
                box["data"] = load_dataset_cached(cfg.dataset, cfg.data_dir)
            except BaseException as exc:  # handed to the worker thread
                box["error"] = exc

        loader = threading.Thread(target=load, name="rso-data-loader", daemon=True)
        loader.start()
        while loader.is_alive():
            loader.join(0.05)
            if self._stop:
                return None
        if "error" in box:
            raise box["error"]
        return box["data"]

    def _prepare(self) -> bool:
        cfg = self.config
        dataset = self.dataset if self.dataset is not None else self._load_dataset()
        if self._stop or dataset is None:
            return False
        if self.session is not None:
            from rso_engine.session import load_session  # noqa: PLC0415

            opened = load_session(self.session, dataset=dataset)
            self.rso, self.sgd = opened.rso, opened.sgd
            self.sgd_enabled = self.sgd is not None
        else:
            self.rso = RSOTrainer(cfg, dataset=dataset)
            if self.sgd_enabled:
                self.sgd = SGDTrainer(cfg.replace(algorithm="sgd"), dataset=dataset)
        fresh = not self.rso.history  # a restored run continues without a first Evaluated(0)
        self._gen = self.rso.events()
        if fresh:
            next(self._gen)  # Evaluated(0)
        self._sgd_gen = None
        if self.sgd is not None:
            self._sgd_gen = self.sgd.events()
            if not self.sgd.history:
                next(self._sgd_gen)
        self.rso.max_chunk = 1
        self.info = build_info(self.rso, self.sgd)
        self._stats = {name: LayerStats() for name, _ in self.info.plan}
        self._rso_total = max(1, cfg.cycles * self.rso.weights_per_cycle)
        self._sgd_total = max(1, cfg.cycles * self.sgd.steps_per_epoch) if self.sgd is not None else 1
        if self._stop:
            return False
        self._publish(landscape=True, state=PAUSED)
        self.on_ready(self.info)
        return True

    def _loop(self) -> None:
        rso = self.rso
        while not self._stop:
            if self._calls:
                self._run_calls()
            mode = self._mode
            if rso.finished or mode == PAUSE:
                self._idle(FINISHED if rso.finished else PAUSED, mode)
                continue
            self._set_state(RUNNING)
            rate = self._rate
            slow = mode == STEP_WEIGHT or (mode == PLAY and rate is not None and rate <= SLOW_RATE)
            if mode == STEP_WEIGHT or slow or self._probe:
                # a new layer can cost 100× more per weight than the last one: one weight first, so the
                # trainer's chunk-size estimate adapts before it hands the evaluator a long chunk
                rso.max_chunk = 1
            elif mode == PLAY and rate is not None:
                rso.max_chunk = max(1, int(rate / 30))
            else:
                rso.max_chunk = 4096
            kind, n = self._burst()
            self.bursts += 1
            self._probe = kind in ("layer", "cycle")
            if kind == "end" or rso.finished:
                self._finish()
                continue
            self._sync_sgd()
            step_done = (mode == STEP_WEIGHT and kind == "weight") or (
                mode == STEP_LAYER and kind in ("layer", "cycle")
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
                self._publish(landscape=landscape, state=PAUSED if paused_now else None)
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
        """Consume events up to the next consistent boundary; return (kind, weights consumed)."""
        rso = self.rso
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
                st = stats[ev.layer]
                if ev.position == 0:
                    st.tried_sweep = st.changed_sweep = 0
                st.tried += 1
                st.tried_sweep += 1
                if ev.choice:
                    st.changed += 1
                    st.changed_sweep += 1
                if ev.step == rso.steps:  # the last weight of its chunk: the state is exact here
                    self._last = ev
                    self.weight_events += n
                    return "weight", n
            elif t is LayerDone:
                if rso.position.group != 0 and not rso.finished:
                    self.weight_events += n
                    return "layer", n
                # the cycle ended: its CycleDone and Evaluated are already computed, take them too
            elif t is Evaluated:
                self.weight_events += n
                return "cycle", n
            elif t is CycleDone:
                pass
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
        while not sgd.finished and sgd.steps * scale < target and not self._stop:
            if next(gen, None) is None:
                break
        if to_end and not self._stop:
            for _ in gen:  # the last epoch's CycleDone/Evaluated
                pass

    def _finish(self) -> None:
        self._sync_sgd(to_end=True)
        with self._cond:
            self._mode = PAUSE
        self._publish(landscape=True, state=FINISHED)
        self._set_state(FINISHED)

    # ------------------------------------------------------------------ what the views get
    def _upcoming(self) -> tuple[str, str, tuple[int, ...], int, int] | None:
        rso = self.rso
        if rso.finished:
            return None
        pos = rso.position
        layer = rso.plan[pos.group]
        pname = layer.params[pos.param]
        shape = tuple(rso.model.params[pname].shape)
        size = math.prod(shape)
        flat = size - 1 - pos.pos if rso.config.in_layer_order == "reverse" else pos.pos
        index = tuple(int(i) for i in np.unravel_index(flat, shape))
        offset = sum(rso.model.params[p].size for p in layer.params[: pos.param]) + pos.pos
        return layer.name, pname, index, int(offset), rso.layer_size(layer)

    def _compute_curve(self) -> CurveView | None:
        rso = self.rso
        cfg = rso.config
        ev = self._last
        xp = rso.backend.xp
        if ev is not None:
            idx = rso.batch_for_step(ev.step)
            if idx is None:
                return self._curve
            param, index, center, cycle = ev.param, ev.index, ev.old, ev.cycle
        else:
            up = self._upcoming()
            if up is None:
                return None
            _, param, index, _, _ = up
            idx = np.arange(min(cfg.batch_size, rso.n_train))
            center, cycle = float(to_numpy(rso.model.params[param][index])), rso.position.cycle + 1
        sigma = rso.model.sigma[param] * sigma_scale(min(cycle, cfg.cycles), cfg.cycles, cfg.anneal)
        stay = center * (1.0 - cfg.stay_decay)
        include = [0.0, stay - center]
        span = 3.0 * sigma
        if ev is not None:
            include += [ev.delta, -ev.delta]
            span = max(span, 1.25 * abs(ev.delta))
        d = xp.asarray(idx)
        curve = L.weight_curve(
            rso.model,
            param,
            index,
            rso.x_train[:, d],
            rso.y_train[d],
            span=span,
            n=CURVE_POINTS,
            center=center,
            include=include,
        )
        exact = ev is not None and ev.step == rso.steps
        return CurveView(curve, ev, sigma, stay, exact)

    def _compute_slice(self, mode: str) -> SliceView | None:
        rso = self.rso
        cfg = rso.config
        model = rso.model
        xp = rso.backend.xp
        ev = self._last
        idx = rso.batch_for_step(ev.step) if ev is not None else None
        if idx is None:
            idx = np.arange(min(cfg.batch_size, rso.n_train))
        d = xp.asarray(idx)
        x, y = rso.x_train[:, d], rso.y_train[d]
        if mode == "2d-directions":
            rng = np.random.default_rng([cfg.seed, 77])  # the same raw directions all run long
            d1 = L.filter_normalized_direction(model, rng)
            d2 = L.filter_normalized_direction(model, rng)
            grid = np.linspace(-1.0, 1.0, GRID_DIRECTIONS)
            return SliceView(L.direction_grid(model, d1, d2, x, y, grid, grid))
        cur = (ev.layer, ev.param, ev.index) if ev is not None else self._upcoming()[:3]
        param, index = cur[1], cur[2]
        shape = tuple(model.params[param].shape)
        flat = int(np.ravel_multi_index(index, shape))
        step = -1 if cfg.in_layer_order == "reverse" else 1
        other = flat + step if 0 <= flat + step < math.prod(shape) else flat - step
        b_index = tuple(int(i) for i in np.unravel_index(other, shape))
        c = rso.model.sigma[param] * sigma_scale(min(rso.position.cycle + 1, cfg.cycles), cfg.cycles, cfg.anneal)
        span = 3.0 * c
        before = None
        if ev is not None:
            span = max(span, 1.25 * abs(ev.delta), 1.25 * abs(ev.old - ev.new))
            before = (ev.old - ev.new, 0.0)
        grid = np.linspace(-span, span, GRID_WEIGHTS)
        return SliceView(L.weight_grid(model, (param, index), (param, b_index), x, y, grid, grid), before)

    def _feature_maps(self) -> tuple[np.ndarray | None, int, int, tuple[tuple[str, np.ndarray], ...]]:
        rso = self.rso
        model = rso.model
        n_test = int(rso.y_test.shape[0])
        if n_test == 0:
            return None, -1, -1, ()
        i = int(self._view["digit"]) % n_test
        x = rso.x_test[:, i : i + 1]
        digit = np.array(to_numpy(x[0, 0]), dtype=np.float32)
        label = int(to_numpy(rso.y_test[i]))
        if not self._view["features"]:
            return digit, label, -1, ()
        P = model.all_tensors()
        train = not model.bn_layers() or not model.buffers
        maps = []
        h = x
        for layer in model.layers:
            h, _ = layer.forward(P, h, train)
            if isinstance(layer, ReLU) and h.ndim == 4:
                maps.append((layer.name, np.array(to_numpy(h[:, 0]), dtype=np.float32)))
        pred = int(to_numpy(h.argmax(axis=1))[0])
        return digit, label, pred, tuple(maps)

    def _publish(self, landscape: bool = False, state: str | None = None) -> None:
        rso = self.rso
        if rso is None:
            return
        t0 = time.perf_counter()
        extra: dict[str, Any] = {}
        if landscape:
            mode = self._view["landscape"]
            try:
                if mode == "1d":
                    self._curve, self._slice = self._compute_curve(), None
                else:
                    self._slice, self._curve = self._compute_slice(mode), None
            except Exception as exc:  # a view's extra computation must not stop training
                self._curve = self._slice = None
                extra["landscape_error"] = error_message(exc)
            cost = time.perf_counter() - t0
            self.landscape_seconds += cost
            self._landscape_cost = 0.7 * self._landscape_cost + 0.3 * cost if self._landscape_cost else cost
            now = time.monotonic()
            self._next_landscape = now + max(cost / LANDSCAPE_SHARE, 1.0 / LANDSCAPE_MAX_HZ)
        ev = self._last
        current = (ev.layer, ev.param, ev.index, ev.position, ev.layer_size) if ev is not None else self._upcoming()
        digit, label, pred, maps = self._feature_maps()
        cfg = rso.config
        k = self._ti % TRACE_LEN
        trace = np.concatenate([self._trace[k:], self._trace[:k]])
        cycle = min(rso.position.cycle + 1, cfg.cycles)
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
            sigma_scale=sigma_scale(cycle, cfg.cycles, cfg.anneal),
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
        )
        self._last_publish = time.monotonic()
        self.publish_seconds += time.perf_counter() - t0
