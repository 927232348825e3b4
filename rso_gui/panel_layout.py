"""Where the panels go: the panel registry, the grid of all panels and the stage of a few large ones.

Panels are registered as :class:`PanelSpec` rows (``PANEL_SPECS`` in ``rso_gui/window.py``): their
attribute name on the window, their class, their row and share of the grid, and a short name for the
panel tabs. Their order is their key (1, 2, …). Adding a panel is one row there.

Two arrangements:

- **grid**: every panel at once, in rows of fixed proportions (``ProportionalSplitter``, so the layout
  is a function of the window's size alone and deterministic recordings repeat);
- **stage**: one or two panels side by side, as large as the window allows, with a strip of panel tabs
  above them (click one, or press its number, to put it on the stage). Presentation mode always uses the
  stage, and on a screen narrower than :data:`TWO_ON_STAGE_MIN_WIDTH` (e.g. a 1,280×720 projector) it
  shows one panel at a time; normal mode uses the grid unless the window is too small for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QHBoxLayout, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from .splitter import ProportionalSplitter
from .theme import Theme
from .views.base import Panel

GRID_ROWS = (3.0, 2.0)  # the grid's row heights (top, bottom)
GRID_MIN_PANEL = (340, 260)  # the grid needs this much room per panel (px); smaller windows get the stage
TWO_ON_STAGE_MIN_WIDTH = 1500  # presentation: two panels on the stage from this panel-area width (px)
STAGE_WEIGHTS = (3.0, 2.0)  # the first (large) and the second panel on the stage


@dataclass(frozen=True)
class PanelSpec:
    """One panel of the window: ``name`` (the window's attribute), its class, grid row and share of it."""

    name: str
    factory: Callable[[], Panel]
    row: int  # 0: the grid's top row, 1: its bottom row
    share: float  # its width in its row, relative to the row's other panels
    short: str  # its name on the panel tabs


class PanelArea(QWidget):
    """The panels, arranged as a grid or a stage (see the module docstring)."""

    arranged = Signal()  # the panels shown changed

    def __init__(self, specs: Sequence[PanelSpec], parent: QWidget | None = None):
        super().__init__(parent)
        self.specs = tuple(specs)
        self.panels: list[Panel] = [spec.factory() for spec in self.specs]
        self.by_name = {spec.name: p for spec, p in zip(self.specs, self.panels, strict=True)}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        self.tab_bar = QWidget()
        tabs = QHBoxLayout(self.tab_bar)
        tabs.setContentsMargins(0, 0, 0, 0)
        tabs.setSpacing(4)
        self.tabs: list[QPushButton] = []
        for i, (spec, panel) in enumerate(zip(self.specs, self.panels, strict=True), start=1):
            b = QPushButton(f"{i} {spec.short}")
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setToolTip(f"Show “{panel.title}” ({i})")
            b.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            b.clicked.connect(lambda _=False, p=panel: self.bring(p))
            tabs.addWidget(b)
            self.tabs.append(b)
        outer.addWidget(self.tab_bar)
        rows = sorted({spec.row for spec in self.specs})
        self.rows = []
        for r in rows:
            members = [(s, p) for s, p in zip(self.specs, self.panels, strict=True) if s.row == r]
            sp = ProportionalSplitter(Qt.Orientation.Horizontal, tuple(s.share for s, _ in members))
            sp.setChildrenCollapsible(False)
            self.rows.append((sp, [p for _, p in members]))
        self.grid = ProportionalSplitter(Qt.Orientation.Vertical, GRID_ROWS[: len(self.rows)] or (1.0,))
        self.grid.setChildrenCollapsible(False)
        for sp, _ in self.rows:
            self.grid.addWidget(sp)
        self.stage = ProportionalSplitter(Qt.Orientation.Horizontal, (1.0,))
        self.stage.setChildrenCollapsible(False)
        outer.addWidget(self.grid, 1)
        outer.addWidget(self.stage, 1)
        self.presentation = False
        self.mode = ""  # "grid" or "stage"
        self.on_stage: list[Panel] = []
        self._chosen: list[Panel] | None = None  # panels the user put on the stage (None: the default)
        self._grid_chosen = False  # the user asked for every panel (0)
        self._default_stage = [self.panels[0]]
        self._exact = False  # the stage shows exactly what only() was given
        self._arrange_pending = False
        # the grid's minimum must not hold the window wider than a small screen: below the grid's needs the
        # area shows the stage instead (arrange() on every resize)
        self.setMinimumSize(320, 240)
        self.arrange()

    # ------------------------------------------------------------------------------------------ choosing
    def set_default_stage(self, panels: Sequence[Panel]) -> None:
        """The panels the stage shows until the user picks others (the first is the large one)."""
        self._default_stage = list(panels) or [self.panels[0]]
        self.arrange()

    def set_presentation(self, on: bool) -> None:
        self.presentation = bool(on)
        self._grid_chosen = False
        self.arrange(exact=False)

    def stage_slots(self) -> int:
        """How many panels the stage holds at this size: 2, or 1 on a narrow screen in presentation mode."""
        if self.presentation and self.width() < TWO_ON_STAGE_MIN_WIDTH:
            return 1
        return 2

    def grid_fits(self) -> bool:
        """Is the panel area large enough for the grid: every panel at least :data:`GRID_MIN_PANEL`?"""
        across = max(len(members) for _, members in self.rows)
        return self.width() >= GRID_MIN_PANEL[0] * across and self.height() >= GRID_MIN_PANEL[1] * len(self.rows)

    def bring(self, panel: Panel) -> None:
        """Put ``panel`` on the stage, large; the panel that was large moves to the second place."""
        current = self.on_stage if self.mode == "stage" else []
        self._chosen = [panel] + [p for p in current if p is not panel]
        self._grid_chosen = False
        self.arrange(exact=False)

    def only(self, panels: Sequence[Panel]) -> None:
        """Show exactly ``panels`` on the stage (the first large), whatever the screen (lessons, zoom)."""
        self._chosen = list(panels)
        self._grid_chosen = False
        self.arrange(exact=True)

    def show_all(self) -> None:
        """Every panel, as a grid (0)."""
        self._grid_chosen = True
        self._chosen = None
        self.arrange(exact=False)

    def reset_choice(self) -> None:
        """Back to the layout of the mode and size (Esc)."""
        self._chosen = None
        self._grid_chosen = False
        self.arrange(exact=False)

    # ------------------------------------------------------------------------------------------ arranging
    def arrange(self, exact: bool | None = None) -> None:
        if exact is not None:
            self._exact = exact
        if self._grid_chosen or (self._chosen is None and not self.presentation and self.grid_fits()):
            self._show_grid()
            return
        chosen = self._chosen if self._chosen is not None else self._default_stage
        if not self._exact:
            chosen = chosen[: self.stage_slots()]
        self._show_stage(list(chosen))

    def _home(self, panel: Panel) -> None:
        """Put ``panel`` back in its grid row, in its place."""
        for sp, members in self.rows:
            if panel in members:
                if sp.indexOf(panel) < 0:
                    at = sum(1 for m in members[: members.index(panel)] if sp.indexOf(m) >= 0)
                    self._move(panel, lambda sp=sp, at=at: sp.insertWidget(at, panel))
                return

    @staticmethod
    def _move(panel: Panel, insert) -> None:
        """Move a panel into another splitter and give it its theme again: under the application's style
        sheet a moved widget is polished anew, which would drop the fonts its theme set."""
        insert()
        panel.ensurePolished()
        panel.apply_theme(panel.theme)

    def _show_grid(self) -> None:
        if self.mode != "grid":
            for p in self.panels:
                self._home(p)
                p.show()
            self.stage.hide()
            self.grid.show()
            for sp, _ in self.rows:
                sp.apply_weights()
            self.grid.apply_weights()
            self.on_stage = []
            self.mode = "grid"
        self.tab_bar.hide()
        self._sync_tabs()
        self.arranged.emit()

    def _show_stage(self, panels: list[Panel]) -> None:
        if self.mode != "stage" or panels != self.on_stage:
            for p in self.panels:
                if p not in panels:
                    p.hide()
                    self._home(p)
            self.stage.weights = STAGE_WEIGHTS[: len(panels)] if len(panels) <= 2 else (1.0,) * len(panels)
            for i, p in enumerate(panels):
                if self.stage.indexOf(p) != i:
                    self._move(p, lambda p=p, i=i: self.stage.insertWidget(i, p))
                p.show()
            self.grid.hide()
            self.stage.show()
            self.stage.apply_weights()
            self.on_stage = list(panels)
            self.mode = "stage"
        self.tab_bar.show()
        self._sync_tabs()
        self.arranged.emit()

    def _sync_tabs(self) -> None:
        for b, p in zip(self.tabs, self.panels, strict=True):
            b.setChecked(self.mode == "grid" or p in self.on_stage)

    def visible_panels(self) -> list[Panel]:
        """The panels shown now, in their order."""
        return [p for p in self.panels if not p.isHidden()]

    def apply_theme(self, theme: Theme) -> None:
        f = theme.font(0.8 if theme.presentation else 0.95, bold=True)
        for b in self.tabs:
            b.setFont(f)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if not self._exact and not self._arrange_pending:
            # the grid, or how many panels the stage holds, depends on the size: arranged after the resize,
            # not inside it (moving a panel between splitters while they lay out their children crashed Qt)
            self._arrange_pending = True
            QTimer.singleShot(0, self._deferred_arrange)

    def _deferred_arrange(self) -> None:
        self._arrange_pending = False
        if not self._exact:
            self.arrange()


class PanelCommands:
    """The window's panel commands (``MainWindow`` mixes this in; it has ``area``, ``presentation``,
    ``dock`` and ``_snap``): the number keys, 0 and Esc, and :meth:`show_panels` for lessons."""

    def zoom(self, panel: QWidget | None) -> None:
        """Show only ``panel`` (None: every panel at once)."""
        self._zoomed = panel
        if panel is None:
            self.area.show_all()
        else:
            self.area.only([panel])
        self._keep_keys()

    def show_panel(self, panel: Panel) -> None:
        """Its number key: only ``panel`` (normal mode), or ``panel`` large on the stage (presentation)."""
        if self.presentation:
            self._zoomed = None
            self.area.bring(panel)
            self._keep_keys()
        else:
            self.zoom(panel)

    def show_panels(self, names) -> None:
        """Show exactly the panels named (attribute names, e.g. ``["landscape", "algorithm"]``; the first
        large), as a lesson step asks; an empty list gives the default layout."""
        panels = [self.area.by_name[n] for n in names if n in self.area.by_name]
        if panels:
            self.area.only(panels)
            self._keep_keys()
        else:
            self.default_layout()

    def default_layout(self) -> None:
        """The layout for the mode and the window's size (Esc)."""
        self._zoomed = None
        self.area.reset_choice()
        self._keep_keys()

    def _arranged(self) -> None:
        if self._snap is not None:
            for p in self.area.visible_panels():
                if p.info is not None:
                    p.update_view(self._snap)

    def _keep_keys(self) -> None:
        focus = QApplication.focusWidget()
        if focus is None or not focus.isVisible() or focus is not self.dock and not self.dock.isAncestorOf(focus):
            self.setFocus(Qt.FocusReason.OtherFocusReason)  # the window's single-key shortcuts keep working
