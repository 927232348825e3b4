"""What every panel shares: a title bar with optional tools, a body, theming, and content checks."""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics, QImage
from PySide6.QtWidgets import QFrame, QGraphicsItem, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from ..live.snapshot import RunInfo, Snapshot
from ..theme import Theme, make_theme

TEXT_INTERVAL = 0.08  # s: the fastest rate at which panels change their text


class Panel(QFrame):
    """A titled panel. Subclasses fill ``self.body`` and implement the three hooks below."""

    title = "panel"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("panel")
        self.theme: Theme = make_theme()
        self.info: RunInfo | None = None
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 6)
        outer.setSpacing(4)
        head = QHBoxLayout()
        head.setSpacing(8)
        self.title_label = QLabel(self.title)
        self.title_label.setObjectName("panelTitle")
        head.addWidget(self.title_label)
        head.addStretch(1)
        # the tools (mode boxes, check boxes) sit beside the title, or on a row of their own below it when
        # the panel is too narrow for both: neither the title nor a box's text is ever cut
        self.tool_box = QWidget()
        self.tools = QHBoxLayout(self.tool_box)
        self.tools.setContentsMargins(0, 0, 0, 0)
        self.tools.setSpacing(8)
        head.addWidget(self.tool_box)
        self._head = head
        outer.addLayout(head)
        self._tool_row = QHBoxLayout()
        outer.addLayout(self._tool_row)
        self._wrapped = False
        self.body = QVBoxLayout()
        self.body.setSpacing(4)
        outer.addLayout(self.body, 1)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(280, 200)
        self._pending: dict[QLabel, str] = {}
        self._last_text = 0.0

    # hooks -----------------------------------------------------------------------------------------
    def set_info(self, info: RunInfo) -> None:
        """A new run is ready: rebuild what depends on the model."""
        self.info = info

    def update_view(self, snap: Snapshot) -> None:
        """Draw the newest snapshot (called by the window's timer, at most once per frame)."""

    def has_content(self) -> bool:
        """Has the panel drawn a run (panels that draw more say so more precisely)?"""
        return self.info is not None

    def apply_theme(self, theme: Theme) -> None:
        # polish first: under the application's style sheet a widget polished later (when first shown, e.g.
        # after the panel moved to the stage) would get its font from the style sheet, not from setFont
        self.ensurePolished()
        self.theme = theme
        f = theme.font(1.1, bold=True)
        self.title_label.setFont(f)
        self.title_label.setMinimumWidth(self.title_label.sizeHint().width())
        # the tools in the title bar (mode boxes, check boxes) stay smaller than the content on a projector
        tool_font = theme.font(0.75 if theme.presentation else 1.0)
        for i in range(self.tools.count()):
            w = self.tools.itemAt(i).widget()
            if w is not None and w is not self.title_label:
                w.setFont(tool_font)
        self._wrap_tools()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._wrap_tools()

    def _wrap_tools(self) -> None:
        """Put the tools beside the title when both fit the panel's width, else on a row below it."""
        if self.tools.count() == 0:
            return
        m = self.layout().contentsMargins()
        need = self.title_label.sizeHint().width() + self.tool_box.sizeHint().width() + 16 + m.left() + m.right()
        wrap = need > self.width()
        if wrap != self._wrapped:
            self._wrapped = wrap
            (self._head if wrap else self._tool_row).removeWidget(self.tool_box)
            if wrap:
                self._tool_row.addWidget(self.tool_box)
                self._tool_row.addStretch(1)
            else:
                item = self._tool_row.takeAt(self._tool_row.count() - 1)  # the stretch
                del item
                self._head.addWidget(self.tool_box)

    def text_lines(self, label: QLabel, lines: float | None = None) -> None:
        """Give a label a fixed height of ``lines`` lines (3 in presentation mode, else 2), so changing its
        text never re-lays out the panel."""
        n = lines if lines is not None else (3.1 if self.theme.presentation else 2.2)
        label.setFixedHeight(int(label.fontMetrics().lineSpacing() * n))

    # text ------------------------------------------------------------------------------------------
    def set_text(self, label: QLabel, text: str) -> None:
        """Show ``text`` in ``label`` soon: at full speed text changes at most every TEXT_INTERVAL seconds
        (laying out rich text costs more than drawing a curve, and nobody reads 30 numbers a second)."""
        self._pending[label] = text

    def flush_text(self, force: bool = False) -> None:
        """Apply pending texts if due (the window calls this on every frame; ``force`` for a still state)."""
        if not self._pending:
            return
        now = time.perf_counter()
        if not force and now - self._last_text < TEXT_INTERVAL:
            return
        for label, text in self._pending.items():
            if label.text() != text:
                label.setText(text)
        self._pending.clear()
        self._last_text = now

    # helpers ---------------------------------------------------------------------------------------
    def style_plot(self, plot: pg.PlotItem) -> None:
        """Axis pens, tick fonts and label colours of a PlotItem from the theme."""
        t = self.theme
        for name in ("left", "bottom", "right", "top"):
            ax = plot.getAxis(name)
            ax.setPen(t.pen("muted", 1))
            ax.setTextPen(t.pen("foreground", 1))
            ax.setStyle(tickFont=t.font(0.9), tickTextOffset=4)
            if ax.label is not None:
                ax.label.setFont(t.font(0.95))
            # axes are repainted with every change inside the plot; replaying their QPicture costs
            # several ms each time, a cached pixmap almost nothing (redrawn only when the axis changes)
            ax.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            if name in ("left", "right"):
                # a fixed width: pyqtgraph otherwise widens the axis for the widest tick labels it has ever
                # shown, so the plot's layout would depend on its history (and recordings would differ)
                ticks = QFontMetrics(t.font(0.9)).horizontalAdvance("−00.0000")
                label = QFontMetrics(t.font(0.95)).height() if ax.labelText else 0
                ax.setWidth(ticks + 4 + 6 + label + 2)
        plot.showGrid(x=True, y=True, alpha=0.25)

    def label_html(self, text: str, color: str) -> str:
        return f'<span style="color:{color}">{text}</span>'


def image_has_content(img: QImage, min_colors: int = 3) -> bool:
    """True when an image holds more than a flat background (used by the render test and benchmarks)."""
    img = img.convertToFormat(QImage.Format.Format_RGB32)
    w, h = img.width(), img.height()
    if w == 0 or h == 0:
        return False
    ptr = img.constBits()
    arr = np.frombuffer(ptr, np.uint32, count=img.bytesPerLine() // 4 * h).reshape(h, -1)[:, :w]
    return len(np.unique(arr[:: max(1, h // 200), :: max(1, w // 200)])) >= min_colors


def make_view_box(lock_aspect: bool = True, invert_y: bool = True) -> pg.ViewBox:
    """A view box for images that keeps fitting its content (add overlays with ``ignoreBounds=True``):
    the fit follows the box's current size, not the size it had when the image first arrived."""
    vb = pg.ViewBox(lockAspect=lock_aspect, invertY=invert_y, enableMouse=False, enableMenu=False)
    vb.setDefaultPadding(0.02)
    vb.enableAutoRange()
    return vb


def rect_item(theme: Theme) -> pg.QtWidgets.QGraphicsRectItem:
    item = pg.QtWidgets.QGraphicsRectItem(0, 0, 1, 1)
    item.setPen(theme.pen("highlight", max(3.0, theme.line)))
    item.setBrush(pg.mkBrush(None))
    item.setZValue(10)
    item.setVisible(False)
    return item


__all__ = ["Panel", "Qt", "image_has_content", "make_view_box", "rect_item"]
