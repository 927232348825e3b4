"""Presets: every built-in loads and runs one step; user presets save, shadow, list and fail clearly."""

import json

import pytest

from helpers import sample
from rso_engine.backend import get_backend
from rso_engine.config import RunConfig
from rso_engine.events import Evaluated, SGDStep, WeightTried
from rso_engine.experiment import make_trainer
from rso_engine.presets import (
    PresetError,
    builtin_presets_dir,
    delete_preset,
    find_preset,
    gui_hints,
    list_presets,
    load_preset,
    save_preset,
    user_presets_dir,
)

NUMPY = get_backend("numpy")
BUILTIN = [
    "quick-demo",
    "explain-one-decision",
    "course-oneconv-b32",
    "course-oneconv-b64",
    "course-oneconv-b256",
    "course-oneconv-b512",
    "twoconv",
    "layer-parallel-demo",
    "paper-mnist",
]


@pytest.fixture(autouse=True)
def user_dir(tmp_path, monkeypatch):
    """Every test gets its own empty user preset folder."""
    monkeypatch.setenv("RSO_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg" / "presets"


def test_the_builtin_presets_are_listed_in_order_with_descriptions():
    presets = list_presets()
    assert [p.name for p in presets] == BUILTIN
    for p in presets:
        assert p.builtin and p.source == "built-in" and p.path.parent == builtin_presets_dir()
        assert len(p.description) > 40, p.name


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_preset_loads_and_runs_one_step(name):
    cfg = load_preset(name)
    assert isinstance(cfg, RunConfig) and cfg.notes["description"]
    # the data swapped for the bundled sample and shrunk, so that nothing downloads and it is quick
    small = cfg.replace(
        dataset="mnist-sample",
        n_train=128,
        n_test=50,
        batch_size=min(cfg.batch_size, 16),
        eval_train_samples=64,
        bn_calibration_samples=64,
        evaluator="reference",
    )
    rso = make_trainer(small, sample(), NUMPY)
    rso.set_chunking(1)  # one step is one weight
    events = rso.events()
    assert isinstance(next(events), Evaluated)
    first = next(events)
    assert isinstance(first, WeightTried) and first.step == 1 and first.cycle == 1
    sgd = make_trainer(small.replace(algorithm="sgd"), sample(), NUMPY)
    sgd_events = sgd.events()
    assert [type(next(sgd_events)), type(next(sgd_events))] == [Evaluated, SGDStep]


def test_the_builtin_presets_say_what_the_issue_asks():
    assert load_preset("quick-demo").dataset == "mnist-sample"  # offline
    for b in (32, 64, 256, 512):
        cfg = load_preset(f"course-oneconv-b{b}")
        assert (cfg.model, cfg.dataset, cfg.batch_size, cfg.cycles) == ("oneconv", "mnist", b, 10)
        assert "downloaded" in cfg.notes["description"]
    assert load_preset("twoconv").model == "twoconv"
    paper = load_preset("paper-mnist")
    assert (paper.model, paper.batch_size, paper.cycles, paper.stay_decay, paper.dataset) == (
        "papernet",
        5000,
        50,
        1e-4,
        "mnist",
    )
    hints = gui_hints(load_preset("explain-one-decision"))
    assert hints == {"speed": "slow", "seconds_per_weight": 2.0}
    assert gui_hints(RunConfig()) == {}
    assert gui_hints(RunConfig(notes={"gui": {"speed": "fast", "max_chunk": 1}})) == {"speed": "fast"}


def test_save_list_load_and_delete_a_user_preset(user_dir):
    cfg = RunConfig(model="mlp", batch_size=32, cycles=2, notes={"gui": {"speed": "fast"}})
    path = save_preset("my-demo", cfg, "my lecture demo")
    assert path == user_dir / "my-demo.json" and user_presets_dir() == user_dir
    assert not list(user_dir.glob("*.tmp"))
    loaded = load_preset("my-demo")
    assert loaded.notes == {"gui": {"speed": "fast"}, "description": "my lecture demo"}
    assert loaded.replace(notes={}) == cfg.replace(notes={})
    listed = list_presets()
    assert [p.name for p in listed] == [*BUILTIN, "my-demo"]
    mine = listed[-1]
    assert not mine.builtin and mine.source == "user" and mine.description == "my lecture demo"
    with pytest.raises(PresetError, match="already exists"):
        save_preset("my-demo", cfg)
    save_preset("my-demo", loaded.replace(cycles=5), overwrite=True)
    assert load_preset("my-demo").cycles == 5
    assert load_preset("my-demo").notes["description"] == "my lecture demo"  # the config's own notes are kept
    assert delete_preset("my-demo") == path and not path.exists()
    with pytest.raises(PresetError, match="no user preset"):
        delete_preset("my-demo")
    with pytest.raises(PresetError, match="built-in preset and cannot be deleted"):
        delete_preset("quick-demo")


def test_a_user_preset_shadows_a_builtin_only_when_asked():
    with pytest.raises(PresetError, match="'quick-demo' is a built-in preset; choose another name"):
        save_preset("quick-demo", RunConfig())
    save_preset("quick-demo", RunConfig(cycles=1), "mine", shadow_builtin=True)
    preset = find_preset("quick-demo")
    assert not preset.builtin and preset.shadows_builtin and preset.source == "user (shadows built-in)"
    assert load_preset("quick-demo").cycles == 1
    assert [p.name for p in list_presets()] == BUILTIN  # listed once, in the built-in's place
    delete_preset("quick-demo")
    assert find_preset("quick-demo").builtin


def test_unknown_presets_bad_names_and_broken_files_fail_clearly(user_dir):
    with pytest.raises(PresetError, match=r"unknown preset 'nope'; available presets: quick-demo, .*paper-mnist"):
        load_preset("nope")
    with pytest.raises(PresetError, match="did you mean quick-demo"):
        load_preset("Quick-Demo")
    for bad in ("", "../x", "a b", "-x", "x" * 65):
        with pytest.raises(PresetError, match="cannot be a preset name"):
            save_preset(bad, RunConfig())
    user_dir.mkdir(parents=True)
    (user_dir / "broken.json").write_text('{"model": "oneconv",')
    assert "broken" in [p.name for p in list_presets()]  # a broken file still lists...
    with pytest.raises(PresetError, match=r"preset file .*broken.json is not valid JSON \(line 1"):
        load_preset("broken")  # ...and loading it names the file
    (user_dir / "typo.json").write_text(json.dumps({"batchsize": 3}))
    with pytest.raises(PresetError, match=r"typo.json: unknown config field\(s\) batchsize"):
        load_preset("typo")


def test_the_user_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RSO_CONFIG_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "b"))
    assert user_presets_dir() == tmp_path / "a" / "presets"
    monkeypatch.delenv("RSO_CONFIG_DIR")
    assert user_presets_dir() == tmp_path / "b" / "rso" / "presets"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_presets_dir() == tmp_path / "home" / ".config" / "rso" / "presets"
