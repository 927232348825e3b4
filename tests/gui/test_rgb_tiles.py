"""Colour images in the window: a papercifar run on a tiny CIFAR-10 folder draws its first-layer filters
as RGB tiles and the chosen test image in colour; the control panel offers the model and the dataset."""

from __future__ import annotations

import numpy as np

from rso_engine.config import RunConfig
from rso_engine.data.catalogue import CIFAR10_FOLDER, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES
from rso_gui.views.base import image_has_content
from rso_gui.views.tiles import TileLayout

WAIT = 60_000  # ms; generous for a loaded 2-core machine (never a timing assertion)


def write_cifar(folder, n: int = 8):
    """CIFAR-10's binary batches, ``n`` random records each (1 label byte, then the R, G, B planes)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE):
        images = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        labels = rng.integers(0, 10, size=(n, 1), dtype=np.uint8)
        (folder / name).write_bytes(np.concatenate([labels, images], axis=1).tobytes())
    return folder


def test_rgb_tiles_put_the_input_channels_into_the_colours():
    w = np.random.default_rng(1).normal(size=(16, 3, 3, 3)).astype(np.float32)
    lay = TileLayout(w.shape, rgb=True)
    img = lay.image(w, gap=-9.0)
    assert lay.rgb and img.shape == (lay.height, lay.width, 3) and lay.tile_shape == (3, 3)
    assert lay.grid[0] * lay.grid[1] == 16 and lay.grid[0] < lay.grid[1] <= 8  # one tile per filter
    for index in [(0, 0, 0, 0), (5, 2, 1, 2), (15, 1, 2, 0)]:
        r, c = lay.pixel(index)
        assert img[r, c, index[1]] == w[index]
        assert lay.pixel((index[0], 0, *index[2:])) == (r, c)  # a pixel holds the filter's three channels
    assert np.all(img[~lay.mask] == -9.0)
    assert "RGB tiles of 3×3" in lay.describe()
    assert not TileLayout((16, 16, 3, 3), rgb=True).rgb  # only three input channels are a colour


def test_a_papercifar_run_draws_rgb_filters_and_a_colour_image(make_window, qtbot, tmp_path):
    folder = write_cifar(tmp_path / CIFAR10_FOLDER)
    cfg = RunConfig(model="papercifar", dataset="cifar10", data_dir=str(folder), n_train=32, n_test=8,
                    batch_size=4, cycles=1, eval_train_samples=16, bn_calibration_samples=16, sgd_batch_size=8)
    w = make_window(cfg)
    c = w.controller
    assert c.info.model == "papercifar" and c.info.dataset.startswith("cifar10") and c.info.evaluator == "layer-cached"
    models = [w.controls.model.itemData(i) for i in range(w.controls.model.count())]
    datasets = [w.controls.dataset.itemData(i) for i in range(w.controls.dataset.count())]
    assert "papercifar" in models and "cifar10" in datasets
    assert w.controls.model.currentData() == "papercifar" and w.controls.dataset.currentData() == "cifar10"

    qtbot.waitUntil(lambda: w.filters.has_content() and w.filters._digit is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: w.filters._digit[0].image is not None, timeout=WAIT)
    layout, item, *_ = w.filters._filters["conv1.weight"]
    assert layout.rgb
    tiles = item.image
    assert tiles.ndim == 3 and tiles.shape[2] == 3  # an RGB image, not one channel through a colour map
    weights = c.latest().params["conv1.weight"]
    r, col = layout.pixel((4, 0, 1, 1))
    np.testing.assert_array_equal(tiles[r, col], weights[4, :, 1, 1])
    assert not np.allclose(tiles[..., 0], tiles[..., 1])  # the channels differ: colour
    assert not w.filters._filters["conv2.weight"][0].rgb  # deeper filters stay one tile per input channel

    digit = w.filters._digit[0].image
    snap = c.latest()
    assert digit.shape == (32, 32, 3)
    i = w.filters.digit_box.value() % c.info.n_test
    want = np.asarray(c.runner.rso.x_test[:, i]).transpose(1, 2, 0)
    np.testing.assert_allclose(digit, want, rtol=1e-6)
    assert snap.digit.shape == (32, 32, 3)
    # the feature maps: the output of every block whose batch norm feeds a residual link, and of the last
    assert [(name, m.shape) for name, m in snap.feature_maps] == [
        ("bn1", (16, 32, 32)), ("bn3", (16, 16, 16)), ("bn5", (32, 8, 8)), ("bn7", (32, 8, 8)), ("bn9", (32, 8, 8))]
    qtbot.wait(150)  # a couple of frames
    assert image_has_content(w.filters.grab().toImage(), min_colors=6)

    diagram = w.weights.diagram  # a residual block is outlined while a layer inside it is swept
    kinds = {la.name: la.kind for la in c.info.layers}
    for current, boxes in (("conv4", ["res5"]), ("proj5", ["res5"]), ("conv9", ["res9", "bn9"]),
                           ("conv3", ["res3", "bn3"]), ("fc", ["fc"])):  # fmt: skip
        diagram.set_state(current, 0.5)
        assert [b for b in kinds if diagram.is_current(b, kinds[b])] == boxes, current
    assert image_has_content(diagram.grab().toImage(), min_colors=4)


def test_pairing_papercifar_with_mnist_is_reported_in_one_line(make_window, qtbot, tiny):
    w = make_window()
    w.controller.apply_config(tiny.replace(model="papercifar"))
    qtbot.waitUntil(lambda: not w.banner.isHidden(), timeout=WAIT)
    text = w.banner_text.text()
    assert "papercifar" in text and "cannot take the 1×28×28 images of mnist-sample" in text
