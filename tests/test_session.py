"""Saved sessions: a session saved mid-run continues exactly; saving is atomic; foreign/newer files are refused."""

import json

import numpy as np
import pytest

from helpers import params_equal, sample, tiny_config, without_seconds
from rso_engine.backend import get_backend
from rso_engine.events import SGDStep, WeightTried
from rso_engine.experiment import make_trainer, read_checkpoint, save_checkpoint
from rso_engine.session import (
    SESSION_SUFFIX,
    SESSION_VERSION,
    SessionError,
    load_session,
    read_session_info,
    save_session,
    session_path,
)

NUMPY = get_backend("numpy")


def _pair(**changes):
    cfg = tiny_config(**changes)
    return (
        make_trainer(cfg, sample(), NUMPY, evaluator="reference"),
        make_trainer(cfg.replace(algorithm="sgd"), sample(), NUMPY),
    )


def _advance(events, kind, n):
    """Iterate ``events`` until ``n`` events of type ``kind`` went by."""
    seen = 0
    for ev in events:
        seen += isinstance(ev, kind)
        if seen == n:
            return
    raise AssertionError("the run ended too early")


@pytest.mark.parametrize("batch_mode", ["weight", "layer"])
def test_a_session_saved_mid_run_continues_to_the_same_weights_and_histories(tmp_path, batch_mode):
    changes = dict(batch_mode=batch_mode, momentum=0.9, cycles=2)
    rso_ref, sgd_ref = _pair(**changes)
    rso_ref.run()
    sgd_ref.run()

    rso, sgd = _pair(**changes)
    rso.set_chunking(7)  # a chunk boundary inside the first layer
    _advance(rso.events(), WeightTried, 47)  # conv1 has 40 weights per cycle: mid-way through cycle 2
    _advance(sgd.events(), SGDStep, 11)  # 8 steps per epoch: mid-way through epoch 2
    assert 0 < rso.position.pos < 36 and rso.position.cycle == 1 and sgd.step_in_epoch == 3
    path = save_session(tmp_path / "run.rso.npz", rso, sgd, extra={"view": {"layer": "conv1"}})
    del rso, sgd

    session = load_session(path, dataset=sample(), backend=NUMPY)
    assert session.extra == {"view": {"layer": "conv1"}} and session.path == path
    assert session.info["session_version"] == 1 and [t.algorithm for t in session.trainers] == ["rso", "sgd"]
    session.rso.run()
    session.sgd.run()
    assert params_equal(session.rso.model.params_numpy(), rso_ref.model.params_numpy())
    assert params_equal(session.sgd.model.params_numpy(), sgd_ref.model.params_numpy())
    assert without_seconds(session.rso.history) == without_seconds(rso_ref.history)
    assert without_seconds(session.sgd.history) == without_seconds(sgd_ref.history)


def test_a_session_without_sgd_and_its_summary(tmp_path):
    rso, _ = _pair(cycles=1)
    rso.run()
    path = save_session(tmp_path / "solo.rso.npz", rso)
    session = load_session(path, dataset=sample(), backend=NUMPY)
    assert session.sgd is None and session.extra == {} and session.rso.finished
    info = read_session_info(path)
    assert [r["role"] for r in info["runs"]] == ["rso"] and info["runs"][0]["finished_cycles"] == 1
    assert info["runs"][0]["config"]["model"] == "oneconv"
    assert session_path(tmp_path / "x") == tmp_path / f"x{SESSION_SUFFIX}"
    assert session_path(tmp_path / "x.rso.npz") == tmp_path / "x.rso.npz"
    with pytest.raises(SessionError, match="not JSON-able"):
        save_session(tmp_path / "bad.rso.npz", rso, extra={"f": object()})


@pytest.mark.parametrize("where", ["replace", "fsync", "interrupt"])
def test_an_interrupted_save_leaves_the_previous_file_intact(tmp_path, monkeypatch, where):
    rso, sgd = _pair(cycles=1)
    path = save_session(tmp_path / "run.rso.npz", rso, sgd)
    before = path.read_bytes()
    _advance(rso.events(), WeightTried, 5)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt if where == "interrupt" else OSError(28, "No space left on device")

    monkeypatch.setattr(f"rso_engine.files.os.{'replace' if where == 'replace' else 'fsync'}", boom)
    with pytest.raises(
        KeyboardInterrupt if where == "interrupt" else SessionError,
        match=None if where == "interrupt" else "No space left on device.*previous file",
    ):
        save_session(path, rso, sgd)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.rso.npz"]  # no temporary file left behind


def _rewrite_header(src, dst, change):
    header, arrays = read_checkpoint(src, kind="rso-session")
    change(header)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(dst, **arrays)
    return dst


def test_newer_unknown_and_foreign_files_are_refused_clearly(tmp_path):
    rso, sgd = _pair(cycles=1)
    path = save_session(tmp_path / "ok.rso.npz", rso, sgd)

    later = SESSION_VERSION + 1
    newer = _rewrite_header(path, tmp_path / "newer.npz", lambda h: h["extra"].update(session_version=later))
    with pytest.raises(SessionError, match=rf"saved by a newer rso .*session format version {later}.*upgrade rso"):
        load_session(newer, dataset=sample(), backend=NUMPY)
    newer_file = _rewrite_header(path, tmp_path / "newer2.npz", lambda h: h.update(version=7))
    with pytest.raises(SessionError, match="newer rso"):
        load_session(newer_file, dataset=sample(), backend=NUMPY)
    unknown = _rewrite_header(path, tmp_path / "unknown.npz", lambda h: h["extra"].update(session_version="1b"))
    with pytest.raises(SessionError, match="unknown session format version '1b'"):
        read_session_info(unknown)

    checkpoint = save_checkpoint(tmp_path / "ck.npz", rso)
    with pytest.raises(SessionError, match="a training checkpoint, not a session.*rso train --resume"):
        load_session(checkpoint)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(SessionError, match="not an rso session"):
        load_session(tmp_path / "other.npz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SessionError, match="not a readable rso file"):
        load_session(tmp_path / "notes.txt")
    with pytest.raises(SessionError, match="no such file"):
        load_session(tmp_path / "missing.rso.npz")


def test_sessions_from_the_previous_version_open_unless_their_network_changed(tmp_path):
    rso, sgd = _pair(cycles=2)
    _advance(rso.events(), WeightTried, 5)
    path = save_session(tmp_path / "new.rso.npz", rso, sgd)

    def as_version_1(h):  # as rso 0.1 wrote it: format version 1, no anneal_to in the configs
        h["version"] = 1
        for entry in h["trainers"]:
            entry["config"].pop("anneal_to")

    old = _rewrite_header(path, tmp_path / "old.rso.npz", as_version_1)
    opened = load_session(old, dataset=sample(), backend=NUMPY)
    assert opened.rso.steps == rso.steps > 0 and opened.rso.config.anneal_to == 0.1

    paper = _rewrite_header(path, tmp_path / "paper.rso.npz", lambda h: (
        as_version_1(h), [e["config"].update(model="papernet") for e in h["trainers"]]))
    with pytest.raises(SessionError, match=r"made by an older version of rso.*paper net.*start a new run"):
        load_session(paper, dataset=sample(), backend=NUMPY)


def test_the_cheap_look_at_a_session_checks_its_header_configs_and_histories(tmp_path):
    rso, sgd = _pair(cycles=1)
    _advance(rso.events(), WeightTried, 3)
    path = save_session(tmp_path / "ok.rso.npz", rso, sgd)

    def old_config(h):  # a config as an older rso wrote it: a field missing gets its default
        h["trainers"][0]["config"].pop("anneal_to")

    info = read_session_info(_rewrite_header(path, tmp_path / "old.rso.npz", old_config))
    assert info["runs"][0]["config"]["anneal_to"] == 0.1 and info["runs"][1]["config"]["algorithm"] == "sgd"
    for change, match in [
        (lambda h: h["trainers"].pop(), r"lists 1 runs for roles \['rso', 'sgd'\]"),
        (lambda h: h["extra"].update(roles=["rso", {}]), r"roles"),
        (lambda h: h["trainers"][0]["config"].update(algorithm="sgd"), r"its runs are \['sgd', 'sgd'\]"),
        (lambda h: h["trainers"][1]["config"].update(cycles="2"), r"the config of run 2 is not valid.*cycles"),
        (lambda h: h["trainers"][0]["state"]["history"][0].pop(), r"run 1 \(rso\): history row 1 must be a list of 8"),
        (lambda h: h["trainers"][0].update(state=[]), r"run 1 in its header is not an object with a config and a st"),
        (lambda h: h.update(trainers={}), r"lists no runs"),
    ]:
        bad = _rewrite_header(path, tmp_path / "bad.rso.npz", change)
        with pytest.raises(SessionError, match=match):
            read_session_info(bad)
        with pytest.raises(SessionError, match=match):
            load_session(bad, dataset=sample(), backend=NUMPY)
    with pytest.raises(SessionError, match="its sgd run is a rso trainer"):
        save_session(tmp_path / "swapped.rso.npz", rso, rso)


def test_race_lanes_are_saved_after_the_main_runs_and_continue_exactly(tmp_path):
    """Lanes (extra RSO/SGD runs) are saved as role "lane" in a version-2 file and come back exactly;
    a lane-less file stays version 1, and a version-1 file that claims lanes is refused."""
    rso, sgd = _pair(cycles=2)
    lane_cfg = tiny_config(cycles=2, batch_size=8)
    lane = make_trainer(lane_cfg, sample(), NUMPY, evaluator="reference")
    lane_sgd = make_trainer(lane_cfg.replace(algorithm="sgd", lr=0.05), sample(), NUMPY)
    lane.set_chunking(5)
    _advance(rso.events(), WeightTried, 13)
    _advance(lane.events(), WeightTried, 45)
    _advance(lane_sgd.events(), SGDStep, 9)
    path = save_session(tmp_path / "race.rso.npz", rso, None, lanes=[lane, lane_sgd])
    info = read_session_info(path)
    assert info["session_version"] == 2 and [r["role"] for r in info["runs"]] == ["rso", "lane", "lane"]
    session = load_session(path, dataset=sample(), backend=NUMPY)
    assert session.sgd is None and [t.algorithm for t in session.lanes] == ["rso", "sgd"]
    for saved, loaded in zip((lane, lane_sgd), session.lanes):
        assert params_equal(saved.model.params, loaded.model.params)
        assert without_seconds(saved.history) == without_seconds(loaded.history)
    lane.run()
    session.lanes[0].run()
    assert params_equal(lane.model.params, session.lanes[0].model.params)
    assert without_seconds(lane.history) == without_seconds(session.lanes[0].history)

    assert read_session_info(save_session(tmp_path / "plain.rso.npz", rso, sgd))["session_version"] == 1
    old = _rewrite_header(path, tmp_path / "old.npz", lambda h: h["extra"].update(session_version=1))
    with pytest.raises(SessionError, match="damaged.*roles"):
        read_session_info(old)
