"""Guided lessons, the Qt-free half: lesson files (finding, reading, checking them) and where a step stops.

A lesson is a JSON file: an ordered list of steps a lecturer walks through with PageDown / PageUp.
Built-in lessons live in ``resources/lessons/NAME.json``; a user's own in :func:`user_lessons_dir`
(``$RSO_CONFIG_DIR/lessons``, else ``lessons`` in the user config folder of ``rso``, next to ``presets``).
A user lesson with a built-in's name replaces it. The format (described in full in ``docs/gui.md``)::

    {"title": "One decision in detail", "description": "…", "preset": "…", "settings": {…},
     "table": {"title": …, "columns": […], "rows": [[…], …]},
     "steps": [{"title": "…", "caption": "…",            # required: the subtitle a lecturer can read out
                "preset": "…", "settings": {…}, "sgd": true, "speed": "slow" | "full" | 2.5,
                "seconds_per_weight": 1.5, "panels": ["landscape", "weights"] | "all",
                "view": {"landscape": "1d", "x_axis": "forward_samples", "digit": 3, "features": true},
                "do": "pause" | "end-of-layer" | "end-of-cycle" | "first-rejected" | "first-minus"
                      | "first-plus" | {"weights": 5} | {"accuracy": 0.8} | {"end-of-layer": "fc"},
                "table": true, "record": "batch 16"}, …]}

Each step's run settings apply on top of the step before's, so every step's run is fixed by the file
alone (and the window's default run): nothing the user had set leaks into a lesson.

Where a step stops is decided here too, on snapshots: :func:`next_command` looks at the newest snapshot
after each command and says what to ask the engine next (``Command("weights", n)``: exactly n weights;
``Command("layer")``: to the end of the layer, which lands exactly at its ``LayerDone``) or that the step
is done, and why. The last weight of a layer or cycle is always taken with a layer step, so "end of
cycle" stops with the cycle's evaluation in the history.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from rso_engine.config import ConfigError, RunConfig
from rso_engine.events import MINUS, PLUS, STAY
from rso_engine.presets import PresetError, load_preset
from rso_engine.resources import resource_path
from rso_engine.vocabulary import LANDSCAPE_MODES, X_AXES

from .snapshot import Snapshot

LESSON_SUFFIX = ".json"
#: the panels a step may show (``"all"``: every one); a panel this window does not have is skipped
PANEL_KEYS = ("landscape", "weights", "filters", "compare", "digit", "algorithm")
#: what a step may do: stay paused, or run until one of these
CONDITIONS = ("pause", "weights", "end-of-layer", "end-of-cycle", "first-rejected", "first-minus", "first-plus",
              "accuracy")  # fmt: skip
SPEEDS = ("slow", "full", "fast")
VIEW_KEYS = ("landscape", "x_axis", "digit", "features")
STEP_KEYS = ("title", "caption", "preset", "settings", "sgd", "speed", "seconds_per_weight", "panels", "view",
             "do", "table", "record")  # fmt: skip
LESSON_KEYS = ("title", "description", "preset", "settings", "table", "steps", "format", "version")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class LessonError(ValueError):
    """A lesson cannot be found or read; the message names the file, the step and the field."""


@dataclass(frozen=True)
class Until:
    """What a step runs until: ``kind`` one of :data:`CONDITIONS`; ``n`` weights, ``value`` an accuracy,
    ``layer`` the layer an "end-of-layer" waits for (None: whichever comes first)."""

    kind: str
    n: int = 0
    value: float = 0.0
    layer: str | None = None

    def describe(self) -> str:
        return {
            "pause": "stays paused",
            "weights": f"runs {self.n} weight{'s' if self.n != 1 else ''}",
            "end-of-layer": f"runs to the end of layer {self.layer}" if self.layer else "runs to the end of the layer",
            "end-of-cycle": "runs to the end of the cycle",
            "first-rejected": "runs until a change is rejected (w is kept)",
            "first-minus": "runs until w−Δ is kept",
            "first-plus": "runs until w+Δ is kept",
            "accuracy": f"runs until the test accuracy reaches {self.value:.1%}",
        }[self.kind]


@dataclass(frozen=True)
class LessonStep:
    title: str
    caption: str
    config: RunConfig  # the run this step works on (the step before's, with this step's changes)
    until: Until
    sgd: bool | None = None  # None: as before
    speed: str | float | None = None  # None: as before; "slow", "full"/"fast" or weights per second
    seconds_per_weight: float | None = None
    panels: tuple[str, ...] | None = None  # None: as before; () never (validated)
    view: dict[str, Any] = field(default_factory=dict)
    table: bool = False
    record: str | None = None


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    description: str
    path: Path | None
    steps: tuple[LessonStep, ...]
    table: dict[str, Any] | None = None
    builtin: bool = False


@dataclass(frozen=True)
class LessonEntry:
    """A lesson as listed (not read beyond its title)."""

    name: str
    title: str
    path: Path
    builtin: bool


# --------------------------------------------------------------------------- locations
def builtin_lessons_dir() -> Path:
    return resource_path("lessons")


def user_lessons_dir() -> Path:
    """``$RSO_CONFIG_DIR/lessons`` if set, else ``lessons`` in platformdirs' ``user_config_dir("rso")``
    (on Linux ``$XDG_CONFIG_HOME/rso/lessons`` or ``~/.config/rso/lessons``), beside the user's presets."""
    explicit = os.environ.get("RSO_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser() / "lessons"
    return Path(platformdirs.user_config_dir("rso", appauthor=False)) / "lessons"


def _files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob(f"*{LESSON_SUFFIX}")) if p.is_file() and _NAME.match(p.stem)}


#: how the built-ins are listed (others follow by name)
BUILTIN_ORDER = ("one-weight", "rso-vs-sgd", "batch-size")


def list_lessons() -> list[LessonEntry]:
    """Every lesson: the built-ins in their order (a user lesson of the same name in its place), then the
    user's own by name. A file that cannot be read still lists, its title saying so."""
    builtin, user = _files(builtin_lessons_dir()), _files(user_lessons_dir())
    names = [n for n in BUILTIN_ORDER if n in builtin] + sorted(n for n in builtin if n not in BUILTIN_ORDER)
    names += [n for n in user if n not in builtin]
    out = []
    for name in names:
        path = user.get(name) or builtin[name]
        out.append(LessonEntry(name, _title(path), path, name not in user))
    return out


def _title(path: Path) -> str:
    try:
        title = json.loads(path.read_text(encoding="utf-8")).get("title")
    except (OSError, ValueError, AttributeError):
        return "(unreadable: open it to see why)"
    return title if isinstance(title, str) and title.strip() else "(no title)"


def find_lesson(name: str) -> Path:
    """The file of lesson ``name`` (or ``name`` itself when it is a path to a file)."""
    if str(name).endswith(LESSON_SUFFIX) and Path(name).is_file():
        return Path(name)
    for entry in list_lessons():
        if entry.name == name:
            return entry.path
    names = ", ".join(e.name for e in list_lessons()) or "none"
    raise LessonError(f"unknown lesson {name!r}; available lessons: {names} (`rso-gui --list-lessons` lists them)")


def load_lesson(name: str, base: RunConfig, presets: Callable[[str], RunConfig] = load_preset) -> Lesson:
    """Read and check lesson ``name`` (a listed name or a file path); steps' runs are built on ``base``."""
    path = find_lesson(name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LessonError(f"cannot read lesson file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LessonError(f"lesson file {path} is not valid JSON ({exc})") from exc
    builtin = path.parent.resolve() == builtin_lessons_dir().resolve()
    return parse_lesson(data, base, path=path, presets=presets, builtin=builtin)


# --------------------------------------------------------------------------- checking
class _Where:
    """Builds messages that name the file, the step and the field."""

    def __init__(self, path: Path | None):
        self.path = path

    def error(self, step: int | None, fld: str, problem: str, title: str = "") -> LessonError:
        where = f"lesson file {self.path}" if self.path is not None else "lesson"
        if step is not None:
            where += f", step {step + 1}" + (f" ({title!r})" if title else "")
        return LessonError(f"{where}, field {fld!r}: {problem}")


def _text(w: _Where, d: dict, key: str, step: int | None, required: bool, title: str = "") -> str:
    value = d.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        got = "missing" if key not in d else f"got {value!r}"
        raise w.error(step, key, f"must be a non-empty text ({got})", title)
    return value.strip()


def _config(w: _Where, d: dict, base: RunConfig, step: int | None, presets, title: str = "") -> RunConfig:
    config = base
    if "preset" in d:
        name = d["preset"]
        if not isinstance(name, str):
            raise w.error(step, "preset", f"must be a preset's name (got {name!r})", title)
        try:
            config = presets(name)
        except (PresetError, ConfigError) as exc:
            raise w.error(step, "preset", str(exc), title) from exc
    settings = d.get("settings", {})
    if not isinstance(settings, dict):
        raise w.error(step, "settings", f"must be an object of run settings (got {settings!r})", title)
    for key, value in settings.items():
        try:
            if key not in {f for f in RunConfig.__dataclass_fields__}:
                raise ConfigError(f"unknown run setting; known: {', '.join(sorted(RunConfig.__dataclass_fields__))}")
            config = config.replace(**{key: value})
        except (ConfigError, TypeError) as exc:
            raise w.error(step, f"settings.{key}", str(exc), title) from exc
    return config


def _until(w: _Where, value: Any, step: int, title: str) -> Until:
    if value is None or value == "pause":
        return Until("pause")
    if isinstance(value, str):
        if value in CONDITIONS and value not in ("weights", "accuracy"):
            return Until(value)
        raise w.error(step, "do", f"unknown action {value!r}; one of {', '.join(CONDITIONS)} "
                      "(weights and accuracy as {\"weights\": 5}, {\"accuracy\": 0.8})", title)  # fmt: skip
    if isinstance(value, dict) and len(value) == 1:
        ((kind, arg),) = value.items()
        if kind == "weights":
            if isinstance(arg, bool) or not isinstance(arg, int) or arg < 1:
                raise w.error(step, "do.weights", f"must be a whole number of weights ≥ 1 (got {arg!r})", title)
            return Until("weights", n=arg)
        if kind == "accuracy":
            if isinstance(arg, bool) or not isinstance(arg, (int, float)) or not 0 < arg <= 1:
                raise w.error(step, "do.accuracy", f"must be a test accuracy between 0 and 1 (got {arg!r})", title)
            return Until("accuracy", value=float(arg))
        if kind == "end-of-layer":
            if not isinstance(arg, str) or not arg:
                raise w.error(step, "do.end-of-layer", f'must be a layer\'s name, e.g. "fc" (got {arg!r})', title)
            return Until("end-of-layer", layer=arg)
        if kind in CONDITIONS and kind != "pause" and arg in (True, None):
            return Until(kind)
    raise w.error(step, "do", f"must be one of {', '.join(CONDITIONS)}, or {{\"weights\": N}} / "
                  f"{{\"accuracy\": A}} / {{\"end-of-layer\": NAME}} (got {value!r})", title)  # fmt: skip


def _step(w: _Where, i: int, d: Any, config: RunConfig, presets) -> LessonStep:
    if not isinstance(d, dict):
        raise w.error(i, "steps", f"each step must be an object (got {type(d).__name__})")
    title = _text(w, d, "title", i, True)
    unknown = sorted(str(k) for k in d if k not in STEP_KEYS)
    if unknown:
        raise w.error(i, unknown[0], f"unknown step field; a step has {', '.join(STEP_KEYS)}", title)
    caption = _text(w, d, "caption", i, True, title)
    config = _config(w, d, config, i, presets, title)
    sgd = d.get("sgd")
    if sgd is not None and not isinstance(sgd, bool):
        raise w.error(i, "sgd", f"must be true or false (got {sgd!r})", title)
    speed = d.get("speed")
    if (
        speed is not None
        and speed not in SPEEDS
        and (isinstance(speed, bool) or not isinstance(speed, (int, float)) or speed <= 0)
    ):
        raise w.error(i, "speed", f'must be "slow", "full" or weights per second > 0 (got {speed!r})', title)
    spw = d.get("seconds_per_weight")
    if spw is not None and (isinstance(spw, bool) or not isinstance(spw, (int, float)) or spw <= 0):
        raise w.error(i, "seconds_per_weight", f"must be a number of seconds > 0 (got {spw!r})", title)
    panels = d.get("panels")
    if panels is not None:
        panels = [panels] if isinstance(panels, str) else panels
        if not isinstance(panels, list) or not panels:
            raise w.error(i, "panels", f"must be a list of panels (got {d['panels']!r})", title)
        for p in panels:
            if p != "all" and p not in PANEL_KEYS:
                raise w.error(i, "panels", f"unknown panel {p!r}; panels: all, {', '.join(PANEL_KEYS)}", title)
        panels = PANEL_KEYS if "all" in panels else tuple(panels)
    view = d.get("view", {})
    if not isinstance(view, dict):
        raise w.error(i, "view", f"must be an object (got {view!r})", title)
    for key, value in view.items():
        ok = {
            "landscape": lambda v: v in LANDSCAPE_MODES,
            "x_axis": lambda v: v in X_AXES,
            "digit": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "features": lambda v: isinstance(v, bool),
        }.get(key)
        if ok is None:
            raise w.error(i, f"view.{key}", f"unknown view option; options: {', '.join(VIEW_KEYS)}", title)
        if not ok(value):
            allowed = {"landscape": ", ".join(LANDSCAPE_MODES), "x_axis": ", ".join(X_AXES),
                       "digit": "a test image's index ≥ 0", "features": "true or false"}[key]  # fmt: skip
            raise w.error(i, f"view.{key}", f"got {value!r}; must be {allowed}", title)
    table = d.get("table", False)
    if not isinstance(table, bool):
        raise w.error(i, "table", f"must be true or false (got {table!r})", title)
    record = d.get("record")
    if record is not None and (not isinstance(record, str) or not record.strip()):
        raise w.error(i, "record", f"must be a label for the result table (got {record!r})", title)
    return LessonStep(title, caption, config, _until(w, d.get("do"), i, title), sgd, speed, spw, panels,
                      dict(view), table, record)  # fmt: skip


def _table(w: _Where, t: Any) -> dict[str, Any]:
    if not isinstance(t, dict) or not isinstance(t.get("columns"), list) or not isinstance(t.get("rows"), list):
        raise w.error(None, "table", 'must be {"title": …, "columns": [...], "rows": [[...], ...]}')
    n = len(t["columns"])
    for k, row in enumerate(t["rows"]):
        if not isinstance(row, list) or len(row) != n:
            raise w.error(None, f"table.rows[{k}]", f"must be a list of {n} values (one per column)")
    return {"title": str(t.get("title", "")), "columns": [str(c) for c in t["columns"]], "rows": t["rows"]}


def parse_lesson(data: Any, base: RunConfig, *, path: Path | None = None, name: str | None = None,
                 presets: Callable[[str], RunConfig] = load_preset, builtin: bool = False) -> Lesson:  # fmt: skip
    """A checked :class:`Lesson` from a lesson file's JSON ``data``; :class:`LessonError` names the file, the
    step and the field of the first problem."""
    w = _Where(path)
    if not isinstance(data, dict):
        raise w.error(None, "(top level)", f"a lesson is a JSON object (got {type(data).__name__})")
    unknown = sorted(str(k) for k in data if k not in LESSON_KEYS)
    if unknown:
        raise w.error(None, unknown[0], f"unknown lesson field; a lesson has {', '.join(LESSON_KEYS)}")
    title = _text(w, data, "title", None, True)
    description = _text(w, data, "description", None, False)
    config = _config(w, data, base, None, presets)
    table = _table(w, data["table"]) if "table" in data else None
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise w.error(None, "steps", "must be a non-empty list of steps")
    out = []
    for i, d in enumerate(steps):
        step = _step(w, i, d, config, presets)
        if step.table and table is None:
            raise w.error(i, "table", 'the lesson has no table to show (add a top-level "table")', step.title)
        out.append(step)
        config = step.config
    name = name or (path.stem if path is not None else "lesson")
    return Lesson(name, title, description, path, tuple(out), table, builtin)


# --------------------------------------------------------------------------- where a step stops
@dataclass(frozen=True)
class Command:
    """Ask the engine for exactly ``n`` more weights (``kind="weights"``) or to the end of the layer
    (``kind="layer"``); ``kind="done"``: the step is over, ``reason`` says why (for the subtitle bar)."""

    kind: str
    n: int = 0
    reason: str = ""


@dataclass(frozen=True)
class StepStart:
    """Where a step began: weights tried and evaluations in the history."""

    steps: int
    evaluations: int

    @classmethod
    def of(cls, snap: Snapshot) -> StepStart:
        return cls(snap.steps, len(snap.rso_history))


def _layer_left(snap: Snapshot) -> int | None:
    """Weights left in the layer of the weight tried next, counting it; None right at a layer's end (or
    before the first weight of a run that has not said where it starts)."""
    last = snap.last
    if last is not None:
        left = last.layer_size - 1 - last.position
        return left if left > 0 else None
    if snap.current is not None:
        return snap.current[4] - snap.current[3]
    return None


def _cycle_left(snap: Snapshot) -> int:
    """Weights left in the cycle of the weight tried next, counting it (a whole cycle at a boundary)."""
    wpc = max(1, snap.weights_per_cycle)
    return wpc - snap.steps % wpc


def _to_layer_end(snap: Snapshot, cap: int | None) -> Command:
    left = _layer_left(snap)
    if left is None:  # at a layer's end (its LayerDone may still be pending): start the next layer
        return Command("layer") if cap is None else Command("weights", 1)
    if cap is None or left == 1:
        return Command("layer")  # its last weight with a layer step: lands exactly at the LayerDone
    return Command("weights", min(cap, left - 1))


def _to_cycle_end(snap: Snapshot, cap: int | None) -> Command:
    left = _cycle_left(snap)
    if left == snap.weights_per_cycle and snap.steps > 0 and cap is not None:
        return Command("weights", 1)  # at a cycle's end reached weight by weight: on into the next one
    if cap is None:
        return Command("layer")
    layer_left = _layer_left(snap)
    if layer_left == 1 or left == 1:
        return Command("layer")
    if layer_left is None:
        return Command("weights", 1)
    return Command("weights", max(1, min(cap, layer_left - 1, left - 1)))


def _cycle_ended(snap: Snapshot, start: StepStart) -> bool:
    wpc = max(1, snap.weights_per_cycle)
    return snap.steps > start.steps and snap.steps % wpc == 0 and len(snap.rso_history) > start.evaluations


def next_command(until: Until, start: StepStart, snap: Snapshot, cap: int | None = None) -> Command:
    """What to ask the engine next for a step that began at ``start`` and runs ``until``, now that it
    stands at ``snap`` (paused). ``cap``: at most this many weights per command (1 in slow motion; a
    recording's frame interval), None for as many as it takes. A finished run ends every step."""
    cmd = _next_command(until, start, snap, cap)
    if cmd.kind != "done" and snap.finished:
        return Command("done", reason="the run has finished")
    return cmd


def _next_command(until: Until, start: StepStart, snap: Snapshot, cap: int | None) -> Command:
    moved = snap.steps > start.steps
    last = snap.last
    kind = until.kind
    if kind == "pause":
        return Command("done", reason="paused")
    if kind == "weights":
        left = start.steps + until.n - snap.steps
        if left <= 0:
            return Command("done", reason=f"{until.n} weight{'s' if until.n != 1 else ''} tried")
        return Command("weights", left if cap is None else min(cap, left))
    if kind in ("first-rejected", "first-minus", "first-plus"):
        wanted = {"first-rejected": STAY, "first-minus": MINUS, "first-plus": PLUS}[kind]
        if moved and last is not None and last.choice == wanted:
            what = {STAY: "the change was rejected: w kept", MINUS: "w−Δ kept", PLUS: "w+Δ kept"}[wanted]
            return Command("done", reason=f"{what} (weight {last.step:,})")
        return Command("weights", 1)
    if kind == "end-of-layer":
        at_end = moved and last is not None and last.position == last.layer_size - 1
        if at_end and (until.layer is None or last.layer == until.layer):
            return Command("done", reason=f"end of layer {last.layer} (weight {last.step:,})")
        return _to_layer_end(snap, cap)
    if kind == "end-of-cycle":
        if _cycle_ended(snap, start):
            return Command("done", reason=f"end of cycle {snap.rso_history[-1].cycle}")
        return _to_cycle_end(snap, cap)
    if kind == "accuracy":
        hist = snap.rso_history
        if hist and hist[-1].test_accuracy >= until.value:
            return Command("done", reason=f"test accuracy {hist[-1].test_accuracy:.1%} after cycle {hist[-1].cycle}")
        return _to_cycle_end(snap, cap)
    raise ValueError(f"unknown condition {kind!r}")


def result_row(label: str, snap: Snapshot) -> list[Any]:
    """A row of the "ours" table at a step's end: label, training seconds, forward-pass samples (millions),
    test loss, test accuracy (of the run's last evaluation)."""
    ev = snap.rso_history[-1] if snap.rso_history else None
    if ev is None:
        return [label, round(snap.rso_seconds, 1), None, None, None]
    return [
        label,
        round(ev.seconds, 1),
        round(ev.forward_samples / 1e6, 1),
        round(ev.test_loss, 3),
        round(ev.test_accuracy, 4),
    ]


__all__ = ["CONDITIONS", "PANEL_KEYS", "Command", "Lesson", "LessonEntry", "LessonError", "LessonStep", "StepStart",
           "Until", "builtin_lessons_dir", "find_lesson", "list_lessons", "load_lesson", "next_command",
           "parse_lesson", "result_row", "user_lessons_dir"]  # fmt: skip
