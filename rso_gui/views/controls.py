"""The control panel: run settings, the transport buttons, the speed control and display options.

Settings edited here are collected into a :class:`~rso_engine.config.RunConfig` and emitted (after a
short pause in typing) as ``configEdited``; the window hands it to the controller, which restarts the
run with it. The transport buttons show the window's QActions, so their shortcuts and tooltips are the
same everywhere.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from rso_engine import config as config_module
from rso_engine.config import BATCH_MODES, RunConfig

from ..live.snapshot import RunChoices
from ..theme import THEMES, Theme

UPDATES = getattr(config_module, "UPDATES", ("sequential",))  # RunConfig.update's values (when it has them)
BATCH_MODE_TEXT = {"weight": "fresh per weight (paper)", "layer": "one per layer", "cycle": "one per cycle",
                   "authors": "per weight, layer input cached (authors)"}
UPDATE_TEXT = {"sequential": "one by one (paper)", "layer-parallel": "layer-parallel",
               "neuron-parallel": "neuron-parallel"}

#: the speed control's positions: weights per second, None = full speed
SPEEDS: tuple[float | None, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, None)
DEBOUNCE_MS = 300
ANNEAL_TIP = (
    "σ_d(e) = σ_d·(α + (1 − α)·(C − e)/C) for cycle e = 0 … C − 1 of C, as in the authors' code: the first "
    "cycle runs at the full σ_d, the last at σ_d·(α + (1 − α)/C); a single cycle is not annealed"
)


def speed_text(rate: float | None) -> str:
    if rate is None:
        return "full speed"
    return f"{rate:,.0f} weight/s" if rate == 1 else f"{rate:,.0f} weights/s"


def speed_index(rate: float | None) -> int:
    if rate is None:
        return len(SPEEDS) - 1
    finite = [(abs(math.log(s) - math.log(rate)), i) for i, s in enumerate(SPEEDS) if s is not None]
    return min(finite)[1]


class ControlsPanel(QWidget):
    configEdited = Signal(object)  # RunConfig
    sgdToggled = Signal(bool)
    speedChanged = Signal(object)  # float weights/s, or None for full speed
    presentationToggled = Signal(bool)
    themeChanged = Signal(str)

    def __init__(self, choices: RunChoices, parent=None):
        super().__init__(parent)
        self._base = RunConfig()
        self._anneal_to_shown: float | None = None  # α as set_config left the box
        self._loading = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.flush)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)

        # transport
        run_box = QGroupBox("Run")
        self.buttons = QGridLayout(run_box)
        outer.addWidget(run_box)

        speed_box = QGroupBox("Speed")
        sv = QVBoxLayout(speed_box)
        self.speed = QSlider(Qt.Orientation.Horizontal)
        self.speed.setRange(0, len(SPEEDS) - 1)
        self.speed.setPageStep(1)
        self.speed.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.speed.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.speed.setToolTip("From slow motion (1 weight/s) to full speed · ↑ faster, ↓ slower")
        self.speed_label = QLabel(speed_text(None))
        self.speed_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.speed.valueChanged.connect(self._speed_moved)
        sv.addWidget(self.speed)
        sv.addWidget(self.speed_label)
        outer.addWidget(speed_box)

        # settings
        set_box = QGroupBox("Settings (restart the run)")
        form = QFormLayout(set_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.model = QComboBox()
        for key, desc in choices.models:
            self.model.addItem(key, key)
            self.model.setItemData(self.model.count() - 1, desc, Qt.ItemDataRole.ToolTipRole)
        self.dataset = QComboBox()
        for name in choices.datasets:
            self.dataset.addItem(name, name)
        self.dataset.setToolTip("mnist-sample is bundled (works offline); the others are downloaded once")
        self.evaluator = QComboBox()
        for name in choices.evaluators:
            self.evaluator.addItem(name, name)
        self.evaluator.setToolTip("How RSO scores candidates; all give the same numbers, the fast ones sooner")
        self.batch = QSpinBox()
        self.batch.setRange(1, 60_000)
        self.batch.setToolTip("Images per RSO mini-batch (the loss of each candidate is summed over them)")
        self.batch_mode = QComboBox()
        for m in BATCH_MODES:
            self.batch_mode.addItem(BATCH_MODE_TEXT.get(m, m), m)
        self.update_box = QComboBox()
        for m in UPDATES:
            self.update_box.addItem(UPDATE_TEXT.get(m, m), m)
        self.update_box.setToolTip("How a layer's chosen values are applied: one after the other (Algorithm 1), "
                                   "or all scored against the layer's starting state and merged at its end")
        self.cycles = QSpinBox()
        self.cycles.setRange(1, 10_000)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2_000_000_000)
        self.anneal = QCheckBox("σ annealed towards α·σ_d")
        self.anneal.setToolTip(ANNEAL_TIP)
        self.anneal_to = QDoubleSpinBox()
        self.anneal_to.setDecimals(3)
        self.anneal_to.setRange(0.01, 1.0)
        self.anneal_to.setSingleStep(0.05)
        self.anneal_to.setToolTip("α, the share of σ_d annealing heads for (1 = no annealing). " + ANNEAL_TIP)
        self.sgd = QCheckBox("SGD baseline")
        self.sgd.setToolTip("Train the same model with SGD beside RSO, in step with it")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(4)
        self.lr.setRange(0.0001, 10.0)
        self.lr.setSingleStep(0.005)
        self.lr.setToolTip("SGD learning rate")
        for label, w in (
            ("Model", self.model),
            ("Dataset", self.dataset),
            ("Evaluator", self.evaluator),
            ("Batch size", self.batch),
            ("Batches", self.batch_mode),
            ("Update", self.update_box),
            ("Cycles", self.cycles),
            ("Seed", self.seed),
            ("", self.anneal),
            ("Anneal to α", self.anneal_to),
            ("", self.sgd),
            ("SGD lr", self.lr),
        ):
            form.addRow(label, w)
        outer.addWidget(set_box)
        for w in (self.model, self.dataset, self.evaluator, self.batch_mode, self.update_box):
            w.currentIndexChanged.connect(self._edited)
            # a long item must not widen the dock (and the window past a small screen): the list shows it whole
            w.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            w.setMinimumContentsLength(12)
        for w in (self.batch, self.cycles, self.seed):
            w.valueChanged.connect(self._edited)
        self.lr.valueChanged.connect(self._edited)
        self.anneal_to.valueChanged.connect(self._edited)
        self.anneal.toggled.connect(self._edited)
        self.anneal.toggled.connect(self.anneal_to.setEnabled)
        self.sgd.toggled.connect(self._sgd_toggled)

        # display
        disp = QGroupBox("Display")
        dl = QHBoxLayout(disp)
        self.presentation = QCheckBox("Presentation")
        self.presentation.setToolTip("Large fonts, thick lines, high contrast (F5)")
        self.presentation.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.presentation.toggled.connect(self.presentationToggled)
        self.theme_box = QComboBox()
        for name in THEMES:
            self.theme_box.addItem(name, name)
        self.theme_box.setToolTip("Colour theme (Ctrl+T)")
        self.theme_box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.theme_box.currentIndexChanged.connect(lambda i: self.themeChanged.emit(self.theme_box.itemData(i)))
        dl.addWidget(self.presentation)
        dl.addWidget(self.theme_box)
        outer.addWidget(disp)
        outer.addStretch(1)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)

    # ------------------------------------------------------------------------------------------ buttons
    def add_actions(self, actions: list[QAction], columns: int = 2) -> list[QToolButton]:
        buttons = []
        for i, action in enumerate(actions):
            b = QToolButton()
            b.setDefaultAction(action)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.buttons.addWidget(b, i // columns, i % columns)
            buttons.append(b)
        return buttons

    # ------------------------------------------------------------------------------------------ values
    def set_config(self, cfg: RunConfig) -> None:
        """Show ``cfg`` without emitting ``configEdited``."""
        self._loading = True
        try:
            self._base = cfg
            for box, value in (
                (self.model, cfg.model),
                (self.dataset, cfg.dataset),
                (self.evaluator, cfg.evaluator),
                (self.batch_mode, cfg.batch_mode),
                (self.update_box, getattr(cfg, "update", "sequential")),
            ):
                i = box.findData(value)
                if i < 0:
                    box.addItem(str(value), value)
                    i = box.count() - 1
                box.setCurrentIndex(i)
            self.batch.setValue(cfg.batch_size)
            self.cycles.setValue(cfg.cycles)
            self.seed.setValue(cfg.seed)
            self.anneal.setChecked(cfg.anneal)
            self.anneal_to.setValue(cfg.anneal_to)
            self.anneal_to.setEnabled(cfg.anneal)
            self._anneal_to_shown = self.anneal_to.value()
            self.lr.setValue(cfg.lr)
        finally:
            self._loading = False
        self._timer.stop()

    def config(self) -> RunConfig:
        """The settings shown, on top of the config last set (fields not shown are kept)."""
        update = {"update": self.update_box.currentData()} if hasattr(self._base, "update") else {}
        return self._base.replace(
            **update,
            model=self.model.currentData(),
            dataset=self.dataset.currentData(),
            evaluator=self.evaluator.currentData(),
            batch_size=self.batch.value(),
            batch_mode=self.batch_mode.currentData(),
            cycles=self.cycles.value(),
            seed=self.seed.value(),
            anneal=self.anneal.isChecked(),
            anneal_to=self._anneal_to_value(),
            lr=round(self.lr.value(), 6),
        )

    def _anneal_to_value(self) -> float:
        """α as edited; the config's own α while the box still shows it (the box rounds to 3 decimals and
        clamps to 0.01 … 1, so an α it cannot show is not changed by editing another control)."""
        if self.anneal_to.value() == self._anneal_to_shown:
            return self._base.anneal_to
        return round(self.anneal_to.value(), 3)

    def set_sgd(self, on: bool) -> None:
        self.sgd.blockSignals(True)
        self.sgd.setChecked(on)
        self.lr.setEnabled(on)
        self.sgd.blockSignals(False)

    def set_speed(self, rate: float | None) -> None:
        self.speed.blockSignals(True)
        self.speed.setValue(speed_index(rate))
        self.speed.blockSignals(False)
        self.speed_label.setText(speed_text(SPEEDS[self.speed.value()]))

    def current_speed(self) -> float | None:
        return SPEEDS[self.speed.value()]

    def nudge_speed(self, steps: int) -> None:
        self.speed.setValue(max(0, min(len(SPEEDS) - 1, self.speed.value() + steps)))

    def set_display(self, presentation: bool, theme: str) -> None:
        for w in (self.presentation, self.theme_box):
            w.blockSignals(True)
        self.presentation.setChecked(presentation)
        i = self.theme_box.findData(theme)
        self.theme_box.setCurrentIndex(max(i, 0))
        for w in (self.presentation, self.theme_box):
            w.blockSignals(False)

    def apply_theme(self, theme: Theme) -> None:
        # the teacher's controls need not be projector-sized: a little smaller than the panels
        font = theme.font(0.8 if theme.presentation else 1.0)
        self.setFont(font)
        for w in self.findChildren(QWidget):
            w.setFont(font)

    # ------------------------------------------------------------------------------------------ events
    def _edited(self, *_args) -> None:
        if not self._loading:
            self._timer.start()

    def flush(self) -> None:
        """Emit the pending settings now (the debounce timer's end; tests call it directly)."""
        self._timer.stop()
        try:
            cfg = self.config()
        except ValueError:
            return
        if cfg != self._base:
            self._base = cfg
            self._anneal_to_shown = self.anneal_to.value()
            self.configEdited.emit(cfg)

    def _sgd_toggled(self, on: bool) -> None:
        self.lr.setEnabled(on)
        self.sgdToggled.emit(on)

    def _speed_moved(self, i: int) -> None:
        self.speed_label.setText(speed_text(SPEEDS[i]))
        self.speedChanged.emit(SPEEDS[i])
