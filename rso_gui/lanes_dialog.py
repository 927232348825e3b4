"""The Lanes menu and dialog: race up to four runs on the same model, data and seed in one window.

The main run (lane 1, the one the landscape, weight and algorithm panels follow) and its SGD baseline stay
as they are; the extra lanes are chosen here, from one-click variants of the current settings ("RSO batch
256", "RSO layer-parallel", "SGD", …), from the current settings themselves, or from a preset. The
engine thread advances them fairly (rso_gui/live/lanes.py). Every function below works without a dialog
(tests call them); a change restarts the race from the initial weights, still playing if it was.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
)

from rso_engine.config import RunConfig
from rso_engine.presets import PresetError, list_presets, load_preset

from .live.lanes import FAIRNESS, VARIANTS, LaneSpec, lane_config, max_lanes, variant

CURRENT = "Current settings"


def describe(config: RunConfig) -> str:
    """A lane's settings in a few words: ``SGD lr 0.01, batch 32`` or ``RSO batch 64, layer-parallel``."""
    if config.algorithm == "sgd":
        return f"SGD lr {config.lr:g}, batch {config.sgd_batch_size}, {config.cycles} epochs"
    parts = [f"RSO batch {config.batch_size}"]
    if config.update != "sequential":
        parts.append(config.update)
    if config.batch_mode != "weight":
        parts.append(f"batch per {config.batch_mode}")
    parts.append(f"{config.cycles} cycles")
    return ", ".join(parts)


def room(window) -> int:
    """How many more lanes fit (four runs in all, the SGD baseline counted)."""
    c = window.controller
    return max_lanes(c.sgd_enabled) - len(c.lanes)


def _unique(window, label: str) -> str:
    taken = {s.label for s in window.controller.lanes}
    out, k = label, 2
    while out in taken:
        out, k = f"{label} ({k})", k + 1
    return out


def make_lane(window, source: str) -> LaneSpec:
    """The lane called ``source``: a key of :data:`VARIANTS`, :data:`CURRENT`, or ``"preset:NAME"``."""
    main = window.controller.config
    if source in VARIANTS:
        spec = variant(main, source)
    elif source == CURRENT:
        spec = LaneSpec(describe(main).split(",")[0], lane_config(main, main))
    elif source.startswith("preset:"):
        name = source.removeprefix("preset:")
        spec = LaneSpec(name, lane_config(main, load_preset(name)))
    else:
        raise ValueError(f"unknown lane {source!r}")
    return LaneSpec(_unique(window, spec.label), spec.config)


def add_lane(window, source: str | LaneSpec, fairness: str | None = None) -> LaneSpec:
    """Add a lane (restarting the race); ValueError when four runs race already."""
    if room(window) <= 0:
        raise ValueError("four runs race already (the SGD baseline counts): remove a lane first")
    spec = source if isinstance(source, LaneSpec) else make_lane(window, source)
    c = window.controller
    c.set_lanes((*c.lanes, spec), fairness)
    return spec


def remove_lane(window, index: int = -1) -> None:
    """Remove the extra lane at ``index`` (0: lane 2; -1: the last one)."""
    lanes = list(window.controller.lanes)
    if lanes:
        del lanes[index]
        window.controller.set_lanes(lanes)


def sources() -> list[tuple[str, str]]:
    """What a lane can be made from, as (menu text, source) pairs: the variants, the current settings, presets."""
    out = [(f"{label} (the current settings, changed)", label) for label in VARIANTS]
    out.append((f"{CURRENT} (as they are now)", CURRENT))
    try:
        out += [(f"Preset: {p.name}", f"preset:{p.name}") for p in list_presets()]
    except PresetError:
        pass
    return out


class LanesDialog(QDialog):
    """The lanes of the race: the list, add from a variant / the settings / a preset, remove, fairness."""

    def __init__(self, window):
        super().__init__(window)
        self.window_ = window
        self.setWindowTitle("Race lanes")
        lay = QVBoxLayout(self)
        intro = QLabel("Up to four runs on the same model, data and seed race in one window: lane 1 is the main "
                       "run (the other panels follow it), the SGD baseline counts as one. A change starts the "
                       "race again from the initial weights.")  # fmt: skip
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.list = QListWidget()
        lay.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.source = QComboBox()
        for text, source in sources():
            self.source.addItem(text, source)
        self.add_button = QPushButton("Add lane")
        self.add_button.clicked.connect(self._add)
        self.remove_button = QPushButton("Remove lane")
        self.remove_button.clicked.connect(self._remove)
        row.addWidget(self.source, 1)
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        lay.addLayout(row)
        form = QFormLayout()
        self.fairness = QComboBox()
        for key, label in FAIRNESS.items():
            self.fairness.addItem(label, key)
        self.fairness.setCurrentIndex(self.fairness.findData(window.controller.fairness))
        self.fairness.currentIndexChanged.connect(self._fairness_changed)
        form.addRow("Keep the lanes level by", self.fairness)
        lay.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.refresh()

    def refresh(self) -> None:
        c = self.window_.controller
        self.list.clear()
        self.list.addItem(f"1 · main run: {describe(c.config)}")
        if c.sgd_enabled:
            self.list.addItem(f"SGD baseline: {describe(c.config.replace(algorithm='sgd'))}")
        for i, spec in enumerate(c.lanes, start=2):
            self.list.addItem(f"{i} · {spec.label}: {describe(lane_config(c.config, spec.config))}")
        self.add_button.setEnabled(room(self.window_) > 0)
        self.remove_button.setEnabled(bool(c.lanes))

    def _add(self) -> None:
        try:
            add_lane(self.window_, self.source.currentData())
        except (ValueError, PresetError) as exc:
            self.window_.statusBar().showMessage(str(exc), 4000)
        self.refresh()

    def _remove(self) -> None:
        c = self.window_.controller
        row = self.list.currentRow() - (2 if c.sgd_enabled else 1)
        remove_lane(self.window_, row if 0 <= row < len(c.lanes) else -1)
        self.refresh()

    def _fairness_changed(self, _i: int) -> None:
        c = self.window_.controller
        c.set_lanes(c.lanes, self.fairness.currentData())


def install_lanes(window) -> None:
    """The Lanes menu: the dialog (Ctrl+L), a lane from each variant, remove the last lane."""
    menu = window.menuBar().addMenu("La&nes")
    window.act_lanes = window.add_action(
        "Race lanes…", ["Ctrl+L"], lambda: open_lanes_dialog(window),
        "Race up to four runs on the same data and seed: add or remove lanes, choose how they are kept level",
    )  # fmt: skip
    window.act_lane_remove = window.add_action(
        "Remove the last lane", ["Ctrl+Shift+L"], lambda: remove_lane(window), "Remove the last race lane"
    )
    menu.addAction(window.act_lanes)
    menu.addSeparator()
    for label in VARIANTS:
        menu.addAction(f"Add lane: {label}", lambda label=label: _add_from_menu(window, label))
    menu.addAction(f"Add lane: {CURRENT}", lambda: _add_from_menu(window, CURRENT))
    menu.addSeparator()
    menu.addAction(window.act_lane_remove)


def _add_from_menu(window, source: str) -> None:
    try:
        add_lane(window, source)
    except ValueError as exc:
        window.statusBar().showMessage(str(exc), 4000)


def open_lanes_dialog(window) -> LanesDialog:
    dlg = LanesDialog(window)
    window.lanes_dialog = dlg
    dlg.show()
    return dlg


__all__ = ["CURRENT", "LanesDialog", "add_lane", "describe", "install_lanes", "make_lane", "open_lanes_dialog",
           "remove_lane", "room", "sources"]  # fmt: skip
