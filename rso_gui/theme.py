"""Colours, pens and fonts: a light and a dark theme, each in a normal and a presentation variant.

Presentation mode is for projectors and screen recordings: large fonts, thick solid lines, big markers,
high contrast. Every view takes its colours from the :class:`Theme` handed to ``apply_theme`` and never
from pyqtgraph's global defaults, so switching themes repaints everything consistently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QPalette, QPen
from PySide6.QtWidgets import QApplication

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, useOpenGL=False)

THEMES = ("dark", "light")


@dataclass(frozen=True)
class Theme:
    name: str  # "dark" or "light"
    presentation: bool
    background: str  # plots and panels
    window: str  # around the panels
    foreground: str  # text, axes, the landscape curve
    muted: str  # secondary text, grid, the current-value line
    border: str
    rso: str  # RSO's curves
    sgd: str  # SGD's curves
    plus: str  # w + Δ kept
    minus: str  # w − Δ kept
    stay: str  # w kept
    highlight: str  # the weight being changed
    error: str
    neutral: str  # the middle of the diverging weight colour map
    negative: str
    positive: str
    font_pt: float
    line: float  # pen width of curves, px
    marker: float  # marker size, px

    @property
    def dark(self) -> bool:
        return self.name == "dark"

    def color(self, name_or_hex: str) -> QColor:
        return QColor(getattr(self, name_or_hex, name_or_hex))

    def pen(self, color: str, width: float | None = None, style=Qt.PenStyle.SolidLine) -> QPen:
        """A solid, opaque, cosmetic pen (same width at any zoom)."""
        pen = QPen(self.color(color))
        pen.setWidthF(self.line if width is None else width)
        pen.setCosmetic(True)
        pen.setStyle(style)
        pen.setCapStyle(Qt.PenCapStyle.FlatCap)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        return pen

    def font(self, scale: float = 1.0, bold: bool = False) -> QFont:
        f = QFont()
        f.setPointSizeF(self.font_pt * scale)
        f.setBold(bold)
        return f

    def weight_cmap(self) -> pg.ColorMap:
        """Diverging: negative, zero (neutral), positive. Fixed symmetric levels make zero the middle."""
        return pg.ColorMap([0.0, 0.5, 1.0], [QColor(self.negative), QColor(self.neutral), QColor(self.positive)])

    def activation_cmap(self) -> pg.ColorMap:
        """Sequential for non-negative activations: neutral to positive."""
        return pg.ColorMap([0.0, 1.0], [QColor(self.neutral), QColor(self.foreground)])

    def loss_cmap(self) -> pg.ColorMap:
        return pg.colormap.get("viridis")

    def choice_lut(self) -> np.ndarray:
        """RGB rows for decision codes: index 0 = w − Δ, 1 = w, 2 = w + Δ, 3 = empty."""
        rows = [self.minus, self.stay, self.plus, self.background]
        return np.array([QColor(c).getRgb()[:3] for c in rows], dtype=np.uint8)


def make_theme(name: str = "dark", presentation: bool = False) -> Theme:
    if name not in THEMES:
        name = "dark"
    big = presentation
    common = {
        "presentation": presentation,
        "font_pt": 17.0 if big else 10.0,
        "line": 4.0 if big else 2.0,
        "marker": 18.0 if big else 11.0,
    }
    if name == "dark":
        return Theme(
            name="dark",
            background="#101317",
            window="#1c2127",
            foreground="#ffffff" if big else "#eef1f4",
            muted="#a5aeb8",
            border="#3a424c",
            rso="#ff8c1a",
            sgd="#3d9bff",
            plus="#2ee6a8",
            minus="#ff4d7a",
            stay="#8a939c",
            highlight="#ffe500",
            error="#ff5c5c",
            neutral="#101317",
            negative="#3d9bff",
            positive="#ff8c1a",
            **common,
        )
    return Theme(
        name="light",
        background="#ffffff",
        window="#eceff2",
        foreground="#000000" if big else "#15191d",
        muted="#5b6570",
        border="#b8c0c8",
        rso="#d95f00",
        sgd="#0a58ca",
        plus="#00875a",
        minus="#c8102e",
        stay="#7a848e",
        highlight="#a100d6",
        error="#c8102e",
        neutral="#ffffff",
        negative="#0a58ca",
        positive="#d95f00",
        **common,
    )


def apply_app_theme(app: QApplication, theme: Theme) -> None:
    """Palette, default font and a small style sheet for the whole application."""
    app.setStyle("Fusion")
    pal = QPalette()
    win, base, text = QColor(theme.window), QColor(theme.background), QColor(theme.foreground)
    for role, color in (
        (QPalette.ColorRole.Window, win),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, win),
        (QPalette.ColorRole.Button, win),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.ButtonText, text),
        (QPalette.ColorRole.ToolTipBase, base),
        (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.Highlight, QColor(theme.sgd)),
        (QPalette.ColorRole.HighlightedText, QColor("#ffffff")),
        (QPalette.ColorRole.PlaceholderText, QColor(theme.muted)),
    ):
        pal.setColor(role, color)
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor(theme.muted))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor(theme.muted))
    pal.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor(theme.muted))
    app.setPalette(pal)
    app.setFont(theme.font())
    app.setStyleSheet(
        f"""
        QToolTip {{ color: {theme.foreground}; background: {theme.background};
                    border: 1px solid {theme.border}; }}
        QFrame#panel {{ background: {theme.background}; border: 1px solid {theme.border}; border-radius: 4px; }}
        QFrame#errorBanner {{ background: {theme.error}; border-radius: 4px; }}
        QLabel#statusField {{ padding: 0px 8px; border-left: 1px solid {theme.border}; }}
        QFrame#errorBanner QLabel {{ color: #ffffff; font-weight: bold; }}
        """
    )
