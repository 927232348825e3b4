"""Where the window keeps its state and the last settings between runs (QSettings, INI format).

The file lives in the user's config folder (``~/.config/rso/rso-gui.ini`` on Linux). Tests point
``QSettings.setPath`` at a temporary folder so they never read or write the user's file. Every reader
takes ``None`` for "no settings" (``--fresh``, or a window made with ``restore=False``) and then gives
the defaults.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from rso_engine.config import ConfigError, RunConfig
from rso_engine.vocabulary import DEFAULT_LANDSCAPE, DEFAULT_X_AXIS, landscape_mode, x_axis_name

from .screen_fit import restore_geometry, save_geometry
from .theme import THEMES

ORGANIZATION = "rso"
APPLICATION = "rso-gui"
DEFAULT_THEME = "dark"


def open_settings() -> QSettings:
    """The user's settings file (INI format, user scope)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def read_config(s: QSettings | None, default: RunConfig) -> RunConfig:
    """The remembered run settings, or ``default`` when none (or unreadable ones) are stored."""
    text = s.value("run/config", "", type=str) if s is not None else ""
    if not text:
        return default
    try:
        data = json.loads(text)
        known = set(default.to_dict())
        return RunConfig.from_dict({k: v for k, v in data.items() if k in known})
    except (ValueError, ConfigError, TypeError, AttributeError):
        return default


def write_config(s: QSettings, cfg: RunConfig) -> None:
    """Remember the run settings."""
    s.setValue("run/config", cfg.to_json(indent=None))


def read_bool(s: QSettings | None, key: str, default: bool) -> bool:
    """A boolean setting (INI files store it as text)."""
    value = s.value(key, default) if s is not None else default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def read_speed(s: QSettings | None, default: float | None) -> float | None:
    """The remembered speed in weights per second (None: full speed)."""
    value = s.value("run/speed", None) if s is not None else None
    if value is None:
        return default
    if str(value) == "full":
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return default
    return rate if rate > 0 else None


def write_speed(s: QSettings, rate: float | None) -> None:
    """Remember the speed (None: full speed)."""
    s.setValue("run/speed", "full" if rate is None else float(rate))


def controller_options(s: QSettings | None) -> dict[str, Any]:
    """The remembered ``Controller`` options besides the config: SGD baseline, speed and view options."""
    return {
        "sgd": read_bool(s, "run/sgd", True),
        "speed": read_speed(s, None),
        "landscape": read_landscape(s),
        "digit": int(s.value("view/digit", 0, type=int)) if s is not None else 0,
        "features": read_bool(s, "view/features", True),
    }


def read_display(s: QSettings | None) -> tuple[str, bool]:
    """The remembered theme name (one of ``THEMES``) and presentation mode."""
    theme = s.value("display/theme", DEFAULT_THEME, type=str) if s is not None else DEFAULT_THEME
    return (theme if theme in THEMES else DEFAULT_THEME), read_bool(s, "display/presentation", False)


def read_landscape(s: QSettings | None) -> str:
    """The remembered landscape mode (one of ``LANDSCAPE_MODES``; the default for anything else)."""
    value = s.value("view/landscape", DEFAULT_LANDSCAPE, type=str) if s is not None else DEFAULT_LANDSCAPE
    try:
        return landscape_mode(value)
    except ValueError:
        return DEFAULT_LANDSCAPE


def read_x_axis(s: QSettings | None) -> str:
    """The remembered x-axis of the RSO-vs-SGD panel (a key of ``X_AXES``; the old ``"cycle"`` is read too)."""
    value = s.value("view/x_axis", DEFAULT_X_AXIS, type=str) if s is not None else DEFAULT_X_AXIS
    try:
        return x_axis_name(value)
    except ValueError:
        return DEFAULT_X_AXIS


def restore_window(s: QSettings, window) -> bool:
    """Give a QMainWindow its dock/toolbar state and the geometry remembered for the screen it is on
    (``rso_gui.screen_fit``); True when a remembered geometry fitted that screen."""
    state = s.value("window/state", None)
    if isinstance(state, QByteArray):
        window.restoreState(state)
    return restore_geometry(s, window)


def write_window(s: QSettings, window) -> None:
    """Remember everything of a ``MainWindow``: geometry, run settings, speed, display and view options."""
    c = window.controller
    save_geometry(s, window)
    s.setValue("window/state", window.saveState())
    write_config(s, c.config)
    s.setValue("run/sgd", c.sgd_enabled)
    write_speed(s, c.speed)
    s.setValue("display/presentation", window.presentation)
    s.setValue("display/theme", window.theme_name)
    opts = c.view_options()
    s.setValue("view/landscape", str(opts["landscape"]))
    s.setValue("view/digit", int(opts["digit"]))
    s.setValue("view/features", bool(opts["features"]))
    s.setValue("view/x_axis", window.compare_x_axis())
    s.sync()
