"""A splitter whose panes keep fixed proportions, so a window's layout depends on its size alone."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter


class ProportionalSplitter(QSplitter):
    """A splitter that keeps its panes in fixed proportions (until the user drags a handle, then in the
    dragged ones) whatever sizes the window went through: the panes' sizes are a function of the
    splitter's size alone, so two windows of the same size lay out alike (deterministic recordings)."""

    def __init__(self, orientation, weights: tuple[float, ...]):
        super().__init__(orientation)
        self.weights = tuple(float(w) for w in weights)
        self.splitterMoved.connect(self._dragged)

    def _dragged(self, _pos: int, _index: int) -> None:
        sizes = self.sizes()
        if sum(sizes) > 0:
            self.weights = tuple(float(v) for v in sizes)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.apply_weights()

    def apply_weights(self) -> None:
        """Size the panes by :attr:`weights` (when there are as many panes as weights)."""
        if self.count() == len(self.weights):
            vertical = self.orientation() == Qt.Orientation.Vertical
            total = (self.height() if vertical else self.width()) - self.handleWidth() * (self.count() - 1)
            scale = max(0, total) / sum(self.weights)
            sizes = [int(round(w * scale)) for w in self.weights[:-1]]
            self.setSizes([*sizes, max(0, total) - sum(sizes)])
