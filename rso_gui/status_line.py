"""The status line: the permanent labels of the window's status bar (state, backend, speed, accuracy, ...).

Each label is set only when its text changes (a label's new text relays out the status bar). The speed
is measured from the snapshots with a :class:`~rso_gui.pacing.RateMeter`. The fields are separated by
a rule and padding (theme.py's style sheet); when the bar is too narrow for all of them (a 1,280×720
projector in presentation mode) the least needed are hidden, in :data:`DROP_ORDER`, rather than cut —
and the labels never make the window wider than its screen.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel, QSizePolicy, QStatusBar

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
DROP_ORDER = ("evaluator", "dataset", "backend", "model", "speed")  # hidden first when the bar is too narrow


class StatusLine(QObject):
    """The status bar's labels (``labels[key]``, keys as in :data:`FIELDS`) and what they show."""

    def __init__(self, bar: QStatusBar):
        super().__init__(bar)
        self.bar = bar
        self.labels: dict[str, QLabel] = {}
        self.rates = RateMeter()
        for key, tip in FIELDS:
            label = QLabel("–")
            label.setObjectName("statusField")
            label.setToolTip(tip)
            label.setMinimumWidth(1)  # its text never widens the window; fit() hides fields instead
            label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
            bar.addPermanentWidget(label, 1 if key in STRETCHED else 0)
            self.labels[key] = label
        self._fit_pending = False
        bar.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.bar and event.type() == QEvent.Type.Resize and not self._fit_pending:
            # after the resize, not inside it: showing or hiding a field re-lays the window out, and doing
            # that while the window is being resized crashed Qt (a segfault in a resize during a recording)
            self._fit_pending = True
            QTimer.singleShot(0, self._deferred_fit)
        return False

    def _deferred_fit(self) -> None:
        self._fit_pending = False
        self.fit()

    def fit(self) -> None:
        """Show as many fields as the bar's width takes whole, hiding them in :data:`DROP_ORDER`."""
        width = self.bar.width() - 24
        hints = {k: label.sizeHint().width() + 8 for k, label in self.labels.items()}
        shown = set(self.labels)
        for key in DROP_ORDER:
            if sum(hints[k] for k in shown) <= width:
                break
            shown.discard(key)
        for key, label in self.labels.items():
            if label.isHidden() == (key in shown):
                label.setVisible(key in shown)

    def set(self, key: str, text: str) -> None:
        """Set one label's text (only if it changed)."""
        label = self.labels[key]
        if label.text() != text:
            grew = len(text) > len(label.text())
            label.setText(text)
            if grew:
                self.fit()

    def set_font(self, font: QFont) -> None:
        """Use ``font`` for the bar's messages and every label."""
        self.bar.setFont(font)
        for label in self.labels.values():
            label.setFont(font)
        self.fit()

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
