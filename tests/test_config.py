"""Run configs: every value from JSON, a preset, a session header or the command line either validates to the
declared types and ranges or raises ConfigError naming the field, the value and what is allowed; never
another exception. Property-based (hypothesis) with a bounded number of examples, plus the cases found by hand."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rso_engine.cli import main
from rso_engine.config import (
    ALGORITHMS,
    BATCH_MODES,
    DTYPES,
    IN_LAYER_ORDERS,
    INT_MAX,
    LAYER_ORDERS,
    ConfigError,
    RunConfig,
    field_rules,
)
from rso_engine.evaluators import evaluator_names
from rso_engine.models import MODELS
from rso_engine.presets import list_presets, load_preset

FIELDS = [f.name for f in dataclasses.fields(RunConfig)]
TINY = ["--n-train", "128", "--n-test", "100", "--batch-size", "16", "--eval-train-samples", "64"]

# what each field may hold, written out independently of the implementation's table
CHOICES = {
    "algorithm": ALGORITHMS, "model": tuple(MODELS), "dtype": DTYPES, "batch_mode": BATCH_MODES,
    "layer_order": LAYER_ORDERS, "in_layer_order": IN_LAYER_ORDERS, "evaluator": ("auto", *evaluator_names()),
    "update": ("sequential", "layer-parallel", "neuron-parallel"),
}  # fmt: skip
BOOLS = ("anneal", "search_bn", "nesterov")
INTS = {"seed": 0, "cycles": 1, "batch_size": 1, "sgd_batch_size": 1, "eval_train_samples": 1,
        "bn_calibration_samples": 1, "n_train": 1, "n_test": 1}  # field -> minimum  # fmt: skip
OPTIONAL_INTS = ("n_train", "n_test")
FLOATS = {  # field -> test of a finite float
    "lr": lambda v: v > 0, "momentum": lambda v: 0 <= v < 1, "weight_decay": lambda v: v >= 0,
    "stay_decay": lambda v: 0 <= v < 1, "anneal_to": lambda v: 0 < v <= 1,
}  # fmt: skip


def assert_well_formed(cfg: RunConfig) -> None:
    """Every field of ``cfg`` has its declared type and range, and the config saves and reloads unchanged."""
    for name, allowed in CHOICES.items():
        assert type(getattr(cfg, name)) is str and getattr(cfg, name) in allowed, name
    for name in BOOLS:
        assert type(getattr(cfg, name)) is bool, name
    for name, low in INTS.items():
        value = getattr(cfg, name)
        if value is None and name in OPTIONAL_INTS:
            continue
        assert type(value) is int and low <= value <= INT_MAX, name
    for name, ok in FLOATS.items():
        value = getattr(cfg, name)
        assert type(value) is float and math.isfinite(value) and ok(value), name
    assert type(cfg.dataset) is str
    assert cfg.data_dir is None or type(cfg.data_dir) is str
    assert cfg.train_layers is None or (
        type(cfg.train_layers) is list and cfg.train_layers and all(type(s) is str and s for s in cfg.train_layers)
    )
    assert type(cfg.notes) is dict
    text = json.dumps(cfg.to_dict(), allow_nan=False)  # standard JSON, no NaN/Infinity
    assert RunConfig.from_json(text) == cfg


# --------------------------------------------------------------------------- strategies
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
#: values near the edges of what fields allow, so that valid configs come up often too
edge_values = st.sampled_from([
    None, True, False, 0, 1, -1, 2, 16, INT_MAX, INT_MAX + 1, 10**400, 0.0, -0.0, 0.5, 1.0, 1.5, 1e-300, 1e300,
    math.inf, -math.inf, math.nan, "", " ", "true", "false", "no", "1", "auto", "reference", "fc,conv1", " , ",
    ["fc"], ["fc", ""], [1, 2], [], {}, {"description": "x"}, {"a": [1, {"b": None}]},
    *{v for allowed in CHOICES.values() for v in allowed}, "One-Conv", "PAPER_NET",
])  # fmt: skip
values = json_values | edge_values


def valid_values(name: str) -> st.SearchStrategy:
    """Values field ``name`` accepts as they are (the property below checks that it does)."""
    if name in CHOICES:
        return st.sampled_from(CHOICES[name])
    if name in BOOLS:
        return st.booleans()
    if name in INTS:
        whole = st.integers(INTS[name], INT_MAX)
        return st.none() | whole if name in OPTIONAL_INTS else whole
    if name in FLOATS:
        return st.floats(0, 1, allow_nan=False).filter(FLOATS[name]) | st.floats(1e-6, 1e6).filter(FLOATS[name])
    if name == "train_layers":
        return st.none() | st.lists(st.text(min_size=1).map(str.strip).filter(bool), min_size=1, max_size=4)
    if name == "notes":
        return st.dictionaries(st.text(max_size=6), json_values.filter(_is_standard_json), max_size=4)
    return st.none() | st.text() if name == "data_dir" else st.text()


def _is_standard_json(value) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


any_config = st.fixed_dictionaries({}, optional={name: valid_values(name) | values for name in FIELDS})

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def from_dict_or_config_error(data) -> None:
    try:
        cfg = RunConfig.from_dict(data)
    except ConfigError as exc:
        assert str(exc), "a ConfigError says what is wrong"
        event("refused")
        return
    event("valid")
    assert_well_formed(cfg)


# --------------------------------------------------------------------------- properties
@pytest.mark.parametrize("name", FIELDS)
@FAST
@given(value=values)
def test_any_value_of_one_field_validates_or_raises_config_error(name, value):
    from_dict_or_config_error({name: value})


@pytest.mark.parametrize("name", FIELDS)
@FAST
@given(data=st.data())
def test_every_allowed_value_is_accepted_as_it_is(name, data):
    value = data.draw(valid_values(name))
    assert getattr(RunConfig.from_dict({name: value}), name) == value


@settings(max_examples=300, deadline=None)
@given(data=any_config, extra=st.dictionaries(st.text(max_size=8), values, max_size=2))
def test_any_json_object_validates_or_raises_config_error(data, extra):
    from_dict_or_config_error({**data, **extra})


@settings(max_examples=100, deadline=None)
@given(data=json_values)
def test_any_json_value_as_the_whole_config_validates_or_raises_config_error(data):
    from_dict_or_config_error(data)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=40) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
def test_any_text_as_json_validates_or_raises_config_error(text):
    try:
        cfg = RunConfig.from_json(text)
    except ConfigError:
        return
    assert_well_formed(cfg)


@settings(max_examples=50, deadline=None)
@given(raw=st.binary(max_size=60))
def test_any_bytes_in_a_file_load_or_raise_config_error_naming_it(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("cfg") / "run.json"
    path.write_bytes(raw)
    try:
        cfg = RunConfig.load(path)
    except ConfigError as exc:
        assert str(path) in str(exc)
        return
    assert_well_formed(cfg)


# --------------------------------------------------------------------------- the table covers every field
def test_every_field_has_a_rule_and_the_defaults_validate():
    assert list(field_rules()) == FIELDS
    assert set(CHOICES) | set(BOOLS) | set(INTS) | set(FLOATS) | {"dataset", "data_dir", "train_layers",
                                                                    "notes"} == set(FIELDS)  # fmt: skip
    assert_well_formed(RunConfig().validated())


def test_every_builtin_preset_validates():
    for preset in list_presets():
        assert_well_formed(load_preset(preset.name))


def test_the_windows_default_config_validates():
    pytest.importorskip("PySide6")
    from rso_gui.controller import DEFAULT_CONFIG  # noqa: PLC0415

    assert_well_formed(DEFAULT_CONFIG.validated())


# --------------------------------------------------------------------------- the cases found by hand
@pytest.mark.parametrize("field", BOOLS)
@pytest.mark.parametrize("value", ["false", "no", 0, 1, None])
def test_booleans_must_be_json_booleans(field, value):
    with pytest.raises(ConfigError) as exc:
        RunConfig.from_dict({field: value})
    assert str(exc.value) == f"{field} must be true or false (got {value!r})"


def test_anneal_false_as_a_string_is_refused_not_read_as_on():
    with pytest.raises(ConfigError, match=r"^anneal must be true or false \(got 'false'\)$"):
        RunConfig.from_json('{"anneal": "false"}')
    assert RunConfig.from_json('{"anneal": false}').anneal is False


@pytest.mark.parametrize("field, value, message", [
    ("lr", math.inf, "lr must be a finite number > 0 (got inf)"),
    ("lr", 0, "lr must be a finite number > 0 (got 0)"),
    ("lr", "0.1", "lr must be a finite number > 0 (got '0.1')"),
    ("weight_decay", math.inf, "weight_decay must be a finite number ≥ 0 (got inf)"),
    ("weight_decay", math.nan, "weight_decay must be a finite number ≥ 0 (got nan)"),
    ("momentum", 1.0, "momentum must be a number in [0, 1) (got 1.0)"),
    ("stay_decay", -1e-4, "stay_decay must be a number in [0, 1) (got -0.0001)"),
    ("anneal_to", -math.inf, "anneal_to must be a number in (0, 1] (got -inf)"),
    ("dataset", 5, "dataset must be a string (got 5)"),
    ("model", None, "model must be a string (got None)"),
    ("model", "resnet", "model must be one of oneconv, twoconv, papernet, mlp, papercifar (got 'resnet')"),
    ("data_dir", [], "data_dir must be a string or null (got [])"),
    ("train_layers", [1, 2], "train_layers must be null (every layer), a comma-separated string or a list of "
                             "layer names (got [1, 2])"),
    ("train_layers", " , ", "train_layers is empty"),
    ("seed", -1, "seed must be a whole number from 0 to 2147483647 (got -1)"),
    ("seed", 1.0, "seed must be a whole number from 0 to 2147483647 (got 1.0)"),
    ("cycles", True, "cycles must be a whole number from 1 to 2147483647 (got True)"),
    ("n_train", 0, "n_train must be a whole number from 1 to 2147483647 or null (got 0)"),
    ("batch_size", 2**31, "batch_size must be a whole number from 1 to 2147483647 (got 2147483648)"),
    ("evaluator", "fastest", "evaluator must be one of auto, "),
    ("notes", [], "notes must be a JSON object"),
    ("notes", {"x": math.nan}, "notes must be a JSON object"),
])  # fmt: skip
def test_wrong_values_name_the_field_the_value_and_what_is_allowed(field, value, message):
    with pytest.raises(ConfigError) as exc:
        RunConfig.from_dict({field: value})
    assert str(exc.value).startswith(message)


def test_values_are_normalised():
    cfg = RunConfig.from_dict({"model": "Two-Conv", "lr": 1, "train_layers": "fc, conv1", "seed": 2})
    assert (cfg.model, cfg.lr, type(cfg.lr), cfg.train_layers) == ("twoconv", 1.0, float, ["fc", "conv1"])
    assert RunConfig.from_dict({"train_layers": ["fc"]}).train_layers == ["fc"]
    assert RunConfig.from_dict({"evaluator": "reference"}).evaluator == "reference"


def test_unknown_keys_are_refused_whatever_their_type():
    with pytest.raises(ConfigError, match="unknown config field"):
        RunConfig.from_dict({"anneal": True, 3: "x", "lrr": 0.1})


@pytest.mark.parametrize("depth", [500, 100_000])
def test_deeply_nested_json_is_a_config_error(tmp_path, depth):
    text = '{"notes": {"a": ' + "[" * depth + "]" * depth + "}}"
    with pytest.raises(ConfigError, match="notes must be|nests too deeply"):
        RunConfig.from_json(text)
    path = tmp_path / "deep.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        RunConfig.load(path)
    assert str(exc.value).startswith(f"{path}: ")


def test_a_non_utf8_file_is_a_config_error_naming_the_file(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"notes": {"description": "café"}}'.encode("latin-1"))
    with pytest.raises(ConfigError) as exc:
        RunConfig.load(path)
    assert str(exc.value).startswith(f"{path}: not UTF-8 text") and "save the config as UTF-8" in str(exc.value)


def test_a_config_saves_as_utf8_and_reloads(tmp_path):
    cfg = RunConfig(notes={"description": "σ annealed, café"})
    cfg.save(tmp_path / "run.json")
    assert RunConfig.load(tmp_path / "run.json") == cfg


# --------------------------------------------------------------------------- the command line
def test_weight_decay_inf_on_the_command_line_is_refused_up_front_naming_it(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--weight-decay", "inf", *TINY])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--weight-decay" in err and "'inf' is not a finite number" in err and "learning rate" not in err


@pytest.mark.parametrize("argv, message", [
    (["--lr", "0"], "lr must be a finite number > 0 (got 0.0)"),
    (["--seed", "-1"], "seed must be a whole number from 0"),
    (["--evaluator", "fastest"], "evaluator must be one of auto, "),
    (["--train-layers", ","], "train_layers is empty"),
])  # fmt: skip
def test_bad_run_options_are_refused_before_training_naming_the_field(capsys, argv, message):
    assert main(["train", *argv, *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rso: error: {message}") and len(err.splitlines()) == 1


@pytest.mark.parametrize("text, message", [
    ('{"weight_decay": Infinity}', "weight_decay must be a finite number ≥ 0 (got inf)"),
    ('{"anneal": "no"}', "anneal must be true or false (got 'no')"),
    ('{"dataset": 5}', "dataset must be a string (got 5)"),
])  # fmt: skip
def test_a_bad_config_file_is_refused_naming_the_file_and_the_field(capsys, tmp_path, text, message):
    path = tmp_path / "run.json"
    path.write_text(text)
    assert main(["train", "--config", str(path), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"rso: error: {path}: {message}"
