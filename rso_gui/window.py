"""The main window: four live panels, the control dock, the status line, shortcuts, help, settings.

The window never waits for the engine. A timer at :data:`FPS` frames per second asks the controller for
its newest snapshot and, when there is a new one, hands it to each visible panel; the engine thread
publishes snapshots at its own pace and never draws.
"""

from __future__ import annotations

import time
from collections import deque

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from rso_engine.config import RunConfig

from .controller import DEFAULT_CONFIG, Controller
from .runner import ERROR, FINISHED, LANDSCAPE_MODES, PREPARING, RUNNING, SLOW_RATE, RunInfo, Snapshot
from .settings import open_settings, read_bool, read_config, read_speed, write_config, write_speed
from .theme import THEMES, Theme, apply_app_theme, make_theme
from .tools import install_tools
from .views import ComparePanel, ControlsPanel, FiltersPanel, LandscapePanel, WeightPanel
from .views.controls import speed_text

FPS = 30
#: at full speed the views may use at most this share of one core (measured on the GUI thread); above it,
#: new snapshots are drawn less often (but at least MIN_FPS times a second). The engine shares the GIL
#: with the GUI thread, so every millisecond spent drawing is one the engine may wait for.
FRAME_CPU_BUDGET = 0.2
MIN_FPS = 10
STATE_TEXT = {
    "preparing": "preparing…",
    "paused": "paused",
    "running": "running",
    "finished": "finished",
    "error": "error",
    "stopped": "stopped",
}


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

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.count() == len(self.weights):
            vertical = self.orientation() == Qt.Orientation.Vertical
            total = (self.height() if vertical else self.width()) - self.handleWidth() * (self.count() - 1)
            scale = max(0, total) / sum(self.weights)
            sizes = [int(round(w * scale)) for w in self.weights[:-1]]
            self.setSizes([*sizes, max(0, total) - sum(sizes)])


class MainWindow(QMainWindow):
    """``MainWindow(controller=None, restore=True)``: with no controller, one is made from the remembered
    settings (or the defaults) and a first run is prepared at once."""

    def __init__(self, controller: Controller | None = None, restore: bool = True, parent=None):
        super().__init__(parent)
        self.setWindowTitle("RSO — random search training, live")
        self._settings = open_settings()
        s = self._settings if restore else None
        self.theme_name = s.value("display/theme", "dark", type=str) if s else "dark"
        if self.theme_name not in THEMES:
            self.theme_name = "dark"
        self.presentation = read_bool(s, "display/presentation", False) if s else False
        self.theme: Theme = make_theme(self.theme_name, self.presentation)
        if controller is None:
            cfg = read_config(s, DEFAULT_CONFIG) if s else DEFAULT_CONFIG
            controller = Controller(
                cfg,
                sgd=read_bool(s, "run/sgd", True) if s else True,
                speed=read_speed(s, None) if s else None,
                landscape=(s.value("view/landscape", "1d", type=str) if s else "1d"),
                digit=int(s.value("view/digit", 0, type=int)) if s else 0,
                features=read_bool(s, "view/features", True) if s else True,
            )
        self.controller = controller
        controller.setParent(self)
        self._snap: Snapshot | None = None
        self._rates: deque[tuple[float, int]] = deque(maxlen=90)
        self.frame_times: deque[float] = deque(maxlen=600)  # perf_counter() of each timer tick
        self.frames_drawn = 0  # snapshots drawn so far
        self._cpu_marks: deque[tuple[float, float]] = deque(maxlen=2 * FPS)  # (wall, GUI thread CPU) per tick
        self._last_draw = 0.0
        self._zoomed: QWidget | None = None

        self._build_panels()
        self._build_controls()
        self._build_actions()
        self._build_status()
        self._apply_view_options(s)
        self.apply_theme()
        install_tools(self)  # File/Presets/Record menus: sessions, export, presets, recording (tools.py)

        controller.stateChanged.connect(self._on_state)
        controller.errorOccurred.connect(self._on_error)
        controller.runReady.connect(self._on_ready)
        controller.configChanged.connect(self.controls.set_config)

        self.resize(1600, 960)
        if s is not None:
            geo = s.value("window/geometry", None)
            if isinstance(geo, QByteArray):
                self.restoreGeometry(geo)
            state = s.value("window/state", None)
            if isinstance(state, QByteArray):
                self.restoreState(state)

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
        self.landscape = LandscapePanel()
        self.weights = WeightPanel()
        self.filters = FiltersPanel()
        self.compare = ComparePanel()
        self.panels = [self.landscape, self.weights, self.filters, self.compare]
        for p in self.panels:
            p.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.top = ProportionalSplitter(Qt.Orientation.Horizontal, (1, 2))
        self.top.addWidget(self.landscape)
        self.top.addWidget(self.weights)
        self.bottom = ProportionalSplitter(Qt.Orientation.Horizontal, (1, 1))
        self.bottom.addWidget(self.filters)
        self.bottom.addWidget(self.compare)
        self.split = ProportionalSplitter(Qt.Orientation.Vertical, (2, 1))
        self.split.addWidget(self.top)
        self.split.addWidget(self.bottom)
        for sp in (self.top, self.bottom, self.split):
            sp.setChildrenCollapsible(False)

        self.banner = QFrame()
        self.banner.setObjectName("errorBanner")
        bl = QHBoxLayout(self.banner)
        self.banner_text = QLabel("")
        self.banner_text.setWordWrap(True)
        self.banner_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bl.addWidget(self.banner_text, 1)
        reset = QPushButton("Reset (R)")
        reset.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        reset.clicked.connect(self.reset)
        dismiss = QPushButton("Dismiss")
        dismiss.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        dismiss.clicked.connect(self.banner.hide)
        bl.addWidget(reset)
        bl.addWidget(dismiss)
        self.banner.hide()

        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(4, 4, 4, 4)
        cl.addWidget(self.banner)
        cl.addWidget(self.split, 1)
        central.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCentralWidget(central)

        self.landscape.modeChanged.connect(lambda m: self.controller.set_view_options(landscape=m))
        self.filters.digitChanged.connect(lambda i: self.controller.set_view_options(digit=i))
        self.filters.featuresToggled.connect(lambda on: self.controller.set_view_options(features=on))

    def _build_controls(self) -> None:
        self.controls = ControlsPanel()
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

    def _action(self, text: str, keys: list[str], slot, tip: str) -> QAction:
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
        A = self._action
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
            A(f"Zoom panel {i}", [str(i)], lambda _=False, p=p: self.zoom(p), f"Show only “{p.title}”")
        A("All panels", ["0", "Esc"], lambda: self.zoom(None), "Show all four panels")
        self.act_help = A("Help", ["F1", "?", "H"], self.show_help, "Keyboard shortcuts and what the panels show")
        self.act_quit = A("Quit", ["Ctrl+Q"], self.close, "Quit")
        self.controls.add_actions([self.act_play, self.act_reset, self.act_step, self.act_layer,
                                   self.act_help, self.act_pres])  # fmt: skip

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.status = {}
        for key, tip in (
            ("state", "run state"),
            ("backend", "array backend and device"),
            ("evaluator", "how RSO scores candidates"),
            ("model", "model"),
            ("dataset", "dataset"),
            ("speed", "weights tried per second (measured)"),
            ("cycle", "cycle and weights tried"),
            ("accuracy", "last test accuracy"),
        ):
            label = QLabel("–")
            label.setToolTip(tip)
            sb.addPermanentWidget(label, 1 if key in ("backend",) else 0)
            self.status[key] = label

    def _apply_view_options(self, s) -> None:
        opts = self.controller.view_options()
        self.landscape.set_mode(opts["landscape"])
        self.filters.set_digit(opts["digit"])
        self.filters.set_features(opts["features"])
        if s is not None:
            self.compare.set_x_axis(s.value("view/x_axis", "cycle", type=str))

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
        self._rates.clear()
        self._sync_actions()

    def apply_config(self, cfg: RunConfig) -> None:
        self.banner.hide()
        self._rates.clear()
        self.controller.apply_config(cfg)

    def set_speed(self, rate: float | None) -> None:
        self.controls.set_speed(rate)
        self._speed_changed(rate)

    def _speed_changed(self, rate: float | None) -> None:
        self.controller.set_speed(rate)
        self._rates.clear()
        self.statusBar().showMessage(f"speed: {speed_text(rate)}", 1500)

    def next_landscape_mode(self) -> None:
        modes = list(LANDSCAPE_MODES)
        cur = self.controller.view_options()["landscape"]
        self.landscape.set_mode(modes[(modes.index(cur) + 1) % len(modes)])

    def zoom(self, panel: QWidget | None) -> None:
        """Show only ``panel`` (None: all four)."""
        self._zoomed = panel
        for p in self.panels:
            p.setVisible(panel is None or p is panel)
        self.top.setVisible(panel is None or panel in (self.landscape, self.weights))
        self.bottom.setVisible(panel is None or panel in (self.filters, self.compare))
        if self._snap is not None and panel is not None:
            panel.update_view(self._snap)

    def toggle_controls(self) -> None:
        self.dock.setVisible(not self.dock.isVisible())
        self.act_controls.setText("Show controls" if not self.dock.isVisible() else "Hide controls")

    def toggle_full_screen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def set_presentation(self, on: bool) -> None:
        self.presentation = bool(on)
        self.controls.set_display(self.presentation, self.theme_name)
        self.apply_theme()

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
        self.controls.apply_theme(self.theme)
        small = self.theme.font(0.8 if self.presentation else 1.0)
        self.statusBar().setFont(small)
        for label in self.status.values():
            label.setFont(small)
        self.dock.setMinimumWidth(int(self.theme.font_pt * (18 if self.presentation else 26)))
        if self._snap is not None:
            for p in self.panels:
                if p.info is not None:
                    p.update_view(self._snap)

    def show_help(self) -> None:
        dlg = QDialog(self)
        dlg.setWindowTitle("RSO live — help")
        lay = QVBoxLayout(dlg)
        rows = "".join(
            f"<tr><td><b>{a.data()['keys']}</b></td><td>{a.data()['tip']}</td></tr>"
            for a in self._all_actions
            if a.data() and a.data()["keys"]
        )
        text = QLabel(
            "<h3>What you see</h3>"
            "<p><b>1 · Loss landscape</b>: the mini-batch loss as the weight RSO just tried is swept, "
            "all others fixed; the three candidates w−Δ, w, w+Δ and (ringed) the one kept.<br>"
            "<b>2 · Where the weight sits</b>: the network (the swept layer outlined), the tensor as a "
            "heat map with the weight outlined, the last decisions and the share of weights changed.<br>"
            "<b>3 · Filters</b>: conv filters with fixed colour levels (±3σ of their layer), the pixel "
            "being changed outlined; the feature maps of one test digit.<br>"
            "<b>4 · RSO vs SGD</b>: test accuracy and loss of both on the same model, data and seed.</p>"
            f"<h3>Keys</h3><table cellspacing='6'>{rows}</table>"
        )
        text.setTextFormat(Qt.TextFormat.RichText)
        text.setWordWrap(True)
        lay.addWidget(text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dlg.close)
        lay.addWidget(buttons)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.help_dialog = dlg
        dlg.show()

    # ------------------------------------------------------------------------------------------ engine
    def _on_ready(self, info: RunInfo) -> None:
        self._snap = None
        for p in self.panels:
            p.set_info(info)
        st = self.status
        st["backend"].setText(("GPU: " if info.is_gpu else "CPU: ") + info.backend)
        st["evaluator"].setText(f"evaluator: {info.evaluator}")
        st["model"].setText(f"model: {info.model}")
        st["dataset"].setText(f"data: {info.dataset} ({info.n_train:,}/{info.n_test:,})")
        self.refresh()

    def _on_state(self, state: str) -> None:
        self._sync_actions()
        if state == PREPARING:
            self._set_status("state", STATE_TEXT[state])

    def _on_error(self, message: str) -> None:
        self.banner_text.setText(f"The engine stopped: {message}")
        self.banner.show()
        self._sync_actions()

    def _sync_actions(self) -> None:
        c = self.controller
        state = c.state
        if c.playing:
            text = "Pause"
        elif state in (FINISHED, ERROR):
            text = "Run again"
        elif c.latest() is not None and c.latest().steps > 0:
            text = "Resume"
        else:
            text = "Start"
        if self.act_play.text() != text:  # (setting an action's text relays out its buttons)
            self.act_play.setText(text)
        can_step = state not in (FINISHED,)
        if self.act_step.isEnabled() != can_step:
            self.act_step.setEnabled(can_step)
            self.act_layer.setEnabled(can_step)
        self._set_status("state", STATE_TEXT.get(state, state))

    def _set_status(self, key: str, text: str) -> None:
        label = self.status[key]
        if label.text() != text:
            label.setText(text)

    # ------------------------------------------------------------------------------------------ frames
    def refresh(self) -> None:
        """One frame: draw the newest snapshot if there is one (the timer calls this at FPS)."""
        now = time.perf_counter()
        self.frame_times.append(now)
        self._cpu_marks.append((now, time.thread_time()))
        snap = self.controller.latest()
        if (
            snap is not None
            and snap is not self._snap
            and self.controller.info is not None
            and self._may_draw(snap, now)
        ):
            self._last_draw = now
            self.frames_drawn += 1
            if any(p.info is not self.controller.info for p in self.panels):
                for p in self.panels:
                    p.set_info(self.controller.info)
            self._snap = snap
            for p in self.panels:
                if p.isVisible() or not self.isVisible():
                    p.update_view(snap)
            self._update_status(snap)
            self._sync_actions()
        else:
            for p in self.panels:
                p.flush_text()

    def _may_draw(self, snap: Snapshot, now: float) -> bool:
        """Draw a new snapshot now? Always when still or in slow motion; at speed within the CPU budget."""
        speed = self.controller.speed
        if snap.state != RUNNING or (speed is not None and speed <= SLOW_RATE) or len(self._cpu_marks) < 2:
            return True
        if now - self._last_draw >= 1.0 / MIN_FPS:
            return True
        (t0, c0), (t1, c1) = self._cpu_marks[0], self._cpu_marks[-1]
        return t1 - t0 <= 0 or (c1 - c0) / (t1 - t0) <= FRAME_CPU_BUDGET

    def _update_status(self, snap: Snapshot) -> None:
        info = self.controller.info
        self._rates.append((snap.wall, snap.steps))
        while len(self._rates) > 2 and self._rates[-1][0] - self._rates[0][0] > 1.5:
            self._rates.popleft()
        (t0, s0), (t1, s1) = self._rates[0], self._rates[-1]
        if self.controller.state == RUNNING and t1 - t0 > 0.3 and s1 >= s0:
            self._set_status("speed", f"{(s1 - s0) / (t1 - t0):,.0f} weights/s")
        elif self.controller.state != RUNNING:
            self._set_status("speed", "– weights/s")
        cycles = info.cycles if info else snap.cycle
        self._set_status("cycle", f"cycle {snap.cycle}/{cycles} · {snap.steps:,} weights")
        acc = []
        if snap.rso_history:
            acc.append(f"RSO {100 * snap.rso_history[-1].test_accuracy:.1f}%")
        if snap.sgd_history:
            acc.append(f"SGD {100 * snap.sgd_history[-1].test_accuracy:.1f}%")
        self._set_status("accuracy", "accuracy: " + " · ".join(acc) if acc else "–")

    def panel_images(self) -> dict[str, object]:
        """Each panel grabbed to a QImage (for tests, screenshots, a later recorder)."""
        return {p.title: p.grab().toImage() for p in self.panels}

    # ------------------------------------------------------------------------------------------ closing
    def save_settings(self) -> None:
        s = self._settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        write_config(s, self.controller.config)
        s.setValue("run/sgd", self.controller.sgd_enabled)
        write_speed(s, self.controller.speed)
        s.setValue("display/presentation", self.presentation)
        s.setValue("display/theme", self.theme_name)
        opts = self.controller.view_options()
        s.setValue("view/landscape", opts["landscape"])
        s.setValue("view/digit", int(opts["digit"]))
        s.setValue("view/features", bool(opts["features"]))
        s.setValue("view/x_axis", self.compare.x_axis)
        s.sync()

    def closeEvent(self, event) -> None:  # noqa: N802
        self.timer.stop()
        try:
            self.save_settings()
        finally:
            self.controller.shutdown()
        super().closeEvent(event)
