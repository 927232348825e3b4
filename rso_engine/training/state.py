"""Checks on a saved trainer state: every value a checkpoint or session file holds passes here first.

A file may be truncated, edited or crafted, and the compiled kernels behind the evaluators do not check
bounds (an index out of range reads or writes outside an array: a segfault, or worse). So before a
saved state reaches a trainer, each value is checked against what the trainer expects: types and
ranges of numbers, the shape of RNG states, the shape, dtype and finiteness of every array, that
batch orders are permutations and indices lie in range. A value that does not fit raises
:class:`StateError` naming the field and what is wrong; the loader (:mod:`rso_engine.experiment`)
adds the file's name and what to do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..events import Evaluated

MAX_COUNT = 2**62  # counters and positions above this are damage, not progress (and overflow int64)


class StateError(ValueError):
    """A saved trainer state does not fit the trainer; the message names the field and the problem."""


def mapping(value: Any, name: str) -> dict[str, Any]:
    """``value`` if it is a JSON object (a dict with string keys)."""
    if not isinstance(value, dict):
        raise StateError(f"{name} must be a JSON object, not {describe(value)}")
    return value


def count(value: Any, name: str, high: int = MAX_COUNT) -> int:
    """``value`` if it is a whole number in ``0..high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise StateError(f"{name} must be a whole number, not {describe(value)}")
    if not 0 <= value <= high:
        raise StateError(f"{name} is {value}, out of range 0..{high}")
    return value


def number(value: Any, name: str, low: float = 0.0, high: float = math.inf) -> float:
    """``value`` as a float if it is a finite number in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StateError(f"{name} must be a number, not {describe(value)}")
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        raise StateError(f"{name} is {value}, out of range {low:g}..{high:g}")
    return value


def only_keys(arrays: Mapping[str, np.ndarray], expected: Iterable[str], name: str = "arrays") -> None:
    """Refuse arrays the trainer does not know (a different model or a damaged file)."""
    unknown = sorted(set(arrays) - set(expected))
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise StateError(f"the saved {name} include {shown}, which this run does not have")


def float_array(arrays: Mapping[str, np.ndarray], key: str, shape: tuple[int, ...]) -> np.ndarray:
    """``arrays[key]`` if it is present, of ``shape``, of a float dtype, with finite values only."""
    if key not in arrays:
        raise StateError(f"the array {key} is missing")
    arr = _ndarray(arrays[key], key)
    if arr.shape != tuple(shape):
        raise StateError(f"the array {key} has shape {arr.shape}; this run needs {tuple(shape)}")
    if arr.dtype.kind != "f":
        raise StateError(f"the array {key} holds {arr.dtype} values; it must hold floats")
    if not np.isfinite(arr).all():
        raise StateError(f"the array {key} holds NaN or infinite values")
    return np.ascontiguousarray(arr)  # (a file may hold Fortran-ordered or big-endian arrays)


def index_array(value: Any, name: str, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """``value`` as int64 if it is an integer array of ``shape`` with every entry in ``0..n-1``."""
    arr = _int_array(value, name)
    if arr.shape != tuple(shape):
        raise StateError(f"the array {name} has shape {arr.shape}; this run needs {tuple(shape)}")
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise StateError(f"the array {name} holds indices {arr.min()}..{arr.max()}, out of range 0..{n - 1}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def permutation(value: Any, name: str, n: int, allow_empty: bool = False) -> np.ndarray:
    """``value`` as int64 if it is a permutation of ``range(n)`` (or empty, if ``allow_empty``)."""
    arr = _int_array(value, name)
    if arr.ndim != 1 or (arr.size != n and not (allow_empty and arr.size == 0)):
        raise StateError(f"the array {name} has shape {arr.shape}; it must be an order of the {n} training images")
    if arr.size and not np.array_equal(np.sort(arr), np.arange(n)):
        raise StateError(f"the array {name} is not an order of the {n} training images "
                         f"(it repeats an index or holds one out of range 0..{n - 1})")
    return np.ascontiguousarray(arr, dtype=np.int64)


def rng_state(generator: np.random.Generator, state: Any, name: str) -> None:
    """Set ``generator`` to the saved ``state`` if it has the shape of the generator's own state."""
    _same_shape(generator.bit_generator.state, state, name)
    try:
        generator.bit_generator.state = state
    except Exception as exc:  # noqa: BLE001 - numpy raises TypeError, ValueError, OverflowError, KeyError
        raise StateError(f"{name} is not a valid random-number state ({exc})") from exc


def history(rows: Any, algorithm: str) -> list[Evaluated]:
    """The saved history as :class:`Evaluated` rows, if every row has the fields and types of one."""
    if not isinstance(rows, list):
        raise StateError(f"the history must be a list of evaluations, not {describe(rows)}")
    out = []
    for i, row in enumerate(rows):
        where = f"history row {i + 1}"
        if not isinstance(row, list) or len(row) != len(Evaluated._fields):
            raise StateError(f"{where} must be a list of {len(Evaluated._fields)} values "
                             f"({', '.join(Evaluated._fields)})")
        if row[0] != algorithm:
            raise StateError(f"{where} is from a {row[0]!r} run, not {algorithm!r}")
        out.append(Evaluated(
            algorithm, count(row[1], f"{where}: cycle"), number(row[2], f"{where}: train_loss"),
            number(row[3], f"{where}: test_loss"), number(row[4], f"{where}: test_accuracy", high=1.0),
            count(row[5], f"{where}: weight_updates"), count(row[6], f"{where}: forward_samples"),
            number(row[7], f"{where}: seconds"),
        ))
    return out


# ------------------------------------------------------------------ helpers
def describe(value: Any) -> str:
    """A value read from a file, for a message: its JSON-ish type and (the start of) its repr."""
    return "null" if value is None else f"{type(value).__name__} {value!r}"[:80]


def _ndarray(value: Any, name: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise StateError(f"{name} must be an array, not {describe(value)}")
    return value


def _int_array(value: Any, name: str) -> np.ndarray:
    if value is None:
        raise StateError(f"the array {name} is missing")
    arr = _ndarray(value, name)
    if arr.dtype.kind not in "iu":
        raise StateError(f"the array {name} holds {arr.dtype} values; it must hold whole numbers")
    return arr


def _same_shape(template: Any, value: Any, name: str) -> None:
    """``value`` has the keys, nesting and value types of ``template`` (an RNG state as numpy writes it)."""
    if isinstance(template, dict):
        value = mapping(value, name)
        if set(value) != set(template):
            raise StateError(f"{name} has the fields {sorted(value)}; a random-number state has {sorted(template)}")
        for key, sub in template.items():
            _same_shape(sub, value[key], f"{name}.{key}")
    elif isinstance(template, bool) or not isinstance(template, int):
        if value != template:  # the bit generator's name
            raise StateError(f"{name} is {value!r}, not {template!r}")
    else:
        count(value, name, high=2**128 - 1)
