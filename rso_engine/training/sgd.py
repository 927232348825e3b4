"""The SGD/backprop baseline: the same models, data and seeds as RSO, the same kind of events.

Plain mini-batch SGD on the mean cross-entropy, with optional (Nesterov) momentum and L2 weight decay,
as an optimizer object (:mod:`.optim`).
Budget counters match RSO's so the two can be compared on a fair axis: each step counts every
parameter as one weight update and ``batch_size`` forward-pass samples.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backend import Backend, to_numpy
from ..config import RunConfig
from ..events import CycleDone, SGDStep
from ..models import cross_entropy, softmax_grad
from . import state as check
from .base import Stopwatch, Trainer, TrainingError
from .optim import apply_updates, sgd


class SGDTrainer(Trainer):
    """Trains a model with SGD for ``config.cycles`` epochs of ``config.sgd_batch_size`` batches."""

    algorithm = "sgd"

    def __init__(self, config: RunConfig, dataset=None, backend: Backend | None = None):
        super().__init__(config, dataset, backend)
        self.rng = np.random.default_rng([self.config.seed, 3])
        self.epoch = 0  # 0-based epoch in progress
        self.step_in_epoch = 0
        self.steps = 0
        self.perm: np.ndarray | None = None
        cfg = self.config
        self.optimizer = sgd(cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay)
        self.opt_state = self.optimizer.init(self.model.params)

    @property
    def batch_size(self) -> int:
        return min(self.config.sgd_batch_size, self.n_train)

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n_train // self.batch_size)

    @property
    def finished(self) -> bool:
        return self.epoch >= self.config.cycles

    @property
    def cycles_started(self) -> int:
        return self.epoch + (1 if self.step_in_epoch else 0)

    def step(self, idx: np.ndarray) -> float:
        """One SGD step on the batch ``idx``; returns the batch's mean loss before the step."""
        cfg = self.config
        xp = self.backend.xp
        d = xp.asarray(idx)
        logits, caches = self.model.forward_keep(self.x_train[:, d], train=True)
        yb = self.y_train[d]
        loss = float(cross_entropy(logits, yb, reduction="mean"))
        if not np.isfinite(loss):
            raise TrainingError(f"the SGD loss became {loss} in epoch {self.epoch + 1}, step {self.steps + 1}: "
                                f"the learning rate {cfg.lr} is too high; lower it and reset")
        grads = self.model.backward(softmax_grad(logits, yb), caches)
        updates, self.opt_state = self.optimizer.update(grads, self.opt_state, self.model.params)
        apply_updates(self.model.params, updates)
        return loss

    def events(self) -> Iterator[Any]:
        if not self.history:
            yield self.evaluate(0)
        watch = Stopwatch(self, one_blas_thread=False)  # one batch's products: BLAS's own threads help
        B = self.batch_size
        while not self.finished:
            if self.perm is None:
                self.perm = self.rng.permutation(self.n_train)
            s = self.step_in_epoch * B
            idx = self.perm[s : s + B]
            with watch:
                loss = self.step(idx)
            self.steps += 1
            self.step_in_epoch += 1
            self.weight_updates += self.model.n_params
            self.forward_samples += len(idx)
            epoch = self.epoch + 1
            done: list[Any] = [SGDStep(epoch, self.steps, loss, len(idx))]
            if self.step_in_epoch == self.steps_per_epoch:
                self.epoch += 1
                self.step_in_epoch = 0
                self.perm = None
                done.append(CycleDone(self.algorithm, epoch, self.weight_updates, self.forward_samples, self.seconds))
                done.append(self.evaluate(epoch))
            yield from done

    def state_dict(self):
        meta, arrays = self._base_state()
        meta["sgd"] = {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "steps": self.steps,
                       "rng": self.rng.bit_generator.state}
        if self.perm is not None:
            arrays["sgd/perm"] = self.perm
        arrays.update({f"velocity/{k}": np.array(to_numpy(v)) for k, v in self.opt_state["trace"].items()})
        return meta, arrays

    def load_state_dict(self, meta, arrays):
        """Continue from a :meth:`state_dict` (read from a file: every value is checked against the model
        and the data first; a :class:`~rso_engine.training.state.StateError` if one does not fit)."""
        s = check.mapping(check.mapping(meta, "the saved state").get("sgd"), "the saved SGD state")
        velocity = {f"velocity/{k}": tuple(v.shape) for k, v in self.model.params.items()}
        self._load_base_state(meta, arrays, own=("sgd/perm", *velocity))
        epoch = check.count(s.get("epoch"), "sgd.epoch", high=self.config.cycles)
        step_in_epoch = check.count(s.get("step_in_epoch"), "sgd.step_in_epoch", high=self.steps_per_epoch - 1)
        steps = check.count(s.get("steps"), "sgd.steps")
        perm = arrays.get("sgd/perm")
        if perm is not None:
            perm = check.permutation(perm, "sgd/perm", self.n_train)
        elif step_in_epoch:
            raise check.StateError(f"the array sgd/perm is missing, yet step {step_in_epoch} of the epoch is saved")
        if epoch == self.config.cycles and step_in_epoch:
            raise check.StateError(f"sgd.step_in_epoch is {step_in_epoch} after the last epoch")
        trace = {k[len("velocity/"):]: check.float_array(arrays, k, shape) for k, shape in velocity.items()}
        check.rng_state(self.rng, s.get("rng"), "sgd.rng")
        self.epoch, self.step_in_epoch, self.steps, self.perm = epoch, step_in_epoch, steps, perm
        xp = self.backend.xp
        self.opt_state["trace"] = {k: xp.array(v, dtype=self.model.dtype) for k, v in trace.items()}
