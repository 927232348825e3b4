"""The window's panels, one module each. Every panel is a plain QWidget that can be grabbed to an image
(``panel.grab()``) and redraws only from a :class:`~rso_gui.live.snapshot.Snapshot` handed to ``update_view``."""

from .base import Panel
from .compare import ComparePanel
from .controls import SPEEDS, ControlsPanel
from .filters import FiltersPanel
from .landscape import LandscapePanel
from .weights import WeightPanel

__all__ = ["SPEEDS", "ComparePanel", "ControlsPanel", "FiltersPanel", "LandscapePanel", "Panel", "WeightPanel"]
