"""``rso-gui`` start-up: a machine without the libraries of Qt's xcb plugin gets one line and status 2."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from rso_gui import app


def missing(*libs):
    """A library check that reports ``libs`` missing and everything else loadable."""
    return lambda soname: soname not in libs


def test_missing_xcb_library_prints_one_line_and_exits_2(monkeypatch, capsys):
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(app.sys, "platform", "linux")
    monkeypatch.setattr(app, "_loadable", missing("libxcb-cursor.so.0"))
    monkeypatch.setattr(QApplication, "instance", staticmethod(lambda: None))  # as in a fresh process
    assert app.main(["--fresh"]) == app.EXIT_NO_PLATFORM == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "libxcb-cursor.so.0" in err[0] and "apt install libxcb-cursor0" in err[0]


@pytest.mark.parametrize("platform", ["xcb", "xcb:foo", "XCB;wayland"])
def test_an_explicit_xcb_platform_is_checked(platform):
    env = {"QT_QPA_PLATFORM": platform}
    problem = app.platform_problem(env, "linux", missing("libxcb-icccm.so.4", "libxkbcommon-x11.so.0"))
    assert problem is not None and "\n" not in problem
    assert "apt install libxcb-icccm4 libxkbcommon-x11-0" in problem


@pytest.mark.parametrize(
    "env, platform",
    [
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux"),
        ({"QT_QPA_PLATFORM": "wayland"}, "linux"),
        ({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, "linux"),
        ({}, "darwin"),
    ],
)
def test_other_platforms_skip_the_check(env, platform):
    def never(soname):
        raise AssertionError(f"{soname} was checked")

    assert not app.uses_xcb(env, platform)
    assert app.platform_problem(env, platform, never) is None


def test_nothing_missing_is_no_problem(monkeypatch):
    monkeypatch.setattr(app, "socket_exists", lambda path: path == "/tmp/.X11-unix/X0")
    assert app.platform_problem({"DISPLAY": ":0"}, "linux", lambda soname: True) is None
    assert app.platform_problem({"DISPLAY": "remote.example:3"}, "linux", lambda soname: True) is None
    assert app.uses_xcb({"DISPLAY": ":0"}, "linux")


@pytest.mark.parametrize("display, says", [(None, "DISPLAY is not set"), (":7", "no X server runs on display :7"),
                                           ("unix:7.0", "no X server runs on display unix:7.0")])
def test_no_reachable_display_is_one_line_too(monkeypatch, display, says):
    monkeypatch.setattr(app, "socket_exists", lambda path: path == "/tmp/.X11-unix/X0")
    env = {} if display is None else {"DISPLAY": display}
    problem = app.platform_problem(env, "linux", lambda soname: True)
    assert problem is not None and says in problem and "xvfb-run" in problem and "\n" not in problem
