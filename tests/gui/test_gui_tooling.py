"""Presets, recording, export and saved sessions in the window (tiny runs; no wall-clock asserts)."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from rso_gui.recorder import HashSink, RecordOptions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    data = open(path, "rb").read(32)
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def wait_paused(qtbot, w, steps=None, timeout=30_000):
    c = w.controller

    def ok():
        snap = c.latest()
        r = c.runner
        return (
            r is not None
            and snap is not None
            and r.mode == "pause"
            and snap.state != "running"
            and c.state in ("paused", "finished")  # the worker's state signal has arrived too
            and (steps is None or snap.steps >= steps)
        )

    qtbot.waitUntil(ok, timeout=timeout)


def run_to_end(qtbot, w, timeout=60_000):
    w.controller.start()
    qtbot.waitUntil(lambda: w.controller.state == "finished", timeout=timeout)
    return w.controller.latest()


# ------------------------------------------------------------------------------------------ presets
def test_presets_menu_lists_and_applies_a_preset(make_window, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("RSO_CONFIG_DIR", str(tmp_path / "cfg"))
    w = make_window()
    names = [a.text() for a in w.tools.presets_menu.actions() if a.text()]
    assert "explain-one-decision" in names and "Save settings as preset…" in names
    act = next(a for a in w.tools.presets_menu.actions() if a.text() == "explain-one-decision")
    act.trigger()
    cfg = w.controller.config
    assert cfg.batch_size == 16 and cfg.cycles == 1 and cfg.batch_mode == "weight"
    assert w.controls.config().batch_size == 16 if hasattr(w.controls, "config") else True
    assert w.controller.speed is not None and w.controller.speed <= 2  # the "slow" GUI hint
    qtbot.waitUntil(lambda: w.controller.info is not None and w.controller.info.config == cfg, timeout=30_000)


def test_save_settings_as_preset_writes_a_user_preset(make_window, tmp_path, monkeypatch):
    from rso_engine.presets import PresetError, find_preset  # noqa: PLC0415
    from rso_gui.tools import save_current_as_preset  # noqa: PLC0415

    monkeypatch.setenv("RSO_CONFIG_DIR", str(tmp_path / "cfg"))
    w = make_window()
    path = save_current_as_preset(w, "my-tiny", "tiny test run")
    assert path.parent == tmp_path / "cfg" / "presets"
    p = find_preset("my-tiny")
    assert not p.builtin and p.description == "tiny test run"
    assert p.load().replace(notes={}) == w.controller.config.replace(notes={})
    with pytest.raises(PresetError):
        save_current_as_preset(w, "my-tiny", "again")
    save_current_as_preset(w, "my-tiny", "again", overwrite=True)
    w.tools._fill_presets_menu()
    assert any(a.text().startswith("my-tiny") for a in w.tools.presets_menu.actions())
    keys = " ".join(a.data()["keys"] for a in w._all_actions if a.data())
    for k in ("Ctrl+Shift+S", "Ctrl+R", "Ctrl+S", "Ctrl+O", "Ctrl+E"):
        assert k in keys


# ------------------------------------------------------------------------------------------ recording
def record_hashes(make_window, qtbot, tiny, frames=6, every=7):
    w = make_window(tiny, sgd=True)
    sink = HashSink()
    assert w.tools.start_recording(RecordOptions(None, fps=10, target="panels", every=every, max_frames=frames), sink)
    assert w.tools.recorder.indicator.text().startswith("● REC")
    assert w.windowTitle().startswith("● REC")
    qtbot.waitUntil(lambda: not w.tools.recorder.recording, timeout=60_000)
    assert not w.windowTitle().startswith("● REC")
    res = w.tools.recorder.result
    assert res.error is None and res.frames == frames == len(sink.hashes) and res.dropped == 0
    assert w.controller.latest().steps == every * (frames - 1)
    w.close()
    return sink.hashes


def test_deterministic_recording_twice_gives_identical_frames(make_window, qtbot, tiny):
    a = record_hashes(make_window, qtbot, tiny)
    b = record_hashes(make_window, qtbot, tiny)
    assert len(set(a)) > 1  # the frames show the run moving
    assert a == b


def test_realtime_recording_writes_a_valid_mp4(make_window, qtbot, tiny, tmp_path):
    import imageio_ffmpeg  # noqa: PLC0415

    w = make_window(tiny)
    path = tmp_path / "clip.mp4"
    w.controller.start()
    assert w.tools.start_recording(RecordOptions(str(path), fps=20, target="Loss landscape", max_frames=5))
    qtbot.waitUntil(lambda: not w.tools.recorder.recording, timeout=30_000)
    res = w.tools.recorder.result
    assert res.error is None and res.frames >= 1
    head = path.read_bytes()[:12]
    assert head[4:8] == b"ftyp"
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = gen.__next__()
    assert tuple(meta["size"]) == res.size
    first = next(gen)
    assert len(first) == res.size[0] * res.size[1] * 3
    gen.close()


# ------------------------------------------------------------------------------------------ export
def test_exports_png_svg_csv_json_and_filters(make_window, qtbot, tiny, tmp_path):
    from rso_gui import exporting  # noqa: PLC0415

    w = make_window(tiny)
    w.controller.step_weight()
    wait_paused(qtbot, w, steps=1)
    w.refresh()
    items = exporting.plot_items(w)
    assert any(k.startswith("runs-compared") for k in items)
    key = next(k for k in items if k.startswith("runs-compared"))
    png = exporting.export_plot(items[key], tmp_path / "acc.png", (640, 400))
    assert png_size(png)[0] == 640
    svg = exporting.export_plot(items[key], tmp_path / "acc.svg")
    assert ET.parse(svg).getroot().tag.endswith("svg")
    csv = exporting.export_history(w, tmp_path / "h.csv")
    lines = csv.read_text().splitlines()
    assert lines[0].split(",")[0] and len(lines) >= 2
    js = json.loads(exporting.export_history(w, tmp_path / "h.json", "sgd").read_text())
    assert js["history"] and js["config"]["algorithm"] == "sgd"
    fig = exporting.export_comparison(w, tmp_path / "cmp.png", size=(800, 300), dpi=100)
    assert png_size(fig) == (800, 300)
    filt = exporting.export_filters(w, tmp_path / "filters.png")
    assert png_size(filt)[0] > 0
    panel = exporting.export_panel_png(w.filters, tmp_path / "panel.png", (300, 200))
    assert png_size(panel) == (300, 200)
    with pytest.raises(exporting.ExportError):
        exporting.export_plot(items[key], tmp_path / "x.bmp")


# ------------------------------------------------------------------------------------------ sessions
def test_session_save_open_continue_equals_uninterrupted(make_window, qtbot, tiny, tmp_path):
    tiny = tiny.replace(cycles=1, evaluator="auto")  # (a fast exact evaluator: same numbers, quicker)
    ref = make_window(tiny, sgd=True)
    end = run_to_end(qtbot, ref)
    ref_params = {k: v.copy() for k, v in end.params.items()}
    ref_sgd = [e.test_accuracy for e in end.sgd_history]
    ref.close()

    w = make_window(tiny, sgd=True)
    w.controller.step_weight()
    w.controller.runner.step_weight(30)
    wait_paused(qtbot, w, steps=31)
    path = w.tools.save_session(tmp_path / "mid")
    assert path is not None and path.name == "mid.rso.npz"
    w.close()

    w2 = make_window(tiny, sgd=False)
    assert w2.tools.open_session(path)
    qtbot.waitUntil(lambda: w2.controller.latest() is not None and w2.controller.latest().steps == 31, timeout=30_000)
    assert w2.controller.config == tiny.validated()
    assert w2.controller.sgd_enabled and w2.controls is not None
    wait_paused(qtbot, w2)
    end2 = run_to_end(qtbot, w2)
    for k, v in ref_params.items():
        np.testing.assert_array_equal(end2.params[k], v, err_msg=k)
    assert [e.test_accuracy for e in end2.sgd_history] == ref_sgd


def test_corrupt_session_shows_an_error_and_the_window_stays_usable(make_window, qtbot, tiny, tmp_path):
    w = make_window(tiny)
    bad = tmp_path / "bad.rso.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a session")
    assert not w.tools.open_session(bad)
    assert w.tools.message_box is not None and w.tools.message_box.isVisible()
    assert "bad.rso.npz" in w.tools.last_error
    w.tools.message_box.close()
    w.controller.step_weight()
    wait_paused(qtbot, w, steps=1)
    assert w.controller.state == "paused"
