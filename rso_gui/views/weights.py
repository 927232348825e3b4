"""Panel 2: where the weight sits — the network, the layer being swept, the weight tensor, the decisions.

Top: the network as a row of layers, the one being swept outlined with its progress filled in, and the
weight's indices and progress through the cycle. Middle: the tensor being swept as a heat map with fixed
symmetric colour levels (±3σ_d of its layer) and the current weight outlined. Bottom: the last decisions
(newest on the right: w+Δ kept, w kept, w−Δ kept) and the share of weights changed per layer.
"""

from __future__ import annotations

import re

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QPainter
from PySide6.QtWidgets import QBoxLayout, QLabel, QSizePolicy, QWidget

from rso_engine.vocabulary import RunState

from ..live.snapshot import TRACE_EMPTY, RunInfo, Snapshot
from ..theme import Theme, make_theme
from .base import Panel, make_view_box, rect_item
from .tiles import TileLayout

LEVEL_SIGMAS = 3.0  # colour levels of weights: ±3σ_d of their layer


def short_name(name: str) -> str:
    """A layer's name in a few letters, for where the whole one does not fit: conv6 → c6, relu2 → r2."""
    if len(name) <= 3:
        return name
    m = re.fullmatch(r"([A-Za-z])[A-Za-z_]*?(\d+)", name)
    return f"{m.group(1)}{m.group(2)}" if m else name


class NetworkDiagram(QWidget):
    """The layers as boxes, input to output; the swept layer outlined, its progress filled in."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.theme = make_theme()
        self.info: RunInfo | None = None
        self.current: str | None = None
        self.progress = 0.0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(56)

    def apply_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.setFixedHeight(int(theme.font_pt * 5.2))
        self.update()

    def set_state(self, current: str | None, progress: float) -> None:
        if current != self.current or abs(progress - self.progress) > 1e-3:
            self.current, self.progress = current, progress
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        if self.info is None:
            return
        t = self.theme
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        layers = [layer for layer in self.info.layers if layer.kind not in ("flatten",)]
        boxes = [("input", "input", "")] + [(la.name, la.kind, la.description) for la in layers]
        w, h = self.width(), self.height()
        # a residual block holds two convs (and a projection): it gets their room
        weights = [{"conv": 2.2, "dense": 2.2, "bn": 2.2, "residual": 4.4}.get(kind, 1.0) for _, kind, _ in boxes]
        total = sum(weights)
        gap = 6
        avail = w - gap * (len(boxes) - 1) - 2
        x = 1.0
        p.setFont(t.font(0.85))
        fm = p.fontMetrics()
        searched = {name for name, _ in self.info.plan}
        for (name, kind, _desc), wt in zip(boxes, weights, strict=True):
            bw = avail * wt / total
            rect = QRectF(x, 4, bw, h - 8)
            is_cur = self.is_current(name, kind)
            param = name in searched or kind == "bn" or bool(self._inner(name) & searched)
            fill = QColor(t.window if param else t.background)
            p.fillRect(rect, fill)
            if is_cur and self.progress > 0:
                r2 = QRectF(rect)
                r2.setWidth(rect.width() * min(1.0, self.progress))
                c = QColor(t.highlight)
                c.setAlpha(110)
                p.fillRect(r2, c)
            p.setPen(t.pen("highlight" if is_cur else ("foreground" if param else "border"), 3 if is_cur else 1))
            p.setBrush(QBrush(Qt.BrushStyle.NoBrush))
            p.drawRect(rect)
            p.setPen(t.color("foreground" if param else "muted"))
            room = int(bw) - 4
            label = name if fm.horizontalAdvance(name) <= room else short_name(name)
            label = fm.elidedText(label, Qt.TextElideMode.ElideRight, room)
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)
            x += bw + gap
        p.end()

    def is_current(self, name: str, kind: str) -> bool:
        """Whether box ``name`` is the layer being swept: the layer itself, the batch norm searched with it,
        or the residual block that holds it."""
        if name == self.current or (kind == "bn" and self._group_of(name) == self.current):
            return True
        inner = self._inner(name)
        return self.current in inner or any(self._group_of(b) == self.current for b in inner)

    def _inner(self, name: str) -> set[str]:
        """The names of the layers with parameters inside residual block ``name`` (empty for other layers)."""
        layer = next((la for la in self.info.layers if la.name == name), None) if self.info else None
        return {q.rsplit(".", 1)[0] for q in layer.params} if layer is not None and layer.kind == "residual" else set()

    def _group_of(self, bn_name: str) -> str | None:
        for group, params in self.info.plan:
            if any(q.startswith(bn_name + ".") for q in params):
                return group
        return None


class WeightPanel(Panel):
    title = "Where the weight sits"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.diagram = NetworkDiagram()
        self.body.addWidget(self.diagram)
        self.where = QLabel("–")
        self.where.setTextFormat(Qt.TextFormat.RichText)
        self.where.setWordWrap(True)
        self.body.addWidget(self.where)

        self.heat = pg.GraphicsLayoutWidget()
        self.heat_label = self.heat.addLabel("", row=0, col=0)
        self.heat_box = make_view_box()
        self.heat.addItem(self.heat_box, row=1, col=0)
        self.heat_img = pg.ImageItem()
        self.heat_box.addItem(self.heat_img)
        self.heat_rect = rect_item(self.theme)
        self.heat_box.addItem(self.heat_rect, ignoreBounds=True)
        # the heat map and the decisions below it, or beside it when the panel is wide (a stage in
        # presentation mode): the heat map then gets the panel's height instead of a third of it
        self.split_box = QBoxLayout(QBoxLayout.Direction.TopToBottom)
        self.split_box.addWidget(self.heat, 3)
        self.body.addLayout(self.split_box, 1)

        bottom = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.side_box = bottom
        self.trace = pg.GraphicsLayoutWidget()
        self.trace_label = self.trace.addLabel("last decisions (newest right)", row=0, col=0)
        self.trace_box = make_view_box(lock_aspect=False, invert_y=True)
        self.trace.addItem(self.trace_box, row=1, col=0)
        self.trace_img = pg.ImageItem()
        self.trace_box.addItem(self.trace_img)
        bottom.addWidget(self.trace, 3)
        self.rates = pg.PlotWidget()
        self.rates.setMenuEnabled(False)
        self.rates.setMouseEnabled(False, False)
        self.rates.hideButtons()
        rp = self.rates.getPlotItem()
        rp.setTitle("weights changed, % per layer")
        rp.setYRange(0, 100, padding=0)
        self.bars_all = pg.BarGraphItem(x=[], height=[], width=0.38)
        self.bars_now = pg.BarGraphItem(x=[], height=[], width=0.38)
        rp.addItem(self.bars_all)
        rp.addItem(self.bars_now)
        bottom.addWidget(self.rates, 2)
        self.split_box.addLayout(bottom, 2)

        self._layouts: dict[str, TileLayout] = {}
        self._param: str | None = None
        self._lut = self.theme.choice_lut()
        self._has = False
        self._rates_shown = None
        self._trace_shown: np.ndarray | None = None

    # ------------------------------------------------------------------------------------------ setup
    def set_info(self, info: RunInfo) -> None:
        super().set_info(info)
        self.diagram.info = info
        self._layouts = {}
        for name, shape in info.param_shapes.items():
            self._layouts[name] = TileLayout(shape, info.dense_inputs.get(name))
        self._param = None
        names = [name for name, _ in info.plan]
        self._tick_names = names
        self._set_ticks()
        # room for the outer bars' tick labels, which are wider than half a bar
        self.rates.getPlotItem().setXRange(-0.9, len(names) - 0.1, padding=0)
        self.diagram.update()

    def apply_theme(self, theme: Theme) -> None:
        super().apply_theme(theme)
        self.diagram.apply_theme(theme)
        for w in (self.heat, self.trace, self.rates):
            w.setBackground(theme.background)
        self.style_plot(self.rates.getPlotItem())
        self._set_ticks()
        self.rates.getPlotItem().showGrid(x=False, y=True, alpha=0.25)
        self._rates_title = None
        self._set_rates_title()
        self.heat_img.setColorMap(theme.weight_cmap())
        self.heat_rect.setPen(theme.pen("highlight", max(3.0, theme.line)))
        self.bars_all.setOpts(brush=pg.mkBrush(QColor(theme.border)), pen=theme.pen("border", 1))
        self.bars_now.setOpts(brush=pg.mkBrush(QColor(theme.rso)), pen=theme.pen("rso", 1))
        self._lut = theme.choice_lut()
        self.where.setFont(theme.font(1.0))
        self.text_lines(self.where, 3.2)  # three lines: a narrow panel (a small screen's stage) needs them
        self._rates_shown = None
        for label in (self.heat_label, self.trace_label):
            label.setAttr("color", theme.foreground)
            label.setAttr("size", f"{theme.font_pt * 0.9:.0f}pt")
            label.setText(label.text)

    def _set_ticks(self) -> None:
        """The layers under the bars: their names, or short ones (c6, bn6) when the names would overlap."""
        names = getattr(self, "_tick_names", [])
        if not names:
            return
        axis = self.rates.getPlotItem().getAxis("bottom")
        fm = QFontMetrics(self.theme.font(0.9))
        per_bar = max(1, self.rates.width() - 60) / (len(names) + 0.8)
        fits = max(fm.horizontalAdvance(n) for n in names) + 6 <= per_bar
        axis.setTicks([[(i, n if fits else short_name(n)) for i, n in enumerate(names)]])

    def _set_rates_title(self) -> None:
        """The bars' title with its colour legend, or without the legend when the plot is too narrow."""
        t = self.theme
        legend = f" {self.label_html('■', t.border)} all {self.label_html('■', t.rso)} this sweep"
        full = QFontMetrics(t.font(0.85)).horizontalAdvance("% changed ■ all ■ this sweep") + 70
        title = "% changed" + (legend if self.rates.width() >= full else "")
        if title != getattr(self, "_rates_title", None):
            self._rates_title = title
            self.rates.getPlotItem().setTitle(title, color=t.foreground, size=f"{t.font_pt * 0.85:.0f}pt")

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._set_ticks()
        self._set_rates_title()
        wide = self.width() > 1.5 * self.height()
        direction = QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        if self.split_box.direction() != direction:
            self.split_box.setDirection(direction)
            self.side_box.setDirection(
                QBoxLayout.Direction.TopToBottom if wide else QBoxLayout.Direction.LeftToRight
            )

    def has_content(self) -> bool:
        return self._has

    # ------------------------------------------------------------------------------------------ drawing
    def update_view(self, snap: Snapshot) -> None:
        info = self.info
        if info is None or snap.current is None:
            return
        t = self.theme
        layer, param, index, position, layer_size = snap.current
        done = snap.last is not None and snap.last.param == param and tuple(snap.last.index) == tuple(index)
        progress = (position + (1 if done else 0)) / max(layer_size, 1)
        self.diagram.set_state(layer, progress)
        sweep = [name for name, _ in info.plan]
        k = sweep.index(layer) + 1 if layer in sweep else 0
        cyc_frac = min(1.0, max(0.0, snap.cycle_weights / max(snap.weights_per_cycle, 1)))
        state = "just tried" if done else "next"
        text = (
            f"cycle <b>{snap.cycle}/{info.cycles}</b> · layer <b>{layer}</b> ({k} of {len(sweep)} in the sweep "
            f"{' → '.join(sweep)}) · {state} <b>{param}[{', '.join(map(str, index))}]</b> · "
            f"weight {position + 1:,} of {layer_size:,} in the layer · {100 * cyc_frac:.1f}% of the cycle"
        )
        self.set_text(self.where, text)

        lay = self._layouts.get(param)
        values = snap.params.get(param)
        if lay is not None and values is not None:
            level = LEVEL_SIGMAS * info.sigma.get(param, 1.0)
            self.heat_img.setImage(lay.image(values), levels=(-level, level), autoLevels=False)
            if param != self._param:
                self._param = param
                self.heat_label.setText(
                    f"{param} {tuple(lay.shape)} as {lay.describe()} · colour ±{LEVEL_SIGMAS:g}σ_d = ±{level:.3g}",
                    color=t.foreground,
                    size=f"{t.font_pt * 0.9:.0f}pt",
                )
            r, c = lay.pixel(index)
            pad = 0.25 if lay.width * lay.height > 2000 else 0.1
            self.heat_rect.setRect(QRectF(c - pad, r - pad, 1 + 2 * pad, 1 + 2 * pad))
            self.heat_rect.setVisible(True)

        if self._trace_shown is None or not np.array_equal(self._trace_shown, snap.trace):
            self._trace_shown = snap.trace
            codes = np.where(snap.trace == TRACE_EMPTY, 3, snap.trace.astype(np.int16) + 1)
            rgb = self._lut[codes][None, :, :]
            first = self.trace_img.image is None
            self.trace_img.setImage(rgb, autoLevels=False, levels=(0, 255))
            if first:
                self.trace_box.setRange(QRectF(0, 0, rgb.shape[1], 1), padding=0)

        x = np.arange(len(sweep), dtype=float)
        rows = [snap.layer_stats[n] for n in sweep]
        allr = np.array([100 * s.changed / s.tried if s.tried else 0 for s in rows])
        nowr = np.array([100 * s.changed_sweep / s.tried_sweep if s.tried_sweep else 0 for s in rows])
        shown = (tuple(np.round(allr, 1)), tuple(np.round(nowr, 1)))
        if shown != self._rates_shown:  # changes slowly: redraw only when a bar visibly moves
            self._rates_shown = shown
            self.bars_all.setOpts(x=x - 0.2, height=allr, width=0.38)
            self.bars_now.setOpts(x=x + 0.2, height=nowr, width=0.38)
        self.flush_text(force=snap.state != RunState.RUNNING)
        self._has = True
