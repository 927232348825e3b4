"""Data for the window's runs, loaded once per process, and error messages for people."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rso_engine.backend import BackendError
from rso_engine.config import ConfigError
from rso_engine.data import DataError, load_dataset
from rso_engine.training import TrainingError

_DATA_CACHE: dict[tuple[str, str | None], Any] = {}
_DATA_LOCK = threading.Lock()


def load_dataset_cached(name: str, data_dir: str | None = None):
    """Load a dataset once per process (the GUI resets often); thread-safe."""
    key = (name, data_dir)
    with _DATA_LOCK:
        if key in _DATA_CACHE:
            return _DATA_CACHE[key]
    ds = load_dataset(name, data_dir=data_dir, progress=False)
    with _DATA_LOCK:
        _DATA_CACHE[key] = ds
    return ds


def load_dataset_stoppable(name: str, data_dir: str | None, stopping: Callable[[], bool]):
    """:func:`load_dataset_cached` in a helper thread, so a stop request during a download is honoured:
    the dataset, or None as soon as ``stopping()`` is true; the loader's error is raised here."""
    box: dict[str, Any] = {}

    def load():
        try:
            box["data"] = load_dataset_cached(name, data_dir)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    loader = threading.Thread(target=load, name="rso-data-loader", daemon=True)
    loader.start()
    while loader.is_alive():
        loader.join(0.05)
        if stopping():
            return None
    if "error" in box:
        raise box["error"]
    return box["data"]


def expected_error(exc: BaseException) -> bool:
    """An error the engine raises on purpose, with a message that needs no traceback."""
    return isinstance(exc, (DataError, ConfigError, TrainingError, BackendError, ValueError))


def error_message(exc: BaseException) -> str:
    """A message for people: the engine's own errors already say what to do; others get their type."""
    if expected_error(exc):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: use a smaller batch size, model or dataset"
    return f"{type(exc).__name__}: {exc}"
