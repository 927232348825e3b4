"""The error banner over the panels: a message for people (the engine stopped, a baseline diverged), with
Reset and Dismiss."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton


class Banner(QFrame):
    """``Banner(reset)``: hidden until :meth:`say`; its Reset button calls ``reset``."""

    def __init__(self, reset: Callable[[], None], parent=None):
        super().__init__(parent)
        self.setObjectName("errorBanner")
        bl = QHBoxLayout(self)
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bl.addWidget(self.text, 1)
        for label, slot in (("Reset (R)", reset), ("Dismiss", self.hide)):
            b = QPushButton(label)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(slot)
            bl.addWidget(b)
        self.hide()

    def say(self, text: str) -> None:
        self.text.setText(text)
        self.show()
