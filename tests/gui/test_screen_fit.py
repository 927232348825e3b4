"""The window fits the screen it opens on (a 1,280×720 projector, a 1,920×1,080 screen), remembers its
geometry per screen, and in presentation mode puts fewer, larger panels on a stage, titles and boxes whole."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect
from PySide6.QtWidgets import QComboBox

from rso_gui import screen_fit
from rso_gui.controller import Controller
from rso_gui.settings import open_settings
from rso_gui.window import MainWindow

WAIT = 30_000


@pytest.fixture
def screen(monkeypatch):
    """screen(w, h): the available geometry every window sees from now on."""

    def use(w: int, h: int) -> QRect:
        rect = QRect(0, 0, w, h)
        monkeypatch.setattr(screen_fit, "available_geometry", lambda widget=None: QRect(rect))
        return rect

    return use


def open_window(qtbot, tiny, restore=False, presentation=False):
    c = Controller(tiny, sgd=False)
    w = MainWindow(c, restore=restore)
    if presentation:
        w.set_presentation(True)
    w.show()
    qtbot.waitUntil(lambda: c.info is not None and w._snap is not None, timeout=WAIT)
    qtbot.wait(50)
    return w


def assert_whole(w):
    """Every shown panel's title and tools are whole: nothing is narrower than it asks to be."""
    for p in w.area.visible_panels():
        assert p.title_label.width() >= p.title_label.sizeHint().width(), p.title
        assert p.tool_box.width() >= p.tool_box.minimumSizeHint().width(), p.title
        for box in p.tool_box.findChildren(QComboBox):
            assert box.width() >= box.sizeHint().width(), (p.title, box.currentText())
        assert p.width() <= w.width() and p.height() <= w.height()


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_the_window_fills_the_available_screen(qtbot, tiny, screen, size):
    avail = screen(*size)
    w = open_window(qtbot, tiny)
    try:
        assert avail.contains(w.frameGeometry())
        assert w.width() >= size[0] - 20 and w.height() >= size[1] - 60  # filled, not 1,600×960 wherever
        assert w.minimumSizeHint().width() <= size[0] and w.minimumWidth() <= size[0]
        assert_whole(w)
    finally:
        w.close()


def test_fit_window_shrinks_a_window_to_a_small_screen(qtbot, tiny):
    w = open_window(qtbot, tiny)
    try:
        w.resize(1600, 960)
        geo = screen_fit.fit_window(w, QRect(100, 50, 1280, 720))
        assert QRect(100, 50, 1280, 720).contains(w.frameGeometry()) and geo.width() <= 1280
    finally:
        w.close()


@pytest.mark.parametrize(("size", "slots"), [((1280, 720), 1), ((1920, 1080), 2)])
def test_presentation_mode_stages_fewer_larger_panels(qtbot, tiny, screen, size, slots):
    screen(*size)
    w = open_window(qtbot, tiny, presentation=True)
    try:
        qtbot.waitUntil(lambda: w.area.mode == "stage" and len(w.area.visible_panels()) == slots, timeout=WAIT)
        assert not w.dock.isVisible()  # the control panel hidden by default
        assert w.area.tab_bar.isVisible()
        big = w.area.visible_panels()
        assert all(p.width() >= 0.35 * size[0] and p.height() >= 0.6 * size[1] for p in big)
        assert_whole(w)
        w.show_panel(w.weights)  # its number key: large, the one shown before beside it (if room)
        qtbot.wait(20)
        assert w.area.on_stage[0] is w.weights and len(w.area.on_stage) == slots
        assert_whole(w)
        w.set_presentation(False)
        assert w.dock.isVisible()  # back as it was
    finally:
        w.close()


def test_the_geometry_is_remembered_per_screen(qtbot, tiny, screen):
    screen(1920, 1080)
    w = open_window(qtbot, tiny)
    w.resize(1500, 900)
    w.move(10, 20)
    qtbot.wait(20)
    w.close()  # saves the settings
    s = open_settings()
    keys = [k for k in s.allKeys() if k.endswith("/geometry")]
    assert any("1920x1080" in k for k in keys), keys
    w2 = open_window(qtbot, tiny, restore=True)  # the same screen: where it was left
    try:
        assert (w2.width(), w2.height()) == (1500, 900)
    finally:
        w2.close()
    screen(1280, 720)  # the projector: its own geometry (none yet), so the window fills it
    w3 = open_window(qtbot, tiny, restore=True)
    try:
        assert QRect(0, 0, 1280, 720).contains(w3.frameGeometry()) and w3.width() >= 1260
    finally:
        w3.close()
