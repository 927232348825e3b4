"""Fixtures for the GUI tests: offscreen Qt, throw-away settings, tiny runs, and no leaked threads."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import threading  # noqa: E402

import pytest  # noqa: E402

from rso_engine.config import RunConfig  # noqa: E402

#: a run that is quick with the plain reference evaluator: few images, conv1 (40 weights) swept first
TINY = RunConfig(
    model="oneconv",
    batch_size=16,
    n_train=256,
    n_test=64,
    cycles=2,
    evaluator="reference",
    layer_order="input-first",
    eval_train_samples=128,
    bn_calibration_samples=128,
    sgd_batch_size=32,
)


@pytest.fixture
def tiny() -> RunConfig:
    return TINY


@pytest.fixture(autouse=True)
def settings_dir(tmp_path, qapp):
    """Point QSettings at a temporary folder, so no test reads or writes the user's settings."""
    from PySide6.QtCore import QSettings  # noqa: PLC0415

    path = tmp_path / "settings"
    path.mkdir()
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(path))
    return path


@pytest.fixture(autouse=True)
def no_threads_left():
    """Fail any test that leaves an engine thread (or another non-daemon thread) running."""
    from rso_gui.controller import running_threads  # noqa: PLC0415

    before = set(threading.enumerate())
    yield
    left = running_threads()
    for t in left:  # clean up so the next test starts clean, then fail this one
        t.runner.stop()
        t.wait(20_000)
    others = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    others = [t for t in others if not isinstance(t, threading._DummyThread)]
    assert not left, f"test left {len(left)} engine thread(s) running"
    assert not others, f"test left threads running: {others}"


@pytest.fixture
def make_window(qtbot):
    """make_window(config, **controller options) -> a shown MainWindow; closed (and joined) afterwards."""
    from rso_gui.controller import Controller  # noqa: PLC0415
    from rso_gui.window import MainWindow  # noqa: PLC0415

    made = []

    def make(config: RunConfig = TINY, restore: bool = False, **options):
        controller = Controller(config, **options)
        w = MainWindow(controller, restore=restore)
        w.resize(1400, 900)
        w.show()
        made.append(w)
        qtbot.waitUntil(lambda: controller.info is not None and controller.latest() is not None, timeout=30_000)
        qtbot.waitUntil(w.isActiveWindow, timeout=30_000)  # keys go to the active window, as a person's do
        return w

    yield make
    for w in made:
        w.close()


@pytest.fixture
def start():
    """Start a :class:`Runner` on a thread of its own (``start(config, **options)``); every runner started is
    stopped and joined after the test."""
    from helpers import WAIT_S, wait_for  # noqa: PLC0415
    from rso_engine.vocabulary import RunState  # noqa: PLC0415
    from rso_gui.live.runner import Runner  # noqa: PLC0415

    made = []

    def make(config, **kw):
        r = Runner(config, **kw)
        t = threading.Thread(target=r.run, name="test-runner")
        t.start()
        made.append((r, t))
        wait_for(lambda: r.state in (RunState.PAUSED, RunState.RUNNING, "error"))
        return r

    yield make
    for r, t in made:
        r.stop()
        t.join(WAIT_S)
        assert not t.is_alive()
        assert r.state in (RunState.STOPPED, "error")

