"""Layer-parallel RSO over a real Dask cluster: the layers' chunks scored on two worker processes give the
numbers of the same run in one process."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from helpers import sample, without_seconds
from rso_engine.backend import get_backend
from rso_engine.cli import main
from rso_engine.config import RunConfig
from rso_engine.distributed.layer_scoring import use_cluster
from rso_engine.events import WeightTried
from rso_engine.training import RSOTrainer

distributed = pytest.importorskip("distributed")
NUMPY = get_backend("numpy")


def _config(**kw) -> RunConfig:
    base = dict(model="oneconv", dataset="mnist-sample", n_train=256, n_test=100, cycles=1, batch_size=16,
                update="layer-parallel", eval_train_samples=64, bn_calibration_samples=64, dtype="float32")
    base.update(kw)
    return RunConfig(**base).validated()


def _run(t: RSOTrainer):
    tried = [(e.param, e.index, e.choice, e.new) for e in t.events() if isinstance(e, WeightTried)]
    return tried, t.model.params_numpy(), without_seconds(t.history)


@pytest.mark.parametrize("kw", [dict(train_layers=["fc", "conv1"]),
                                dict(model="papernet", train_layers=["fc"], batch_mode="authors", n_train=64)],
                         ids=["oneconv", "papernet-authors"])
def test_a_layer_parallel_run_on_two_workers_equals_the_run_in_one_process(kw):
    cfg = _config(**kw)
    with threadpool_limits(1, user_api="blas"):  # as the workers run
        here = _run(RSOTrainer(cfg, sample(), NUMPY))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env={"RSO_THREADS": "1"}, silence_logs=logging.CRITICAL) as c:
        with distributed.Client(c) as client:
            t = RSOTrainer(cfg, sample(), NUMPY)
            use_cluster(t, client)
            assert t.scoring.name == "cluster-scorer"
            with threadpool_limits(1, user_api="blas"):  # the evaluations on this side, as above
                there = _run(t)
            scored = client.run(lambda: __import__("rso_engine.distributed.layer_scoring", fromlist=["x"])
                                ._worker_trainer.cache_info().currsize)
    assert here[0] == there[0]
    assert all(np.array_equal(here[1][p], there[1][p]) for p in here[1])
    assert here[2] == there[2]
    assert all(n >= 1 for n in scored.values()) and len(scored) == 2  # both workers scored pieces


def test_only_a_layer_parallel_run_goes_to_a_cluster(capsys):
    code = main(["train", "--cycles", "1", "--n-train", "64", "--n-test", "50", "--train-layers", "conv1",
                 "--batch-size", "16", "--workers", "1"])
    assert code != 0
    assert "add --update layer-parallel" in capsys.readouterr().err
