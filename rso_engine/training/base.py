"""What RSO and SGD trainers share: data on the backend, evaluation, budget counters, history, state.

A trainer is driven by iterating :meth:`Trainer.events`; between any two events it is in a consistent
state that :meth:`Trainer.state_dict` captures exactly (weights, RNG streams, position, counters and
history), so a run saved at any event and resumed continues exactly as if never interrupted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..backend import Backend, engine_blas, get_backend, to_numpy
from ..config import RunConfig
from ..driving import drive
from ..events import Evaluated
from ..kernels.cuda import GPU_KERNELS
from ..kernels.forward import LAYER_KERNELS, Kernels, run_layers
from ..kernels.jit import NUMBA_ERROR
from ..kernels.numba_layers import NUMBA_KERNELS
from ..models import Model, build_model, cross_entropy, models_for
from ..parallel import for_each
from . import state as check

EVAL_CHUNK = 1000  # images per forward pass when evaluating


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN/inf loss, a GPU failure); the message says where and what to try."""


def check_input_shape(model: Model, image_shape: tuple[int, ...], dataset_name: str) -> None:
    """Raise a one-line ValueError when the dataset's images do not fit the model: one zero image is pushed
    through its layers (the layers own their shape rules; nothing here repeats them)."""
    have = "×".join(map(str, image_shape))
    x = model.xp.zeros((image_shape[0], 1, *image_shape[1:]), dtype=model.dtype) if len(image_shape) == 3 else None
    try:
        if x is None:
            raise ValueError("not an image shape")
        with np.errstate(all="ignore"):
            model.forward(x, train=True)
    except (ValueError, IndexError, TypeError) as exc:
        first = model.layers[0].describe() if model.layers else "no layers"
        fits = models_for(tuple(image_shape)) if x is not None else []
        raise ValueError(f"model {model.name} (first layer: {first}) cannot take the {have} images of "
                         f"{dataset_name}: choose a model made for {have} images"
                         + (f" ({', '.join(fits)})" if fits else "")) from exc


class Trainer:
    """Base class of :class:`~rso_engine.training.RSOTrainer` and :class:`~rso_engine.training.SGDTrainer`."""

    algorithm = "base"

    def __init__(self, config: RunConfig, dataset=None, backend: Backend | None = None):
        self.config = config.validated()
        self.backend = backend or get_backend()
        if dataset is None:
            from ..data import load_dataset  # noqa: PLC0415

            dataset = load_dataset(config.dataset, data_dir=config.data_dir, progress=False)
        self.dataset = dataset.subset(config.n_train, config.n_test)
        self.model: Model = build_model(config.model, seed=config.seed, backend=self.backend, dtype=config.dtype)
        check_input_shape(self.model, self.dataset.image_shape, self.dataset.name)
        xp = self.backend.xp
        self.x_train = self.model.to_input(self.dataset.train_x)
        self.y_train = xp.asarray(self.dataset.train_y, dtype=xp.int64)
        self.x_test = self.model.to_input(self.dataset.test_x)
        self.y_test = xp.asarray(self.dataset.test_y, dtype=xp.int64)
        self.n_train = int(self.y_train.shape[0])
        self.weight_updates = 0  # scalar weight updates tried (RSO) or applied (SGD: steps × parameters)
        self.forward_samples = 0  # images pushed through the network while training
        self.seconds = 0.0  # training compute time, evaluation excluded
        self.history: list[Evaluated] = []

    # ------------------------------------------------------------------ driving
    def events(self) -> Iterator[Any]:
        """Yield events until the run's cycles/epochs are done; resumable after :meth:`load_state_dict`."""
        raise NotImplementedError

    def run(self, on_event: Callable[[Any], None] | None = None) -> list[Evaluated]:
        """Run to the end, calling ``on_event`` for every event; return the history (see :func:`drive`)."""
        return drive(self, on_event=on_event)

    @property
    def finished(self) -> bool:
        raise NotImplementedError

    @property
    def cycles_started(self) -> int:
        """Cycles (RSO) or epochs (SGD) begun so far, the one in progress included."""
        raise NotImplementedError

    def set_cycles(self, cycles: int) -> None:
        """Run to ``cycles`` cycles (epochs) in all, e.g. to continue a finished run: at least the cycles
        begun so far. RSO's σ schedule of the remaining cycles then follows the new count."""
        started = self.cycles_started
        if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < max(1, started):
            raise ValueError(f"the run has begun {started} of its {self.config.cycles} cycles: it can be set to "
                             f"{max(1, started)} cycles or more, not {cycles!r}")
        self.config = self.config.replace(cycles=cycles)

    # ------------------------------------------------------------------ evaluation
    @property
    def eval_kernels(self) -> Kernels:
        """The kernel set evaluation runs the model on: the compiled CPU layers where Numba works (the
        layers' own operations, evaluation mode included), the GPU set on CuPy, else the layers' own code."""
        if self.backend.is_gpu:
            return GPU_KERNELS
        return LAYER_KERNELS if NUMBA_ERROR else NUMBA_KERNELS

    def _mean_loss_accuracy(self, x, y) -> tuple[float, float]:
        n = int(y.shape[0])
        kernels, model = self.eval_kernels, self.model
        P = model.all_tensors()
        starts = list(range(0, n, EVAL_CHUNK))
        parts: list[tuple[float, int]] = [(0.0, 0)] * len(starts)

        def chunk(k: int) -> None:
            s = starts[k]
            logits = run_layers(model.layers, P, x[:, s : s + EVAL_CHUNK], kernels=kernels, train=False)
            yb = y[s : s + EVAL_CHUNK]
            parts[k] = (float(cross_entropy(logits, yb)), int((logits.argmax(axis=1) == yb).sum()))

        # chunks on several threads (CPU), summed in order: the same numbers on any number of threads
        for_each(chunk, range(len(starts)), threads=1 if self.backend.is_gpu else None)
        total, correct = 0.0, 0
        for loss, right in parts:
            total += loss
            correct += right
        return total / n, correct / n

    def evaluate(self, cycle: int) -> Evaluated:
        """Measure train loss (on an evaluation subset), test loss and test accuracy; add to the history."""
        cfg = self.config
        with engine_blas():  # the chunks run on every core already
            self.model.calibrate_bn(self.x_train[:, : cfg.bn_calibration_samples])
            n_eval = min(cfg.eval_train_samples, self.n_train)
            train_loss, _ = self._mean_loss_accuracy(self.x_train[:, :n_eval], self.y_train[:n_eval])
            test_loss, test_acc = self._mean_loss_accuracy(self.x_test, self.y_test)
        for name, value in (("train loss", train_loss), ("test loss", test_loss)):
            if not np.isfinite(value):
                raise TrainingError(
                    f"the {name} is {value} after cycle {cycle}: the weights have diverged "
                    "(for SGD lower the learning rate; for RSO check the data for NaNs)"
                )
        ev = Evaluated(self.algorithm, cycle, train_loss, test_loss, test_acc,
                       self.weight_updates, self.forward_samples, self.seconds)
        self.history.append(ev)
        return ev

    # ------------------------------------------------------------------ state
    def _base_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {
            "algorithm": self.algorithm,
            "weight_updates": self.weight_updates,
            "forward_samples": self.forward_samples,
            "seconds": self.seconds,
            "history": [list(ev) for ev in self.history],
        }
        arrays = {f"param/{k}": v for k, v in self.model.params_numpy().items()}
        arrays.update({f"buffer/{k}": np.array(to_numpy(v)) for k, v in self.model.buffers.items()})
        return meta, arrays

    def _load_base_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray], own: Iterable[str] = ()) -> None:
        """Check and restore what every trainer saves; ``own`` names the subclass's arrays (checked by it).

        Raises :class:`~rso_engine.training.state.StateError` naming the field, before changing anything.
        """
        meta = check.mapping(meta, "the saved state")
        if meta.get("algorithm") != self.algorithm:
            raise check.StateError(f"this state is of the algorithm {check.describe(meta.get('algorithm'))}, "
                                   f"not {self.algorithm}")
        params = {f"param/{k}": s for k, s in self.model.param_shapes().items()}
        buffers = {f"buffer/{name}": (layer.channels,) for layer in self.model.bn_layers()
                   for name in layer.buffer_names()}
        check.only_keys(arrays, [*params, *buffers, *own])
        host = {k[len("param/"):]: check.float_array(arrays, k, s) for k, s in params.items()}
        saved_buffers = {}
        if any(k.startswith("buffer/") for k in arrays):  # none before the first evaluation
            saved_buffers = {k[len("buffer/"):]: check.float_array(arrays, k, s) for k, s in buffers.items()}
            negative = [k for k in saved_buffers if k.endswith(".var") and (saved_buffers[k] < 0).any()]
            if negative:
                raise check.StateError(f"the array buffer/{negative[0]} holds negative variances")
        weight_updates = check.count(meta.get("weight_updates"), "weight_updates")
        forward_samples = check.count(meta.get("forward_samples"), "forward_samples")
        seconds = check.number(meta.get("seconds"), "seconds")
        history = check.history(meta.get("history"), self.algorithm)
        self.model.set_params(host)
        xp = self.backend.xp
        self.model.buffers = {k: xp.asarray(v, dtype=self.model.dtype) for k, v in saved_buffers.items()}
        self.weight_updates, self.forward_samples, self.seconds = weight_updates, forward_samples, seconds
        self.history = history

    def state_dict(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able metadata, NumPy arrays) capturing the run exactly at the current event."""
        raise NotImplementedError

    def load_state_dict(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


class Stopwatch:
    """Adds the time spent inside ``with`` blocks to a trainer's ``seconds`` (on a GPU after the device
    has finished the block's work); BLAS runs on one thread inside them (:func:`~rso_engine.backend.engine_blas`)
    unless ``one_blas_thread`` is False (SGD's steps: one batch's products, which BLAS threads do speed up)."""

    def __init__(self, trainer: Trainer, one_blas_thread: bool = True):
        self.trainer = trainer
        self.last = 0.0
        self.one_blas_thread = one_blas_thread

    def __enter__(self):
        # RSO's sweeps: the engine's own threads use the cores (see engine_blas)
        self._blas = engine_blas() if self.one_blas_thread else contextlib.nullcontext()
        self._blas.__enter__()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.trainer.backend.synchronize()  # on a GPU the block's launches may still be running
        self.last = time.perf_counter() - self._t0
        self.trainer.seconds += self.last
        self._blas.__exit__(*exc)
        return False
