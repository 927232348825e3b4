"""Recordings match the screen at any window or panel size, keep one frame size, and leave no broken file.

Each MP4 is decoded (``imageio_ffmpeg.read_frames``) and compared with the grabs the recorder made of the
window at the same moments (the target widget's ``grab`` is wrapped to keep them). A good H.264 recording is
within about 2 of the screen (mean absolute error on 0..255); a stream shifted by a frame of the wrong size
is over 18.
"""

from __future__ import annotations

import numpy as np
import pytest

from rso_gui.recorder import Mp4Sink, RecordOptions, fit_frame, image_to_rgb

MAX_ERROR = 6.0  # mean absolute pixel error, decoded frame vs the grab it was made from


def keep_grabs(widget) -> list[np.ndarray]:
    """Wrap ``widget.grab`` so that every grab the recorder makes is kept (as RGB) in the returned list."""
    grabs: list[np.ndarray] = []
    grab = widget.grab

    def kept(*args):
        pixmap = grab(*args)
        grabs.append(image_to_rgb(pixmap.toImage()))
        return pixmap

    widget.grab = kept
    return grabs


def decode(path) -> tuple[tuple[int, int], list[np.ndarray]]:
    import imageio_ffmpeg  # noqa: PLC0415

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen]
    gen.close()
    return (w, h), frames


def window_of_size(make_window, qtbot, tiny, width, height):
    w = make_window(tiny)
    w.resize(width, height)
    qtbot.waitUntil(lambda: (w.width(), w.height()) == (width, height))
    return w


def assert_matches(what, frames, grabs, size) -> None:
    """Each decoded frame is within MAX_ERROR of the grab it was made from (made the video's size)."""
    err = errors(frames, grabs, size)
    print(f"{what}: mean abs error per frame", [round(e, 2) for e in err])
    assert max(err) < MAX_ERROR


def errors(decoded, grabs, size) -> list[float]:
    return [
        float(np.abs(d.astype(np.int16) - fit_frame(g, size).astype(np.int16)).mean()) for d, g in zip(decoded, grabs)
    ]


def record(qtbot, w, path, options, *, during=None) -> tuple:
    """Record ``options`` to ``path``; returns (result, decoded size, decoded frames, the grabs pushed)."""
    rec = w.tools.recorder
    grabs = keep_grabs(rec.target_widget(options.target))
    assert w.tools.start_recording(options)
    if during is not None:
        during(rec)
    qtbot.waitUntil(lambda: not rec.recording, timeout=60_000)
    res = rec.result
    assert res.error is None, res.error
    assert res.path == str(path) and path.exists() and not path.with_name(path.name + ".part").exists()
    size, frames = decode(path)
    # deterministic: the first grab only sizes the video; real time: the first grab is the first frame
    probe = 1 if options.every > 0 else 0
    assert res.dropped == 0 and len(grabs) == res.frames + probe
    assert size == res.size and len(frames) == res.frames  # a frame of another size would break the stream
    return res, size, frames, grabs[probe:]


def test_realtime_recording_at_an_odd_window_size_matches_the_screen(make_window, qtbot, tiny, tmp_path):
    w = window_of_size(make_window, qtbot, tiny, 1401, 900)
    w.controller.start()
    path = tmp_path / "odd.mp4"
    res, size, frames, grabs = record(qtbot, w, path, RecordOptions(str(path), fps=20, target="window", max_frames=5))
    assert grabs[0].shape == (900, 1401, 3) and size == (1400, 900)
    assert_matches("real time, 1401×900 window", frames, grabs, size)
    # the cut is the odd last column: the decoded frame is the grab's left 1400 columns, not a shifted copy
    assert np.abs(frames[0].astype(int) - grabs[0][:, :1400].astype(int)).mean() < MAX_ERROR


def test_deterministic_recording_of_an_odd_sized_panel_matches_the_screen(make_window, qtbot, tiny, tmp_path):
    w = window_of_size(make_window, qtbot, tiny, 1401, 901)
    panel = next(p for p in w.export_targets() if p.width() % 2 or p.height() % 2)
    path = tmp_path / "panel.mp4"
    opts = RecordOptions(str(path), fps=10, target=panel.title, every=9, max_frames=4)
    res, size, frames, grabs = record(qtbot, w, path, opts)
    gh, gw = grabs[0].shape[:2]
    assert (gw % 2 or gh % 2) and size == (gw - gw % 2, gh - gh % 2)
    assert_matches(f"deterministic, {gw}×{gh} panel {panel.title!r}", frames, grabs, size)
    assert w.controller.latest().steps == 9 * 3


def test_a_resize_during_a_recording_keeps_the_frame_size(make_window, qtbot, tiny, tmp_path):
    w = window_of_size(make_window, qtbot, tiny, 1401, 901)
    w.controller.start()
    path = tmp_path / "resized.mp4"

    def resize_twice(rec):
        qtbot.waitUntil(lambda: rec.frames >= 2, timeout=30_000)
        w.resize(1001, 701)  # smaller: centred on black
        qtbot.waitUntil(lambda: rec.frames >= 4, timeout=30_000)
        w.resize(1601, 1001)  # larger: scaled down to fit

    opts = RecordOptions(str(path), fps=20, target="window", max_frames=7)
    res, size, frames, grabs = record(qtbot, w, path, opts, during=resize_twice)
    assert size == (1400, 900)
    shapes = {g.shape[:2] for g in grabs}
    assert (901, 1401) in shapes and (701, 1001) in shapes and (1001, 1601) in shapes
    assert all(f.shape == (900, 1400, 3) for f in frames)
    assert_matches("real time, resized 1401×901 → 1001×701 → 1601×1001", frames, grabs, size)
    small = next(f for f, g in zip(frames, grabs) if g.shape[:2] == (701, 1001))
    assert small[:90].max() < 24 and small[:, :190].max() < 24  # the black border around the smaller window
    assert small[450, 200:1200].max() > 24  # and the window inside it


def test_fit_frame_cuts_odd_sides_scales_larger_and_centres_smaller(qapp):
    rng = np.random.default_rng(0)
    odd = rng.integers(0, 256, (901, 1401, 3), dtype=np.uint8)
    np.testing.assert_array_equal(fit_frame(odd, (1400, 900)), odd[:900, :1400])
    small = np.full((301, 401, 3), 200, np.uint8)
    out = fit_frame(small, (1400, 900))
    assert out.shape == (900, 1400, 3)
    assert out[300:600, 500:900].min() == 200 and out[:300].max() == 0 and out[:, :500].max() == 0
    big = np.full((1800, 2000, 3), 120, np.uint8)  # wider than tall, less so than the video: bars left/right
    out = fit_frame(big, (1400, 900))
    assert out.shape == (900, 1400, 3)
    cols = np.flatnonzero(out[450, :, 0] > 60)
    assert out[:, 700].min() == 120 and 990 <= cols.size <= 1010 and cols[0] > 190


def test_a_recording_stopped_before_its_first_frame_leaves_no_file(make_window, qtbot, tiny, tmp_path):
    w = make_window(tiny)
    w.controller.start()
    path = tmp_path / "none.mp4"
    # deterministic: the first frame waits for the run to pause, so an immediate stop has written nothing
    assert w.tools.start_recording(RecordOptions(str(path), fps=10, target="panels", every=5))
    res = w.tools.recorder.stop()
    assert res.frames == 0 and res.path is None and res.error is None
    assert not path.exists() and not path.with_name("none.mp4.part").exists()
    assert list(tmp_path.glob("none*")) == []
    assert "nothing was recorded" in w.statusBar().currentMessage()
    # real time: the first frame is pushed at the start, so an immediate stop gives a valid 1-frame video
    assert w.tools.start_recording(RecordOptions(str(path), fps=10, target="Filters"))
    res = w.tools.recorder.stop()
    assert res.frames == 1 and res.path == str(path)
    size, frames = decode(path)
    assert size == res.size and len(frames) == 1


def test_an_mp4_sink_with_no_frames_or_a_wrong_size_writes_nothing(tmp_path):
    path = tmp_path / "videos" / "a.mp4"
    with pytest.raises(ValueError, match="even"):
        Mp4Sink(path, 10).open((641, 480))
    sink = Mp4Sink(path, 10)
    sink.open((64, 48))
    with pytest.raises(ValueError, match="64×48"):
        sink.write(np.zeros((48, 65, 3), np.uint8))
    sink.close()
    assert sink.saved is None and list(path.parent.iterdir()) == []


def test_an_ffmpeg_failure_is_shown_in_the_window_and_leaves_no_file(make_window, qtbot, tiny, tmp_path):
    w = make_window(tiny)
    path = tmp_path / "bad.mp4"
    path.write_bytes(b"an older recording")  # a failed recording does not replace it
    sink = Mp4Sink(path, 10, codec="no-such-encoder")
    assert w.tools.start_recording(RecordOptions(str(path), fps=10, target="Filters", max_frames=3), sink)
    qtbot.waitUntil(lambda: not w.tools.recorder.recording, timeout=30_000)
    res = w.tools.recorder.result
    print("the window says:", w.tools.last_error)
    assert res.path is None and "ffmpeg" in res.error and "no-such-encoder" in res.error
    assert w.tools.message_box is not None and w.tools.message_box.isVisible()
    assert "no-such-encoder" in w.tools.last_error and "Nothing was saved" in w.tools.last_error
    assert path.read_bytes() == b"an older recording" and not path.with_name("bad.mp4.part").exists()
    w.tools.message_box.close()
