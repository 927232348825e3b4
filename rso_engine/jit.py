"""Compiled inner sweeps for the CPU (Numba), behind :class:`NumbaIncrementalEvaluator`.

The output layer's sweep is a loop of tiny steps — for each weight: three candidate values, one ``exp``
per sample and candidate, a pick, and on a change an update of the cached logits — so in Python its
cost is interpreter overhead. :func:`dense_sweep` runs a whole chunk of weights in one call.

The loss of a candidate that changes logit column ``i`` of sample ``s`` to ``z_i + a``::

    loss_s = M_s + log(R_s + exp(z_i + a - M_s)) - z_{s,y_s},   R_s = Σ_{k≠i} exp(z_k - M_s)

with a per-sample shift ``M_s`` (the largest logit when the sample's record was made, renewed when the
logits drift far from it). Each sample's record keeps ``exp(z_k - M_s)`` for every class, so ``R_s`` is
a sum of the other rows' entries; the entry of row ``i`` is refreshed, one ``exp`` per sample, when the
sweep leaves row ``i``. The batch's sum of ``log`` terms is taken as the log of a running product
(rescaled to stay finite), which leaves one ``exp`` per sample and candidate. This is the same quantity
the reference computes (``log Σ exp(z - max) + max``) up to float64 rounding.

Keeping the training set's logits exact is what costs most: an accepted change of ``w[i, j]`` moves
logit ``i`` of every cached sample by ``Δ·h[s, j]``. Accepted changes of one block of ``BLOCK`` columns
are therefore collected and applied together when the sweep leaves the block (samples of the batch add
the pending ones on the fly), reading that block of the layer's input once rather than one column (and
the logit row) per change; what is left is about one read of the layer's input per output row, the
bound discussed in ``docs/performance.md``.

Numba is optional: :func:`numba_unavailable_reason` says why it cannot be used, and the pure NumPy
evaluator is used instead.
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from .evaluators import SweepResult
from .incremental import DenseStore, IncrementalEvaluator, incremental_unavailable
from .layers import BN_EPS, AvgPool2d, BatchNorm2d, Conv2d, GlobalAvgPool, MaxPool2d, ReLU
from .models import Model
from .parallel import for_each

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
    if v == 0.0:  # R = 0 and e^t underflowed: log(R + e^t) = t
        return p, a + t
    if v > 1e50 or v < 1e-50:
        return p, a + math.log(v)
    p = p * v
    if p > 1e250 or p < 1e-250:
        return 1.0, a + math.log(p)
    return p, a


#: columns of the output layer's input per lazily applied block (16 float32 = one 64-byte cache line)
BLOCK = 16
#: a sample's shift M is renewed when its largest exp(z - M) leaves [e^-LIMIT, e^LIMIT]
_SHIFT_LIMIT = 40.0


@njit(cache=True, nogil=True)
def collects_changes(B, S):
    """Whether accepted changes are collected per block (batches of fewer than S/BLOCK samples) rather
    than applied at once: with larger batches the on-the-fly additions would cost more than they save."""
    return B * BLOCK < S


@njit(cache=True, nogil=True)
def dense_records(zT, lab, rec):
    """Each sample's record for :func:`dense_sweep`: rec[s, :C] = exp(z[s] − M_s) with the shift M_s =
    max z[s] in rec[s, C], and the label's logit z[s, y_s] in rec[s, C + 1]."""
    C, S = zT.shape
    for s in range(S):
        _reshift(zT, lab, rec, s)


@njit(cache=True, nogil=True)
def _reshift(zT, lab, rec, s):
    C = zT.shape[0]
    m = -np.inf
    for c in range(C):
        if zT[c, s] > m:
            m = zT[c, s]
    for c in range(C):
        rec[s, c] = math.exp(zT[c, s] - m)
    rec[s, C] = m
    rec[s, C + 1] = zT[lab[s], s]


@njit(cache=True, nogil=True)
def _finish_row(zT, lab, rec, i):
    """Row ``i``'s logits are final (its sweep moved on): bring column i of the records up to date."""
    C, S = zT.shape
    hi = math.exp(_SHIFT_LIMIT)
    lo = math.exp(-_SHIFT_LIMIT)
    for s in range(S):
        e = math.exp(zT[i, s] - rec[s, C])
        rec[s, i] = e
        if lab[s] == i:
            rec[s, C + 1] = zT[i, s]
        top = e
        for c in range(C):
            if rec[s, c] > top:
                top = rec[s, c]
        if not (lo <= top <= hi):  # keep every exp of this sample far from over/underflow
            _reshift(zT, lab, rec, s)


@njit(cache=True, nogil=True, fastmath={"contract"})
def _axpy(z, a, h):
    for s in range(z.shape[0]):
        z[s] += a * np.float64(h[s])


@njit(cache=True, nogil=True)
def _start_row(rec, lab, i, sr):
    """Each sample's numbers for a sweep of row ``i``: sr[s] = [R_s, M_s, M_s − z_{s,y_s}, y_s == i]
    (what does not move while row ``i`` is swept), one compact record per sample."""
    S = rec.shape[0]
    C = rec.shape[1] - 2
    for s in range(S):
        R = 0.0
        for c in range(C):
            if c != i:
                R += rec[s, c]
        sr[s, 0] = R
        sr[s, 1] = rec[s, C]
        sr[s, 2] = rec[s, C] - rec[s, C + 1]
        sr[s, 3] = 1.0 if lab[s] == i else 0.0


@njit(cache=True, nogil=True, fastmath={"contract", "reassoc"})
def _block_dot(pend, hb, s):
    """Σ_q pend[q]·h[s, block column q]: the pending (accepted, not yet applied) changes of one block."""
    acc = 0.0
    for q in range(pend.shape[0]):
        acc += pend[q] * np.float64(hb[s, q])
    return acc


@njit(cache=True, nogil=True)
def _flush(zT, hT, hB, st, pend):
    """Apply the pending block of accepted changes to its row of the cached logits, for every sample:
    with a few changes one pass over each changed column of ``hT`` (one per change), with many one pass
    over the block of ``hB`` (the cost of BLOCK/2 columns, whatever the count)."""
    i, blk = st[1], st[2]
    row = zT[i]
    if 2 * st[3] < BLOCK:
        for q in range(BLOCK):
            if pend[q] != 0.0:
                _axpy(row, pend[q], hT[blk * BLOCK + q])
    else:
        hb = hB[blk]
        for s in range(row.shape[0]):
            row[s] += _block_dot(pend, hb, s)
    pend[:] = 0.0
    st[3] = 0


@njit(cache=True, nogil=True)
def dense_sweep(wflat, fin, is_bias, f32, hT, hB, zT, lab, rec, sr, st, pend, flat, deltas, rows, sf, xs, ts, Rs,
                losses, choices, old, new):  # fmt: skip
    """Sweep weights ``flat`` of the output layer (see the module docstring), choice for choice the
    same as :meth:`IncrementalEvaluator.dense_kernel`.

    ``hT`` (F, S) is the layer's input and ``hB`` (F/BLOCK, S, BLOCK) the same in column blocks; ``zT``
    (C, S) the cached logits; ``rec`` the samples' records (:func:`dense_records`) and ``sr`` (S, 4) their
    numbers for the current row (:func:`_start_row`). An accepted weight change is not added to all S
    logits at once: the changes of one block of BLOCK columns of the current row are collected in ``pend``
    and applied together when the sweep leaves the block (:func:`_flush`; in the meantime the batch's
    samples add them on the fly). ``st`` = [row whose records are stale, row of the pending block, pending
    block, pending count]; it and ``pend`` persist between calls, so results do not depend on how a sweep
    is chunked. With batches of more than S/BLOCK samples a change is applied at once (the batch's visits
    would cost more than the saved passes). ``xs``, ``ts``, ``Rs`` are scratch of length B.
    """
    K = flat.shape[0]
    shared = rows.shape[0] == 1
    B = rows.shape[1]
    S = zT.shape[1]
    lazy = collects_changes(B, S)  # else every change is applied at once and hB is not used
    for k in range(K):
        f = flat[k]
        if is_bias:
            i = f
            j = -1
        else:
            i = f // fin
            j = f - i * fin
        if st[3] > 0 and (st[1] != i or (j >= 0 and j // BLOCK != st[2])):
            _flush(zT, hT, hB, st, pend)
        if st[0] != i:  # a new row: the previous one's logits are final
            if st[0] >= 0:
                _finish_row(zT, lab, rec, st[0])
            _start_row(rec, lab, i, sr)
            st[0] = i
        pending = st[3] > 0
        hb = hB[st[2]]
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
        r = rows[0] if shared else rows[k]
        hx = hB[j // BLOCK] if lazy and j >= 0 else hB[0]
        jq = j % BLOCK
        zi_row = zT[i]
        base = 0.0
        labx = 0.0
        p0 = 1.0
        p1 = 1.0
        p2 = 1.0
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        # gather first, in loops with tiny bodies: many independent cache misses stay in flight
        if j >= 0 and lazy:
            for b in range(B):
                xs[b] = hx[r[b], jq]
        elif j >= 0:
            hj = hT[j]
            for b in range(B):
                xs[b] = hj[r[b]]
        else:
            xs[:] = 1.0
        for b in range(B):
            ts[b] = zi_row[r[b]]
        for b in range(B):
            s = r[b]
            x = xs[b]
            zi = ts[b]
            if pending:
                zi += _block_dot(pend, hb, s)
            M = sr[s, 1]
            if sr[s, 3] != 0.0:  # the label is this row: its logit moves with the candidate
                base += M - zi
                labx += x
            else:
                base += sr[s, 2]
            Rs[b] = sr[s, 0]
            ts[b] = zi - M
        for b in range(B):
            x = xs[b]
            t = ts[b]
            R = Rs[b]
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
                    zi_row[s] += dd
            elif not lazy:  # large batches: adding pending changes per visit would cost more
                _axpy(zi_row, dd, hT[j])
            else:
                pend[jq] = dd
                st[1] = i
                st[2] = j // BLOCK
                st[3] += 1


@njit(cache=True, nogil=True)
def _to_blocks(hT, out):
    F, S = hT.shape
    nb, _, P = out.shape
    for b in range(nb):
        blk = out[b]
        for s0 in range(0, S, 256):  # 256 samples of the block's rows at a time, so writes fill whole lines
            s1 = min(S, s0 + 256)
            for q in range(min(P, F - b * P)):
                row = hT[b * P + q]
                for s in range(s0, s1):
                    blk[s, q] = row[s]


def column_blocks(hT: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``hT`` (F, S) as (ceil(F/BLOCK), S, BLOCK) column blocks (zero-padded), each block's columns
    contiguous per sample; into ``out`` when given (an earlier result of the same shape: reusing it saves
    the page faults of a fresh 100 MB array)."""
    F, S = hT.shape
    nb = -(-F // BLOCK)
    if out is None or out.shape != (nb, S, BLOCK) or out.dtype != hT.dtype:
        out = np.zeros((nb, S, BLOCK), hT.dtype)  # the padding columns stay zero: nothing writes them
    hT = np.ascontiguousarray(hT)
    step = max(1, -(-nb // 4))
    for_each(lambda b0: _to_blocks(hT[b0 * BLOCK : (b0 + step) * BLOCK], out[b0 : b0 + step]), range(0, nb, step))
    return out


# ---------------------------------------------------------------------- training-set caches
@njit(cache=True, nogil=True)
def conv2d_forward(xpad, W, b, out):
    """Stride-1 convolution of the zero-padded ``xpad`` (C, n, Hp, Wp) with ``W`` (O, C, k, k), plus ``b``
    (O,), into ``out`` (O, n, Ho, Wo). Rows are computed full-width over the padded row stride so the
    inner loop is one long contiguous run (vectorised); the sum runs over (c, kh, kw) like im2col's rows."""
    C, n, Hp, Wp = xpad.shape
    O, _, k, _ = W.shape
    Ho, Wo = out.shape[2], out.shape[3]
    L = (Ho - 1) * Wp + Wo
    acc = np.zeros((O, Ho * Wp), xpad.dtype)
    xq = np.empty((C, Hp * Wp), xpad.dtype)
    wf = W.reshape(O, C * k * k)
    for q in range(n):
        for c in range(C):
            for h in range(Hp):
                for w in range(Wp):
                    xq[c, h * Wp + w] = xpad[c, q, h, w]
        acc[:, :] = 0.0
        for c in range(C):
            for kh in range(k):
                for kw in range(k):
                    off = kh * Wp + kw
                    seg = xq[c, off : off + L]
                    for o in range(O):
                        wt = wf[o, (c * k + kh) * k + kw]
                        ao = acc[o]
                        for p in range(L):
                            ao[p] += wt * seg[p]
        for o in range(O):
            for h in range(Ho):
                for w in range(Wo):
                    out[o, q, h, w] = acc[o, h * Wp + w] + b[o]


_SMALL_CONVS: dict = {}


def small_conv_kernel(O: int, C: int, k: int):
    """A convolution compiled for a fixed, small filter bank (O, C, k, k) — the first layers here have
    C·k·k = 9 taps — with the taps unrolled so the loop over a row's pixels vectorises. Same sum order
    as :func:`conv2d_forward`."""
    key = (O, C, k)
    if key not in _SMALL_CONVS:

        @njit(nogil=True)
        def conv(xpad, W, b, out):
            n = xpad.shape[1]
            Ho, Wo = out.shape[2], out.shape[3]
            for q in range(n):
                for h in range(Ho):
                    for o in range(O):
                        orow = out[o, q, h]
                        for w in range(Wo):
                            acc = orow.dtype.type(0)
                            for c in range(C):
                                for kh in range(k):
                                    xr = xpad[c, q, h + kh]
                                    for kw in range(k):
                                        acc += W[o, c, kh, kw] * xr[w + kw]
                            orow[w] = acc + b[o]

        _SMALL_CONVS[key] = conv
    return _SMALL_CONVS[key]


def conv_kernel(O: int, C: int, k: int):
    """The compiled convolution for a filter bank of shape (O, C, k, k)."""
    return small_conv_kernel(O, C, k) if C * k * k <= 27 else conv2d_forward


@njit(cache=True, nogil=True, inline="always")
def _nanmax(a, b):
    """``numpy.maximum`` for scalars: the larger value, NaN if either is NaN."""
    return a if (a > b or a != a) else b


@njit(cache=True, nogil=True)
def _maxpool2(x, out):
    C, n, Ho, Wo = out.shape
    for c in range(C):
        for q in range(n):
            for h in range(Ho):
                o = out[c, q, h]
                r0 = x[c, q, 2 * h]
                r1 = x[c, q, 2 * h + 1]
                for w in range(Wo):
                    o[w] = _nanmax(_nanmax(r0[2 * w], r0[2 * w + 1]), _nanmax(r1[2 * w], r1[2 * w + 1]))


@njit(cache=True, nogil=True)
def _maxpool(x, s, out):
    C, n, Ho, Wo = out.shape
    for c in range(C):
        for q in range(n):
            for h in range(Ho):
                for w in range(Wo):
                    m = x[c, q, h * s, w * s]
                    for i in range(s):
                        for j in range(s):
                            m = _nanmax(m, x[c, q, h * s + i, w * s + j])
                    out[c, q, h, w] = m


@njit(cache=True, nogil=True)
def _relu_inplace(a):
    flat = a.reshape(a.size)
    zero = flat.dtype.type(0)
    for p in range(flat.size):
        flat[p] = _nanmax(flat[p], zero)


def relu_maxpool(x: np.ndarray, s: int, relu: bool) -> np.ndarray:
    """Optional ReLU then s×s max pooling (stride s) of ``x`` (C, n, H, W); the ReLU commutes with the
    max, so it is applied to the smaller pooled array. NaN propagates as in ``numpy.maximum``."""
    C, n, H, W = x.shape
    if s == 1:
        out = x.copy()
    else:
        out = np.empty((C, n, H // s, W // s), x.dtype)
        (_maxpool2(x, out) if s == 2 else _maxpool(x, s, out))
    if relu:
        _relu_inplace(out)
    return out


@njit(cache=True, nogil=True)
def batchnorm_train(x, gamma, beta, eps, relu, out):
    """Batch norm with the batch's own statistics (mean and biased variance per channel of ``x``
    (C, ...) flattened to (C, M)), optionally followed by ReLU, into ``out``; the statistics are
    accumulated in float64, then applied as the layer does: (x − mean)·(γ·inv) + β."""
    C, M = x.shape
    zero = out.dtype.type(0)
    for c in range(C):
        row = x[c]
        s = 0.0
        for p in range(M):
            s += row[p]
        mean = row.dtype.type(s / M)
        v = 0.0
        for p in range(M):
            d = np.float64(row[p] - mean)
            v += d * d
        var = row.dtype.type(v / M)
        scale = gamma[c] * (1.0 / np.sqrt(var + eps))
        scale = row.dtype.type(scale)
        b = beta[c]
        o = out[c]
        for p in range(M):
            y = (row[p] - mean) * scale + b
            o[p] = _nanmax(y, zero) if relu else y


@njit(cache=True, nogil=True)
def avgpool2(x, out):
    """2×2 average pooling (stride 2) of ``x`` (C, n, H, W) into ``out``: the four values summed in the
    order numpy's mean over the window axes adds them, then divided by 4."""
    C, n, Ho, Wo = out.shape
    for c in range(C):
        for q in range(n):
            for h in range(Ho):
                o = out[c, q, h]
                r0 = x[c, q, 2 * h]
                r1 = x[c, q, 2 * h + 1]
                for w in range(Wo):
                    o[w] = ((r0[2 * w] + r0[2 * w + 1]) + (r1[2 * w] + r1[2 * w + 1])) / 4


@njit(cache=True, nogil=True)
def global_avgpool(x, out):
    """Mean of each (channel, sample) plane of ``x`` (C, n, H, W) into ``out`` (n, C)."""
    C, n, H, W = x.shape
    for c in range(C):
        for q in range(n):
            s = x.dtype.type(0)
            for h in range(H):
                for w in range(W):
                    s += x[c, q, h, w]
            out[q, c] = s / (H * W)


@njit(cache=True, nogil=True)
def to_features_T(x, outT, col0):
    """Write ``x`` (C, n, H, W) as flatten-order feature rows of ``outT`` (C·H·W, N), columns col0..
    (a transpose blocked by 16 samples, so reads and writes both stay in cache lines)."""
    C, n, H, W = x.shape
    HW = H * W
    for c in range(C):
        for q0 in range(0, n, 16):
            q1 = min(n, q0 + 16)
            for p in range(HW):
                row = outT[c * HW + p]
                h = p // W
                w = p - h * W
                for q in range(q0, q1):
                    row[col0 + q] = x[c, q, h, w]


def bn_forward(layer: BatchNorm2d, P: dict, x: np.ndarray, relu: bool = False, channels=None) -> np.ndarray:
    """A batch norm layer in training mode (optionally + ReLU) on ``x`` (C, n, H, W); ``channels`` picks
    the γ/β entries when ``x`` holds only some channels."""
    g, b = P[layer.full("gamma")], P[layer.full("beta")]
    if channels is not None:
        g, b = g[channels], b[channels]
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    C = x.shape[0]
    batchnorm_train(x.reshape(C, -1), np.ascontiguousarray(g), np.ascontiguousarray(b), BN_EPS, relu,
                    out.reshape(C, -1))  # fmt: skip
    return out


def store_forward(model: Model, x: np.ndarray, stop: int, start: int = 0) -> np.ndarray:
    """``model.forward(x, train=True, start=start, stop=stop)`` with convolutions and ReLU/max pooling
    compiled (other layers run as they are)."""
    layers = model.layers
    P = model.params
    i = start
    while i < stop:
        layer = layers[i]
        if isinstance(layer, Conv2d):
            C, n, H, W = x.shape
            Ho, Wo = layer.out_hw(H, W)
            out = np.empty((layer.cout, n, Ho, Wo), x.dtype)
            b = P[layer.full("bias")] if layer.bias else np.zeros(layer.cout, x.dtype)
            p = layer.pad
            xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
            conv_kernel(layer.cout, C, layer.k)(np.ascontiguousarray(xpad), P[layer.full("weight")], b, out)
            x = out
        elif isinstance(layer, BatchNorm2d) and x.ndim == 4:
            relu = i + 1 < stop and isinstance(layers[i + 1], ReLU)
            x = bn_forward(layer, P, x, relu)
            i += relu
        elif isinstance(layer, AvgPool2d) and layer.size == 2 and x.ndim == 4:
            C, n, H, W = x.shape
            out = np.empty((C, n, H // 2, W // 2), x.dtype)
            avgpool2(np.ascontiguousarray(x), out)
            x = out
        elif isinstance(layer, GlobalAvgPool) and x.ndim == 4:
            out = np.empty((x.shape[1], x.shape[0]), x.dtype)
            global_avgpool(np.ascontiguousarray(x), out)
            x = out
        elif isinstance(layer, (ReLU, MaxPool2d)) and x.ndim == 4:
            relu = isinstance(layer, ReLU)
            if relu and i + 1 < stop and isinstance(layers[i + 1], MaxPool2d):
                i += 1
                s = layers[i].size
            elif relu:
                s = 1
            else:
                s = layer.size
            x = relu_maxpool(np.ascontiguousarray(x), s, relu)
        else:
            x, _ = layer.forward(P, x, True)
        i += 1
    return x


class NumbaIncrementalEvaluator(IncrementalEvaluator):
    """:class:`IncrementalEvaluator` with the output layer's sweep and the training-set caches' convolutions
    compiled by Numba."""

    name = "incremental-numba"
    description = "incremental evaluator, output-layer sweep compiled with Numba (CPU)"
    engine = "numba"

    BUILD_CHUNK = 512  # small chunks keep each block's activations in cache
    _spare_blocks: tuple = (None, None)  # (weak reference to the store that owns them, column blocks)

    def store_forward(self, x, stop):
        return store_forward(self.model, x, stop)

    def forward_range(self, x, start, stop):
        return store_forward(self.model, x, stop, start)

    def conv_from_padded(self, layer, xpad):
        C, n, Hp, Wp = xpad.shape
        k = layer.k
        out = np.empty((layer.cout, n, Hp - k + 1, Wp - k + 1), xpad.dtype)
        P = self.model.params
        b = P[layer.full("bias")] if layer.bias else np.zeros(layer.cout, xpad.dtype)
        conv_kernel(layer.cout, C, k)(xpad, P[layer.full("weight")], b, out)
        return out

    def conv_out_channel(self, layer, xpad, o):
        C, n, Hp, Wp = xpad.shape
        k = layer.k
        out = np.empty((1, n, Hp - k + 1, Wp - k + 1), xpad.dtype)
        w = self.model.params[layer.full("weight")][o : o + 1]
        b = self.model.params[layer.full("bias")][o : o + 1] if layer.bias else np.zeros(1, xpad.dtype)
        conv_kernel(1, C, k)(xpad, w, b, out)
        return out[0]

    def conv_one_input(self, layer, delta, o):
        p, k = layer.pad, layer.k
        dp = np.pad(delta, ((0, 0), (p, p), (p, p)))[None] if p else delta[None]
        n, H, W = delta.shape
        out = np.empty((layer.cout, n, H + 2 * p - k + 1, W + 2 * p - k + 1), delta.dtype)
        w = np.ascontiguousarray(self.model.params[layer.full("weight")][:, o : o + 1])
        conv_kernel(layer.cout, 1, k)(np.ascontiguousarray(dp), w, np.zeros(layer.cout, delta.dtype), out)
        return out

    def bn_channel(self, layer, a, gamma, beta):
        out = np.empty_like(a)
        batchnorm_train(np.ascontiguousarray(a).reshape(1, -1), gamma, beta, BN_EPS, False, out.reshape(1, -1))
        return out

    def pool_channel(self, layer, a):
        if isinstance(layer, MaxPool2d):
            return relu_maxpool(np.ascontiguousarray(a[None]), layer.size, False)[0]
        if isinstance(layer, AvgPool2d) and layer.size == 2:
            n, H, W = a.shape
            out = np.empty((1, n, H // 2, W // 2), a.dtype)
            avgpool2(np.ascontiguousarray(a[None]), out)
            return out[0]
        return super().pool_channel(layer, a)

    def write_T(self, a, out, s):
        if a.ndim == 4:
            to_features_T(a, out, s)
        else:
            out[:, s : s + a.shape[0]] = a.T

    def dense_kernel(self, store: DenseStore, view, fin, is_bias, flat, deltas, rows, sf) -> SweepResult:
        aux = store.aux
        C, S = store.zT.shape
        if "rec" not in aux:
            aux["rec"] = np.empty((S, C + 2))
            aux["row_rec"] = np.empty((S, 4))
            dense_records(store.zT, store.lab, aux["rec"])
            aux["state"] = np.array([-1, -1, 0, 0], np.int64)
            aux["pending"] = np.zeros(BLOCK)
        if "hB" not in aux:  # column blocks only where changes are collected (batches of < S/BLOCK samples)
            if collects_changes(rows.shape[1], S):
                # the blocks of a store that has been replaced (its layer's input changed) lend their memory
                ref, spare = self._spare_blocks
                owner = ref() if ref is not None else None
                if owner is not None and (owner is self._train_store or owner is self._batch_store):
                    spare = None  # still in use
                aux["hB"] = column_blocks(store.hT, spare)
                self._spare_blocks = (weakref.ref(store), aux["hB"])
            else:
                aux["hB"] = np.zeros((1, 1, BLOCK), store.hT.dtype)
        K = len(flat)
        res = SweepResult.empty(K)
        losses, choices, old, new = res.losses, res.choices, res.old, res.new
        B = rows.shape[1]
        dense_sweep(view, int(fin), bool(is_bias), view.dtype == np.float32, store.hT, aux["hB"], store.zT,
                    store.lab, aux["rec"], aux["row_rec"], aux["state"], aux["pending"],
                    np.ascontiguousarray(flat, np.int64), np.ascontiguousarray(deltas, np.float64),
                    np.ascontiguousarray(rows, np.int64), float(sf),
                    np.empty(B), np.empty(B), np.empty(B), losses, choices, old, new)  # fmt: skip
        return res


def numba_evaluator_unavailable(model: Model) -> str:
    if _NUMBA_ERROR:
        return _NUMBA_ERROR
    if model.backend.name != "numpy":
        return "the model lives on the GPU (the Numba kernels are for NumPy arrays)"
    return incremental_unavailable(model)
