"""Where the window keeps its state and the last settings between runs (QSettings, INI format).

The file lives in the user's config folder (``~/.config/rso/rso-gui.ini`` on Linux). Tests point
``QSettings.setPath`` at a temporary folder so they never read or write the user's file.
"""

from __future__ import annotations

import json

from PySide6.QtCore import QSettings

from rso_engine.config import ConfigError, RunConfig

ORGANIZATION = "rso"
APPLICATION = "rso-gui"


def open_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def read_config(s: QSettings, default: RunConfig) -> RunConfig:
    """The remembered run settings, or ``default`` when none (or unreadable ones) are stored."""
    text = s.value("run/config", "", type=str)
    if not text:
        return default
    try:
        data = json.loads(text)
        known = set(default.to_dict())
        return RunConfig.from_dict({k: v for k, v in data.items() if k in known})
    except (ValueError, ConfigError, TypeError, AttributeError):
        return default


def write_config(s: QSettings, cfg: RunConfig) -> None:
    s.setValue("run/config", cfg.to_json(indent=None))


def read_bool(s: QSettings, key: str, default: bool) -> bool:
    value = s.value(key, default)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def read_speed(s: QSettings, default: float | None) -> float | None:
    value = s.value("run/speed", None)
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
    s.setValue("run/speed", "full" if rate is None else float(rate))
