"""Mini-batches of training indices, drawn reproducibly and independently of how they are requested."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import state as check


class BatchStream:
    """An endless stream of mini-batches of ``batch_size`` distinct indices from ``range(n)``.

    Batches are consecutive slices of random permutations of the training set (a remainder shorter
    than a batch is dropped and a new permutation drawn), so a batch never repeats an index and every
    image is seen equally often. ``take(k)`` returns the next k batches: taking 3 then 5 gives the same
    batches as taking 8, so chunked sweeps and resumed runs see the same data.
    """

    def __init__(self, n: int, batch_size: int, rng: np.random.Generator):
        if batch_size > n:
            raise ValueError(f"batch size {batch_size} is larger than the {n} training images")
        self.n, self.batch_size, self.rng = n, batch_size, rng
        self.perm = np.empty(0, np.int64)
        self.pos = 0

    def take(self, k: int) -> np.ndarray:
        """The next ``k`` batches as an int64 array of shape (k, batch_size)."""
        B = self.batch_size
        out = np.empty((k, B), np.int64)
        filled = 0
        per_perm = self.n // B
        while filled < k:
            left = (len(self.perm) - self.pos) // B
            if left == 0:
                self.perm = self.rng.permutation(self.n)
                self.pos = 0
                left = per_perm
            m = min(left, k - filled)
            out[filled : filled + m] = self.perm[self.pos : self.pos + m * B].reshape(m, B)
            self.pos += m * B
            filled += m
        return out

    def state(self) -> dict[str, Any]:
        """Everything needed to continue the stream exactly (JSON-able apart from ``perm``)."""
        return {"rng": self.rng.bit_generator.state, "pos": self.pos, "perm": self.perm.copy()}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state` (read from a file: checked first, a :class:`StateError` if it
        does not fit: ``perm`` must be empty or an order of ``range(n)``, ``pos`` inside it)."""
        state = check.mapping(state, "the batch stream")
        perm = check.permutation(state.get("perm"), "rso/perm", self.n, allow_empty=True)
        pos = check.count(state.get("pos"), "the batch stream's position", high=len(perm))
        check.rng_state(self.rng, state.get("rng"), "the batch stream's random state")
        self.pos, self.perm = pos, perm
