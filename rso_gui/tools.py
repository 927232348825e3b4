"""The window's menus for presets, recording, export and saved sessions.

``install_tools(window)`` (called once from ``MainWindow.__init__``) adds a menu bar (File, Presets,
Record) whose actions are registered through the window's own action table, so their shortcuts appear
in the help dialog. The work itself lives in :mod:`rso_gui.exporting`, :mod:`rso_gui.recorder` and
:mod:`rso_gui.sessions`; this module only asks for names and paths and shows errors in a message box.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QStandardPaths
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QWidget,
)

from rso_engine.config import ConfigError, RunConfig
from rso_engine.plots import parse_size
from rso_engine.presets import Preset, PresetError, gui_hints, list_presets, save_preset
from rso_engine.session import SESSION_FILE_FILTER, SessionError

from . import exporting
from .recorder import Recorder, RecordOptions
from .sessions import open_window_session, save_window_session

SLOW_HINT_RATE = 2.0  # weights per second for a preset's {"speed": "slow"}


def hint_speed(hints: dict) -> tuple[bool, float | None]:
    """(whether the hints set a speed, the rate: weights per second or None for full speed)."""
    speed = hints.get("speed")
    if speed is None:
        return False, None
    if speed in ("full", "fast"):
        return True, None
    if speed == "slow":
        spw = hints.get("seconds_per_weight")
        if isinstance(spw, (int, float)) and spw > 0:
            return True, 1.0 / float(spw)
        return True, SLOW_HINT_RATE
    try:
        rate = float(speed)
    except (TypeError, ValueError):
        return False, None
    return True, rate if rate > 0 else None


def apply_preset(window, preset: Preset | RunConfig) -> RunConfig:
    """Use a preset's config (through the window's apply-config path) and its GUI hints (speed)."""
    config = preset.load() if isinstance(preset, Preset) else preset
    window.apply_config(config)
    has_speed, rate = hint_speed(gui_hints(config))
    if has_speed:
        window.set_speed(rate)
    name = preset.name if isinstance(preset, Preset) else "preset"
    window.statusBar().showMessage(f"preset: {name}", 3000)
    return config


def save_current_as_preset(window, name: str, description: str = "", overwrite: bool = False) -> Path:
    """Save the window's current settings as the user preset ``name``; :class:`PresetError` on failure."""
    config = window.controller.config
    notes = dict(config.notes) if isinstance(config.notes, dict) else {}
    notes.pop("description", None)
    return save_preset(name, config.replace(notes=notes), description or None, overwrite=overwrite)


class SavePresetDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Save settings as preset")
        form = QFormLayout(self)
        self.name = QLineEdit()
        self.name.setPlaceholderText("letters, digits, . _ - (e.g. my-demo)")
        self.description = QLineEdit()
        self.overwrite = QCheckBox("replace a user preset of that name")
        form.addRow("Name", self.name)
        form.addRow("Description", self.description)
        form.addRow("", self.overwrite)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class RecordDialog(QDialog):
    """File, frame rate, target (window, panels or one panel) and deterministic every-k weights."""

    def __init__(self, options: RecordOptions, targets: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Record")
        form = QFormLayout(self)
        row = QWidget()
        rl = QHBoxLayout(row)
        rl.setContentsMargins(0, 0, 0, 0)
        self.path = QLineEdit(options.path or str(Path(_movies_dir()) / "rso-recording.mp4"))
        browse = QPushButton("…")
        browse.clicked.connect(self._browse)
        rl.addWidget(self.path, 1)
        rl.addWidget(browse)
        self.fps = QDoubleSpinBox()
        self.fps.setRange(1, 60)
        self.fps.setValue(options.fps)
        self.target = QComboBox()
        self.target.addItems(targets)
        if options.target in targets:
            self.target.setCurrentText(options.target)
        self.every = QSpinBox()
        self.every.setRange(0, 100_000)
        self.every.setValue(options.every)
        self.every.setSpecialValueText("real time")
        self.every.setToolTip(
            "0: real time (frames at the frame rate, dropped if the encoder lags); "
            "k: deterministic, one frame every k weights (the recorder steps the run)"
        )
        form.addRow("File (MP4)", row)
        form.addRow("Frames per second", self.fps)
        form.addRow("Record", self.target)
        form.addRow("Frame every k weights", self.every)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Record")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Record to", self.path.text(), "MP4 video (*.mp4)")
        if path:
            self.path.setText(path if path.lower().endswith(".mp4") else path + ".mp4")

    def options(self) -> RecordOptions:
        return RecordOptions(self.path.text().strip(), self.fps.value(), self.target.currentText(), self.every.value())


def _movies_dir() -> str:
    return QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation) or str(Path.home())


def _docs_dir() -> str:
    return QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())


class WindowTools(QObject):
    """The menus and their commands for one window (``window.tools``)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.recorder = Recorder(window)
        self.recorder.stopped.connect(self._recording_stopped)
        self.record_options = RecordOptions()
        self.export_size: tuple[int, int] = exporting.DEFAULT_SIZE
        self.last_error: str | None = None
        self.message_box: QMessageBox | None = None
        self.last_dir = _docs_dir()
        self._opening: str | None = None
        window.controller.errorOccurred.connect(self._engine_error)
        window.controller.runReady.connect(lambda _info: setattr(self, "_opening", None))
        self._build_menus()
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.window and event.type() == QEvent.Type.Close and self.recorder.recording:
            self.recorder.stop()  # finish the file before the window goes
        return False

    # ------------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        w = self.window
        A = w.add_action
        bar = w.menuBar()
        file = bar.addMenu("&File")
        self.act_open = A("Open session…", ["Ctrl+O"], self.open_session_dialog, "Open a saved session, paused")
        self.act_save = A(
            "Save session…", ["Ctrl+S"], self.save_session_dialog, "Save the run (RSO and SGD) to continue it later"
        )
        file.addAction(self.act_open)
        file.addAction(self.act_save)
        file.addSeparator()
        export = file.addMenu("&Export")
        self.act_export_all = A(
            "Export everything…",
            ["Ctrl+E"],
            self.export_all_dialog,
            "Export plots (PNG, SVG), panels, histories (CSV, JSON) and filters to a folder",
        )
        self.act_export_cmp = A(
            "Export RSO-vs-SGD figure…",
            ["Ctrl+Shift+E"],
            self.export_comparison_dialog,
            "Save the RSO-vs-SGD figure (PNG, SVG or PDF)",
        )
        export.addAction(self.act_export_all)
        export.addAction(self.act_export_cmp)
        self.plot_menu = export.addMenu("Export plot")
        self.plot_menu.aboutToShow.connect(self._fill_plot_menu)
        for text, slot in (
            ("Export RSO history (CSV/JSON)…", lambda: self.export_history_dialog("rso")),
            ("Export SGD history (CSV/JSON)…", lambda: self.export_history_dialog("sgd")),
            ("Export filters (PNG grid)…", self.export_filters_dialog),
            ("Export size…", self.export_size_dialog),
        ):
            export.addAction(QAction(text, export, triggered=slot))
        file.addSeparator()
        file.addAction(w.act_quit)

        self.presets_menu = bar.addMenu("&Presets")
        self.act_save_preset = A(
            "Save settings as preset…",
            ["Ctrl+Shift+S"],
            self.save_preset_dialog,
            "Save the current settings as your own preset",
        )
        self.presets_menu.aboutToShow.connect(self._fill_presets_menu)
        self._fill_presets_menu()

        rec = bar.addMenu("&Record")
        self.act_record = A(
            "Start recording",
            ["Ctrl+R"],
            self.toggle_recording,
            "Start or stop recording to MP4 (with the last recording settings)",
        )
        self.act_record_opts = A(
            "Record…",
            ["Ctrl+Shift+R"],
            self.record_dialog,
            "Choose file, frame rate, window or panel, real time or every k weights; then record",
        )
        rec.addAction(self.act_record)
        rec.addAction(self.act_record_opts)
        self.recorder.started.connect(lambda: self.act_record.setText("Stop recording"))

    def _fill_presets_menu(self) -> None:
        m = self.presets_menu
        m.clear()
        try:
            presets = list_presets()
        except (PresetError, OSError) as exc:
            presets = []
            self.show_error("Presets", str(exc))
        for p in presets:
            label = p.name if p.builtin else f"{p.name} ({p.source})"
            act = QAction(label, m)
            tip = p.description or p.name
            act.setToolTip(tip)
            act.setStatusTip(tip)
            act.triggered.connect(lambda _=False, p=p: self.choose_preset(p))
            m.addAction(act)
        m.setToolTipsVisible(True)
        m.addSeparator()
        m.addAction(self.act_save_preset)

    def _fill_plot_menu(self) -> None:
        m = self.plot_menu
        m.clear()
        for key in exporting.plot_items(self.window):
            m.addAction(QAction(key, m, triggered=lambda _=False, k=key: self.export_plot_dialog(k)))

    # ------------------------------------------------------------------ messages
    def show_error(self, title: str, message: str) -> QMessageBox:
        """A non-blocking message box (the window and the engine keep running)."""
        self.last_error = message
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self.window)
        box.setModal(False)
        box.show()
        self.message_box = box
        return box

    def _engine_error(self, message: str) -> None:
        if self._opening is not None:
            path, self._opening = self._opening, None
            self.show_error("Open session", f"cannot open {path}: {message}")

    # ------------------------------------------------------------------ presets
    def choose_preset(self, preset: Preset) -> None:
        try:
            apply_preset(self.window, preset)
        except (PresetError, ConfigError) as exc:
            self.show_error("Preset", str(exc))

    def save_preset_dialog(self) -> None:
        dlg = SavePresetDialog(self.window)
        while dlg.exec() == QDialog.DialogCode.Accepted:
            try:
                path = save_current_as_preset(
                    self.window, dlg.name.text().strip(), dlg.description.text().strip(), dlg.overwrite.isChecked()
                )
            except PresetError as exc:
                QMessageBox.warning(self.window, "Save preset", str(exc))
                continue
            self.window.statusBar().showMessage(f"preset saved: {path}", 4000)
            return

    # ------------------------------------------------------------------ sessions
    def save_session(self, path: str | Path) -> Path | None:
        try:
            written = save_window_session(self.window, path)
        except (SessionError, OSError) as exc:
            self.show_error("Save session", str(exc))
            return None
        self.window.statusBar().showMessage(f"session saved: {written}", 4000)
        return written

    def open_session(self, path: str | Path) -> bool:
        try:
            open_window_session(self.window, path)
        except (SessionError, OSError) as exc:
            self.show_error("Open session", str(exc))
            return False
        self._opening = str(path)
        self.window.statusBar().showMessage(f"session opened: {path}", 4000)
        return True

    def save_session_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save session", self.last_dir, SESSION_FILE_FILTER)
        if path:
            self.last_dir = str(Path(path).parent)
            self.save_session(path)

    def open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open session", self.last_dir, SESSION_FILE_FILTER)
        if path:
            self.last_dir = str(Path(path).parent)
            self.open_session(path)

    # ------------------------------------------------------------------ export
    def _export(self, title: str, fn, *args, **kwargs):
        try:
            out = fn(*args, **kwargs)
        except (exporting.ExportError, ValueError, OSError, RuntimeError) as exc:
            self.show_error(title, str(exc))
            return None
        self.window.statusBar().showMessage(f"exported: {out if not isinstance(out, list) else len(out)}", 4000)
        return out

    def export_size_dialog(self) -> None:
        w, h = self.export_size
        text, ok = QInputDialog.getText(self.window, "Export size", "width × height in pixels", text=f"{w}x{h}")
        if ok:
            try:
                self.export_size = parse_size(text)
            except ValueError as exc:
                self.show_error("Export size", str(exc))

    def export_all_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Export everything to", self.last_dir)
        if folder:
            self.last_dir = folder
            self._export("Export", exporting.export_all, self.window, folder, self.export_size)

    def export_comparison_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.window,
            "Export RSO-vs-SGD figure",
            str(Path(self.last_dir) / "rso-vs-sgd.png"),
            "PNG (*.png);;SVG (*.svg);;PDF (*.pdf)",
        )
        if path:
            self._export("Export", exporting.export_comparison, self.window, path, self.export_size)

    def export_plot_dialog(self, key: str) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.window, f"Export {key}", str(Path(self.last_dir) / f"{key}.png"), "PNG (*.png);;SVG (*.svg)"
        )
        item = exporting.plot_items(self.window).get(key)
        if path and item is not None:
            self._export("Export", exporting.export_plot, item, path, self.export_size)

    def export_history_dialog(self, which: str) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.window,
            f"Export {which.upper()} history",
            str(Path(self.last_dir) / f"history-{which}.csv"),
            "CSV (*.csv);;JSON (*.json)",
        )
        if path:
            self._export("Export", exporting.export_history, self.window, path, which)

    def export_filters_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Export filters", str(Path(self.last_dir) / "filters.png"), "PNG (*.png);;SVG (*.svg)"
        )
        if path:
            self._export("Export", exporting.export_filters, self.window, path)

    # ------------------------------------------------------------------ recording
    def start_recording(self, options: RecordOptions, sink=None) -> bool:
        try:
            self.recorder.start(options, sink)
        except (ValueError, RuntimeError, OSError) as exc:
            self.show_error("Record", f"cannot record: {exc}")
            return False
        self.record_options = options
        return True

    def toggle_recording(self) -> None:
        if self.recorder.recording:
            self.recorder.stop()
        elif self.record_options.path:
            self.start_recording(self.record_options)
        else:
            self.record_dialog()

    def record_dialog(self) -> None:
        if self.recorder.recording:
            self.recorder.stop()
        dlg = RecordDialog(self.record_options, self.recorder.targets(), self.window)
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.start_recording(dlg.options())

    def _recording_stopped(self, result) -> None:
        self.act_record.setText("Start recording")
        if result.error:
            lost = "" if result.path else "\n\nNothing was saved."
            self.show_error("Record", f"the recording failed: {result.error}{lost}")
        elif not result.frames:
            self.window.statusBar().showMessage("nothing was recorded: stopped before the first frame", 6000)
        else:
            dropped = f", {result.dropped} dropped" if result.dropped else ""
            self.window.statusBar().showMessage(f"recorded {result.frames} frames{dropped}: {result.path}", 6000)


def install_tools(window) -> WindowTools:
    """Add the File/Presets/Record menus to ``window`` (as ``window.tools``)."""
    window.tools = WindowTools(window)
    return window.tools


__all__ = ["WindowTools", "apply_preset", "hint_speed", "install_tools", "save_current_as_preset"]
