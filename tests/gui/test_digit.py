"""Draw a digit: MNIST-style preprocessing of known strokes, and the probabilities the engine thread computes
for the drawing (they sum to 1 and are the model's own forward pass on the preprocessed image)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rso_engine.models import build_model
from rso_gui.controller import Controller
from rso_gui.draw_digit import install_digit
from rso_gui.live.digits import (
    BOX,
    FIELD,
    PROBE_KEY,
    DigitReadout,
    center_of_mass,
    mnist_preprocess,
    normalise,
    resize_area,
    softmax,
)
from rso_gui.views.digit import CANVAS, DigitPanel

WAIT = 60_000


def extent(img, axis):
    """Rows (axis=1) or columns (axis=0) holding ink."""
    idx = np.flatnonzero(img.sum(axis=axis) > 1e-6)
    return idx[0], idx[-1]


def assert_centred(img):
    cy, cx = center_of_mass(img)
    assert 13.5 <= cy < 14.5 and 13.5 <= cx < 14.5, (cy, cx)  # (14, 14), whole-pixel shifts: ±0.5


def test_a_vertical_bar_ends_up_centred_and_20_px_tall():
    a = np.zeros((280, 280), np.uint8)
    a[30:230, 200:220] = 255  # tall, thin, far right
    img = mnist_preprocess(a)
    assert img.shape == (FIELD, FIELD) and img.dtype == np.float32
    top, bottom = extent(img, 1)
    assert bottom - top + 1 == BOX and (top, bottom) == (4, 23)  # 4 empty rows above and below
    left, right = extent(img, 0)
    assert right - left + 1 == 2  # 20 px wide in 200 → 2 px
    assert_centred(img)
    assert img.max() == pytest.approx(1.0)


def test_a_wide_shape_is_20_px_wide_and_an_off_balance_one_centred_by_mass():
    a = np.zeros((100, 300))
    a[40:50, 0:300] = 1.0
    img = mnist_preprocess(a)
    left, right = extent(img, 0)
    assert right - left + 1 == BOX
    assert_centred(img)
    c = np.zeros((200, 200))  # a "C" open to the right: heavy on the left
    c[:, 0:20] = c[0:20, :] = c[180:200, :] = 1.0
    img = mnist_preprocess(c)
    assert_centred(img)
    left, right = extent(img, 0)
    assert (left, right) == (7, 26)  # moved right of the box's centred place (4): the mass is centred
    ell = np.zeros((200, 200))  # an L is too off-balance: centring its mass would cut ink off, so it
    ell[:, 0:20] = ell[180:200, :] = 1.0  # stops at the field's edge with every pixel kept
    img = mnist_preprocess(ell)
    assert extent(img, 0) == (8, 27) and img.sum() == pytest.approx(resize_area(ell, 20, 20).sum(), rel=1e-5)


def test_area_resize_keeps_mass_and_empty_drawings_stay_empty():
    rng = np.random.default_rng(0)
    a = rng.random((57, 31))
    small = resize_area(a, 20, 11)
    assert small.sum() * (57 * 31) / (20 * 11) == pytest.approx(a.sum())
    assert not mnist_preprocess(np.zeros((50, 50))).any()
    x = normalise(np.ones((28, 28)), (0.25,), 0.5)
    assert x.shape == (1, 1, 28, 28) and np.allclose(x, 1.5)
    with pytest.raises(ValueError):
        mnist_preprocess(np.zeros((3, 3, 3)))


def test_strokes_on_the_canvas_are_preprocessed(qtbot):
    panel = DigitPanel()
    qtbot.addWidget(panel)
    panel.canvas.add_stroke([(140, 40), (140, 240)])
    raster = panel.canvas.drawing()
    assert raster.shape == (CANVAS, CANVAS) and raster.max() == 255
    img = mnist_preprocess(raster)
    top, bottom = extent(img, 1)
    assert bottom - top + 1 == BOX
    assert_centred(img)
    version = panel.probe.version
    panel.canvas.undo()
    assert panel.probe.version == version + 1 and not panel.canvas.strokes


def wait_readout(qtbot, controller, panel, version):
    def ready():
        snap = controller.latest()
        r = snap.extra.get(PROBE_KEY) if snap is not None else None
        return isinstance(r, DigitReadout) and r.version == version

    qtbot.waitUntil(ready, timeout=WAIT)
    snap = controller.latest()
    panel.update_view(snap)
    return snap, snap.extra[PROBE_KEY]


def forward(config, params, x):
    model = build_model(config.model, seed=config.seed)
    model.set_params(params)
    return softmax(np.asarray(model.logits(model.to_input(x)))[0])


def test_probabilities_come_from_the_engine_and_match_the_model(qtbot, tiny):
    controller = Controller(tiny, sgd=True)
    panel = DigitPanel()
    qtbot.addWidget(panel)
    install_digit(SimpleNamespace(digit=panel, controller=controller))
    controller.reset()
    try:
        qtbot.waitUntil(lambda: controller.info is not None and controller.latest() is not None, timeout=WAIT)
        panel.set_info(controller.info)
        panel.canvas.add_stroke([(140, 40), (140, 240)])  # a "1"
        snap, r = wait_readout(qtbot, controller, panel, panel.probe.version)
        assert r.source == "your drawing" and r.steps == snap.steps
        ds = controller.runner.rso.dataset
        x = normalise(mnist_preprocess(panel.canvas.drawing()), ds.channel_mean, ds.std)
        for p in (r.rso, r.sgd):
            assert p.shape == (10,) and p.sum() == pytest.approx(1.0) and (p >= 0).all()
        np.testing.assert_allclose(r.rso, forward(tiny, snap.params, x), rtol=1e-5, atol=1e-7)
        assert "RSO:" in panel.verdict.text() and "SGD:" in panel.verdict.text()

        controller.step_weight()  # live: a new snapshot, new weights, the bars follow
        qtbot.waitUntil(lambda: controller.latest().steps == 1 and controller.state == "paused", timeout=WAIT)
        snap, r = wait_readout(qtbot, controller, panel, panel.probe.version)
        assert r.steps == 1
        np.testing.assert_allclose(r.rso, forward(tiny, snap.params, x), rtol=1e-5, atol=1e-7)

        panel.use_test_image(3)  # a test image instead of a drawing
        snap, r = wait_readout(qtbot, controller, panel, panel.probe.version)
        assert r.source.startswith("test image 3")
        np.testing.assert_allclose(r.rso, forward(tiny, snap.params, ds.test_x[3:4]), rtol=1e-5, atol=1e-7)

        panel.canvas.clear()
        panel.canvas.add_stroke([(100, 100)])
        panel.canvas.clear()  # nothing drawn: no bars, a hint
        snap, r = wait_readout(qtbot, controller, panel, panel.probe.version)
        assert r.rso is None and r.image is None and panel.verdict.text() == "draw a digit"
    finally:
        controller.shutdown()
