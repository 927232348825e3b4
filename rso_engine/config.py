"""A run as data: :class:`RunConfig` (dataclass ⇄ JSON), validated with messages a user can act on."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALGORITHMS = ("rso", "sgd")
BATCH_MODES = ("weight", "layer", "cycle")
LAYER_ORDERS = ("output-first", "input-first")
IN_LAYER_ORDERS = ("forward", "reverse")
DTYPES = ("float32", "float64")


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
    batch_mode: str = "weight"  # a fresh batch per weight (paper), per layer, or per cycle
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
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(known))}")
        return cls(**data).validated()

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"the config is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        try:
            return cls.from_json(text)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes).validated()

    # ------------------------------------------------------------------ validation
    def validated(self) -> RunConfig:
        """Return self if every value is possible, else raise :class:`ConfigError`."""
        from .models import MODELS  # noqa: PLC0415

        def one_of(name: str, allowed: tuple[str, ...]) -> None:
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)} (got {getattr(self, name)!r})")

        def positive(name: str, allow_none: bool = False) -> None:
            value = getattr(self, name)
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number ≥ 1 (got {value!r})")

        one_of("algorithm", ALGORITHMS)
        self.model = str(self.model).lower().replace("-", "").replace("_", "")
        one_of("model", tuple(MODELS))
        one_of("batch_mode", BATCH_MODES)
        one_of("layer_order", LAYER_ORDERS)
        one_of("in_layer_order", IN_LAYER_ORDERS)
        one_of("dtype", DTYPES)
        for name in ("cycles", "batch_size", "sgd_batch_size", "eval_train_samples", "bn_calibration_samples"):
            positive(name)
        positive("n_train", allow_none=True)
        positive("n_test", allow_none=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a whole number ≥ 0 (got {self.seed!r})")
        for name in ("lr", "momentum", "weight_decay", "stay_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value == value or value < 0:
                raise ConfigError(f"{name} must be a number ≥ 0 (got {value!r})")
        if isinstance(self.anneal_to, bool) or not isinstance(self.anneal_to, (int, float)) or not (
            0 < self.anneal_to <= 1
        ):
            raise ConfigError(f"anneal_to must be a number in (0, 1] (got {self.anneal_to!r})")
        if self.momentum >= 1:
            raise ConfigError(f"momentum must be below 1 (got {self.momentum})")
        if self.stay_decay >= 1:
            raise ConfigError(f"stay_decay must be below 1 (got {self.stay_decay})")
        if self.train_layers is not None:
            if isinstance(self.train_layers, str):
                self.train_layers = [s.strip() for s in self.train_layers.split(",") if s.strip()]
            if not self.train_layers:
                raise ConfigError("train_layers is empty: name at least one layer, or leave it unset for all")
        return self
