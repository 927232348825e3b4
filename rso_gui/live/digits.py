"""Draw a digit, the Qt-free half: MNIST-style preprocessing of a drawing, and the class probabilities of
the RSO and SGD models on it, computed on the engine's thread.

MNIST's own recipe (LeCun et al.): the digit's bounding box is scaled, aspect kept, so that its longer side
is 20 pixels (anti-aliased: each output pixel is the area-weighted mean of the input pixels it covers),
then placed in a 28×28 field, shifted by whole pixels, so that its centre of mass falls on (14, 14) in pixel
indices, within half a pixel (a shape too lopsided for that stops at the field's edge: no ink is cut off);
finally the dataset's own normalisation, ``(x − channel_mean) / std``, as every image the models see.

:class:`DigitProbe` is what the window hands the engine loop (``Runner.publish_extras``): the engine thread
calls it at every snapshot it publishes, so the bars follow training live and always belong to the weights
of that snapshot; the GUI thread only sets its input (under a lock) and never touches a model.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from rso_engine.backend import to_numpy

FIELD = 28  # MNIST's image side
BOX = 20  # the side the digit's bounding box is scaled to
CENTRE = FIELD / 2.0  # where the centre of mass goes, in pixel indices: MNIST's (14, 14)
INK = 0.05  # pixels above this (of 1) count as ink for the bounding box
PROBE_KEY = "digit_probs"  # the key of Snapshot.extra the readout travels under


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in): how much of input pixel j output pixel i covers, rows summing to 1."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def resize_area(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``img`` (H, W) resampled to (height, width) by area averaging (exact box filter, separable)."""
    img = np.asarray(img, dtype=np.float64)
    return _area_weights(img.shape[0], height) @ img @ _area_weights(img.shape[1], width).T


def center_of_mass(img: np.ndarray) -> tuple[float, float]:
    """(row, column) of the intensity-weighted mean of pixel centres' indices (pixel i spans i−½ … i+½)."""
    img = np.asarray(img, dtype=np.float64)
    total = img.sum()
    if total <= 0:
        return (img.shape[0] - 1) / 2.0, (img.shape[1] - 1) / 2.0
    rows, cols = np.indices(img.shape)
    return float((rows * img).sum() / total), float((cols * img).sum() / total)


def mnist_preprocess(drawing: np.ndarray) -> np.ndarray:
    """A drawing (H, W) of any size, ink high (uint8 0–255 or float 0–1), as MNIST's 28×28 in [0, 1]:
    bounding box scaled to 20 px on its longer side, centre of mass moved to :data:`CENTRE`. An empty
    drawing gives an empty image."""
    a = np.asarray(drawing, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"a drawing is a 2-D array (got shape {a.shape})")
    if a.size and a.max() > 1.0:
        a = a / 255.0
    a = np.clip(a, 0.0, 1.0)
    out = np.zeros((FIELD, FIELD), np.float64)
    rows = np.flatnonzero((a > INK).any(axis=1))
    cols = np.flatnonzero((a > INK).any(axis=0))
    if rows.size == 0:
        return out.astype(np.float32)
    box = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = box.shape
    scale = BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.clip(resize_area(box, nh, nw), 0.0, 1.0)
    cy, cx = center_of_mass(small)
    # whole-pixel shifts (strokes stay crisp), ties up/left: the centre of mass lands in [13.5, 14.5), and a
    # symmetric shape (a bar) exactly in the middle of the field
    top = int(np.clip(np.ceil(round(CENTRE - cy - 0.5, 6)), 0, FIELD - nh))
    left = int(np.clip(np.ceil(round(CENTRE - cx - 0.5, 6)), 0, FIELD - nw))
    out[top : top + nh, left : left + nw] = small
    return out.astype(np.float32)


def normalise(image01: np.ndarray, mean: tuple[float, ...] | float, std: float) -> np.ndarray:
    """A (28, 28) image in [0, 1] as a model input (1, 1, 28, 28): ``(x − mean) / std``, the dataset's own rule."""
    m = float(mean[0]) if isinstance(mean, (tuple, list)) else float(mean)
    return ((np.asarray(image01, np.float32) - m) / float(std)).reshape(1, 1, *np.shape(image01))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def probabilities(model, x_nchw: np.ndarray) -> np.ndarray:
    """Class probabilities (classes,) of ``model`` (an rso_engine Model) on one normalised image (1, C, H, W),
    in evaluation mode (the batch norm's population statistics, where it has them)."""
    train = not model.bn_layers() or not model.buffers
    logits = model.forward(model.to_input(x_nchw), train=train, P=model.all_tensors())
    return softmax(np.array(to_numpy(logits), dtype=np.float64)[0])


def drawable(dataset) -> bool:
    """Can a drawing be fed to models trained on ``dataset`` (one channel, 28×28)?"""
    return tuple(dataset.image_shape) == (1, FIELD, FIELD)


@dataclass(frozen=True)
class DigitReadout:
    """What the digit panel draws: the input (28×28 in [0, 1]), whose it is, and both models' probabilities."""

    version: int  # DigitProbe.version of the input
    image: np.ndarray | None  # (28, 28) in [0, 1]; None when nothing is drawn
    source: str  # "drawing", "test image 12 (label 3)", or why there is nothing
    steps: int  # RSO weights tried when computed
    rso: np.ndarray | None  # (classes,)
    sgd: np.ndarray | None


class DigitProbe:
    """The input to classify, set from any thread: a drawing (28×28 in [0, 1], already preprocessed) or a
    test image's index; called on the engine thread with the runner, it returns a :class:`DigitReadout`."""

    def __init__(self):
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._test: int | None = None
        self.version = 0

    def set_drawing(self, image01: np.ndarray | None) -> int:
        with self._lock:
            self._image = None if image01 is None else np.array(image01, np.float32)
            self._test = None
            self.version += 1
            return self.version

    def set_test_image(self, index: int) -> int:
        with self._lock:
            self._image, self._test = None, int(index)
            self.version += 1
            return self.version

    def __call__(self, runner: Any) -> DigitReadout:
        with self._lock:
            image, test, version = self._image, self._test, self.version
        rso, sgd = runner.rso, runner.sgd
        ds = rso.dataset
        if not drawable(ds):
            return DigitReadout(version, None, f"drawing needs 28×28 grey images; {ds.name} has "
                                f"{'×'.join(map(str, ds.image_shape))}", rso.steps, None, None)  # fmt: skip
        if test is not None:
            n = int(ds.test_x.shape[0])
            i = test % max(n, 1)
            x = np.asarray(ds.test_x[i : i + 1], np.float32)
            image = (x[0, 0] * float(ds.std) + float(ds.channel_mean[0])).clip(0.0, 1.0)
            source = f"test image {i} (label {ds.classes[int(ds.test_y[i])]})"
        elif image is None:
            return DigitReadout(version, None, "draw a digit", rso.steps, None, None)
        else:
            x = normalise(image, ds.channel_mean, ds.std)
            source = "your drawing"
        p_rso = probabilities(rso.model, x)
        p_sgd = probabilities(sgd.model, x) if sgd is not None else None
        return DigitReadout(version, image, source, rso.steps, p_rso, p_sgd)


__all__ = [
    "BOX",
    "FIELD",
    "PROBE_KEY",
    "DigitProbe",
    "DigitReadout",
    "center_of_mass",
    "drawable",
    "mnist_preprocess",
    "normalise",
    "probabilities",
    "resize_area",
    "softmax",
]
