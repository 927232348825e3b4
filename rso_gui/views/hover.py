"""Hover read-outs: the value under the cursor of a plot, written beside the cursor.

A :class:`HoverReadout` watches one PlotItem's scene. When the mouse moves over the plot's view it asks
its ``describe(x, y)`` (data coordinates; a log x-axis is undone) for the text to show, and places that
text next to the cursor with a thin vertical line at its x; it hides when the mouse leaves the view or
``describe`` returns None. Tests and lessons call :meth:`HoverReadout.show_at` with data coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import QPointF

from ..theme import Theme


class HoverReadout:
    """``HoverReadout(plot, describe)``: see the module docstring; :attr:`text` is the read-out shown."""

    def __init__(self, plot: pg.PlotItem, describe: Callable[[float, float], str | None]):
        self.plot = plot
        self.describe = describe
        self.label = pg.TextItem("", anchor=(0, 1))
        self.label.setZValue(50)
        self.line = pg.InfiniteLine(angle=90, movable=False)
        self.line.setZValue(40)
        for item in (self.line, self.label):
            item.setVisible(False)
            plot.addItem(item, ignoreBounds=True)
        self.text = ""
        plot.scene().sigMouseMoved.connect(self._moved)

    def apply_theme(self, theme: Theme) -> None:
        self.label.setColor(theme.foreground)
        self.label.setFont(theme.font(0.85))
        self.label.fill = pg.mkBrush(theme.window)
        self.label.border = theme.pen("border", 1)
        self.line.setPen(theme.pen("muted", 1))

    def _moved(self, pos) -> None:
        vb = self.plot.getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            self.hide()
            return
        p = vb.mapSceneToView(pos)
        x = p.x()
        if self.plot.ctrl.logXCheck.isChecked():
            x = 10.0**x
        self.show_at(x, p.y())

    def show_at(self, x: float, y: float) -> str | None:
        """Show the read-out for the data point (x, y); returns its text (None: nothing there)."""
        text = self.describe(x, y)
        if not text:
            self.hide()
            return None
        self.text = text
        self.label.setText(text)
        log = self.plot.ctrl.logXCheck.isChecked()
        vx = math.log10(x) if log and x > 0 else x
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        # keep the text inside the view: left of the cursor in the right half, below it in the top half
        self.label.setAnchor((1.0 if vx > (x0 + x1) / 2 else 0.0, 0.0 if y > (y0 + y1) / 2 else 1.0))
        self.label.setPos(QPointF(vx, y))
        self.line.setPos(vx)
        self.label.setVisible(True)
        self.line.setVisible(True)
        return text

    def hide(self) -> None:
        self.text = ""
        self.label.setVisible(False)
        self.line.setVisible(False)
