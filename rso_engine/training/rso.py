"""RSO, Algorithm 1 of Tripathi & Singh (arXiv 2005.05955), as a generator of events.

For each cycle, for each layer from the output layer to the input layer, for each scalar weight in
order (output filter → input channel → kh → kw): draw a fresh mini-batch and a fresh Δ ~ N(0, σ_d),
evaluate the summed cross-entropy on that batch for W + Δ, W and W − Δ, and keep the lowest (a tie
keeps W). Variants of the paper and the authors' code are options of :class:`~rso_engine.config.RunConfig`.

All randomness is drawn here, from two streams seeded by the config's seed (one for Δ, one for batches),
in a way that does not depend on how many weights are handed to the evaluator at once; so every
evaluator sees the same Δs and batches, and a run resumed from a checkpoint continues identically.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import numpy as np

from ..backend import Backend
from ..cancel import check_cancelled
from ..config import RunConfig
from ..evaluators import Evaluator, make_evaluator
from ..evaluators.state_scorer import StateScorer
from ..events import STAY, ChunkDone, CycleDone, LayerDone, WeightTried
from . import state as check
from .base import Stopwatch, Trainer, TrainingError
from .batches import BatchStream
from .parallel_update import LayerMerge, merge_keys, neuron_size
from .plan import NextWeight, PlannedLayer, SweepPosition, describe_sigma_schedule, sigma_scale

__all__ = ["NextWeight", "PlannedLayer", "RSOTrainer", "SweepPosition", "describe_sigma_schedule", "sigma_scale"]


DEFAULT_MAX_CHUNK = 4096  # weights handed to the evaluator at once, at most
DEFAULT_CHUNK_SECONDS = 0.02  # compute time a chunk aims at


class RSOTrainer(Trainer):
    """Trains a model with RSO. Iterate :meth:`events`; see the module docstring.

    The trainer is the one owner of the sweep plan (:attr:`plan`), the order inside a tensor, the σ
    schedule and the position of the sweep. Drivers ask it: :meth:`upcoming` (the weight tried next),
    :meth:`sigma` (σ for a tensor in a cycle), :meth:`neighbour` (the weight visited after another),
    :attr:`steps`, :attr:`cycle`. Weights are scored in chunks (:meth:`set_chunking`); the trainer's state
    is exact at every :class:`~rso_engine.events.ChunkDone`, ``LayerDone`` and ``Evaluated`` event.
    """

    algorithm = "rso"

    def __init__(self, config: RunConfig, dataset=None, backend: Backend | None = None,
                 evaluator: str | Evaluator | None = None):
        super().__init__(config, dataset, backend)
        cfg = self.config
        if cfg.batch_size > self.n_train:
            raise ValueError(f"batch size {cfg.batch_size} is larger than the {self.n_train} training images; "
                             "lower --batch-size or use more data")
        self.plan = self._make_plan()
        self.delta_rng = np.random.default_rng([cfg.seed, 1])
        self.stream = BatchStream(self.n_train, cfg.batch_size, np.random.default_rng([cfg.seed, 2]))
        self.shared_batch: np.ndarray | None = None  # (1, B) for batch modes "layer" and "cycle"
        self.position = SweepPosition()
        self.steps = 0  # weights tried so far
        self.layer_changed = 0
        self.layer_seconds = 0.0
        self._max_chunk = DEFAULT_MAX_CHUNK
        self._chunk_seconds = DEFAULT_CHUNK_SECONDS
        self._per_weight: dict[str, float] = {}  # running estimate of one weight's compute time, per tensor
        self._last_chunk: tuple[int, np.ndarray] = (0, np.empty((0, 0), np.int64))
        name = evaluator if isinstance(evaluator, str) else (evaluator.name if evaluator else cfg.evaluator)
        self.evaluator: Evaluator = (evaluator if isinstance(evaluator, Evaluator)
                                     else make_evaluator(name, self.model, self.x_train, self.y_train))
        #: layer-parallel updates score against the layer's starting state, many weights at a time
        self.scorer = StateScorer(self.model, self.x_train, self.y_train) if cfg.update == "layer-parallel" else None
        for e in (self.evaluator, self.scorer):
            if e is not None and cfg.batch_mode == "authors":
                e.set_frozen_prefix(True)
        self.merge: LayerMerge | None = None  # the parallel update's layer in progress

    # ------------------------------------------------------------------ the plan
    def _make_plan(self) -> list[PlannedLayer]:
        cfg = self.config
        groups = list(self.model.groups)
        if cfg.train_layers is not None:
            names = [g.name for g in groups]
            unknown = [n for n in cfg.train_layers if n not in names]
            if unknown:
                raise ValueError(f"train_layers names unknown layer(s) {', '.join(unknown)}; "
                                 f"{self.model.name} has {', '.join(names)}")
            groups = [g for g in groups if g.name in cfg.train_layers]
        if cfg.layer_order == "output-first":
            groups.reverse()
        plan = []
        for g in groups:
            params = tuple(p for p in g.params if cfg.search_bn or not p.endswith((".gamma", ".beta")))
            if cfg.in_layer_order == "reverse":
                params = params[::-1]
            plan.append(PlannedLayer(g, params))
        return plan

    def sweep_order(self) -> list[tuple[str, tuple[int, ...]]]:
        """Every (parameter, index) of one cycle in the order RSO visits them (for docs and tests)."""
        out = []
        for layer in self.plan:
            for p in layer.params:
                shape = self.model.params[p].shape
                for flat in self._order(int(np.prod(shape))):
                    out.append((p, tuple(int(i) for i in np.unravel_index(flat, shape))))
        return out

    def _order(self, size: int) -> np.ndarray:
        order = np.arange(size, dtype=np.int64)
        return order[::-1].copy() if self.config.in_layer_order == "reverse" else order

    def layer_size(self, layer: PlannedLayer) -> int:
        return int(sum(self.model.params[p].size for p in layer.params))

    @property
    def weights_per_cycle(self) -> int:
        return sum(self.layer_size(layer) for layer in self.plan)

    @property
    def finished(self) -> bool:
        return self.position.cycle >= self.config.cycles

    @property
    def cycles_started(self) -> int:
        p = self.position
        return p.cycle + (0 if (p.group, p.param, p.pos) == (0, 0, 0) else 1)

    @property
    def current(self) -> tuple[str, str] | None:
        """(layer name, parameter name) being swept now, or None when finished."""
        if self.finished:
            return None
        layer = self.plan[self.position.group]
        return layer.name, layer.params[self.position.param]

    def batch_for_step(self, step: int) -> np.ndarray | None:
        """Training indices of the mini-batch weight ``step`` (a WeightTried.step) was scored on, if it
        belongs to the most recent chunk handed to the evaluator; else None."""
        first, batches = self._last_chunk
        j = step - first
        if j < 0 or (len(batches) > 1 and j >= len(batches)) or len(batches) == 0:
            return None
        return batches[0] if len(batches) == 1 else batches[j]

    @property
    def cycle(self) -> int:
        """The 1-based cycle in progress (the last cycle once finished)."""
        return min(self.position.cycle + 1, self.config.cycles)

    def sigma_scale(self, cycle: int | None = None) -> float:
        """The σ multiplier of the **1-based** ``cycle`` (as in the events; default: :attr:`cycle`), from the
        config's schedule (:func:`sigma_scale` takes the 0-based e = cycle − 1)."""
        cfg = self.config
        cycle = self.cycle if cycle is None else cycle
        if isinstance(cycle, bool) or int(cycle) != cycle or not 1 <= cycle <= cfg.cycles:
            raise ValueError(f"cycle must be a whole number from 1 to {cfg.cycles} (got {cycle!r})")
        return sigma_scale(int(cycle) - 1, cfg.cycles, cfg.anneal, cfg.anneal_to)

    def sigma(self, param: str, cycle: int | None = None) -> float:
        """σ that Δ of a weight of ``param`` is drawn with in the 1-based ``cycle`` (default: :attr:`cycle`)."""
        return self.model.sigma[param] * self.sigma_scale(cycle)

    def cycle_progress(self, step: int | None = None) -> tuple[int, int]:
        """(1-based cycle, weights of that cycle tried): for weight ``step`` (a ``WeightTried.step``) its cycle,
        counting the weight itself; by default for the weight tried next, not counting it."""
        wpc = max(self.weights_per_cycle, 1)
        if step is None:
            cycle = min(self.steps // wpc + 1, self.config.cycles)
            return cycle, self.steps - (cycle - 1) * wpc
        cycle = (int(step) - 1) // wpc + 1
        return cycle, int(step) - (cycle - 1) * wpc

    def upcoming(self) -> NextWeight | None:
        """The weight the sweep tries next, or None when the run is finished."""
        cycle, group, param, at = self.position.cycle, self.position.group, self.position.param, self.position.pos
        # right after a chunk that ended a tensor or layer, the position still points past its end
        while cycle < self.config.cycles:
            layer = self.plan[group]
            if param < len(layer.params) and at < self.model.params[layer.params[param]].size:
                break
            param, at = param + 1, 0
            if param >= len(layer.params):
                group, param = group + 1, 0
                if group == len(self.plan):
                    cycle, group = cycle + 1, 0
        else:
            return None
        pname = layer.params[param]
        shape = tuple(self.model.params[pname].shape)
        flat = int(self._order(int(np.prod(shape)))[at])
        index = tuple(int(i) for i in np.unravel_index(flat, shape))
        offset = sum(int(self.model.params[p].size) for p in layer.params[:param]) + at
        return NextWeight(cycle + 1, layer.name, pname, index, offset, self.layer_size(layer),
                          self.sigma(pname, cycle + 1))

    def neighbour(self, param: str, index: tuple[int, ...]) -> tuple[int, ...]:
        """The weight of ``param`` the sweep visits right after ``index`` (right before it, for the last one)."""
        shape = tuple(self.model.params[param].shape)
        order = self._order(int(np.prod(shape)))
        where = int(np.flatnonzero(order == int(np.ravel_multi_index(index, shape)))[0])
        other = where + 1 if where + 1 < len(order) else max(where - 1, 0)
        return tuple(int(i) for i in np.unravel_index(int(order[other]), shape))

    # ------------------------------------------------------------------ chunking
    def set_chunking(self, max_weights: int | None = None, seconds: float | None = None) -> None:
        """How many weights are scored per evaluator call: at most ``max_weights``, aiming at ``seconds``
        of compute; the defaults (``DEFAULT_MAX_CHUNK``, ``DEFAULT_CHUNK_SECONDS``) when None.

        Chunking never changes the numbers (Δs and batches are drawn per weight); it decides how often
        a driver sees an exact state (:class:`~rso_engine.events.ChunkDone`). ``max_weights=1`` makes
        every weight its own chunk, for stepping one weight at a time. Takes effect at the next chunk.
        """
        if max_weights is not None and (isinstance(max_weights, bool) or int(max_weights) < 1):
            raise ValueError(f"max_weights must be at least 1 (got {max_weights!r})")
        if seconds is not None and not seconds > 0:
            raise ValueError(f"seconds must be positive (got {seconds!r})")
        self._max_chunk = DEFAULT_MAX_CHUNK if max_weights is None else int(max_weights)
        self._chunk_seconds = DEFAULT_CHUNK_SECONDS if seconds is None else float(seconds)

    @property
    def chunking(self) -> tuple[int, float]:
        """(max_weights, seconds) as :meth:`set_chunking` left them."""
        return self._max_chunk, self._chunk_seconds

    # ------------------------------------------------------------------ the algorithm
    def _chunk(self, param: str, left: int) -> int:
        """How many weights to score next: one to measure a tensor not seen yet, then ~chunk_seconds' worth."""
        per_weight = self._per_weight.get(param)
        k = 1 if per_weight is None else int(self._chunk_seconds / max(per_weight, 1e-9))
        return max(1, min(k, self._max_chunk, left))

    def events(self) -> Iterator[Any]:
        cfg = self.config
        if not self.history:
            yield self.evaluate(0)
        watch = Stopwatch(self)
        stay_factor = 1.0 - cfg.stay_decay
        while not self.finished:
            pos = self.position
            cycle = pos.cycle + 1
            layer = self.plan[pos.group]
            scale = sigma_scale(pos.cycle, cfg.cycles, cfg.anneal, cfg.anneal_to)
            if self.shared_batch is None and self.shares_batches:
                self.shared_batch = self.stream.take(1)
            scoring = self.scoring
            with watch:  # caches a fast evaluator builds count as training time
                scoring.begin_group(layer.group, layer.params)
            self.layer_seconds += watch.last
            if cfg.update != "sequential" and self.merge is None:
                self.merge = LayerMerge.begin(self.model.params, layer.params)
            offset = sum(self.model.params[p].size for p in layer.params[: pos.param])
            n_layer = self.layer_size(layer)
            while pos.param < len(layer.params):
                pname = layer.params[pos.param]
                shape = self.model.params[pname].shape
                size = int(np.prod(shape))
                order = self._order(size)
                sigma = self.model.sigma[pname] * scale
                neuron = neuron_size(shape) if cfg.update == "neuron-parallel" else size
                while pos.pos < size:
                    check_cancelled()
                    k = min(self._chunk(pname, size - pos.pos), neuron - pos.pos % neuron)
                    flat = order[pos.pos : pos.pos + k]
                    with watch:
                        deltas = self.delta_rng.standard_normal(k) * sigma
                        batches = self.shared_batch if self.shared_batch is not None else self.stream.take(k)
                        if self.scorer is not None:
                            res = self.scorer.score(pname, flat, deltas, batches, stay_factor)
                        else:
                            res = self.evaluator.sweep(pname, flat, deltas, batches, stay_factor)
                        if self.merge is not None:
                            self.merge.record(pname, flat, res.new)
                            if cfg.update == "neuron-parallel" and (pos.pos + k) % neuron == 0:
                                self._put_back_neuron(pname, order[pos.pos + k - neuron : pos.pos + k])
                    seen = self._per_weight.get(pname, watch.last / k)
                    self._per_weight[pname] = 0.7 * seen + 0.3 * watch.last / k
                    self.layer_seconds += watch.last
                    bad = ~np.isfinite(res.losses[:, 1])
                    if bad.any():
                        j = int(np.argmax(bad))
                        index = tuple(int(i) for i in np.unravel_index(int(flat[j]), shape))
                        raise TrainingError(
                            f"the loss is {res.losses[j, 1]} at {pname}{list(index)} in cycle {cycle}: "
                            "the network's output overflowed or the data holds NaNs; reset the run "
                            "(float64 may help: --dtype float64)"
                        )
                    first_step, first_pos = self.steps, offset + pos.pos
                    self._last_chunk = (first_step + 1, batches)
                    self.steps += k
                    self.weight_updates += k
                    self.forward_samples += 3 * k * cfg.batch_size
                    self.layer_changed += int(np.count_nonzero(res.choices != STAY))
                    pos.pos += k
                    idx = np.unravel_index(flat, shape)
                    for j in range(k):
                        yield WeightTried(
                            first_step + j + 1, cycle, layer.name, pname, tuple(int(a[j]) for a in idx),
                            first_pos + j, n_layer, float(deltas[j]), float(res.losses[j, 0]),
                            float(res.losses[j, 1]), float(res.losses[j, 2]), int(res.choices[j]),
                            float(res.old[j]), float(res.new[j]), cfg.batch_size,
                        )
                    yield ChunkDone(self.steps, layer.name, k)
                offset += size
                pos.param += 1
                pos.pos = 0
            with watch:
                if self.merge is not None:  # the parallel update's merge: the layer's chosen values at once
                    for p in layer.params:
                        scoring.assign(p, self.merge.pending[p])
                    self.merge = None
                scoring.end_group(layer.group)
            self.layer_seconds += watch.last
            yield from self._finish_layer(layer, n_layer, cycle)

    @property
    def scoring(self) -> Evaluator:
        """What scores the candidates: the evaluator, or the state scorer of a layer-parallel update."""
        return self.scorer if self.scorer is not None else self.evaluator

    @property
    def shares_batches(self) -> bool:
        """Whether one batch serves a whole layer's or cycle's sweep (batch modes "layer", "cycle")."""
        return self.config.batch_mode in ("layer", "cycle")

    def _put_back_neuron(self, param: str, flat: np.ndarray) -> None:
        """Neuron-parallel: a neuron's search is over; its weights go back to the layer's starting state
        (its chosen values wait in the merge) so that the next neuron starts from that state too."""
        values = self.merge.restored(param, self.model.params[param], flat)
        if values is not None:
            self.evaluator.assign(param, values)

    def _finish_layer(self, layer: PlannedLayer, n_layer: int, cycle: int) -> list[Any]:
        """Advance past a finished layer (and cycle), returning the events to emit, state already updated."""
        pos = self.position
        ends_cycle = pos.group + 1 == len(self.plan)
        done: list[Any] = [LayerDone(cycle, layer.name, n_layer, self.layer_changed, self.layer_seconds, ends_cycle)]
        self.layer_changed, self.layer_seconds = 0, 0.0
        pos.group += 1
        pos.param = pos.pos = 0
        if self.config.batch_mode == "layer":
            self.shared_batch = None
        if pos.group == len(self.plan):
            pos.cycle += 1
            pos.group = 0
            self.shared_batch = None
            done.append(CycleDone(self.algorithm, cycle, self.weight_updates, self.forward_samples, self.seconds))
            done.append(self.evaluate(cycle))
        return done

    # ------------------------------------------------------------------ state
    def state_dict(self):
        meta, arrays = self._base_state()
        stream = self.stream.state()
        arrays["rso/perm"] = stream.pop("perm")
        if self.shared_batch is not None:
            arrays["rso/shared_batch"] = self.shared_batch
        if self.merge is not None:
            arrays.update(self.merge.arrays())
        meta["rso"] = {
            "position": asdict(self.position),
            "steps": self.steps,
            "layer_changed": self.layer_changed,
            "layer_seconds": self.layer_seconds,
            "delta_rng": self.delta_rng.bit_generator.state,
            "stream": stream,
            "sigma": self.model.sigma,
        }
        return meta, arrays

    def load_state_dict(self, meta, arrays):
        """Continue from a :meth:`state_dict` (read from a file: every value is checked against the model,
        the plan and the data first; a :class:`~rso_engine.training.state.StateError` if one does not fit)."""
        cfg = self.config
        r = check.mapping(check.mapping(meta, "the saved state").get("rso"), "the saved RSO state")
        position = self._saved_position(r.get("position"))
        steps = check.count(r.get("steps"), "rso.steps")
        if steps != self._steps_at(position):
            raise check.StateError(f"rso.steps is {steps} but the sweep position {asdict(position)} comes after "
                                   f"{self._steps_at(position)} weights")
        layer_changed = check.count(r.get("layer_changed"), "rso.layer_changed")
        layer_seconds = check.number(r.get("layer_seconds"), "rso.layer_seconds")
        sigma = check.mapping(r.get("sigma"), "rso.sigma")
        if set(sigma) != set(self.model.params):
            raise check.StateError(f"rso.sigma names {sorted(sigma)}; {self.model.name} has "
                                   f"{sorted(self.model.params)}")
        sigma = {k: check.number(v, f"rso.sigma.{k}") for k, v in sigma.items()}
        shared = arrays.get("rso/shared_batch")
        if shared is not None:
            if not self.shares_batches:
                raise check.StateError(f"the array rso/shared_batch is saved but the batch mode is {cfg.batch_mode!r}")
            shared = check.index_array(shared, "rso/shared_batch", self.n_train, (1, cfg.batch_size))
        merge = self._saved_merge(arrays, position)
        # every RSO check above is done before anything is changed; the base state checks itself first too
        self._load_base_state(meta, arrays, own=("rso/perm", "rso/shared_batch", *merge_keys(arrays)))
        check.rng_state(self.delta_rng, r.get("delta_rng"), "rso.delta_rng")
        self.stream.set_state({**check.mapping(r.get("stream"), "rso.stream"), "perm": arrays.get("rso/perm")})
        self.position, self.steps = position, steps
        self.layer_changed, self.layer_seconds = layer_changed, layer_seconds
        self.shared_batch = shared
        self.model.sigma = sigma
        self.merge = merge
        for e in (self.evaluator, self.scorer):
            if e is not None:
                e.invalidate()

    def _saved_merge(self, arrays: dict[str, Any], position: SweepPosition) -> LayerMerge | None:
        """A parallel update's layer in progress read back (None at a layer's start or for a sequential run),
        its starting values checked against the saved weights: equal, except in the neuron being searched."""
        cfg = self.config
        keys = merge_keys(arrays)
        if cfg.update == "sequential" or (position.param, position.pos) == (0, 0):
            if keys:
                raise check.StateError(f"the arrays {', '.join(keys)} belong to a parallel update's layer in "
                                       f"progress, but the update is {cfg.update!r} at a layer's start")
            return None
        layer = self.plan[position.group]
        allowed = {f"rso/{kind}/{p}" for kind in ("start", "pending") for p in layer.params}
        if set(keys) - allowed:
            raise check.StateError(f"the arrays {', '.join(sorted(set(keys) - allowed))} do not belong to the layer "
                                   f"in progress ({layer.name}: {', '.join(layer.params)})")
        merge = LayerMerge.from_arrays(arrays, self.model.params, layer.params)
        for i, p in enumerate(layer.params):
            saved = np.asarray(arrays.get(f"param/{p}"))
            if saved.shape != merge.start[p].shape:
                continue  # the base state names that misfit
            differs = (saved != merge.start[p]).reshape(-1)
            if cfg.update == "neuron-parallel" and i == position.param:
                size, neuron = differs.size, neuron_size(saved.shape)
                order = self._order(size)
                first = position.pos - position.pos % neuron
                if position.pos % neuron:  # inside a neuron: its weights tried so far may have moved
                    differs[order[first : position.pos]] = False
            if differs.any():
                raise check.StateError(f"rso/start/{p} does not match the saved weights {p}: a parallel update's "
                                       "layer keeps its starting values until its merge")
        return merge

    def _steps_at(self, p: SweepPosition) -> int:
        """Weights tried before the sweep reaches position ``p``: whole cycles, earlier layers and tensors."""
        layer = self.plan[p.group]
        before = sum(self.layer_size(pl) for pl in self.plan[: p.group])
        before += sum(int(self.model.params[name].size) for name in layer.params[: p.param])
        return p.cycle * self.weights_per_cycle + before + p.pos

    def _saved_position(self, saved: Any) -> SweepPosition:
        """A saved sweep position, if it lies inside the plan (or is the end of the run)."""
        p = check.mapping(saved, "rso.position")
        fields = set(SweepPosition.__dataclass_fields__)
        if set(p) != fields:
            raise check.StateError(f"rso.position has the fields {sorted(p)}; it needs {sorted(fields)}")
        cycle = check.count(p["cycle"], "rso.position.cycle", high=self.config.cycles)
        group = check.count(p["group"], "rso.position.group", high=len(self.plan) - 1)
        layer = self.plan[group]
        param = check.count(p["param"], "rso.position.param", high=len(layer.params))
        size = self.model.params[layer.params[param]].size if param < len(layer.params) else 0
        pos = check.count(p["pos"], "rso.position.pos", high=int(size))
        if cycle == self.config.cycles and (group, param, pos) != (0, 0, 0):
            raise check.StateError(f"rso.position {p} lies past the last cycle ({self.config.cycles})")
        return SweepPosition(cycle, group, param, pos)
