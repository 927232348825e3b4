"""The output layer's sweep compiled for the CPU (Numba), and the column blocks it reads.

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

The incremental-numba evaluator (``rso_engine.evaluators.numba``) keeps the caches these kernels work on;
Numba is optional (:mod:`.jit`), and without it that evaluator reports why and the NumPy one runs instead.
"""

from __future__ import annotations

import math

import numpy as np

from ..parallel import for_each
from .jit import njit


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
    same as the vectorised sweep (``IncrementalEvaluator.dense_kernel`` in ``rso_engine.evaluators.incremental``).

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
