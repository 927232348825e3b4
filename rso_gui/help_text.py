"""The help dialog (F1): what the panels show, and every keyed action with its keys and tip."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

WIDTH_CHARS = 100  # the help text's width in average characters

PANELS_HTML = (
    "<h3>What you see</h3>"
    "<p><b>1 · Loss landscape</b>: the mini-batch loss as the weight RSO just tried is swept, "
    "all others fixed; the three candidates w−Δ, w, w+Δ and (ringed) the one kept.<br>"
    "<b>2 · Where the weight sits</b>: the network (the swept layer outlined), the tensor as a "
    "heat map with the weight outlined, the last decisions and the share of weights changed.<br>"
    "<b>3 · Filters</b>: conv filters with fixed colour levels (±3σ of their layer), the pixel "
    "being changed outlined; the feature maps of one test digit.<br>"
    "<b>4 · Runs compared</b>: test accuracy and loss of RSO and SGD on the same model, data and seed, and "
    "of every race lane, each in its colour with its legend entry and a row of its first-layer filters.<br>"
    "<b>5 · Algorithm 1</b>: the paper's pseudo-code for the variant that runs; paused, stepping (→) or in "
    "slow motion (S) the line executed is lit with its values (c, layer d, the weight, the batch and its "
    "first images, σ, Δ, the three losses, the choice); at full speed the lines count (weights tried, "
    "w+Δ / w / w−Δ kept).<br>"
    "<b>6 · Draw a digit</b>: draw with the mouse (or pick a test image); what the models see (28×28) "
    "and the class probabilities of the RSO and the SGD model, live.</p>"
    "<p>Hover over a curve to read its value (cycle, accuracy, loss; the landscape's loss at that Δ). "
    "The number keys bring a panel up: in presentation mode (F5) the panels stand on a stage, one or two "
    "at a time as the screen allows, with tabs above them; 0 shows every panel, Esc the layout for the mode "
    "and screen; Ctrl+H the control panel.</p>"
    "<p><b>Race lanes</b> (Lanes menu, Ctrl+L): up to four runs on the same model, data and seed — e.g. RSO "
    "batch 64 and 256, RSO layer-parallel, SGD — advanced fairly (equal forward samples, or equal cycles); "
    "Ctrl+Shift+L removes the last lane. Lanes are saved in sessions and exports.</p>"
    "<p><b>Lessons</b> (Lessons menu, <code>rso-gui --lesson NAME</code>): PageDown / N the next step, "
    "PageUp / P back one step, restored exactly and run again.</p>"
)


def help_html(actions: Iterable[QAction]) -> str:
    """The help text: :data:`PANELS_HTML` and a table of the actions that have keys (their ``data()`` holds
    ``{"keys": ..., "tip": ...}``, as ``MainWindow.add_action`` sets it)."""
    rows = "".join(
        f"<tr><td><b>{a.data()['keys']}</b></td><td>{a.data()['tip']}</td></tr>"
        for a in actions
        if a.data() and a.data()["keys"]
    )
    return f"{PANELS_HTML}<h3>Keys</h3><table cellspacing='6'>{rows}</table>"


def make_help_dialog(parent: QWidget, actions: Iterable[QAction]) -> QDialog:
    """A non-modal help dialog over ``parent`` (deleted when closed); the caller shows it."""
    dlg = QDialog(parent)
    dlg.setWindowTitle("RSO live — help")
    lay = QVBoxLayout(dlg)
    text = QLabel(help_html(actions))
    text.setTextFormat(Qt.TextFormat.RichText)
    text.setWordWrap(True)
    # a wrapped label's height follows its width, which a layout learns too late: fix the width, so the
    # dialog is tall enough for every row
    width = text.fontMetrics().averageCharWidth() * WIDTH_CHARS
    screen = parent.screen() if parent is not None else None
    if screen is not None:
        width = min(width, screen.availableGeometry().width() - 80)
    text.setFixedWidth(width)
    text.setMinimumHeight(text.heightForWidth(width))
    lay.addWidget(text)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
    buttons.rejected.connect(dlg.close)
    lay.addWidget(buttons)
    dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    return dlg
