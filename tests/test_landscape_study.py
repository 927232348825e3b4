"""`rso landscape`: the loss surface around saved runs (random and PCA planes), the RSO–SGD interpolation, its
files, and the same numbers whether the grid points ran on worker processes or here."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from rso_engine.cli import main
from rso_engine.landscape_study import load_runs, surface
from rso_engine.trajectory import load_trajectory

pytest.importorskip("distributed")

TINY = ["--dataset", "mnist-sample", "--n-train", "128", "--n-test", "100", "--eval-train-samples", "64",
        "--train-layers", "conv1", "--batch-sizes", "16"]


@pytest.fixture(scope="module")
def study_runs(tmp_path_factory):
    """An RSO run and its SGD baseline (2 cycles/epochs) with their trajectories, from `rso report`."""
    out = tmp_path_factory.mktemp("study")
    assert main(["report", "course-batch-sweep", "--out", str(out), "--cycles", "2", *TINY, "--trajectories",
                 "--workers", "1", "--plot-size", "320x240"]) == 0
    rso = sorted((out / "runs").glob("oneconv-rso-*.npz"))
    sgd = sorted((out / "runs").glob("oneconv-sgd-*.npz"))
    rso = [p for p in rso if not p.name.endswith(".trajectory.npz")]
    sgd = [p for p in sgd if not p.name.endswith(".trajectory.npz")]
    results = {r["algorithm"]: r for r in csv.DictReader((out / "results.csv").open())}
    return rso[0], sgd[0], results


def test_runs_keep_their_per_cycle_weights(study_runs):
    rso, sgd, _ = study_runs
    runs = load_runs([rso, sgd])
    assert [r.label for r in runs] == ["OneConv RSO b16", "OneConv SGD"]
    traj = load_trajectory(rso.with_name(rso.name.replace(".npz", ".trajectory.npz")))
    assert list(traj.cycles) == [0, 1, 2] and traj.params["conv1.weight"].shape == (3, 4, 1, 3, 3)
    assert np.array_equal(traj.point(2)["conv1.weight"], runs[0].params["conv1.weight"])  # the end is the final model
    assert not np.array_equal(traj.point(0)["conv1.weight"], traj.point(2)["conv1.weight"])


def test_the_pca_surface_and_the_interpolation_are_written(study_runs, tmp_path, capsys):
    rso, sgd, results = study_runs
    out = tmp_path / "pca"
    assert main(["landscape", str(rso), str(sgd), "--out", str(out), "--plane", "pca", "--points", "3",
                 "--interp-points", "3", "--workers", "2", "--plot-size", "400x300", "--dpi", "50"]) == 0
    stdout = capsys.readouterr().out
    assert "principal directions:" in stdout
    names = {p.name for p in out.iterdir()}
    assert names == {"surface.png", "surface.svg", "surface.csv", "surface.npz", "paths.csv", "landscape.json",
                     "interpolation.png", "interpolation.svg", "interpolation.csv"}
    doc = json.loads((out / "landscape.json").read_text())
    a, b = doc["explained"]
    assert doc["plane"] == "pca" and 0 < b <= a <= 1 and doc["explained_by_plane"] == pytest.approx(a + b)
    assert len(list(csv.DictReader((out / "surface.csv").open()))) == 9
    paths = list(csv.DictReader((out / "paths.csv").open()))
    assert [(p["run"], p["cycle"]) for p in paths] == [
        ("OneConv RSO b16", "0"), ("OneConv RSO b16", "1"), ("OneConv RSO b16", "2"),
        ("OneConv SGD", "0"), ("OneConv SGD", "1"), ("OneConv SGD", "2")]
    assert float(paths[2]["alpha"]) == pytest.approx(0, abs=1e-9)  # the centre is RSO's final model
    line = {float(r["t"]): r for r in csv.DictReader((out / "interpolation.csv").open())}
    # each end of the line is exactly that run's own final evaluation (batch norm recomputed)
    assert line[0.0]["test_accuracy"] == results["rso"]["test_accuracy"]
    assert line[1.0]["test_accuracy"] == results["sgd"]["test_accuracy"]
    assert float(line[0.0]["train_loss"]) == pytest.approx(float(results["rso"]["train_loss"]), rel=0, abs=0)
    with np.load(out / "surface.npz") as z:
        assert z["train_loss"].shape == (3, 3) and "d1/conv1.weight" in z.files and "interp/t" in z.files


def test_a_random_surface_is_the_same_on_worker_processes_as_here(study_runs, tmp_path):
    rso, sgd, results = study_runs
    out = tmp_path / "random"
    assert main(["landscape", str(rso), "--out", str(out), "--points", "3", "--workers", "2", "--span", "0.5",
                 "--plot-size", "400x300", "--dpi", "50"]) == 0
    with np.load(out / "surface.npz") as z:
        there = {k: z[k] for k in ("alpha", "beta", "train_loss", "test_loss", "test_accuracy")}
    here = surface(load_runs([rso]), "random", n=3, span=0.5, interpolate=False).grid
    assert np.array_equal(there["alpha"], here.a) and np.array_equal(there["train_loss"], here.train_loss)
    assert np.array_equal(there["test_accuracy"], here.test_accuracy)
    assert here.train_loss[1, 1] == float(results["rso"]["train_loss"])  # (0, 0): the run's own final evaluation
    assert np.isfinite(here.train_loss).all() and len(np.unique(here.train_loss)) == 9


def test_the_pca_plane_without_trajectories_says_what_to_do(tmp_path, capsys):
    ck = tmp_path / "ck.npz"
    assert main(["train", "--model", "oneconv", "--cycles", "1", "--train-layers", "conv1", "--n-train", "128",
                 "--n-test", "100", "--batch-size", "16", "--eval-train-samples", "64", "--checkpoint", str(ck)]) == 0
    capsys.readouterr()
    assert main(["landscape", str(ck), "--out", str(tmp_path / "x"), "--plane", "pca", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "--trajectories" in err and "--plane random" in err and len(err.strip().splitlines()) == 1


def test_a_session_keeps_both_trajectories_across_a_resume_and_gives_a_pca_surface(tmp_path, capsys):
    session = tmp_path / "s.rso.npz"
    args = ["--model", "oneconv", "--train-layers", "conv1", "--n-train", "128", "--n-test", "100",
            "--batch-size", "16", "--eval-train-samples", "64"]
    assert main(["compare", "--cycles", "1", *args, "--session", str(session), "--trajectories"]) == 0
    first = load_trajectory(tmp_path / "s.rso.trajectory.npz")
    assert list(first.cycles) == [0, 1]
    assert main(["compare", "--resume", str(session), "--cycles", "2", "--trajectories"]) == 0
    rso, sgd = (load_trajectory(tmp_path / f"s.{role}.trajectory.npz") for role in ("rso", "sgd"))
    assert list(rso.cycles) == [0, 1, 2] and list(sgd.cycles) == [0, 1, 2]
    assert np.array_equal(rso.params["conv1.weight"][:2], first.params["conv1.weight"])  # kept across the resume
    capsys.readouterr()
    assert main(["landscape", str(session), "--out", str(tmp_path / "surf"), "--plane", "pca", "--points", "3",
                 "--interp-points", "3", "--workers", "1", "--plot-size", "400x300", "--dpi", "50"]) == 0
    out = capsys.readouterr().out
    assert "RSO: oneconv on mnist-sample" in out and "trajectory of 3 points" in out and "RSO → SGD" in out
