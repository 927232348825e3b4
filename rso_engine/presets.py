"""Named run configs ("presets"): the built-in ones shipped with rso and the ones a user saves.

A preset is a run config JSON file (the format of ``rso … --config FILE``, see
:class:`~rso_engine.config.RunConfig`); fields it leaves out take their defaults. Its ``notes`` may hold
``"description"`` (one paragraph shown in lists) and ``"gui"`` (hints for the window, :data:`GUI_HINTS`, e.g.
``{"speed": "slow", "seconds_per_weight": 2.0}``; the engine ignores them).

- Built-in presets live in ``resources/presets/NAME.json`` (shipped in the wheel).
- User presets live in :func:`user_presets_dir`: ``$RSO_CONFIG_DIR/presets`` if set, else ``presets`` in
  the user config folder of ``rso`` (platformdirs; ``$XDG_CONFIG_HOME/rso/presets`` or
  ``~/.config/rso/presets`` on Linux).
- A user preset whose name is a built-in's *shadows* it: it is the one :func:`load_preset` returns and
  :func:`list_presets` marks it. :func:`save_preset` refuses a built-in name unless asked to shadow, so
  that never happens by accident; deleting the user file brings the built-in back.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from .config import ConfigError, RunConfig
from .files import write_atomic
from .resources import resource_path

PRESET_SUFFIX = ".json"
#: the window hints a preset may carry in ``notes["gui"]``: ``speed`` ("slow", "fast"/"full" or weights per
#: second) and, with "slow", ``seconds_per_weight``
GUI_HINTS = ("speed", "seconds_per_weight")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

__all__ = [
    "GUI_HINTS",
    "Preset",
    "PresetError",
    "builtin_presets_dir",
    "delete_preset",
    "find_preset",
    "gui_hints",
    "list_presets",
    "load_preset",
    "preset_description",
    "save_preset",
    "user_presets_dir",
    "validate_name",
]


class PresetError(ConfigError):
    """A preset cannot be found, read or saved; the message names the preset or file and the fix."""


@dataclass(frozen=True)
class Preset:
    """One preset as listed: where it is and what it is for. :meth:`load` reads its config."""

    name: str
    description: str
    path: Path
    builtin: bool  # shipped with rso (False: the user's own)
    shadows_builtin: bool = False  # a user preset that hides a built-in of the same name

    def load(self) -> RunConfig:
        return _read(self.path)

    @property
    def source(self) -> str:
        if self.builtin:
            return "built-in"
        return "user (shadows built-in)" if self.shadows_builtin else "user"


# --------------------------------------------------------------------------- locations
def builtin_presets_dir() -> Path:
    """The folder of the presets shipped with rso."""
    return resource_path("presets")


def user_presets_dir() -> Path:
    """Where :func:`save_preset` writes: ``$RSO_CONFIG_DIR/presets`` if set, else ``presets`` in
    platformdirs' ``user_config_dir("rso")`` (on Linux ``$XDG_CONFIG_HOME/rso/presets`` or
    ``~/.config/rso/presets``; ``~/Library/Application Support/rso/presets`` on macOS,
    ``%LOCALAPPDATA%\\rso\\presets`` on Windows). Not created until a save."""
    explicit = os.environ.get("RSO_CONFIG_DIR")
    if explicit:
        return Path(explicit).expanduser() / "presets"
    return Path(platformdirs.user_config_dir("rso", appauthor=False)) / "presets"


def validate_name(name: str) -> str:
    """Return ``name`` if it can be a preset (and file) name, else raise :class:`PresetError`."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise PresetError(
            f"{name!r} cannot be a preset name: use 1–64 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit (e.g. my-demo)"
        )
    return name


def _files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {
        p.name[: -len(PRESET_SUFFIX)]: p
        for p in sorted(folder.glob(f"*{PRESET_SUFFIX}"))
        if p.is_file() and _NAME.match(p.name[: -len(PRESET_SUFFIX)])
    }


# --------------------------------------------------------------------------- reading
def _read(path: Path) -> RunConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PresetError(f"cannot read preset file {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PresetError(
            f"preset file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix or delete it"
        ) from exc
    try:
        return RunConfig.from_dict(data)
    except ConfigError as exc:
        raise PresetError(f"preset file {path}: {exc}") from exc
    except TypeError as exc:  # e.g. a field of the wrong kind that the dataclass itself rejects
        raise PresetError(f"preset file {path}: {exc}") from exc


def preset_description(config: RunConfig) -> str:
    """The description a preset's config carries in ``notes["description"]`` ('' if none)."""
    desc = config.notes.get("description", "") if isinstance(config.notes, dict) else ""
    return desc if isinstance(desc, str) else str(desc)


def gui_hints(config: RunConfig) -> dict[str, Any]:
    """The window hints (:data:`GUI_HINTS`) a preset's config carries in ``notes["gui"]`` ({} if none), e.g.
    the explain-one-decision preset's ``{"speed": "slow", "seconds_per_weight": 2.0}``. Other keys are
    left out: no part of rso reads them."""
    hints = config.notes.get("gui", {}) if isinstance(config.notes, dict) else {}
    return {k: v for k, v in hints.items() if k in GUI_HINTS} if isinstance(hints, dict) else {}


def _describe(path: Path) -> str:
    """A preset file's description without validating the whole config (a broken file still lists)."""
    try:
        notes = json.loads(path.read_text(encoding="utf-8")).get("notes") or {}
        desc = notes.get("description", "")
        return desc if isinstance(desc, str) else str(desc)
    except (OSError, ValueError, AttributeError):
        return "(unreadable: load it to see why)"


def list_presets() -> list[Preset]:
    """Every preset a user can pick: built-ins in their shipped order, then the user's, by name.

    A user preset with a built-in's name replaces that entry (``shadows_builtin=True``).
    """
    builtin = _files(builtin_presets_dir())
    user = _files(user_presets_dir())
    order = _builtin_order(builtin)
    out = []
    for name in order:
        if name in user:
            out.append(Preset(name, _describe(user[name]), user[name], False, True))
        else:
            out.append(Preset(name, _describe(builtin[name]), builtin[name], True))
    out += [Preset(name, _describe(path), path, False) for name, path in user.items() if name not in builtin]
    return out


#: how the built-ins are listed (files not named here follow, by name)
BUILTIN_ORDER = (
    "quick-demo", "explain-one-decision", "course-oneconv-b32", "course-oneconv-b64", "course-oneconv-b256",
    "course-oneconv-b512", "twoconv", "layer-parallel-demo", "paper-mnist",
)  # fmt: skip


def _builtin_order(builtin: dict[str, Path]) -> list[str]:
    first = [n for n in BUILTIN_ORDER if n in builtin]
    return first + sorted(n for n in builtin if n not in first)


def find_preset(name: str) -> Preset:
    """The preset called ``name`` (a user preset shadowing a built-in wins); clear error if none."""
    for preset in list_presets():
        if preset.name == name:
            return preset
    names = [p.name for p in list_presets()]
    close = [n for n in names if n.lower() == str(name).lower()]
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise PresetError(
        f"unknown preset {name!r}{hint}; available presets: {', '.join(names) or 'none'} (`rso presets` lists them)"
    )


def load_preset(name: str) -> RunConfig:
    """The run config of the preset called ``name`` (see :func:`find_preset`)."""
    return find_preset(name).load()


# --------------------------------------------------------------------------- writing
def save_preset(
    name: str,
    config: RunConfig,
    description: str | None = None,
    *,
    overwrite: bool = False,
    shadow_builtin: bool = False,
) -> Path:
    """Save ``config`` as the user preset ``name`` and return its path.

    ``description`` (if given) is stored in ``notes["description"]``; other notes (e.g. GUI hints)
    are kept. An existing user preset of that name is replaced only with ``overwrite=True``; a
    built-in name is refused unless ``shadow_builtin=True``. The file is written atomically.
    """
    validate_name(name)
    builtin = _files(builtin_presets_dir())
    if name in builtin and not shadow_builtin:
        raise PresetError(
            f"{name!r} is a built-in preset; choose another name (or hide the built-in one behind yours: "
            "--shadow-builtin on the command line)"
        )
    folder = user_presets_dir()
    path = folder / f"{name}{PRESET_SUFFIX}"
    if path.exists() and not overwrite:
        raise PresetError(f"a preset called {name!r} already exists ({path}); choose another name, or replace it "
                          "(--overwrite on the command line; “replace a user preset of that name” in the window)")
    config = config.validated()
    notes = dict(config.notes) if isinstance(config.notes, dict) else {}
    if description is not None:
        notes["description"] = description
    data = config.replace(notes=notes).to_dict()
    try:
        write_atomic(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    except OSError as exc:
        raise PresetError(f"cannot save preset {name!r} to {path}: {exc.strerror or exc}") from exc
    return path


def delete_preset(name: str) -> Path:
    """Delete the user preset ``name`` (built-ins cannot be deleted) and return the removed path."""
    validate_name(name)
    path = user_presets_dir() / f"{name}{PRESET_SUFFIX}"
    if not path.is_file():
        if name in _files(builtin_presets_dir()):
            raise PresetError(f"{name!r} is a built-in preset and cannot be deleted")
        raise PresetError(f"there is no user preset called {name!r} in {path.parent}")
    path.unlink()
    return path
