"""Lesson files: the built-in ones are complete, a user's own are found, malformed ones are refused with a
message naming the file, the step and the field, and ``rso-gui --list-lessons`` needs no display."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rso_engine.config import RunConfig
from rso_engine.events import MINUS, PLUS, STAY
from rso_gui.live.lessons import (
    Command,
    LessonError,
    StepStart,
    Until,
    builtin_lessons_dir,
    list_lessons,
    load_lesson,
    next_command,
    parse_lesson,
)

BASE = RunConfig(model="oneconv", dataset="mnist-sample", batch_size=64, cycles=10, seed=0)
BUILTIN = ("one-weight", "rso-vs-sgd", "batch-size")


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RSO_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


def test_the_built_in_lessons_are_complete():
    names = [e.name for e in list_lessons()]
    assert names[:3] == list(BUILTIN)
    for name in BUILTIN:
        lesson = load_lesson(name, BASE)
        assert lesson.builtin and lesson.title and len(lesson.steps) >= 4
        for step in lesson.steps:
            assert len(step.caption.split()) >= 12  # a sentence a lecturer can read out
            assert step.config.dataset == "mnist-sample"  # offline, and quick enough for a lecture
    one = load_lesson("one-weight", BASE)
    kinds = [s.until.kind for s in one.steps]
    assert {"first-rejected", "first-minus", "end-of-layer", "end-of-cycle"} <= set(kinds)
    assert one.steps[0].config.batch_size == 16 and one.steps[0].sgd is False
    vs = load_lesson("rso-vs-sgd", BASE)
    assert {s.view.get("x_axis") for s in vs.steps} >= {"cycles", "weight_updates", "forward_samples", "seconds"}
    assert len({(s.config.model, s.config.dataset, s.config.seed) for s in vs.steps}) == 1
    assert any("digit" in (s.panels or ()) for s in vs.steps)
    bs = load_lesson("batch-size", BASE)
    assert [s.config.batch_size for s in bs.steps if s.record] == [16, 64, 256]
    assert bs.table["rows"][0] == [32, 212, 0.632, 0.8075]  # the course project's table (REFERENCE.md)
    assert len({(s.config.model, s.config.seed, s.config.cycles) for s in bs.steps}) == 1


def write(folder, name, data):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def good_step(**more):
    return {"title": "a step", "caption": "what happens", **more}


@pytest.mark.parametrize(
    "steps, step_no, field",
    [
        ([good_step(), good_step(do="end-of-lesson")], 2, "do"),
        ([good_step(do={"weights": -3})], 1, "do.weights"),
        ([good_step(do={"accuracy": 1.5})], 1, "do.accuracy"),
        ([good_step(), good_step(settings={"batch_size": 0})], 2, "settings.batch_size"),
        ([good_step(settings={"batch_sise": 8})], 1, "settings.batch_sise"),
        ([good_step(preset="no-such-preset")], 1, "preset"),
        ([good_step(panels=["landscape", "radar"])], 1, "panels"),
        ([good_step(view={"x_axis": "epochs"})], 1, "view.x_axis"),
        ([good_step(speed=-1)], 1, "speed"),
        ([good_step(), {"title": "no caption"}], 2, "caption"),
        ([good_step(), good_step(colour="red")], 2, "colour"),
        ([good_step(table=True)], 1, "table"),
    ],
)
def test_malformed_lessons_name_the_file_step_and_field(config_dir, steps, step_no, field):
    path = write(config_dir / "lessons", "broken", {"title": "Broken", "steps": steps})
    with pytest.raises(LessonError) as err:
        load_lesson("broken", BASE)
    msg = str(err.value)
    assert str(path) in msg and f"step {step_no}" in msg and f"field {field!r}" in msg, msg


def test_malformed_files_and_top_level_fields(config_dir):
    folder = config_dir / "lessons"
    write(folder, "notjson", "{ nope")
    with pytest.raises(LessonError, match=r"notjson\.json is not valid JSON"):
        load_lesson("notjson", BASE)
    write(folder, "nosteps", {"title": "x", "steps": []})
    with pytest.raises(LessonError, match=r"nosteps\.json, field 'steps'"):
        load_lesson("nosteps", BASE)
    write(folder, "badtable", {"title": "x", "table": {"columns": ["a"], "rows": [[1, 2]]}, "steps": [good_step()]})
    with pytest.raises(LessonError, match=r"field 'table.rows\[0\]'"):
        load_lesson("badtable", BASE)
    with pytest.raises(LessonError, match="unknown lesson 'nope'.*one-weight"):
        load_lesson("nope", BASE)
    titles = {e.name: e.title for e in list_lessons()}
    assert titles["notjson"].startswith("(unreadable")  # still listed, to be opened and explained


def test_a_user_lesson_is_listed_and_shadows_a_built_in(config_dir):
    write(config_dir / "lessons", "mine", {"title": "My own lesson", "steps": [good_step()]})
    write(config_dir / "lessons", "batch-size", {"title": "My batch sizes", "steps": [good_step()]})
    entries = {e.name: e for e in list_lessons()}
    assert entries["mine"].title == "My own lesson" and not entries["mine"].builtin
    assert entries["batch-size"].title == "My batch sizes" and not load_lesson("batch-size", BASE).builtin
    assert builtin_lessons_dir().joinpath("batch-size.json").is_file()


def test_list_lessons_needs_no_display(config_dir):
    write(config_dir / "lessons", "mine", {"title": "My own lesson", "steps": [good_step()]})
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run([sys.executable, "-m", "rso_gui.app", "--list-lessons"], env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [*BUILTIN, "mine"]
    assert lines[0].split(None, 1)[1] == load_lesson("one-weight", BASE).title
    assert lines[-1].split(None, 1)[1] == "My own lesson"
    bad = subprocess.run([sys.executable, "-m", "rso_gui.app", "--lesson", "nope"], env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "unknown lesson 'nope'" in bad.stderr


class Snap:
    """The parts of a Snapshot that next_command reads."""

    def __init__(self, steps, last=None, current=None, wpc=50, history=(), finished=False):
        self.steps, self.last, self.current, self.weights_per_cycle = steps, last, current, wpc
        self.rso_history, self.finished = history, finished


class Ev:
    def __init__(self, step, position, layer_size, choice=STAY, layer="fc"):
        self.step, self.position, self.layer_size, self.choice, self.layer = step, position, layer_size, choice, layer


def test_next_command_takes_the_last_weight_of_a_layer_with_a_layer_step():
    start = StepStart(0, 1)
    fresh = Snap(0, current=("fc", "fc.weight", (0, 0), 0, 30))
    assert next_command(Until("end-of-layer"), start, fresh) == Command("layer")
    assert next_command(Until("end-of-layer"), start, fresh, cap=1) == Command("weights", 1)
    assert next_command(Until("end-of-layer"), start, fresh, cap=100) == Command("weights", 29)
    near = Snap(28, last=Ev(28, 27, 30))
    assert next_command(Until("end-of-layer"), start, near, cap=1) == Command("weights", 1)
    last_one = Snap(29, last=Ev(29, 28, 30))
    assert next_command(Until("end-of-layer"), start, last_one, cap=1) == Command("layer")
    done = next_command(Until("end-of-layer"), start, Snap(30, last=Ev(30, 29, 30)))
    assert done.kind == "done" and "end of layer fc" in done.reason
    other = next_command(Until("end-of-layer", layer="conv1"), start, Snap(30, last=Ev(30, 29, 30)), cap=1)
    assert other == Command("weights", 1)  # not that layer: on into the next one


def test_next_command_for_cycles_weights_choices_and_accuracy():
    class E:
        def __init__(self, cycle, acc):
            self.cycle, self.test_accuracy = cycle, acc

    start = StepStart(0, 1)
    assert next_command(Until("end-of-cycle"), start, Snap(49, last=Ev(49, 18, 20)), cap=5) == Command("layer")
    assert next_command(Until("end-of-cycle"), start, Snap(10, last=Ev(10, 9, 30)), cap=5) == Command("weights", 5)
    ended = Snap(50, last=Ev(50, 19, 20), history=(E(0, 0.1), E(1, 0.5)))
    assert next_command(Until("end-of-cycle"), start, ended).reason == "end of cycle 1"
    assert next_command(Until("weights", n=7), StepStart(3, 1), Snap(5), cap=4) == Command("weights", 4)
    assert next_command(Until("weights", n=7), StepStart(3, 1), Snap(10)).kind == "done"
    for kind, choice in (("first-minus", MINUS), ("first-plus", PLUS), ("first-rejected", STAY)):
        other = -choice or PLUS
        assert next_command(Until(kind), start, Snap(4, last=Ev(4, 3, 30, choice=other))) == Command("weights", 1)
        assert next_command(Until(kind), start, Snap(4, last=Ev(4, 3, 30, choice=choice))).kind == "done"
        assert next_command(Until(kind), StepStart(4, 1), Snap(4, last=Ev(4, 3, 30, choice=choice))).kind != "done"
    reached = Snap(50, history=(E(0, 0.1), E(1, 0.93)))
    assert "93.0%" in next_command(Until("accuracy", value=0.9), start, reached).reason
    assert next_command(Until("accuracy", value=0.95), start, reached).kind == "layer"
    assert next_command(Until("first-minus"), start, Snap(9, finished=True)).reason == "the run has finished"
    assert next_command(Until("pause"), start, Snap(9)).reason == "paused"
    with pytest.raises(LessonError, match="field 'do'"):
        parse_lesson({"title": "t", "steps": [good_step(do=["weights"])]}, BASE)
