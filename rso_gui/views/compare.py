"""Panel 4: the runs compared — test accuracy and test loss of RSO, its SGD baseline and any race lanes
(rso_gui/live/lanes.py; colours, markers and filter rows in :mod:`rso_gui.views.lanes`), on the same model,
data and seed.

The x-axis is switchable: cycles (RSO) and epochs (SGD); weight updates (RSO tries one scalar per
update, an SGD step updates every parameter); forward-pass samples (images pushed through the network,
the fair compute axis: RSO does three per weight and image); training time in seconds.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel

from rso_engine.events import Evaluated
from rso_engine.vocabulary import X_AXES, log_x_by_default, x_axis_name

from ..live.snapshot import Snapshot
from ..theme import Theme
from .base import Panel
from .hover import HoverReadout
from .lanes import LaneRows, lane_key, run_color, run_mark, run_symbol


class ComparePanel(Panel):
    title = "Runs compared"
    axisChanged = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.axis_box = QComboBox()
        for key, axis in X_AXES.items():
            self.axis_box.addItem(axis.label, key)
        self.axis_box.setToolTip("x-axis (X cycles through them)")
        self.axis_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.log_box = QCheckBox("log x")
        self.log_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.tools.addWidget(QLabel("x:"))
        self.tools.addWidget(self.axis_box)
        self.tools.addWidget(self.log_box)
        self.axis_box.currentIndexChanged.connect(self._axis_changed)
        self.log_box.toggled.connect(lambda _on: self._redraw())

        self.summary = QLabel("–")
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)  # a narrow panel (every panel at once on a projector) wraps, never cuts
        self.body.addWidget(self.summary)
        self.plots = pg.GraphicsLayoutWidget()
        self.body.addWidget(self.plots, 1)
        self.lane_rows = LaneRows()  # each lane's first-layer filters (only while lanes race)
        self.body.addWidget(self.lane_rows)
        self.acc = self.plots.addPlot(row=0, col=0)
        self.loss = self.plots.addPlot(row=1, col=0)
        self.loss.setXLink(self.acc)
        self.acc.setLabel("left", "accuracy %")
        self.loss.setLabel("left", "loss")
        for p in (self.acc, self.loss):
            p.setMenuEnabled(False)
            p.setMouseEnabled(False, False)
            p.hideButtons()
        # no legend box over the curves: the coloured summary line above the plots is the legend
        self.curves = {}
        for algo in ("rso", "sgd"):
            self.curves[algo] = (self.acc.plot(skipFiniteCheck=True), self.loss.plot(skipFiniteCheck=True))
        self._hist: dict[str, tuple[Evaluated, ...]] = {"rso": (), "sgd": ()}  # then "lane2", … (lanes)
        self._names: dict[str, tuple[str, str]] = {"rso": ("RSO", "rso"), "sgd": ("SGD", "sgd")}  # name, algorithm
        self._data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.hover = {
            "accuracy": HoverReadout(self.acc, lambda x, _y: self.readout(x, "accuracy")),
            "loss": HoverReadout(self.loss, lambda x, _y: self.readout(x, "loss")),
        }
        self._has = False
        self._set_log_default()

    # ------------------------------------------------------------------------------------------ options
    @property
    def x_axis(self) -> str:
        """The x-axis shown: a key of :data:`rso_engine.vocabulary.X_AXES`."""
        return self.axis_box.currentData()

    def set_x_axis(self, key: str) -> None:
        """Show the x-axis ``key`` (an old spelling such as ``"cycle"`` too); an unknown one is ignored."""
        try:
            i = self.axis_box.findData(x_axis_name(key))
        except ValueError:
            return
        if i >= 0:
            self.axis_box.setCurrentIndex(i)

    def next_x_axis(self) -> None:
        self.axis_box.setCurrentIndex((self.axis_box.currentIndex() + 1) % self.axis_box.count())

    def _axis_changed(self, _i: int) -> None:
        self._set_log_default()
        self._redraw()
        self.axisChanged.emit(self.x_axis)

    def _set_log_default(self) -> None:
        self.log_box.blockSignals(True)
        self.log_box.setChecked(log_x_by_default(self.x_axis))
        self.log_box.blockSignals(False)

    def apply_theme(self, theme: Theme) -> None:
        super().apply_theme(theme)
        self.plots.setBackground(theme.background)
        for p in (self.acc, self.loss):
            self.style_plot(p)
        for algo in self.curves:
            self._style_curves(algo)
        self.lane_rows.apply_theme(theme)
        self.summary.setFont(theme.font(1.0))
        for h in self.hover.values():
            h.apply_theme(theme)
        self._redraw()

    def _style_curves(self, algo: str) -> None:
        theme = self.theme
        color = run_color(theme, algo)
        pen = theme.pen(color)
        for c in self.curves[algo]:
            c.setPen(pen)
            c.setSymbol(run_symbol(algo))
            c.setSymbolSize(theme.marker * 0.8)
            c.setSymbolBrush(pg.mkBrush(color))
            c.setSymbolPen(theme.pen(color, 1))

    def set_info(self, info) -> None:
        super().set_info(info)
        self.lane_rows.set_info(info)

    def has_content(self) -> bool:
        return self._has

    def readout(self, x: float, what: str) -> str | None:
        """The hover text at x (in the x-axis' units): each curve's point nearest to it, with its cycle or
        epoch, test accuracy and loss (``what`` first)."""
        axis = X_AXES[self.x_axis]
        lines = []
        for algo in self._hist:
            xs, acc, loss = self._data.get(algo, (np.empty(0),) * 3)
            if not len(xs):
                continue
            i = int(np.argmin(np.abs(xs - x)))
            row = [r for r in self._hist[algo] if float(getattr(r, axis.field)) == xs[i]][-1:]
            unit = "cycle" if self._names[algo][1] == "rso" else "epoch"
            where = f"{unit} {row[0].cycle}" if row else ""
            if axis.field != "cycle":
                where += f" · {axis.label.split(' (')[0]} {xs[i]:,.4g}"
            values = [f"{acc[i]:.1f}%", f"loss {loss[i]:.3f}"]
            if what == "loss":
                values.reverse()
            lines.append(f"{self._names[algo][0]} {where}: {' · '.join(values)}")
        return "\n".join(lines) or None

    # ------------------------------------------------------------------------------------------ drawing
    def update_view(self, snap: Snapshot) -> None:
        hist = {"rso": snap.rso_history, "sgd": snap.sgd_history}
        self._names["rso"] = ("1 · RSO" if snap.lanes else "RSO", "rso")  # the main run is lane 1 of a race
        for lane in snap.lanes:  # the race's extra lanes, each its own curve and legend entry
            hist[lane_key(lane.number)] = lane.history
            self._names[lane_key(lane.number)] = (f"{lane.number} · {lane.label}", lane.algorithm)
        self.lane_rows.update_lanes(snap)
        if {k: len(v) for k, v in hist.items()} != {k: len(v) for k, v in self._hist.items()} or any(
            a and b and a[-1] is not b[-1] for a, b in ((hist[k], self._hist[k]) for k in hist)
        ):
            self._hist = hist
            self._redraw()

    def _redraw(self) -> None:
        axis = X_AXES[self.x_axis]
        log = self.log_box.isChecked()
        self.loss.setLabel("bottom", axis.label + (" (log)" if log else ""))
        data = {}
        for algo in self._hist:
            if algo not in self.curves:  # a new lane
                self.curves[algo] = (self.acc.plot(skipFiniteCheck=True), self.loss.plot(skipFiniteCheck=True))
                self._style_curves(algo)
            rows = self._hist[algo]
            x = np.array([getattr(r, axis.field) for r in rows], dtype=float)
            acc = np.array([100 * r.test_accuracy for r in rows])
            loss = np.array([r.test_loss for r in rows])
            if log:
                keep = x > 0
                x, acc, loss = x[keep], acc[keep], loss[keep]
            data[algo] = (x, acc, loss)
        self._data = data

        def set_data():
            for algo in self.curves:
                x, acc, loss = data.get(algo, (np.empty(0),) * 3)  # (a lane no longer raced: hidden)
                for curve, y in zip(self.curves[algo], (acc, loss), strict=True):
                    if len(x):
                        curve.setData(x, y)
                        curve.setVisible(True)
                    else:  # empty or stale data makes pyqtgraph's symbol bounds warn
                        curve.clear()
                        curve.setVisible(False)

        # never show x = 0 on a log axis, even for a moment: data first when turning log on, after when off
        if log:
            set_data()
        for p in (self.acc, self.loss):
            p.setLogMode(x=log, y=False)
        if not log:
            set_data()
        t = self.theme
        parts = []
        for algo in self._hist:
            rows = self._hist[algo]
            if not rows:
                continue
            last = rows[-1]
            name, algorithm = self._names[algo]
            unit = "cycle" if algorithm == "rso" else "epoch"
            color = run_color(t, algo)
            mark = run_mark(algo)  # the curves' symbols
            parts.append(
                self.label_html(
                    f"{mark} <b>{name}</b> {100 * last.test_accuracy:.1f}% · loss {last.test_loss:.3f} "
                    f"({unit} {last.cycle})",
                    color,
                )
            )
            self._has = True
        self.set_text(self.summary, "  ·  ".join(parts) if parts else "–")
        self.flush_text(force=True)
        xs = np.concatenate([x for x, _, _ in data.values()])
        # one point so far (cycle 0): start the axis at 0 and leave room for what comes, rather than
        # centring an arbitrary span on the point
        lone = not log and len(xs) > 0 and xs.max() - xs.min() <= 0
        for p in (self.acc, self.loss):
            p.enableAutoRange(axis="y")
            if lone:
                p.enableAutoRange(axis="x", enable=False)
                p.setXRange(min(0.0, xs.min()), max(1.0, xs.max()), padding=0.02)
            else:
                p.enableAutoRange(axis="x")
