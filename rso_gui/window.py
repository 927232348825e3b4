"""The main window: the live panels, the control dock, the status line and the shortcuts, assembled.

The window never waits for the engine. A timer at :data:`~rso_gui.pacing.FPS` frames per second asks the
controller for its newest snapshot and, when there is a new one (and :class:`~rso_gui.pacing.FramePacer`
allows), hands it to each visible panel; the engine thread publishes snapshots at its own pace and never
draws. What the window remembers is read and written by :mod:`rso_gui.settings`, the help dialog is
:mod:`rso_gui.help_text`, the panels' arrangement :mod:`rso_gui.panel_layout` (registered in
:data:`PANEL_SPECS`), the fit to the screen :mod:`rso_gui.screen_fit`.

Helpers (``sessions``, ``exporting``, ``recorder``, ``tools``) use the public methods: :meth:`add_action`,
:meth:`apply_view_options`, :meth:`compare_x_axis`, :meth:`export_targets`, :meth:`apply_config`,
:meth:`set_speed`, :meth:`refresh`, :meth:`panel_images`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFrame,
    QMainWindow,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from rso_engine.config import RunConfig
from rso_engine.vocabulary import LANDSCAPE_MODES, RunState

from . import quit_anywhere, screen_fit
from .banner import Banner
from .controller import DEFAULT_CONFIG, Controller
from .draw_digit import install_digit
from .help_text import make_help_dialog
from .lanes_dialog import install_lanes
from .lessons import install_lessons
from .live.info import run_choices
from .live.runner import SLOW_RATE
from .live.snapshot import RunInfo, Snapshot
from .pacing import FPS, FramePacer
from .panel_layout import PanelArea, PanelCommands, PanelSpec
from .settings import (
    controller_options,
    open_settings,
    read_config,
    read_display,
    read_x_axis,
    restore_window,
    write_window,
)
from .splitter import ProportionalSplitter
from .status_line import StatusLine
from .theme import THEMES, Theme, apply_app_theme, make_theme
from .tools import install_tools
from .views import ComparePanel, ControlsPanel, FiltersPanel, LandscapePanel, WeightPanel
from .views.algorithm import AlgorithmPanel
from .views.base import Panel
from .views.controls import speed_text
from .views.digit import DigitPanel

__all__ = ["FPS", "PANEL_SPECS", "MainWindow", "ProportionalSplitter"]

#: the panels, in the order of their keys (1, 2, …): the window's attribute, class, grid row and share of
#: it, the name on the panel tabs (rso_gui/panel_layout.py). A new panel is one more row.
PANEL_SPECS = (
    PanelSpec("landscape", LandscapePanel, row=0, share=1.0, short="Landscape"),
    PanelSpec("weights", WeightPanel, row=0, share=1.3, short="Weight"),
    PanelSpec("filters", FiltersPanel, row=1, share=1.0, short="Filters"),
    PanelSpec("compare", ComparePanel, row=1, share=1.0, short="Runs compared"),
    PanelSpec("algorithm", AlgorithmPanel, row=0, share=1.2, short="Algorithm"),
    PanelSpec("digit", DigitPanel, row=1, share=1.0, short="Digit"),
)
DEFAULT_STAGE = ("algorithm", "landscape")  # what the stage shows first (presentation mode, small windows)


class MainWindow(PanelCommands, QMainWindow):
    """``MainWindow(controller=None, restore=True)``: with no controller, one is made from the remembered
    settings (or the defaults) and a first run is prepared at once."""

    def __init__(self, controller: Controller | None = None, restore: bool = True, parent=None):
        super().__init__(parent)
        self.setWindowTitle("RSO — random search training, live")
        self._settings = open_settings()
        s = self._settings if restore else None
        self.theme_name, self.presentation = read_display(s)
        self.theme: Theme = make_theme(self.theme_name, self.presentation)
        if controller is None:
            controller = Controller(read_config(s, DEFAULT_CONFIG), **controller_options(s))
        self.controller = controller
        controller.setParent(self)
        self._snap: Snapshot | None = None
        self.pacer = FramePacer()
        self._zoomed: QWidget | None = None

        self._build_panels()
        self._build_controls()
        self._build_actions()
        self._build_status()
        self.apply_view_options(x_axis=read_x_axis(s) if s is not None else None)
        self.apply_theme()
        install_tools(self)  # File/Presets/Record menus: sessions, export, presets, recording (tools.py)
        install_digit(self)  # the digit panel's input goes to each run's engine thread (draw_digit.py)
        install_lessons(self)  # PageDown/PageUp, the subtitle bar, the Lessons menu (lessons.py)
        install_lanes(self)  # the Lanes menu and dialog: race lanes (lanes_dialog.py)

        controller.stateChanged.connect(self._on_state)
        controller.errorOccurred.connect(self._on_error)
        controller.noticed.connect(self._show_banner)
        controller.runReady.connect(self._on_ready)
        controller.configChanged.connect(self.controls.set_config)

        self._fitted = restore_window(s, self) if s is not None else False  # geometry for this screen
        if not self._fitted:
            screen_fit.fit_window(self)
        self._fit_size = self.size()
        if self.presentation:  # the control panel starts hidden on a projector (Ctrl+H shows it)
            self._dock_was_visible = True
            self.dock.hide()
            self.act_controls.setText("Show controls")
            self.area.set_presentation(True)

        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(int(1000 / FPS))
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        if controller.runner is None:
            controller.reset()
        elif controller.info is not None:
            self._on_ready(controller.info)
        self._sync_actions()

    # ------------------------------------------------------------------------------------------ building
    def _build_panels(self) -> None:
        self.area = PanelArea(PANEL_SPECS)
        self.panels: list[Panel] = self.area.panels
        for name, p in self.area.by_name.items():
            setattr(self, name, p)
            p.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.area.set_default_stage([self.area.by_name[n] for n in DEFAULT_STAGE if n in self.area.by_name])
        self.area.arranged.connect(self._arranged)

        self.banner = Banner(self.reset)
        self.banner_text = self.banner.text

        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(4, 4, 4, 4)
        cl.addWidget(self.banner)
        cl.addWidget(self.area, 1)
        central.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCentralWidget(central)

        self.landscape.modeChanged.connect(lambda m: self.controller.set_view_options(landscape=m))
        self.filters.digitChanged.connect(lambda i: self.controller.set_view_options(digit=i))
        self.filters.featuresToggled.connect(lambda on: self.controller.set_view_options(features=on))

    def _build_controls(self) -> None:
        self.controls = ControlsPanel(run_choices())
        self.controls.set_config(self.controller.config)
        self.controls.set_sgd(self.controller.sgd_enabled)
        self.controls.set_speed(self.controller.speed)
        self.controls.set_display(self.presentation, self.theme_name)
        self.controls.configEdited.connect(self.apply_config)
        self.controls.sgdToggled.connect(self.controller.set_sgd_enabled)
        self.controls.speedChanged.connect(self._speed_changed)
        self.controls.presentationToggled.connect(self.set_presentation)
        self.controls.themeChanged.connect(self.set_theme)
        scroll = QScrollArea()
        scroll.setWidget(self.controls)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.dock = QDockWidget("Controls", self)
        self.dock.setObjectName("controlsDock")
        self.dock.setWidget(scroll)
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)

    def add_action(self, text: str, keys: list[str], slot, tip: str) -> QAction:
        """A window-wide action with shortcuts ``keys``, its tooltip and the help dialog's row (tools.py
        adds its menu commands through this too)."""
        a = QAction(text, self)
        a.setShortcuts([QKeySequence(k) for k in keys])
        a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        shown = ", ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in keys)
        a.setToolTip(f"{tip} ({shown})" if shown else tip)
        a.setStatusTip(tip)
        a.setData({"keys": shown, "tip": tip})
        a.triggered.connect(slot)
        self.addAction(a)
        self._all_actions.append(a)
        return a

    def _build_actions(self) -> None:
        self._all_actions: list[QAction] = []
        A = self.add_action
        self.act_play = A("Start", ["Space"], self.toggle, "Start or pause training")
        self.act_step = A("Step weight", ["Right"], self.step_weight, "Try exactly one more weight, then pause")
        self.act_layer = A("Step layer", ["Shift+Right", "L"], self.step_layer,
                           "Run to the end of the layer being swept, then pause")  # fmt: skip
        self.act_reset = A("Reset", ["R"], self.reset, "Start the run again from its initial weights")
        self.act_faster = A("Faster", ["Up", "+", "="], lambda: self.controls.nudge_speed(1), "Faster")
        self.act_slower = A("Slower", ["Down", "-"], lambda: self.controls.nudge_speed(-1), "Slower")
        self.act_full = A("Full speed", ["F"], lambda: self.set_speed(None), "Full speed")
        self.act_slow = A("Slow motion", ["S"], lambda: self.set_speed(2), "Slow motion: 2 weights per second")
        self.act_land = A("Landscape mode", ["D"], self.next_landscape_mode,
                          "Cycle the landscape: 1-D, 2-D along two weights, 2-D along random directions")  # fmt: skip
        self.act_axis = A("x-axis", ["X"], self.compare.next_x_axis,
                          "Cycle the RSO-vs-SGD x-axis: cycles, weight updates, samples, time")  # fmt: skip
        self.act_pres = A("Presentation mode", ["F5"], lambda: self.set_presentation(not self.presentation),
                          "Large fonts and thick lines for projectors")  # fmt: skip
        self.act_theme = A("Light/dark", ["Ctrl+T"], self.toggle_theme, "Switch between the light and dark theme")
        self.act_controls = A("Hide controls", ["Ctrl+H"], self.toggle_controls, "Hide or show the control panel")
        self.act_full_screen = A("Full screen", ["F11"], self.toggle_full_screen, "Full screen")
        for i, p in enumerate(self.panels, start=1):
            A(f"Panel {i}", [str(i)], lambda _=False, p=p: self.show_panel(p),
              f"Show “{p.title}” (normal mode: only it; presentation: large, beside the one shown before)")
        A("All panels", ["0"], lambda: self.zoom(None), "Show every panel at once")
        A("Default layout", ["Esc"], self.default_layout,
          "The layout for the mode and screen (presentation: one or two panels large)")
        self.act_help = A("Help", ["F1", "?", "H"], self.show_help, "Keyboard shortcuts and what the panels show")
        self.act_quit = A("Quit", ["Ctrl+Q"], self.close, "Quit")
        self._quit_anywhere = quit_anywhere.install(self, self.act_quit.shortcuts())  # dialogs too
        self.controls.add_actions([self.act_play, self.act_reset, self.act_step, self.act_layer,
                                   self.act_help, self.act_pres])  # fmt: skip

    def _build_status(self) -> None:
        self.status_line = StatusLine(self.statusBar())
        self.status = self.status_line.labels

    # ------------------------------------------------------------------------------------------ views
    def apply_view_options(self, x_axis: str | None = None, **options) -> None:
        """Set view options and show them in the panels: ``options`` are the controller's (``landscape``,
        ``digit``, ``features``; see ``Controller.set_view_options``), ``x_axis`` the RSO-vs-SGD panel's
        (a key of ``rso_engine.vocabulary.X_AXES``; None keeps it)."""
        if options:
            self.controller.set_view_options(**options)
        opts = self.controller.view_options()
        self.landscape.set_mode(opts["landscape"])
        self.filters.set_digit(opts["digit"])
        self.filters.set_features(opts["features"])
        if x_axis is not None:
            self.compare.set_x_axis(x_axis)

    def compare_x_axis(self) -> str:
        """The RSO-vs-SGD panel's x-axis, a key of ``rso_engine.vocabulary.X_AXES``."""
        return self.compare.x_axis

    def export_targets(self) -> list[Panel]:
        """The panels in their order (their keys 1, 2, …), for exports and recordings."""
        return list(self.panels)

    # ------------------------------------------------------------------------------------------ commands
    def toggle(self) -> None:
        self.controller.toggle()
        self._sync_actions()

    def step_weight(self) -> None:
        self.controller.step_weight()
        self._sync_actions()

    def step_layer(self) -> None:
        self.controller.step_layer()
        self._sync_actions()

    def reset(self) -> None:
        self.banner.hide()
        self.controller.reset()
        self.status_line.rates.clear()
        self._sync_actions()

    def apply_config(self, cfg: RunConfig) -> None:
        self.banner.hide()
        self.status_line.rates.clear()
        self.controller.apply_config(cfg)

    def set_speed(self, rate: float | None) -> None:
        self.controls.set_speed(rate)
        self._speed_changed(rate)

    def _speed_changed(self, rate: float | None) -> None:
        self.controller.set_speed(rate)
        self.status_line.rates.clear()
        self.statusBar().showMessage(f"speed: {speed_text(rate)}", 1500)

    def next_landscape_mode(self) -> None:
        modes = list(LANDSCAPE_MODES)
        cur = self.controller.view_options()["landscape"]
        self.landscape.set_mode(modes[(modes.index(cur) + 1) % len(modes)])

    def toggle_controls(self) -> None:
        self.dock.setVisible(not self.dock.isVisible())
        self.act_controls.setText("Show controls" if not self.dock.isVisible() else "Hide controls")

    def toggle_full_screen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def set_presentation(self, on: bool) -> None:
        """Presentation mode: large fonts and lines, the panels on a stage, the control panel hidden
        (Ctrl+H shows it); leaving it brings the control panel back as it was."""
        on = bool(on)
        if on != self.presentation:
            if on:
                self._dock_was_visible = not self.dock.isHidden()
                self.dock.hide()
            elif getattr(self, "_dock_was_visible", True):
                self.dock.show()
            self.act_controls.setText("Show controls" if not self.dock.isVisible() else "Hide controls")
        self.presentation = on
        self.controls.set_display(self.presentation, self.theme_name)
        self.apply_theme()
        self.area.set_presentation(on)

    def set_theme(self, name: str) -> None:
        self.theme_name = name if name in THEMES else "dark"
        self.controls.set_display(self.presentation, self.theme_name)
        self.apply_theme()

    def toggle_theme(self) -> None:
        self.set_theme("light" if self.theme_name == "dark" else "dark")

    def apply_theme(self) -> None:
        self.theme = make_theme(self.theme_name, self.presentation)
        app = QApplication.instance()
        if app is not None:
            apply_app_theme(app, self.theme)
        for p in self.panels:
            p.apply_theme(self.theme)
        self.area.apply_theme(self.theme)
        self.controls.apply_theme(self.theme)
        small = self.theme.font(0.8 if self.presentation else 1.0)
        self.status_line.set_font(small)
        self.dock.setMinimumWidth(int(self.theme.font_pt * (18 if self.presentation else 26)))
        if self._snap is not None:
            for p in self.panels:
                if p.info is not None:
                    p.update_view(self._snap)

    def show_help(self) -> None:
        """The help dialog (F1): the panels and every shortcut."""
        self.help_dialog = make_help_dialog(self, self._all_actions)
        self.help_dialog.show()

    # ------------------------------------------------------------------------------------------ engine
    def _on_ready(self, info: RunInfo) -> None:
        self._snap = None
        for p in self.panels:
            p.set_info(info)
        self.status_line.show_run(info)
        self.refresh()

    def _on_state(self, state: str) -> None:
        self._sync_actions()
        if state == RunState.PREPARING:
            self.status_line.show_state(state)

    def _on_error(self, message: str) -> None:
        self._show_banner(f"The engine stopped: {message}")
        self._sync_actions()

    def _show_banner(self, text: str) -> None:
        self.banner.say(text)

    def _sync_actions(self) -> None:
        c = self.controller
        state = c.state
        if c.playing:
            text = "Pause"
        elif state in (RunState.FINISHED, RunState.ERROR):
            text = "Run again"
        elif c.latest() is not None and c.latest().steps > 0:
            text = "Resume"
        else:
            text = "Start"
        if self.act_play.text() != text:  # (setting an action's text relays out its buttons)
            self.act_play.setText(text)
        can_step = state != RunState.FINISHED
        if self.act_step.isEnabled() != can_step:
            self.act_step.setEnabled(can_step)
            self.act_layer.setEnabled(can_step)
        self.status_line.show_state(state)

    # ------------------------------------------------------------------------------------------ frames
    def refresh(self) -> None:
        """One frame: draw the newest snapshot if there is one (the timer calls this at FPS)."""
        now = self.pacer.tick()
        snap = self.controller.latest()
        if (
            snap is not None
            and snap is not self._snap
            and self.controller.info is not None
            and self.pacer.may_draw(now, still=self._still(snap))
        ):
            self.pacer.drew(now)
            if any(p.info is not self.controller.info for p in self.panels):
                for p in self.panels:
                    p.set_info(self.controller.info)
            self._snap = snap
            for p in self.panels:
                if p.isVisible() or not self.isVisible():
                    p.update_view(snap)
            self.status_line.show_snapshot(snap, self.controller.info, self.controller.state)
            self._sync_actions()
        else:
            for p in self.panels:
                p.flush_text()

    def _still(self, snap: Snapshot) -> bool:
        """Is every snapshot worth drawing: the run not running, or running in slow motion?"""
        speed = self.controller.speed
        return snap.state != RunState.RUNNING or (speed is not None and speed <= SLOW_RATE)

    @property
    def frame_times(self):
        """perf_counter() of each timer tick (the last 600; benchmarks read and clear it)."""
        return self.pacer.frame_times

    @property
    def frames_drawn(self) -> int:
        """Snapshots drawn so far."""
        return self.pacer.frames_drawn

    def panel_images(self) -> dict[str, object]:
        """Each panel grabbed to a QImage (for tests, screenshots, a later recorder)."""
        return {p.title: p.grab().toImage() for p in self.panels}

    # ------------------------------------------------------------------------------------------ closing
    def save_settings(self) -> None:
        """Remember the window, the run settings and the view options (``rso_gui.settings``)."""
        write_window(self._settings, self)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.activateWindow()  # the single-key shortcuts work from the first moment the window is there
        if not self._fitted:  # once shown the window manager's frame is known: fit the frame too
            self._fitted = True
            if self.size() == self._fit_size:  # (unless someone sized the window meanwhile)
                QTimer.singleShot(0, lambda: screen_fit.fit_window(self))

    def closeEvent(self, event) -> None:  # noqa: N802
        QApplication.instance().removeEventFilter(self._quit_anywhere)
        quit_anywhere.close_dialogs(self)
        self.timer.stop()
        try:
            self.save_settings()
        finally:
            self.controller.shutdown()
        super().closeEvent(event)
