"""Panel 3: the conv filters as image tiles, and the feature maps of one test digit.

Each conv layer's weights are drawn as k×k tiles (one column per filter, one row per input channel) with
fixed symmetric colour levels of ±3σ_d for that layer, so a single weight's change is visible as a
change of one pixel; the pixel being changed is outlined. For a model without convolutions the first
dense layer's weights are drawn as images of its input. On colour images (CIFAR-10) the first layer's
filters are RGB tiles instead, one k×k colour tile per filter whose red, green and blue are the weights on
the input's three channels (0 is mid grey at the same ±3σ_d levels). Below: the chosen test image (in
colour when it has three channels), the network's prediction, and the activations after each conv block.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QLabel, QSpinBox

from ..live.snapshot import RunInfo, Snapshot
from ..theme import Theme
from .base import Panel, make_view_box, rect_item
from .tiles import TileLayout
from .weights import LEVEL_SIGMAS

MAX_COLUMNS = 3


def shows_rgb(info: RunInfo, param: str) -> bool:
    """Whether ``param`` is drawn as RGB tiles: the first layer's conv weight, on 3-channel images."""
    first = info.layers[0] if info.layers else None
    shape = info.param_shapes.get(param, ())
    return (first is not None and tuple(first.in_shape[:1]) == (3,) and param in first.params
            and len(shape) == 4 and shape[1] == 3)  # fmt: skip


class FiltersPanel(Panel):
    title = "Filters"
    digitChanged = Signal(int)
    featuresToggled = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.features_box = QCheckBox("feature maps of test digit")
        self.features_box.setChecked(True)
        self.features_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.features_box.toggled.connect(self.featuresToggled)
        self.digit_box = QSpinBox()
        self.digit_box.setRange(0, 9999)
        self.digit_box.setToolTip("Which test image the feature maps are computed on")
        # only a click gives it the keyboard: zooming panels must not leave the shortcuts typing into it
        self.digit_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.digit_box.valueChanged.connect(self.digitChanged)
        self.tools.addWidget(self.features_box)
        self.tools.addWidget(QLabel("#"))
        self.tools.addWidget(self.digit_box)

        self.view = pg.GraphicsLayoutWidget()
        self.body.addWidget(self.view, 1)
        self._filters: dict[str, tuple[TileLayout, pg.ImageItem, object, pg.ViewBox, float]] = {}
        self._maps: list[tuple[str, pg.ImageItem, pg.ViewBox, object]] = []
        self._digit: tuple[pg.ImageItem, pg.ViewBox, object] | None = None
        self._map_layouts: dict[tuple[int, ...], TileLayout] = {}
        self._labels: list = []
        self._shown: dict[str, np.ndarray] = {}
        self._has = False

    def set_features(self, on: bool) -> None:
        self.features_box.setChecked(on)

    def set_digit(self, i: int) -> None:
        self.digit_box.setValue(i)

    # ------------------------------------------------------------------------------------------ setup
    def set_info(self, info: RunInfo) -> None:
        super().set_info(info)
        self.digit_box.setMaximum(max(0, info.n_test - 1))
        self._rebuild()

    def _add_label(self, text: str, row: int, col: int):
        t = self.theme
        label = self.view.addLabel(text, row=row, col=col, color=t.foreground, size=f"{t.font_pt * 0.9:.0f}pt")
        self._labels.append(label)
        return label

    def _rebuild(self) -> None:
        info = self.info
        self.view.clear()
        self._filters, self._maps, self._digit, self._labels = {}, [], None, []
        self._shown = {}
        if info is None:
            return
        t = self.theme
        params = list(info.filter_params)
        ncols = min(MAX_COLUMNS, max(1, len(params)))
        row = 0
        for i, param in enumerate(params):
            r, c = divmod(i, ncols)
            layout = TileLayout(info.param_shapes[param], info.dense_inputs.get(param), rgb=shows_rgb(info, param))
            level = LEVEL_SIGMAS * info.sigma.get(param, 1.0)
            self._add_label(f"{param} ±{level:.2g}" + (" (R, G, B)" if layout.rgb else ""), row=2 * r, col=c)
            vb = make_view_box()
            self.view.addItem(vb, row=2 * r + 1, col=c)
            img = pg.ImageItem()
            img.setColorMap(t.weight_cmap())
            vb.addItem(img)
            rect = rect_item(t)
            vb.addItem(rect, ignoreBounds=True)
            self._filters[param] = (layout, img, rect, vb, level)
            row = 2 * r + 2
        self._feature_row = row
        self._build_maps([])

    def _build_maps(self, names: list[str]) -> None:
        for _name, _img, vb, label in self._maps:
            self.view.removeItem(vb)
            self.view.removeItem(label)
        if self._digit is not None:
            self.view.removeItem(self._digit[1])
            self.view.removeItem(self._digit[2])
        self._maps, self._digit = [], None
        if not self.features_box.isChecked():
            return
        t = self.theme
        row = self._feature_row
        label = self._add_label("digit", row=row, col=0)
        vb = make_view_box()
        self.view.addItem(vb, row=row + 1, col=0)
        img = pg.ImageItem()
        img.setColorMap(pg.ColorMap([0, 1], [pg.mkColor(t.neutral), pg.mkColor(t.foreground)]))
        vb.addItem(img)
        self._digit = (img, vb, label)
        for j, name in enumerate(names):
            col = (j + 1) % MAX_COLUMNS
            r = row + 2 * ((j + 1) // MAX_COLUMNS)
            label = self._add_label(f"{name} output", row=r, col=col)
            vb = make_view_box()
            self.view.addItem(vb, row=r + 1, col=col)
            img = pg.ImageItem()
            img.setColorMap(t.activation_cmap())
            vb.addItem(img)
            self._maps.append((name, img, vb, label))

    def apply_theme(self, theme: Theme) -> None:
        super().apply_theme(theme)
        self.view.setBackground(theme.background)
        if self.info is not None:
            names = [m[0] for m in self._maps]
            self._rebuild()
            if names:
                self._build_maps(names)

    def has_content(self) -> bool:
        return self._has

    # ------------------------------------------------------------------------------------------ drawing
    def update_view(self, snap: Snapshot) -> None:
        if self.info is None:
            return
        cur = snap.current
        for param, (layout, img, rect, _vb, level) in self._filters.items():
            values = snap.params.get(param)
            if values is None:
                continue
            first = img.image is None
            if first or not np.array_equal(self._shown.get(param), values):  # unchanged while other layers run
                self._shown[param] = values
                # RGB tiles: the levels map each channel alike; black between the tiles
                img.setImage(layout.image(values, gap=-level if layout.rgb else 0.0), levels=(-level, level),
                             autoLevels=False)  # fmt: skip
            if cur is not None and cur[1] == param:
                r, c = layout.pixel(cur[2])
                rect.setRect(QRectF(c - 0.1, r - 0.1, 1.2, 1.2))
                rect.setVisible(True)
            else:
                rect.setVisible(False)
        self._draw_maps(snap)
        self._has = bool(self._filters)

    def _draw_maps(self, snap: Snapshot) -> None:
        if not self.features_box.isChecked():
            if self._maps or self._digit is not None:
                self._build_maps([])
            return
        names = [name for name, _ in snap.feature_maps]
        if names != [m[0] for m in self._maps] or self._digit is None:
            self._build_maps(names)
        if self._digit is not None and snap.digit is not None:
            img, _vb, label = self._digit
            d = snap.digit
            lo, hi = float(d.min()), float(d.max())
            img.setImage(d, levels=(lo, hi if hi > lo else lo + 1), autoLevels=False)
            classes = self.info.classes
            name = classes[snap.digit_label] if 0 <= snap.digit_label < len(classes) else snap.digit_label
            text = f"test #{self.digit_box.value()}: {name}"
            if snap.digit_prediction >= 0:
                pred = classes[snap.digit_prediction] if snap.digit_prediction < len(classes) else "?"
                ok = "✓" if snap.digit_prediction == snap.digit_label else "✗"
                text += f" → predicted {pred} {ok}"
            if label.text != text:
                label.setText(text, color=self.theme.foreground, size=f"{self.theme.font_pt * 0.9:.0f}pt")
        for (_name, img, _vb, _label), (_, fmap) in zip(self._maps, snap.feature_maps, strict=False):
            shape = fmap.shape  # (C, H, W)
            lay = self._map_layouts.get(shape)
            if lay is None:
                lay = self._map_layouts[shape] = TileLayout((shape[0], 1, shape[1], shape[2]))
            hi = float(np.max(fmap))
            img.setImage(lay.image(fmap), levels=(0.0, hi if hi > 0 else 1.0), autoLevels=False)
