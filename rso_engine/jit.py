"""Compiled inner sweeps for the CPU (Numba), behind :class:`NumbaIncrementalEvaluator`.

The output layer's sweep is a loop of tiny steps — for each weight: three candidate values, one ``exp``
per sample and candidate, a pick, and on a change one row update of the cached logits — so in Python
its cost is interpreter overhead. :func:`dense_sweep` runs a whole chunk of weights in one call.

The loss of a candidate that changes logit column ``i`` of sample ``s`` to ``z_i + a``::

    loss_s = m_s + log(R_s + exp(z_i + a - m_s)) - z_{s,y_s}

where ``m_s`` is the largest of the other logits and ``R_s = Σ_{k≠i} exp(z_k - m_s)``. ``m_s``, ``R_s``
and ``z_{s,y_s}`` (for ``y_s ≠ i``) do not change while row ``i`` of the weight matrix is swept (only
column ``i`` of the logits moves), so they are computed once per sample and row ("session") and reused.
The batch's sum of ``log`` terms is taken as the log of a running product (rescaled to stay finite),
which leaves one ``exp`` per sample and candidate. This is the same quantity the reference computes
(``log Σ exp(z - max) + max``) up to float64 rounding.

Numba is optional: :func:`numba_unavailable_reason` says why it cannot be used, and the pure NumPy
evaluator is used instead.
"""

from __future__ import annotations

import math

import numpy as np

from .evaluators import SweepResult
from .incremental import DenseStore, IncrementalEvaluator, incremental_unavailable
from .models import Model

try:  # numba is a runtime dependency, but the engine must work without it
    import numba
    from numba import njit

    _NUMBA_ERROR = ""
except Exception as exc:  # pragma: no cover - exercised only where numba is missing
    numba = None
    _NUMBA_ERROR = f"numba does not import ({exc.__class__.__name__}: {exc})"

    def njit(*args, **kwargs):  # a stand-in so the kernels below still define
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


def numba_unavailable_reason() -> str:
    return _NUMBA_ERROR


@njit(cache=True, nogil=True, inline="always")
def _log_acc(p, a, R, t):
    """Add log(R + exp(t)) to the pair (running product p, accumulated log a)."""
    if t > 600.0:  # exp(t) would overflow: log(R + e^t) = t + log(1 + R e^-t)
        return p, a + t + math.log1p(R * math.exp(-t))
    v = R + math.exp(t)
    if v > 1e50:
        return p, a + math.log(v)
    p = p * v
    if p > 1e250:
        return 1.0, a + math.log(p)
    return p, a


@njit(cache=True, nogil=True)
def dense_sweep(wflat, fin, is_bias, f32, hT, zT, lab, flat, deltas, rows, sf,
                sess, stamp, Rr, Mr, Qr, losses, choices, old, new):  # fmt: skip
    """Sweep weights ``flat`` of the output layer (see the module docstring); mirrors
    :meth:`IncrementalEvaluator.dense_kernel` exactly, choice for choice."""
    K = flat.shape[0]
    shared = rows.shape[0] == 1
    B = rows.shape[1]
    C = zT.shape[0]
    S = zT.shape[1]
    for k in range(K):
        f = flat[k]
        if is_bias:
            i = f
            j = -1
        else:
            i = f // fin
            j = f - i * fin
        if sess[1] != i:
            sess[0] += 1
            sess[1] = i
        sid = sess[0]
        w = np.float64(wflat[f])
        dl = deltas[k]
        c0 = w + dl
        c1 = w * sf
        c2 = w - dl
        if f32:
            c0 = np.float64(np.float32(c0))
            c1 = np.float64(np.float32(c1))
            c2 = np.float64(np.float32(c2))
        d0 = c0 - w
        d1 = c1 - w
        d2 = c2 - w
        rk = 0 if shared else k
        base = 0.0
        labx = 0.0
        p0 = 1.0
        p1 = 1.0
        p2 = 1.0
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        for b in range(B):
            s = rows[rk, b]
            y = lab[s]
            if stamp[s] != sid:
                m = -np.inf
                for c in range(C):
                    if c != i and zT[c, s] > m:
                        m = zT[c, s]
                r = 0.0
                for c in range(C):
                    if c != i:
                        r += math.exp(zT[c, s] - m)
                Rr[s] = r
                Mr[s] = m
                Qr[s] = m if y == i else m - zT[y, s]
                stamp[s] = sid
            x = 1.0 if j < 0 else np.float64(hT[j, s])
            zi = zT[i, s]
            t = zi - Mr[s]
            R = Rr[s]
            base += Qr[s]
            if y == i:
                base -= zi
                labx += x
            p0, a0 = _log_acc(p0, a0, R, t + d0 * x)
            p1, a1 = _log_acc(p1, a1, R, t + d1 * x)
            p2, a2 = _log_acc(p2, a2, R, t + d2 * x)
        l0 = base + (a0 + math.log(p0)) - d0 * labx
        l1 = base + (a1 + math.log(p1)) - d1 * labx
        l2 = base + (a2 + math.log(p2)) - d2 * labx
        losses[k, 0] = l0
        losses[k, 1] = l1
        losses[k, 2] = l2
        # choose(): NaN never wins, ties keep the weight, plus beats minus on a tie
        lp = np.inf if l0 != l0 else l0
        ls = np.inf if l1 != l1 else l1
        lm = np.inf if l2 != l2 else l2
        if ls <= lp and ls <= lm:
            choices[k] = 0
            v = c1
        elif lp <= lm:
            choices[k] = 1
            v = c0
        else:
            choices[k] = -1
            v = c2
        wflat[f] = v
        old[k] = w
        new[k] = v
        dd = v - w
        if dd != 0.0:
            if j < 0:
                for s in range(S):
                    zT[i, s] += dd
            else:
                for s in range(S):
                    zT[i, s] += dd * np.float64(hT[j, s])


class NumbaIncrementalEvaluator(IncrementalEvaluator):
    """:class:`IncrementalEvaluator` with the output layer's sweep compiled by Numba."""

    name = "incremental-numba"
    description = "incremental evaluator, output-layer sweep compiled with Numba (CPU)"
    engine = "numba"

    def dense_kernel(self, store: DenseStore, view, fin, is_bias, flat, deltas, rows, sf) -> SweepResult:
        aux = store.aux
        if "stamp" not in aux:
            S = store.size
            aux["sess"] = np.array([0, -1], np.int64)
            aux["stamp"] = np.full(S, -1, np.int64)
            aux["R"] = np.empty(S)
            aux["M"] = np.empty(S)
            aux["Q"] = np.empty(S)
        K = len(flat)
        losses = np.empty((K, 3))
        choices = np.empty(K, np.int8)
        old = np.empty(K)
        new = np.empty(K)
        dense_sweep(
            view,
            int(fin),
            bool(is_bias),
            view.dtype == np.float32,
            store.hT,
            store.zT,
            store.lab,
            np.ascontiguousarray(flat, np.int64),
            np.ascontiguousarray(deltas, np.float64),
            np.ascontiguousarray(rows, np.int64),
            float(sf),
            aux["sess"],
            aux["stamp"],
            aux["R"],
            aux["M"],
            aux["Q"],
            losses,
            choices,
            old,
            new,
        )
        return SweepResult(losses, choices, old, new)


def numba_evaluator_unavailable(model: Model) -> str:
    if _NUMBA_ERROR:
        return _NUMBA_ERROR
    if model.backend.name != "numpy":
        return "the model lives on the GPU (the Numba kernels are for NumPy arrays)"
    return incremental_unavailable(model)
