"""Ctrl+Q quits from anywhere in the app, a dialog or message box included.

A modal dialog (the help, a message box, a file dialog) blocks the main window's shortcuts, so Ctrl+Q
pressed there did nothing. :class:`QuitAnywhere` watches key presses application-wide; one that matches
the quit shortcut in another window closes the open dialogs and then the main window, exactly as the
Quit action does (settings saved, engine threads stopped).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QDialog, QWidget


class QuitAnywhere(QObject):
    """An application event filter: the quit key sequences of ``window`` work in every window."""

    def __init__(self, window: QWidget, sequences: list[QKeySequence]):
        super().__init__(window)
        self.window = window
        self.sequences = sequences

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() != QEvent.Type.KeyPress or not isinstance(obj, QWidget):
            return False
        if obj.window() is self.window:
            return False  # the Quit action handles it there
        pressed = QKeySequence(event.keyCombination())
        if not any(pressed.matches(s) == QKeySequence.SequenceMatch.ExactMatch for s in self.sequences):
            return False
        QTimer.singleShot(0, self.window.close)  # closeEvent closes the dialogs first
        return True


def close_dialogs(window: QWidget) -> None:
    """Close every open dialog of the application (``window``'s own and top-level ones), ending their
    ``exec()`` loops, so a quit never leaves one behind or waits on one."""
    for d in QApplication.topLevelWidgets():  # dialogs with a parent are top-level widgets too
        if isinstance(d, QDialog) and d.isVisible():
            d.done(QDialog.DialogCode.Rejected)  # a message box ignores reject(); done() ends exec() too


def install(window: QWidget, sequences: list[QKeySequence]) -> QuitAnywhere:
    """Make ``sequences`` quit ``window`` from any window of the application."""
    f = QuitAnywhere(window, sequences)
    QApplication.instance().installEventFilter(f)
    return f
