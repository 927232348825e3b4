"""Draw a digit: a canvas to draw on with the mouse (or a test image to pick), what the models see of it
(MNIST-style preprocessing, :mod:`rso_gui.live.digits`) and the class probabilities of the RSO and the SGD
model as bars, updated live while they train.

The probabilities come with the snapshots: the panel only sets the input of its
:class:`~rso_gui.live.digits.DigitProbe`, which the engine thread calls when it publishes
(``Runner.publish_extras``); this panel never touches a model. :attr:`inputChanged` tells the window to
have a paused run publish again.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSpinBox, QVBoxLayout, QWidget

from ..live.digits import PROBE_KEY, DigitProbe, DigitReadout, mnist_preprocess
from ..live.snapshot import RunInfo, Snapshot
from ..theme import Theme
from .base import Panel, make_view_box

CANVAS = 280  # side of the drawing's raster (10× MNIST's 28)
PEN = 22.0  # stroke width on that raster: about MNIST's stroke once scaled to 20 px


class DigitCanvas(QWidget):
    """A square to draw strokes on (white on black, like MNIST); ``changed`` after each finished stroke,
    undo and clear. :meth:`drawing` is the raster (CANVAS×CANVAS uint8)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.strokes: list[list[QPointF]] = []
        self._drawing = False
        self.setMinimumSize(140, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw a digit with the mouse")

    # geometry: the raster is drawn as the largest square that fits, centred
    def _square(self) -> tuple[float, float, float]:
        side = float(min(self.width(), self.height()))
        return (self.width() - side) / 2.0, (self.height() - side) / 2.0, side

    def to_raster(self, pos: QPointF) -> QPointF:
        x0, y0, side = self._square()
        k = CANVAS / max(side, 1.0)
        return QPointF((pos.x() - x0) * k, (pos.y() - y0) * k)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._drawing = True
            self.strokes.append([self.to_raster(event.position())])
            self.update()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._drawing and self.strokes:
            self.strokes[-1].append(self.to_raster(event.position()))
            self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._drawing and event.button() == Qt.MouseButton.LeftButton:
            self._drawing = False
            self.changed.emit()

    def undo(self) -> None:
        if self.strokes:
            self.strokes.pop()
            self.update()
            self.changed.emit()

    def clear(self) -> None:
        if self.strokes:
            self.strokes = []
            self.update()
            self.changed.emit()

    def add_stroke(self, points: list[tuple[float, float]]) -> None:
        """A stroke in raster coordinates (tests, scripts)."""
        self.strokes.append([QPointF(x, y) for x, y in points])
        self.update()
        self.changed.emit()

    def _paint_strokes(self, p: QPainter, scale: float) -> None:
        pen = QPen(QColor("white"), PEN * scale, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                   Qt.PenJoinStyle.RoundJoin)  # fmt: skip
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for stroke in self.strokes:
            if len(stroke) == 1:
                p.drawPoint(stroke[0] * scale)
                continue
            path = QPainterPath(stroke[0] * scale)
            for q in stroke[1:]:
                path.lineTo(q * scale)
            p.drawPath(path)

    def drawing(self) -> np.ndarray:
        """The strokes rasterised (CANVAS, CANVAS) uint8, ink 255."""
        img = QImage(CANVAS, CANVAS, QImage.Format.Format_Grayscale8)
        img.fill(0)
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._paint_strokes(p, 1.0)
        p.end()
        arr = np.frombuffer(img.constBits(), np.uint8, count=img.bytesPerLine() * CANVAS)
        return arr.reshape(CANVAS, img.bytesPerLine())[:, :CANVAS].copy()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        x0, y0, side = self._square()
        p.fillRect(self.rect(), self.palette().window())
        p.fillRect(int(x0), int(y0), int(side), int(side), QColor("black"))
        p.translate(x0, y0)
        self._paint_strokes(p, side / CANVAS)
        if not self.strokes:
            p.setPen(QColor(150, 150, 150))
            p.drawText(0, 0, int(side), int(side), Qt.AlignmentFlag.AlignCenter, "draw a digit here")
        p.end()


class DigitPanel(Panel):
    """The canvas, the 28×28 the models see, and both models' probabilities per class."""

    title = "Draw a digit"
    inputChanged = Signal()  # the probe's input changed: a paused run should publish again

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.probe = DigitProbe()
        self.canvas = DigitCanvas()
        self.canvas.changed.connect(self._drawing_changed)
        self.undo_button = QPushButton("Undo")
        self.clear_button = QPushButton("Clear")
        self.test_box = QSpinBox()
        self.test_box.setRange(0, 99_999)
        self.test_box.setPrefix("test image ")
        self.test_button = QPushButton("Use")
        self.test_button.setToolTip("Classify this test image instead of a drawing")
        for w in (self.undo_button, self.clear_button, self.test_box, self.test_button):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.tools.addWidget(w)
        self.undo_button.clicked.connect(self.canvas.undo)
        self.clear_button.clicked.connect(self.canvas.clear)
        self.test_button.clicked.connect(lambda: self.use_test_image(self.test_box.value()))

        row = QHBoxLayout()
        row.addWidget(self.canvas, 1)
        right = QVBoxLayout()
        top = QHBoxLayout()
        self.seen = pg.GraphicsLayoutWidget()  # what the models see: the 28×28 after preprocessing
        self.seen.setToolTip("what the models see: the drawing scaled to 20×20 and centred in 28×28, as MNIST")
        self.seen_box = make_view_box()
        self.seen.addItem(self.seen_box, row=0, col=0)
        self.seen_img = pg.ImageItem()
        self.seen_box.addItem(self.seen_img)
        self.seen_frame = pg.QtWidgets.QGraphicsRectItem(0, 0, 28, 28)  # the 28×28 field's edge
        self.seen_box.addItem(self.seen_frame)
        top.addWidget(self.seen)
        self.verdict = QLabel("draw a digit")
        self.verdict.setTextFormat(Qt.TextFormat.RichText)
        self.verdict.setWordWrap(True)
        top.addWidget(self.verdict, 1)
        right.addLayout(top)
        self.bars = pg.PlotWidget()
        self.bars.setMenuEnabled(False)
        self.bars.setMouseEnabled(False, False)
        self.bars.hideButtons()
        bp = self.bars.getPlotItem()
        bp.setYRange(0, 100, padding=0.02)
        bp.setLabel("left", "probability %")
        self.bar_rso = pg.BarGraphItem(x=[], height=[], width=0.4)
        self.bar_sgd = pg.BarGraphItem(x=[], height=[], width=0.4)
        bp.addItem(self.bar_rso)
        bp.addItem(self.bar_sgd)
        right.addWidget(self.bars, 1)
        row.addLayout(right, 1)
        self.body.addLayout(row, 1)
        self.readout: DigitReadout | None = None
        self._classes: tuple[str, ...] = tuple(str(i) for i in range(10))

    # ------------------------------------------------------------------------------------------ input
    def _drawing_changed(self) -> None:
        image = mnist_preprocess(self.canvas.drawing()) if self.canvas.strokes else None
        self.probe.set_drawing(image)
        self._show_seen(image)
        self.inputChanged.emit()

    def use_test_image(self, index: int) -> None:
        self.test_box.setValue(int(index))
        self.probe.set_test_image(int(index))
        self.inputChanged.emit()

    def _show_seen(self, image: np.ndarray | None) -> None:
        # (row-major images: rso_gui.theme sets pyqtgraph's axis order)
        self.seen_img.setImage(np.zeros((28, 28), np.float32) if image is None else image, levels=(0.0, 1.0))

    # ------------------------------------------------------------------------------------------ hooks
    def set_info(self, info: RunInfo) -> None:
        super().set_info(info)
        self._classes = tuple(info.classes)
        ax = self.bars.getPlotItem().getAxis("bottom")
        ax.setTicks([[(i, c[:5]) for i, c in enumerate(self._classes)]])
        self.bars.getPlotItem().setXRange(-0.6, len(self._classes) - 0.4, padding=0)

    def update_view(self, snap: Snapshot) -> None:
        readout = snap.extra.get(PROBE_KEY)
        if isinstance(readout, DigitReadout) and readout.version == self.probe.version:
            self.show_readout(readout)
        elif f"{PROBE_KEY}_error" in snap.extra:
            self.verdict.setText(f"cannot classify: {snap.extra[f'{PROBE_KEY}_error']}")

    def show_readout(self, r: DigitReadout) -> None:
        self.readout = r
        if r.image is not None and (self.probe.version == r.version) and not self.canvas.strokes:
            self._show_seen(r.image)
        t = self.theme
        if r.rso is None:
            self.bar_rso.setOpts(x=[], height=[])
            self.bar_sgd.setOpts(x=[], height=[])
            self.verdict.setText(r.source)
            return
        x = np.arange(len(r.rso))
        self.bar_rso.setOpts(x=x - 0.21, height=100 * r.rso, brush=t.color(t.rso), pen=None)
        parts = [self._verdict("RSO", r.rso, t.rso)]
        if r.sgd is not None:
            self.bar_sgd.setOpts(x=x + 0.21, height=100 * r.sgd, brush=t.color(t.sgd), pen=None)
            parts.append(self._verdict("SGD", r.sgd, t.sgd))
        else:
            self.bar_sgd.setOpts(x=[], height=[])
        self.verdict.setText(f"{r.source} · weight {r.steps:,}<br>" + "<br>".join(parts))

    def _verdict(self, who: str, p: np.ndarray, color: str) -> str:
        k = int(np.argmax(p))
        name = self._classes[k] if k < len(self._classes) else str(k)
        return self.label_html(f"<b>{who}: {name}</b> ({100 * p[k]:.0f} %)", color)

    def apply_theme(self, theme: Theme) -> None:
        super().apply_theme(theme)
        self.style_plot(self.bars.getPlotItem())
        self.verdict.setFont(theme.font(1.2 if theme.presentation else 1.05))
        side = int(theme.font_pt * (7 if theme.presentation else 9))
        self.seen.setFixedSize(side, side)
        self.seen.setBackground(theme.color(theme.background))
        pen = theme.pen("muted", 1)
        pen.setCosmetic(True)
        self.seen_frame.setPen(pen)
        self.bars.setBackground(theme.color(theme.background))
        if self.readout is not None:
            self.show_readout(self.readout)


__all__ = ["CANVAS", "DigitCanvas", "DigitPanel"]
