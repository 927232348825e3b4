"""Small shared pieces for the engine tests: a tiny real dataset and quick configs."""

from __future__ import annotations

import functools
import time

import numpy as np

from rso_engine.config import RunConfig
from rso_engine.data import load_dataset


@functools.lru_cache(maxsize=1)
def sample():
    """The bundled MNIST sample (loaded once per test session)."""
    return load_dataset("mnist-sample", progress=False)


def tiny_config(**changes) -> RunConfig:
    """A run small enough for the reference evaluator in a unit test: few images, small batches."""
    base = dict(model="oneconv", n_train=256, n_test=200, batch_size=16, cycles=2, dtype="float64",
                eval_train_samples=128, bn_calibration_samples=128, train_layers=["conv1"])
    base.update(changes)
    return RunConfig(**base).validated()


def params_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def without_seconds(history):
    return [ev._replace(seconds=0.0) for ev in history]


#: seconds a test waits for an engine thread (generous: CI machines are slow and shared)
WAIT_S = 60.0


def wait_for(cond, timeout: float = WAIT_S) -> None:
    """Poll ``cond()`` until it is true; TimeoutError after ``timeout`` seconds."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("condition not reached")
        time.sleep(0.002)
