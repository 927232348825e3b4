"""Configs, histories and checkpoint files: round trips and clear errors on bad input."""

import json

import numpy as np
import pytest

from helpers import sample, tiny_config
from rso_engine.backend import BackendError, get_backend
from rso_engine.config import ConfigError, RunConfig
from rso_engine.experiment import (
    CHECKPOINT_VERSION,
    CheckpointError,
    load_checkpoint,
    load_history,
    make_trainer,
    read_checkpoint,
    save_checkpoint,
    save_history,
)

NUMPY = get_backend("numpy")


def test_config_json_round_trip(tmp_path):
    cfg = RunConfig(model="twoconv", batch_size=64, seed=7, train_layers=["fc"], stay_decay=1e-4)
    assert RunConfig.from_json(cfg.to_json()) == cfg
    cfg.save(tmp_path / "c.json")
    assert RunConfig.load(tmp_path / "c.json") == cfg


@pytest.mark.parametrize("changes, match", [
    ({"model": "resnet"}, "model must be one of"),
    ({"batch_size": 0}, "batch_size must be a whole number"),
    ({"batch_mode": "sample"}, "batch_mode must be one of"),
    ({"lr": -1}, r"lr must be a finite number > 0"),
    ({"momentum": 1.0}, r"momentum must be a number in \[0, 1\)"),
    ({"seed": -3}, "seed"),
    ({"train_layers": []}, "train_layers is empty"),
])
def test_impossible_configs_are_refused_clearly(changes, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(**changes).validated()


def test_unknown_config_fields_and_bad_json_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown config field.*batchsize"):
        RunConfig.from_dict({"batchsize": 3})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json.*not valid JSON"):
        RunConfig.load(tmp_path / "bad.json")


def test_unknown_layer_names_are_refused():
    with pytest.raises(ValueError, match="unknown layer.*conv9.*has conv1, fc"):
        make_trainer(tiny_config(train_layers=["conv9"]), sample(), NUMPY)


def test_history_round_trips_through_csv_and_json(tmp_path):
    t = make_trainer(tiny_config(cycles=1), sample(), NUMPY, evaluator="reference")
    t.run()
    for name in ("h.csv", "h.json"):
        save_history(tmp_path / name, t.history, t.config)
        assert load_history(tmp_path / name) == t.history
    doc = json.loads((tmp_path / "h.json").read_text())
    assert doc["config"]["model"] == "oneconv"
    assert (tmp_path / "h.csv").read_text().splitlines()[0].startswith("algorithm,cycle,train_loss")
    (tmp_path / "bad.csv").write_text("algorithm,cycle\nrso,x\n")
    (tmp_path / "bad.json").write_text('{"history": [{"cycle": 1}]}')
    (tmp_path / "latin.json").write_bytes(b"\xff\xfe")
    for name in ("bad.csv", "bad.json", "latin.json"):
        with pytest.raises(ValueError, match=f"{name} is not a readable rso history"):
            load_history(tmp_path / name)
    with pytest.raises(ValueError, match="cannot read the history .*missing.csv"):
        load_history(tmp_path / "missing.csv")


def test_checkpoints_refuse_foreign_damaged_and_newer_files(tmp_path):
    t = make_trainer(tiny_config(cycles=1), sample(), NUMPY, evaluator="reference")
    path = save_checkpoint(tmp_path / "ok.npz", t)
    header, arrays = read_checkpoint(path)
    assert header["version"] == CHECKPOINT_VERSION == 2 and "t0/param/fc.weight" in arrays
    with pytest.raises(CheckpointError, match="no such file"):
        read_checkpoint(tmp_path / "missing.npz")
    (tmp_path / "trunc.npz").write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="trunc.npz is not a readable rso file"):
        read_checkpoint(tmp_path / "trunc.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not an rso checkpoint"):
        read_checkpoint(tmp_path / "other.npz")
    header["version"] = 99
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(tmp_path / "newer.npz", **arrays)
    with pytest.raises(CheckpointError, match="newer rso"):
        load_checkpoint(tmp_path / "newer.npz", dataset=sample(), backend=NUMPY)
    for version in (0, -1, "2", True, 2.0, None):
        header["version"] = version
        arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
        np.savez(tmp_path / "odd.npz", **arrays)
        with pytest.raises(CheckpointError, match=rf"odd.npz has an unknown format version {version!r}"):
            read_checkpoint(tmp_path / "odd.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty.npz is not a readable rso file \(it is empty\)"):
        read_checkpoint(tmp_path / "empty.npz")


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    t = make_trainer(tiny_config(cycles=1), sample(), NUMPY, evaluator="reference")
    path = save_checkpoint(tmp_path / "run.npz", t)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("rso_engine.files.os.replace", boom)
    t.model.params["fc.weight"][:] = 0
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, t)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]  # no temporary file left behind


def test_backend_choice(monkeypatch):
    assert get_backend("numpy").name == "numpy"
    with pytest.raises(BackendError, match="unknown backend"):
        get_backend("tpu")
    from rso_engine.backend import cupy_unavailable_reason

    if cupy_unavailable_reason():
        with pytest.raises(BackendError, match="RSO_BACKEND=cupy was requested but"):
            get_backend("cupy")
    monkeypatch.setenv("RSO_BACKEND", "numpy")
    assert get_backend().name == "numpy"
