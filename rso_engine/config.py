"""A run as data: :class:`RunConfig` (dataclass ⇄ JSON), validated with messages a user can act on."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from .vocabulary import EVALUATOR_NAMES

ALGORITHMS = ("rso", "sgd")
#: "weight": a fresh batch per weight (the paper); "layer"/"cycle": one batch per layer's/cycle's sweep;
#: "authors": a fresh batch per weight drawn from the swept layer's input, computed once for the whole
#: training set when the layer's sweep begins (the authors' code; see AUTHORS_PREFIX_CHUNK)
BATCH_MODES = ("weight", "layer", "cycle", "authors")
#: batch mode "authors": the earlier layers' batch norms use the statistics of consecutive chunks of this
#: many training images (in dataset order) when the swept layer's input is computed
AUTHORS_PREFIX_CHUNK = 2000
#: how the chosen values of a layer are applied: one after the other (Algorithm 1), or every weight scored
#: against the layer's starting state and merged at its end ("layer-parallel"), or each output neuron's
#: weights searched in turn from the layer's starting state and the neurons merged ("neuron-parallel")
UPDATES = ("sequential", "layer-parallel", "neuron-parallel")
LAYER_ORDERS = ("output-first", "input-first")
IN_LAYER_ORDERS = ("forward", "reverse")
DTYPES = ("float32", "float64")
#: the largest whole number a field takes (it fits a C int: Qt's spin boxes, NumPy's int32)
INT_MAX = 2**31 - 1
#: how deep ``notes`` may nest (deep enough for any real note, shallow enough to copy and save)
NOTES_MAX_DEPTH = 32


class ConfigError(ValueError):
    """A configuration value is impossible; the message names the field and the allowed values."""


@dataclass
class RunConfig:
    """Everything that determines a run. The same config on the same backend gives the same numbers.

    RSO options follow Algorithm 1 of the paper and its known variants; SGD options describe the
    backprop baseline trained on the same model, data and seed.
    """

    algorithm: str = "rso"
    model: str = "oneconv"
    dataset: str = "mnist-sample"
    data_dir: str | None = None  # a folder with the four IDX files, instead of a named dataset
    n_train: int | None = None  # use only the first n training images (None: all)
    n_test: int | None = None
    seed: int = 0
    dtype: str = "float32"
    cycles: int = 10  # RSO cycles (every weight tried once per cycle) or SGD epochs

    # --- RSO (Algorithm 1) ---
    batch_size: int = 256  # images per RSO mini-batch (the authors' code: 5000)
    batch_mode: str = "weight"  # a fresh batch per weight (paper), per layer, per cycle, or "authors"
    update: str = "sequential"  # or "layer-parallel", "neuron-parallel" (the paper's parallel updates)
    anneal: bool = True  # σ_d(e) = σ_d·(α + (1 − α)·(C − e)/C) for 0-based cycle e (the authors' code)
    anneal_to: float = 0.1  # α above: the first cycle runs at σ_d, the last at σ_d·(α + (1 − α)/C)
    stay_decay: float = 0.0  # the "stay" candidate is w·(1 − stay_decay) (authors' code: 1e-4)
    layer_order: str = "output-first"  # the paper sweeps the output layer first
    in_layer_order: str = "forward"  # "reverse" inverts the order inside each layer
    search_bn: bool = True  # search BN γ/β right after their conv (else they stay frozen)
    train_layers: list[str] | None = None  # names of the layers RSO searches (None: all)
    evaluator: str = "auto"  # how candidates are scored: "reference", or a fast exact one

    # --- SGD baseline ---
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    sgd_batch_size: int = 32

    # --- evaluation ---
    eval_train_samples: int = 10_000  # training images the per-cycle train loss is measured on
    bn_calibration_samples: int = 2_000  # training images BN population statistics come from

    notes: dict[str, Any] = field(default_factory=dict)  # free-form, e.g. a preset's description

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build a config from a dict, refusing unknown keys (a typo must not pass silently)."""
        if not isinstance(data, dict):
            raise ConfigError(f"a run config must be a JSON object, not {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(known))}")
        return cls(**data).validated()

    @classmethod
    def from_json(cls, text: str | bytes) -> RunConfig:
        try:
            data = json.loads(text)
        except RecursionError:
            raise ConfigError("the config nests too deeply to be read (a run config is one flat JSON object)") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"the config is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except ValueError as exc:  # JSONDecodeError, or a number too long to convert
            raise ConfigError(f"the config is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read and validate config file ``path``; every :class:`ConfigError` names the file."""
        path = Path(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the config as UTF-8"
            ) from None
        try:
            return cls.from_json(text)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes).validated()

    # ------------------------------------------------------------------ validation
    def validated(self) -> RunConfig:
        """Return self if every value is possible (values normalised: ``model`` spelt canonically, a
        ``train_layers`` string split at commas, int lr as float…), else raise :class:`ConfigError`
        naming the field, the value and what is allowed. The checks are :func:`field_rules`."""
        for name, rule in field_rules().items():
            setattr(self, name, rule(name, getattr(self, name)))
        return self


# ---------------------------------------------------------------------- the rules, one per field
#: a field's check: (field name, value) -> the value, normalised; ConfigError if it is impossible
Rule = Callable[[str, Any], Any]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _refuse(name: str, value: Any, allowed: str) -> NoReturn:
    raise ConfigError(f"{name} must be {allowed} (got {_shown(value)})")


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):  # "false", "no", 0 and 1 are not booleans: "false" would be truthy
        _refuse(name, value, "true or false")
    return value


def _text(optional: bool = False) -> Rule:
    def rule(name: str, value: Any) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, os.PathLike) and optional:  # a folder given as a Path
            value = os.fspath(value)
        if not isinstance(value, str):
            _refuse(name, value, "a string" + (" or null" if optional else ""))
        return value

    return rule


def _choice(allowed: Iterable[str] | Callable[[], Iterable[str]], normalise: Callable[[str], str] = str) -> Rule:
    """One of ``allowed`` (a callable: computed when first needed), after ``normalise``."""

    def rule(name: str, value: Any) -> str:
        if not isinstance(value, str):
            _refuse(name, value, "a string")
        value = normalise(value)
        names = tuple(allowed() if callable(allowed) else allowed)
        if value not in names:
            _refuse(name, value, f"one of {', '.join(names)}")
        return value

    return rule


def _whole(minimum: int, optional: bool = False) -> Rule:
    def rule(name: str, value: Any) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not minimum <= value <= INT_MAX:
            _refuse(name, value, f"a whole number from {minimum} to {INT_MAX}" + (" or null" if optional else ""))
        return int(value)

    return rule


def _real(low: float = 0.0, high: float = math.inf, low_open: bool = False, high_open: bool = True) -> Rule:
    """A finite number in the interval from ``low`` to ``high`` (open at the ends flagged so)."""
    if high == math.inf:
        allowed = f"a finite number {'>' if low_open else '≥'} {low:g}"
    else:
        allowed = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def rule(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            _refuse(name, value, allowed)
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            _refuse(name, value, allowed)
        above = low < number if low_open else low <= number
        below = number < high if high_open else number <= high
        if not (math.isfinite(number) and above and below):
            _refuse(name, value, allowed)
        return number

    return rule


def _layer_names(name: str, value: Any) -> list[str] | None:
    """None (every layer), ``"fc,conv1"`` or ``["fc", "conv1"]``."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [s.strip() for s in value.split(",") if s.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) and s.strip() for s in value):
        _refuse(name, value, "null (every layer), a comma-separated string or a list of layer names")
    if not value:
        raise ConfigError(f"{name} is empty: name at least one layer, or leave it unset for all")
    return [s.strip() for s in value]


def _notes(name: str, value: Any) -> dict[str, Any]:
    """A JSON object of JSON values (so that the config saves), nested at most :data:`NOTES_MAX_DEPTH` deep."""
    allowed = f"a JSON object of strings, numbers, booleans, null, lists and objects, at most {NOTES_MAX_DEPTH} deep"
    if not isinstance(value, dict):
        _refuse(name, value, allowed)
    todo: list[tuple[Any, int]] = [(value, 1)]  # iterative: a deep note must not overflow the stack here
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            if depth > NOTES_MAX_DEPTH or not all(isinstance(k, str) for k in item):
                _refuse(name, value, allowed)
            todo += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, (list, tuple)):
            if depth > NOTES_MAX_DEPTH:
                _refuse(name, value, allowed)
            todo += [(v, depth + 1) for v in item]
        elif isinstance(item, float) and not math.isfinite(item):  # NaN/Infinity are not JSON
            _refuse(name, value, allowed)
        elif item is not None and not isinstance(item, (str, int, float)):
            _refuse(name, value, allowed)
    return value


def _normal_model_name(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _model_names() -> Iterable[str]:
    from .models import MODELS  # noqa: PLC0415  (models import NumPy kernels; loaded when first needed)

    return MODELS


def _evaluator_names() -> Iterable[str]:
    return ("auto", *EVALUATOR_NAMES)


#: the rule a field gets from its declared type, unless :data:`FIELD_RULES` names one
TYPE_RULES: dict[str, Rule] = {
    "bool": _boolean,
    "str": _text(),
    "str | None": _text(optional=True),
    "int": _whole(1),
    "int | None": _whole(1, optional=True),
    "float": _real(0.0),  # finite, ≥ 0
    "list[str] | None": _layer_names,
    "dict[str, Any]": _notes,
}

#: the fields whose rule is narrower than their type's
FIELD_RULES: dict[str, Rule] = {
    "algorithm": _choice(ALGORITHMS),
    "model": _choice(_model_names, _normal_model_name),
    "seed": _whole(0),
    "dtype": _choice(DTYPES),
    "batch_mode": _choice(BATCH_MODES),
    "update": _choice(UPDATES),
    "anneal_to": _real(0.0, 1.0, low_open=True, high_open=False),
    "stay_decay": _real(0.0, 1.0),
    "layer_order": _choice(LAYER_ORDERS),
    "in_layer_order": _choice(IN_LAYER_ORDERS),
    "evaluator": _choice(_evaluator_names),
    "lr": _real(0.0, low_open=True),
    "momentum": _real(0.0, 1.0),
}


@cache
def field_rules() -> dict[str, Rule]:
    """Every field of :class:`RunConfig` -> its rule, in declaration order (so the first bad field is named)."""
    return {f.name: FIELD_RULES.get(f.name) or TYPE_RULES[str(f.type)] for f in dataclasses.fields(RunConfig)}
