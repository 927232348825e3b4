"""Work split over threads (training-set caches, column blocks) gives the same arrays on any number of threads."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import sample
from rso_engine.backend import BackendError, cpu_threads, get_backend
from rso_engine.evaluators import make_evaluator
from rso_engine.kernels.dense_sweep import BLOCK, column_blocks
from rso_engine.kernels.jit import numba_unavailable_reason
from rso_engine.models import build_model
from rso_engine.parallel import for_each


def test_cpu_threads_reads_rso_threads(monkeypatch):
    monkeypatch.setenv("RSO_THREADS", "3")
    assert cpu_threads() == 3
    monkeypatch.setenv("RSO_THREADS", "0")
    assert cpu_threads() == 1
    monkeypatch.setenv("RSO_THREADS", "many")
    with pytest.raises(BackendError, match="RSO_THREADS"):
        cpu_threads()
    monkeypatch.delenv("RSO_THREADS")
    assert cpu_threads() >= 1


def test_for_each_runs_every_item_and_reraises():
    seen = []
    for_each(seen.append, range(50), threads=4)
    assert sorted(seen) == list(range(50))

    def boom(i):
        if i == 7:
            raise ValueError("item 7")

    with pytest.raises(ValueError, match="item 7"):
        for_each(boom, range(20), threads=3)


@pytest.mark.parametrize("evaluator", ["layer-cached", "incremental-numba"])
def test_training_set_caches_do_not_depend_on_the_thread_count(monkeypatch, evaluator):
    if evaluator == "incremental-numba":
        if numba_unavailable_reason():
            pytest.skip("no numba")
    ds = sample()
    built = []
    for threads in ("1", "3"):
        monkeypatch.setenv("RSO_THREADS", threads)
        model = build_model("twoconv", seed=0, backend=get_backend("numpy"), dtype="float32")
        ev = make_evaluator(evaluator, model, model.to_input(ds.train_x), np.asarray(ds.train_y))
        ev.BUILD_CHUNK = 300  # several chunks, a short last one
        last = len(model.layers) - 1
        built.append((ev.train_boundary(last, "T"), ev.train_boundary(last), ev.train_boundary(3)))
    for a, b in zip(*built, strict=True):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    hT = built[0][0]
    np.testing.assert_array_equal(hT, built[0][1].reshape(hT.shape[1], -1).T)  # the two layouts agree


def test_column_blocks_reuse_an_old_array_and_match_a_fresh_one():
    rng = np.random.default_rng(0)
    hT = rng.random((2 * BLOCK + 3, 500), dtype=np.float32)
    fresh = column_blocks(hT)
    assert fresh.shape == (3, 500, BLOCK)
    np.testing.assert_array_equal(fresh[2, :, 3:], 0)  # padding
    np.testing.assert_array_equal(fresh[1, 17], hT[BLOCK : 2 * BLOCK, 17])
    reused = column_blocks(hT * 2, out=fresh)
    assert reused is fresh
    np.testing.assert_array_equal(reused, column_blocks(hT * 2))


def test_evaluation_does_not_depend_on_the_thread_count(monkeypatch):
    from rso_engine.config import RunConfig  # noqa: PLC0415
    from rso_engine.training import RSOTrainer  # noqa: PLC0415
    from rso_engine.training import base as training_base  # noqa: PLC0415

    monkeypatch.setattr(training_base, "EVAL_CHUNK", 97)  # several chunks, a short last one
    results = []
    for threads in ("1", "3"):
        monkeypatch.setenv("RSO_THREADS", threads)
        cfg = RunConfig(model="papernet", n_train=256, n_test=1000, eval_train_samples=200, bn_calibration_samples=128)
        t = RSOTrainer(cfg, sample(), get_backend("numpy"), evaluator="reference")
        results.append(t.evaluate(0))
    assert results[0] == results[1]
    assert 0 <= results[0].test_accuracy <= 1 and np.isfinite(results[0].test_loss)


def test_cancellation_reaches_the_pieces_on_the_pool_threads():
    """Checks inside a piece (e.g. between the layers of a forward pass) see the caller's token."""
    from rso_engine.cancel import Cancelled, CancelToken, cancellable, check_cancelled, current_token
    from rso_engine.parallel import for_each

    token, seen = CancelToken(), []
    with cancellable(token):
        for_each(lambda i: seen.append(current_token() is token), range(8), threads=4)
    assert seen == [True] * 8

    def piece(i):
        token.cancel()
        check_cancelled()  # inside the piece: raises at once

    with cancellable(token), pytest.raises(Cancelled):
        for_each(piece, range(8), threads=4)


def test_a_split_inside_a_piece_runs_in_that_pieces_thread():
    """Kernels split their work even when called from a cache build's piece: nested calls finish (no
    waiting on a pool that is busy with the caller), every item once."""
    import threading  # noqa: PLC0415

    seen, lock = [], threading.Lock()

    def outer(i):
        me = threading.get_ident()

        def inner(j):
            with lock:
                seen.append((i, j, threading.get_ident() == me))

        for_each(inner, range(5), threads=4)

    for_each(outer, range(6), threads=3)
    assert sorted((i, j) for i, j, _ in seen) == [(i, j) for i in range(6) for j in range(5)]
    assert all(same for _, _, same in seen)


@pytest.mark.parametrize(("n", "parts", "minimum"), [(10, 3, 1), (7, 8, 1), (100, 2, 60), (0, 2, 1), (5, None, 1)])
def test_split_covers_the_range_in_order(n, parts, minimum):
    from rso_engine.parallel import split  # noqa: PLC0415

    ranges = split(n, parts, minimum)
    assert [i for a, b in ranges for i in range(a, b)] == list(range(n))
    assert len(ranges) <= (parts or cpu_threads())
    assert all(b - a >= min(minimum, n) for a, b in ranges)
