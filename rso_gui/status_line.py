"""The status line: the permanent labels of the window's status bar (state, backend, speed, accuracy, ...).

Each label is set only when its text changes (a label's new text relays out the status bar). The speed
is measured from the snapshots with a :class:`~rso_gui.pacing.RateMeter`.
"""

from __future__ import annotations

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel, QStatusBar

from rso_engine.vocabulary import RunState, state_text

from .pacing import RateMeter

#: the labels, left to right, and their tooltips
FIELDS = (
    ("state", "run state"),
    ("backend", "array backend and device"),
    ("evaluator", "how RSO scores candidates"),
    ("model", "model"),
    ("dataset", "dataset"),
    ("speed", "weights tried per second (measured)"),
    ("cycle", "cycle and weights tried"),
    ("accuracy", "last test accuracy"),
)
STRETCHED = ("backend",)  # labels that take the spare width


class StatusLine:
    """The status bar's labels (``labels[key]``, keys as in :data:`FIELDS`) and what they show."""

    def __init__(self, bar: QStatusBar):
        self.bar = bar
        self.labels: dict[str, QLabel] = {}
        self.rates = RateMeter()
        for key, tip in FIELDS:
            label = QLabel("–")
            label.setToolTip(tip)
            bar.addPermanentWidget(label, 1 if key in STRETCHED else 0)
            self.labels[key] = label

    def set(self, key: str, text: str) -> None:
        """Set one label's text (only if it changed)."""
        label = self.labels[key]
        if label.text() != text:
            label.setText(text)

    def set_font(self, font: QFont) -> None:
        """Use ``font`` for the bar's messages and every label."""
        self.bar.setFont(font)
        for label in self.labels.values():
            label.setFont(font)

    def show_state(self, state: str) -> None:
        """The run state's display text."""
        self.set("state", state_text(state))

    def show_run(self, info) -> None:
        """What a new run is: backend and device, evaluator, model, dataset (from its ``RunInfo``)."""
        self.set("backend", ("GPU: " if info.is_gpu else "CPU: ") + info.backend)
        self.set("evaluator", f"evaluator: {info.evaluator}")
        self.set("model", f"model: {info.model}")
        self.set("dataset", f"data: {info.dataset} ({info.n_train:,}/{info.n_test:,})")

    def show_snapshot(self, snap, info, state: str) -> None:
        """Measured speed (while ``state`` is running), cycle, weights tried and the last accuracies."""
        rate = self.rates.add(snap.wall, snap.steps)
        if state != RunState.RUNNING:
            self.set("speed", "– weights/s")
        elif rate is not None:
            self.set("speed", f"{rate:,.0f} weights/s")
        cycles = info.cycles if info else snap.cycle
        self.set("cycle", f"cycle {snap.cycle}/{cycles} · {snap.steps:,} weights")
        acc = []
        if snap.rso_history:
            acc.append(f"RSO {100 * snap.rso_history[-1].test_accuracy:.1f}%")
        if snap.sgd_history:
            acc.append(f"SGD {100 * snap.sgd_history[-1].test_accuracy:.1f}%")
        self.set("accuracy", "accuracy: " + " · ".join(acc) if acc else "–")
