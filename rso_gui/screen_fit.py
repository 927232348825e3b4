"""Fitting the window to the screen it opens on, and remembering its geometry per screen.

A projector's screen is often 1,280×720: a window opened at a fixed size would hang off it. The window
opens filling the screen's available geometry (the screen less its panels and docks), and the geometry a
user leaves it at is remembered for that screen (its name and size), so a laptop and the room's
projector each get their own. A remembered geometry that no longer fits is fitted again.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSettings, QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget


def available_geometry(widget: QWidget | None = None) -> QRect:
    """The available geometry of the screen ``widget`` is on (else the primary screen's)."""
    screen = widget.screen() if widget is not None else None
    screen = screen or QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else QRect(0, 0, 1600, 960)


def screen_key(widget: QWidget | None, available: QRect | None = None) -> str:
    """The settings key of the screen ``widget`` is on: its name and available size."""
    screen = widget.screen() if widget is not None else None
    screen = screen or QGuiApplication.primaryScreen()
    name = (screen.name() if screen is not None else "") or "screen"
    avail = available or available_geometry(widget)
    safe = "".join(ch if ch.isalnum() else "_" for ch in name)
    return f"window/{safe}_{avail.width()}x{avail.height()}"


def fits(frame: QRect, available: QRect) -> bool:
    """Does a window frame lie wholly inside the available geometry?"""
    return available.contains(frame)


def fit_window(window: QWidget, available: QRect | None = None) -> QRect:
    """Make ``window`` fill ``available`` (default: its screen's available geometry), its frame included;
    returns the geometry set. A window whose minimum size is larger is shrunk to fit first."""
    avail = available if available is not None else available_geometry(window)
    extra = window.frameGeometry().size() - window.geometry().size()  # the window manager's frame
    size = QSize(max(1, avail.width() - extra.width()), max(1, avail.height() - extra.height()))
    window.setMinimumSize(min(window.minimumWidth(), size.width()), min(window.minimumHeight(), size.height()))
    window.resize(size)
    window.move(avail.topLeft())
    return window.geometry()


def restore_geometry(s: QSettings | None, window: QWidget, available: QRect | None = None) -> bool:
    """Give ``window`` the geometry remembered for its screen, if there is one and it fits (else fit it to
    the screen); True when a remembered geometry was used."""
    avail = available if available is not None else available_geometry(window)
    key = screen_key(window, avail)
    geo = s.value(key + "/geometry", None) if s is not None else None
    if isinstance(geo, QRect) and geo.isValid() and fits(geo, avail):
        window.setGeometry(geo)
        if str(s.value(key + "/maximized", "false")).lower() == "true":
            window.setWindowState(window.windowState() | Qt.WindowState.WindowMaximized)
        return True
    fit_window(window, avail)
    return False


def save_geometry(s: QSettings, window: QWidget) -> None:
    """Remember ``window``'s geometry (its normal one, and whether it is maximised) for the screen it is on."""
    key = screen_key(window)
    s.setValue(key + "/geometry", QRect(window.normalGeometry()))
    s.setValue(key + "/maximized", bool(window.isMaximized()))
