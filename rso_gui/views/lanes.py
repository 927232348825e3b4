"""Race lanes in the views: each run's colour, symbol and name, and the rows of small filter images.

The "Runs compared" panel (:mod:`rso_gui.views.compare`) draws one curve per run: the main RSO run (lane 1,
the one the other panels follow) in the theme's RSO colour, its SGD baseline in the SGD colour, and each
extra lane (:class:`~rso_gui.live.snapshot.LaneView`, numbered from 2) in a colour of its own with its own
marker. Below the curves, when there are lanes, :class:`LaneRows` shows each RSO lane's first-layer filters
in a row (lane 1 first), with the same fixed colour levels as the Filters panel, so the race is visible in
the weights too.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize

from ..live.snapshot import LaneView, RunInfo, Snapshot
from ..theme import Theme
from .base import make_view_box
from .filters import shows_rgb
from .tiles import TileLayout
from .weights import LEVEL_SIGMAS

#: extra lanes' colours (lanes 2, 3, 4), distinct from RSO's orange and SGD's blue, per theme
LANE_COLORS = {
    "dark": ("#c792ff", "#2ee6d6", "#ff7ac8"),
    "light": ("#7b2cbf", "#00827c", "#c2185b"),
}
LANE_SYMBOLS = ("t1", "d", "p")  # triangle (pointing up), diamond, pentagon
LANE_MARKS = ("▲", "◆", "⬟")  # the same shapes in the legend's text
ROW_HEIGHT_EM = (1.6, 3.0, 4.5)  # a filter row's height in lines of the theme's font: least, wanted, most


def lane_key(number: int) -> str:
    """The key of lane ``number`` (2, 3, …) beside ``"rso"`` and ``"sgd"`` in the compare panel."""
    return f"lane{number}"


def _slot(key: str) -> int:
    return (int(key[4:]) - 2) % len(LANE_SYMBOLS)


def run_color(theme: Theme, key: str) -> str:
    if key == "rso":
        return theme.rso
    if key == "sgd":
        return theme.sgd
    return LANE_COLORS["dark" if theme.dark else "light"][_slot(key)]


def run_symbol(key: str) -> str:
    return {"rso": "o", "sgd": "s"}.get(key) or LANE_SYMBOLS[_slot(key)]


def run_mark(key: str) -> str:
    return {"rso": "●", "sgd": "■"}.get(key) or LANE_MARKS[_slot(key)]


class LaneRows(pg.GraphicsLayoutWidget):
    """One row of small filter images per RSO lane (lane 1 from the snapshot's weights); hidden without lanes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.theme: Theme | None = None
        self.info: RunInfo | None = None
        self._rows: dict[str, tuple[object, pg.ImageItem, np.ndarray | None]] = {}
        self._layout: TileLayout | None = None
        self._level = 1.0
        self.setVisible(False)

    @property
    def labels(self) -> list[str]:
        """The rows' names, in order (tests)."""
        return [label.text for label, _img, _shown in self._rows.values()]

    def apply_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.setBackground(theme.background)
        self._clear()

    def set_info(self, info: RunInfo) -> None:
        self.info = info
        param = self.param
        self._layout = None
        if param is not None:
            shape, dense_input = info.param_shapes[param], info.dense_inputs.get(param)
            self._layout = TileLayout(shape, dense_input, rgb=shows_rgb(info, param))
            self._level = LEVEL_SIGMAS * info.sigma.get(param, 1.0)
        self._clear()

    @property
    def param(self) -> str | None:
        return self.info.filter_params[0] if self.info is not None and self.info.filter_params else None

    def _clear(self) -> None:
        self.clear()
        self._rows = {}

    def update_lanes(self, snap: Snapshot) -> None:
        rows = self._wanted(snap)
        self.setVisible(bool(snap.lanes) and bool(rows))
        if not rows or self.theme is None or self._layout is None:
            return
        if list(self._rows) != [key for key, _, _ in rows]:
            self._build([(key, text) for key, text, _ in rows])
        for key, _text, values in rows:
            label, img, shown = self._rows[key]
            if values is not None and (shown is None or not np.array_equal(shown, values)):
                level = self._level
                img.setImage(self._layout.image(values, gap=-level if self._layout.rgb else 0.0),
                             levels=(-level, level), autoLevels=False)  # fmt: skip
                self._rows[key] = (label, img, values)

    def _wanted(self, snap: Snapshot) -> list[tuple[str, str, np.ndarray | None]]:
        param = self.param
        if param is None or not snap.lanes:
            return []
        rows = [("rso", "1 · RSO", snap.params.get(param))]
        for lane in snap.lanes:
            if lane.algorithm == "rso" or lane.filters is not None:
                rows.append((lane_key(lane.number), self._name(lane), lane.filters))
        return rows

    @staticmethod
    def _name(lane: LaneView) -> str:
        return f"{lane.number} · {lane.label}"

    def _build(self, rows: list[tuple[str, str]]) -> None:
        self._clear()
        t = self.theme
        size = f"{t.font_pt * 0.85:.0f}pt"
        for i, (key, text) in enumerate(rows):
            label = self.addLabel(text, row=i, col=0, color=run_color(t, key), size=size, justify="right")
            vb = make_view_box()
            self.addItem(vb, row=i, col=1)
            img = pg.ImageItem()
            img.setColorMap(t.weight_cmap())
            vb.addItem(img)
            self._rows[key] = (label, img, None)
        self.ci.layout.setColumnStretchFactor(1, 3)
        self.ci.layout.setContentsMargins(0, 2, 0, 2)
        self.ci.layout.setVerticalSpacing(2)
        line = self.fontMetrics().height() * (t.font_pt / max(self.font().pointSizeF(), 1.0))
        least, self._wanted_height, most = (int(len(rows) * k * line) + 6 for k in ROW_HEIGHT_EM)
        self.setMinimumHeight(least)  # a small panel: the curves keep the room, the rows shrink to this
        self.setMaximumHeight(most)
        self.updateGeometry()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(super().sizeHint().width(), getattr(self, "_wanted_height", 0))


__all__ = ["LANE_COLORS", "LaneRows", "lane_key", "run_color", "run_mark", "run_symbol"]
