"""Studies as Dask tasks: a real LocalCluster gives the in-process numbers, survives a killed worker, reports
a run that raises, skips finished runs, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import csv
import logging
import os
import signal

import pytest
from threadpoolctl import threadpool_limits

from helpers import sample, without_seconds
from rso_engine.backend import get_backend
from rso_engine.cli import main
from rso_engine.distributed import ClusterError, ClusterOptions, RunRecord, open_client
from rso_engine.report import run_study, study_base

distributed = pytest.importorskip("distributed")

SMALL = dict(dataset="mnist-sample", n_train=128, n_test=100, cycles=1, train_layers=["conv1"],
             eval_train_samples=64, bn_calibration_samples=64, dtype="float64")
CLI_SMALL = ["--cycles", "1", "--train-layers", "conv1", "--n-train", "128", "--n-test", "100",
             "--eval-train-samples", "64"]


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each, started for these tests and shut down after them."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env={"RSO_THREADS": "1"}, silence_logs=logging.CRITICAL) as c:
        with distributed.Client(c) as client:
            yield client


def _histories(result):
    return {r.label: without_seconds(r.history) for r in result.runs}


def test_a_study_on_two_worker_processes_gives_the_in_process_numbers(cluster, tmp_path):
    base = study_base("course-batch-sweep", changes=dict(SMALL, dtype="float32"))
    with threadpool_limits(1, user_api="blas"):  # as every task runs (float32 products' last bits depend on it)
        here = run_study("course-batch-sweep", tmp_path / "here", base, batch_sizes=[8, 16], dataset=sample(),
                         backend=get_backend("numpy"), figures=False)
    lines = []
    there = run_study("course-batch-sweep", tmp_path / "there", base, batch_sizes=[8, 16], cluster=cluster,
                      backend="numpy", figures=False, log=lines.append)
    assert [r.label for r in there.runs] == ["OneConv RSO b8", "OneConv RSO b16", "OneConv SGD"]
    assert _histories(there) == _histories(here)  # bitwise: the same floats, wherever the runs executed
    workers = {r.record.worker for r in there.runs}
    assert workers <= set(cluster.scheduler_info()["workers"]) and "" not in workers
    assert sum(" on tcp://" in line for line in lines) == 3
    here_rows = list(csv.DictReader((tmp_path / "here" / "results.csv").open()))
    there_rows = list(csv.DictReader((tmp_path / "there" / "results.csv").open()))
    assert [r["test_accuracy"] for r in there_rows] == [r["test_accuracy"] for r in here_rows]
    assert len(list((tmp_path / "there" / "runs").glob("*.json"))) == 3  # each run written as it finished


class _KillOnce:
    """A study progress that kills the worker process running the first run once it has saved a cycle."""

    def __init__(self, client):
        self.client, self.killed = client, None

    def planned(self, n):
        pass

    def update(self, ev):
        cycles = 6  # killed in cycle 2 to 4: cycles of work still ahead, so the run cannot finish first
        if self.killed is None and ev["state"] == "running" and 1 <= ev["cycle"] <= 3 \
                and ev["done"] > ev["total"] // cycles:
            pid = self.client.run(os.getpid, workers=[ev["worker"]])[ev["worker"]]
            os.kill(pid, signal.SIGKILL)
            self.killed = (ev["label"], ev["worker"], ev["cycle"])

    def finished(self, result, skipped):
        pass

    def failed(self, failure):
        pass

    def close(self):
        pass


def test_a_worker_killed_mid_run_hands_the_run_to_another_which_continues_from_its_checkpoint(cluster, tmp_path):
    base = study_base("course-batch-sweep", changes=dict(SMALL, cycles=6, train_layers=None, n_train=256,
                                                         batch_size=32, dtype="float32"))
    killer = _KillOnce(cluster)
    lines = []
    result = run_study("course-batch-sweep", tmp_path / "k", base, batch_sizes=[32], sgd=False, cluster=cluster,
                       checkpoints=True, study_progress=killer, log=lines.append, figures=False)
    assert killer.killed is not None, "the run finished before a worker could be killed"
    assert not result.failures and [r.label for r in result.runs] == ["OneConv RSO b32"]
    run = result.runs[0]
    assert run.record.resumed_from >= 1  # continued from a checkpoint, not from the start
    assert any("restarted on" in line and "from its checkpoint after cycle" in line for line in lines)
    with threadpool_limits(1, user_api="blas"):
        here = run_study("course-batch-sweep", tmp_path / "h", base, batch_sizes=[32], sgd=False, dataset=sample(),
                         figures=False)
    assert without_seconds(run.history) == without_seconds(here.runs[0].history)


def test_a_run_that_raises_is_reported_the_others_finish_and_a_rerun_skips_finished_runs(capsys, tmp_path):
    out = tmp_path / "sweep"
    argv = ["sweep", "--batch-sizes", "8", "5000", "16", *CLI_SMALL, "--out", str(out), "--workers", "1"]
    assert main(argv) == 1
    stdout, err = capsys.readouterr()
    assert "failed: OneConv RSO b5000: ValueError: batch size 5000 is larger than the 128 training images" in stdout
    assert "1 run(s) failed (OneConv RSO b5000)" in err
    table = [line.split() for line in stdout.splitlines()]
    assert ["oneconv", "5000", "failed", "–", "–"] in table
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["batch_size"], bool(r["test_accuracy"]), bool(r["error"])) for r in rows] == [
        ("8", True, False), ("16", True, False), ("5000", False, True)]
    first = {r["batch_size"]: r["test_accuracy"] for r in rows}

    assert main(argv) == 1  # again: the two finished runs are loaded, the failing one is tried again
    stdout, _ = capsys.readouterr()
    assert stdout.count("already finished in") == 2 and "b5000: failed" in stdout
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["batch_size"]: r["test_accuracy"] for r in rows} == first

    assert main([*argv[:3], "16", *argv[5:], "--fresh"]) == 0  # --fresh trains them again: same numbers
    stdout, _ = capsys.readouterr()
    assert "already finished" not in stdout
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["batch_size"], r["test_accuracy"]) for r in rows] == [("8", first["8"]), ("16", first["16"])]


class _CtrlCAfterFirst:
    """Ctrl-C (KeyboardInterrupt) as soon as the first run has finished, while the second one is under way."""

    def planned(self, n):
        pass

    def update(self, ev):
        pass

    def finished(self, result, skipped):
        raise KeyboardInterrupt

    def failed(self, failure):
        pass

    def close(self):
        pass


def test_ctrl_c_stops_the_study_and_keeps_the_finished_runs(tmp_path):
    base = study_base("course-batch-sweep", changes=dict(SMALL, cycles=2, train_layers=None))
    out = tmp_path / "c"
    with pytest.raises(KeyboardInterrupt), open_client(ClusterOptions(workers=1)) as client:
        run_study("course-batch-sweep", out, base, batch_sizes=[16, 32], sgd=False, cluster=client,
                  study_progress=_CtrlCAfterFirst(), figures=False)
    kept = [RunRecord.from_json(p.read_text()) for p in (out / "runs").glob("*.json")]
    assert [r.label for r in kept] == ["OneConv RSO b16"]
    lines = []
    again = run_study("course-batch-sweep", out, base, batch_sizes=[16, 32], sgd=False,
                      cluster=ClusterOptions(workers=1), figures=False, log=lines.append)
    assert [r.label for r in again.runs] == ["OneConv RSO b16", "OneConv RSO b32"]
    assert any(line.startswith("OneConv RSO b16: already finished") for line in lines)


def test_an_unreachable_scheduler_is_one_clear_line(capsys):
    with pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9 .*dask scheduler"):
        with open_client(ClusterOptions(scheduler="tcp://127.0.0.1:9")):
            pass
