"""Panel 1: the loss landscape along the weight RSO just decided, with its three candidates.

1-D: the mini-batch loss (mean cross-entropy over the weight's own batch) as the weight is swept over
about ±3σ (σ of its cycle) around its value, all other weights as they are; markers at w − Δ, w and w + Δ (their
losses as the engine computed them) and a ring around the one kept. 2-D: the loss over this weight and
the next one in the sweep (RSO moves along the axes), or over two filter-normalised random directions
(Li et al. 2018), as an image with the current point marked.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QStackedWidget

from rso_engine.events import MINUS, PLUS, STAY
from rso_engine.vocabulary import LANDSCAPE_LABELS, RunState

from ..live.snapshot import CURVE_POINTS, Snapshot
from ..theme import Theme
from .base import Panel
from .hover import HoverReadout


class LandscapePanel(Panel):
    title = "Loss landscape"
    modeChanged = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.mode_box = QComboBox()
        for mode, text in LANDSCAPE_LABELS.items():
            self.mode_box.addItem(text, mode.value)
        self.mode_box.setToolTip("What the landscape shows (D cycles through the modes)")
        self.mode_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.mode_box.currentIndexChanged.connect(lambda i: self.modeChanged.emit(self.mode_box.itemData(i)))
        self.tools.addWidget(self.mode_box)

        self.heading = QLabel("–")
        self.heading.setTextFormat(Qt.TextFormat.RichText)
        self.heading.setWordWrap(True)
        self.body.addWidget(self.heading)
        self.stack = QStackedWidget()
        self.body.addWidget(self.stack, 1)
        self.readout = QLabel("")
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setWordWrap(True)
        self.body.addWidget(self.readout)

        # 1-D
        self.plot1 = pg.PlotWidget()
        self.plot1.setMenuEnabled(False)
        self.plot1.setMouseEnabled(False, False)
        self.plot1.hideButtons()
        p = self.plot1.getPlotItem()
        p.setLabel("left", "mini-batch loss")
        for name in ("left", "bottom"):
            p.getAxis(name).enableAutoSIPrefix(False)
        n = CURVE_POINTS + 8
        self._x = np.zeros(n)
        self._y = np.zeros(n)
        p.setLabel("bottom", "change of the weight (w′ − w)")
        p.disableAutoRange()
        self.curve = pg.PlotDataItem(skipFiniteCheck=True)
        self.now_line = pg.InfiniteLine(pos=0.0, angle=90, movable=False)
        self.mark_minus = pg.ScatterPlotItem()
        self.mark_stay = pg.ScatterPlotItem()
        self.mark_plus = pg.ScatterPlotItem()
        self.kept = pg.ScatterPlotItem()
        for item in (self.now_line, self.curve, self.mark_minus, self.mark_stay, self.mark_plus, self.kept):
            p.addItem(item)
        for item in (self.mark_minus, self.mark_stay, self.mark_plus, self.kept):
            item.setVisible(False)  # until they have data (empty scatter items make pyqtgraph warn)
        self._span: float | None = None
        self._yrange: tuple[float, float] | None = None
        self.stack.addWidget(self.plot1)

        # 2-D
        self.plot2 = pg.PlotWidget()
        self.plot2.setMenuEnabled(False)
        self.plot2.setMouseEnabled(False, False)
        self.plot2.hideButtons()
        self.image = pg.ImageItem()
        self.point = pg.ScatterPlotItem()
        q = self.plot2.getPlotItem()
        q.addItem(self.image)
        q.addItem(self.point)
        self.point.setVisible(False)
        self.colorbar = pg.ColorBarItem(interactive=False, width=14)
        self.colorbar.setImageItem(self.image, insert_in=q)
        self.stack.addWidget(self.plot2)
        self._n = 0  # points of the 1-D curve drawn
        self._grid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # the 2-D slice: a, b, loss[b, a]
        self.hover1 = HoverReadout(p, lambda x, _y: self.readout_1d(x))
        self.hover2 = HoverReadout(q, self.readout_2d)
        self._has = False

    def set_mode(self, key: str) -> None:
        """Show the landscape mode ``key`` (one of :data:`rso_engine.vocabulary.LANDSCAPE_MODES`)."""
        i = self.mode_box.findData(str(key))
        if i >= 0 and i != self.mode_box.currentIndex():
            self.mode_box.setCurrentIndex(i)

    def apply_theme(self, theme: Theme) -> None:
        super().apply_theme(theme)
        for w in (self.plot1, self.plot2):
            w.setBackground(theme.background)
            self.style_plot(w.getPlotItem())
        self.curve.setPen(theme.pen("foreground"))
        for item, key in ((self.mark_minus, "minus"), (self.mark_stay, "stay"), (self.mark_plus, "plus")):
            item.setSize(theme.marker)
            item.setBrush(pg.mkBrush(theme.color(key)))
            item.setPen(theme.pen("foreground", 1.5))
        self.kept.setSize(theme.marker * 2.0)
        self.kept.setBrush(pg.mkBrush(None))
        self.kept.setPen(theme.pen("highlight", max(3.0, theme.line)))
        self.now_line.setPen(theme.pen("muted", max(1.0, theme.line / 2)))
        self.image.setColorMap(theme.loss_cmap())
        self.hover1.apply_theme(theme)
        self.hover2.apply_theme(theme)
        self.colorbar.setColorMap(theme.loss_cmap())
        self.heading.setFont(theme.font(1.0))
        self.readout.setFont(theme.font(1.0))
        for label in (self.heading, self.readout):
            self.text_lines(label)

    def has_content(self) -> bool:
        return self._has

    def readout_1d(self, delta: float) -> str | None:
        """The hover text at a change ``delta`` of the weight: the curve's mean loss there (interpolated
        between its points), inside the curve's span."""
        n = self._n
        if n < 2 or not self._x[0] <= delta <= self._x[n - 1]:
            return None
        return f"Δ = {delta:+.4g}\nloss {float(np.interp(delta, self._x[:n], self._y[:n])):.4f}"

    def readout_2d(self, a: float, b: float) -> str | None:
        """The hover text at (a, b) of the 2-D slice: the mean loss of the nearest grid point."""
        if self._grid is None:
            return None
        xa, xb, img = self._grid
        if not (xa[0] <= a <= xa[-1] and xb[0] <= b <= xb[-1]):
            return None
        i, j = int(np.argmin(np.abs(xb - b))), int(np.argmin(np.abs(xa - a)))
        return f"({xa[j]:+.3g}, {xb[i]:+.3g})\nloss {float(img[i, j]):.4f}"

    # ------------------------------------------------------------------------------------------ drawing
    def update_view(self, snap: Snapshot) -> None:
        if snap.curve is not None:
            self.stack.setCurrentWidget(self.plot1)
            self._draw_curve(snap)
            self._has = True
        elif snap.slice2d is not None:
            self.stack.setCurrentWidget(self.plot2)
            self._draw_slice(snap)
            self._has = True
        elif snap.extra.get("landscape_error"):
            self.set_text(
                self.readout, self.label_html(f"landscape: {snap.extra['landscape_error']}", self.theme.error)
            )
        self.flush_text(force=snap.state != RunState.RUNNING)

    def _set_ranges(self, span: float, lo: float, hi: float) -> None:
        """Change the axes only when needed: re-laying out an axis costs more than drawing the curve."""
        p = self.plot1.getPlotItem()
        if self._span is None or abs(span - self._span) > 0.01 * self._span:
            self._span = span
            p.setXRange(-span, span, padding=0.03)
        # a weight that barely matters gives a flat curve: show at least 0.2 % of the loss, not float noise
        least = 2e-3 * max(abs(hi), 1e-3)
        if hi - lo < least:
            mid = 0.5 * (hi + lo)
            lo, hi = mid - least / 2, mid + least / 2
        ylo, yhi = self._yrange or (np.inf, -np.inf)
        if lo < ylo or hi > yhi or (hi - lo) < 0.35 * (yhi - ylo):
            pad = 0.12 * (hi - lo)
            self._yrange = (lo - pad, hi + pad)
            p.setYRange(*self._yrange, padding=0)

    def _draw_curve(self, snap: Snapshot) -> None:
        t = self.theme
        cv = snap.curve
        c = cv.curve
        B = max(c.batch_size, 1)
        n = len(c.offsets)
        if n > len(self._x):
            self._x = np.zeros(n)
            self._y = np.zeros(n)
        self._x[:n] = c.offsets
        np.divide(c.losses, B, out=self._y[:n])
        self._n = n
        self.curve.setData(self._x[:n], self._y[:n])
        ev = cv.event
        where = f"{c.param}[{', '.join(map(str, c.index))}]"
        span = float(np.max(np.abs(c.offsets)))
        if ev is None:
            y0 = c.loss_at(0.0) / B
            self.mark_stay.setData([0.0], [y0])
            self.mark_stay.setVisible(True)
            for item in (self.mark_minus, self.mark_plus, self.kept):  # (empty data makes pyqtgraph warn)
                item.setVisible(False)
            self._set_ranges(span, float(self._y[:n].min()), float(self._y[:n].max()))
            self._text(
                f"<b>{where}</b> = {c.center:+.4f} — next to be tried · σ = {cv.sigma:.4g}",
                f"loss on the first {B} training images (its own batch is drawn when it is tried)",
            )
            return
        xs = [-ev.delta, cv.stay_value - c.center, ev.delta]
        ys = [ev.loss_minus / B, ev.loss_stay / B, ev.loss_plus / B]
        for item, x, y in zip((self.mark_minus, self.mark_stay, self.mark_plus), xs, ys, strict=True):
            item.setData([x], [y])
            item.setVisible(True)
        self.kept.setVisible(True)
        k = {MINUS: 0, STAY: 1, PLUS: 2}[ev.choice]
        self.kept.setData([xs[k]], [ys[k]])
        self._set_ranges(span, min(float(self._y[:n].min()), *ys), max(float(self._y[:n].max()), *ys))
        names = ["w−Δ", "w", "w+Δ"]
        keys = ["minus", "stay", "plus"]
        parts = []
        for i in range(3):
            txt = f"{names[i]} {ys[i]:.4f}"
            if i == k:
                txt = f"<b><u>{txt}</u></b>"
            parts.append(self.label_html(txt, getattr(t, keys[i])))
        verdict = {PLUS: "kept w+Δ", STAY: "kept w (no change)", MINUS: "kept w−Δ"}[ev.choice]
        exact = "" if cv.exact else " · curve on the weights a few steps later"
        self._text(
            f"<b>{where}</b> = {ev.old:+.4f} · cycle {ev.cycle} · step {ev.step:,} · σ = {cv.sigma:.4g} · "
            f"Δ = {ev.delta:+.4g}",
            f"mean loss on {B} images: {' · '.join(parts)} → <b>{verdict}</b>, w = {ev.new:+.4f}{exact}",
        )

    def _text(self, heading: str, readout: str) -> None:
        self.set_text(self.heading, heading)
        self.set_text(self.readout, readout)

    def _draw_slice(self, snap: Snapshot) -> None:
        t = self.theme
        sv = snap.slice2d
        s = sv.slice
        B = max(s.batch_size, 1)
        img = (s.losses / B).T.astype(np.float32)  # rows: b, columns: a
        lo, hi = float(np.nanmin(img)), float(np.nanmax(img))
        if not hi > lo:
            hi = lo + 1e-6
        self.image.setImage(img, levels=(lo, hi), autoLevels=False)
        a, b = s.a_offsets, s.b_offsets
        self._grid = (np.asarray(a, float), np.asarray(b, float), img)
        da = (a[-1] - a[0]) / max(len(a) - 1, 1)
        db = (b[-1] - b[0]) / max(len(b) - 1, 1)
        self.image.setRect(QRectF(a[0] - da / 2, b[0] - db / 2, a[-1] - a[0] + da, b[-1] - b[0] + db))
        self.colorbar.setLevels((lo, hi))
        xs, ys, brushes, sizes = [0.0], [0.0], [t.color("highlight")], [t.marker]
        if sv.before is not None and sv.before != (0.0, 0.0):
            xs.append(sv.before[0])
            ys.append(sv.before[1])
            brushes.append(pg.mkBrush(None))
            sizes.append(t.marker)
        self.point.setData(xs, ys, size=sizes, brush=brushes, pen=t.pen("highlight", max(2.5, t.line * 0.75)))
        self.point.setVisible(True)
        p = self.plot2.getPlotItem()
        if s.kind == "weights":
            p.setLabel("bottom", f"{s.a_label} − current")
            p.setLabel("left", f"{s.b_label} − current")
            self.set_text(self.heading, f"<b>{s.a_label}</b> × <b>{s.b_label}</b> (the next weight in the sweep)")
            moved = "" if sv.before is None else " · hollow: before the last decision"
            self.set_text(self.readout, f"mean loss on {B} images, range {lo:.4f} … {hi:.4f} · filled: now{moved}")
        else:
            p.setLabel("bottom", "α · direction 1")
            p.setLabel("left", "β · direction 2")
            self.set_text(
                self.heading, "<b>W + α·d₁ + β·d₂</b>, d filter-normalised random directions (Li et al. 2018)"
            )
            self.set_text(self.readout, f"mean loss on {B} images, range {lo:.4f} … {hi:.4f} · marker: current weights")
