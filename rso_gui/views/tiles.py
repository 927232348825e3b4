"""Laying weight tensors out as 2-D images of tiles, with the pixel of every weight known.

A conv weight (out, in, k, k) becomes a grid of k×k tiles, one column per output filter and one row per
input channel (a single input channel wraps the filters into a near-square grid). A dense weight whose
input is a flattened (C, H, W) activation becomes one H×W tile per (output neuron, channel); other
dense weights a plain matrix (inputs down, outputs across); 1-D tensors (biases, BN γ/β) one row.
With ``rgb=True`` a conv weight with 3 input channels (a first layer on colour images) becomes one k×k
colour tile per output filter, its input channels as the red, green and blue of each pixel, wrapped into a
near-square grid like a single channel's; :meth:`TileLayout.image` then returns (height, width, 3).
Tiles are separated by a one-pixel gap holding 0, which the diverging colour maps draw in the neutral
(background) colour. (Not NaN: an image with NaN needs an alpha channel, and Qt scales such images several
times slower, which matters at 30 frames a second.)
"""

from __future__ import annotations

import math

import numpy as np


class TileLayout:
    """Where each element of a tensor of ``shape`` goes in a 2-D image (see the module docstring)."""

    def __init__(self, shape: tuple[int, ...], spatial: tuple[int, ...] | None = None, rgb: bool = False):
        self.shape = tuple(int(s) for s in shape)
        size = math.prod(self.shape)
        self.rgb = rgb and len(self.shape) == 4 and self.shape[1] == 3
        if self.rgb:
            o, c, h, w = self.shape[0], 1, self.shape[2], self.shape[3]
        elif len(self.shape) == 4:
            o, c, h, w = self.shape
        elif len(self.shape) == 2 and spatial is not None and len(spatial) == 3:
            o = self.shape[0]
            c, h, w = spatial
            if c * h * w != self.shape[1]:
                c, h, w = self.shape[1], 1, 1
        elif len(self.shape) == 2:
            o, c, h, w = self.shape[0], self.shape[1], 1, 1
        else:
            o, c, h, w = size, 1, 1, 1
        self.tile_shape = (h, w)
        flat = np.arange(size)
        if self.rgb:  # every element: its filter's tile, its pixel, and its input channel as the colour
            oi, self.channels, hi, wi = np.unravel_index(flat, self.shape)
            ci = np.zeros_like(oi)
        else:
            oi, ci, hi, wi = np.unravel_index(flat, (o, c, h, w))
        gap = 1 if h * w > 1 else 0
        if c == 1 and o > 1 and h * w > 1:
            cols = _columns(o)
            grid_r, grid_c = oi // cols, oi % cols
            n_rows, n_cols = -(-o // cols), cols
        elif h * w == 1 and len(self.shape) == 2:
            grid_r, grid_c = ci, oi  # plain matrix: inputs down, outputs across
            n_rows, n_cols = c, o
        else:
            grid_r, grid_c = ci, oi
            n_rows, n_cols = c, o
        self.grid = (n_rows, n_cols)
        self.rows = (grid_r * (h + gap) + hi).astype(np.int64)
        self.cols = (grid_c * (w + gap) + wi).astype(np.int64)
        self.height = n_rows * (h + gap) - gap
        self.width = n_cols * (w + gap) - gap
        self._buf = np.zeros((self.height, self.width, 3) if self.rgb else (self.height, self.width), np.float32)
        self.mask = np.zeros((self.height, self.width), bool)  # True where a weight is drawn
        self.mask[self.rows, self.cols] = True

    def image(self, tensor: np.ndarray, gap: float = 0.0) -> np.ndarray:
        """The tensor as a (height, width) float32 image, (height, width, 3) in RGB mode; ``gap`` between
        tiles (0 by default). Reuses one buffer."""
        values = np.asarray(tensor, dtype=np.float32).reshape(-1)
        self._buf[~self.mask] = gap
        if self.rgb:
            self._buf[self.rows, self.cols, self.channels] = values
        else:
            self._buf[self.rows, self.cols] = values
        return self._buf

    def pixel(self, index: tuple[int, ...]) -> tuple[int, int]:
        """(row, column) of the element at ``index``."""
        flat = int(np.ravel_multi_index(tuple(int(i) for i in index), self.shape))
        return int(self.rows[flat]), int(self.cols[flat])

    def tile_origin(self, index: tuple[int, ...]) -> tuple[int, int]:
        """(row, column) of the top-left pixel of the tile holding ``index``."""
        r, c = self.pixel(index)
        h, w = self.tile_shape
        gap = 1 if h * w > 1 else 0
        return r - r % (h + gap), c - c % (w + gap)

    def describe(self) -> str:
        n_rows, n_cols = self.grid
        h, w = self.tile_shape
        if h * w == 1:
            return f"{self.height}×{self.width}"
        return f"{n_rows}×{n_cols} {'RGB ' if self.rgb else ''}tiles of {h}×{w}"


def _columns(n: int) -> int:
    """Columns for n tiles in a grid: a divisor of n near √(2n) (a little wider than tall), else √(2n)."""
    target = math.sqrt(2.0 * n)
    divisors = [c for c in range(1, n + 1) if n % c == 0 and c >= math.sqrt(n)]
    best = min(divisors, key=lambda c: abs(math.log(c / target)))
    if abs(math.log(best / target)) < math.log(2.5):
        return best
    return max(1, min(n, math.ceil(target)))
