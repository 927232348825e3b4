"""Race lanes: the fairness rule, lanes that advance level with the main run, sessions, the compare panel."""

from __future__ import annotations

import time

import numpy as np
import pytest

from helpers import WAIT_S as TIMEOUT
from helpers import wait_for
from rso_engine.session import load_session
from rso_engine.vocabulary import X_AXES, RunState
from rso_gui.live.lanes import (
    MAX_LANES,
    LaneSet,
    LaneSpec,
    lane_config,
    max_lanes,
    next_lane,
    progress,
    variant,
)
from rso_gui.live.runner import PAUSE


# ------------------------------------------------------------------------------------------ the rule
def test_the_rule_picks_the_unfinished_run_furthest_behind_main_first_on_ties():
    assert next_lane([10, 5, 7], [False, False, False]) == 1
    assert next_lane([5, 5, 7], [False, False, False]) == 0  # a tie: the main run goes first
    assert next_lane([3, 5, 7], [True, False, False]) == 1  # a finished run never goes
    assert next_lane([3, 5, 7], [True, True, True]) is None
    assert next_lane([9, 9, 2], [False, False, False]) == 2
    with pytest.raises(ValueError):
        next_lane([1, 2], [False])


def test_lane_settings_share_model_data_and_seed_with_the_main_run(tiny):
    other = tiny.replace(model="twoconv", seed=7, n_train=512, batch_size=128, update="layer-parallel")
    cfg = lane_config(tiny, other)
    assert (cfg.model, cfg.seed, cfg.n_train, cfg.dataset) == (tiny.model, tiny.seed, tiny.n_train, tiny.dataset)
    assert (cfg.batch_size, cfg.update) == (128, "layer-parallel")
    assert variant(tiny, "SGD").config.algorithm == "sgd"
    assert variant(tiny, "RSO batch 256").config.batch_size == 256
    assert max_lanes(True) == MAX_LANES - 1 and max_lanes(False) == MAX_LANES
    with pytest.raises(ValueError, match="at most"):
        LaneSet([variant(tiny, "SGD")] * (MAX_LANES + 1))
    with pytest.raises(ValueError, match="fairness"):
        LaneSet((), "fastest")
    spec = variant(tiny, "RSO layer-parallel")
    assert LaneSpec.from_dict(spec.to_dict()) == spec


def test_catch_up_keeps_every_lane_within_one_exact_state_of_the_main_run(tiny):
    """Driven by hand: after each main chunk the lanes behind advance until none is behind, so each lane's
    forward samples reach the main run's and exceed it by less than one of the lane's own chunks."""
    from rso_engine.events import ChunkDone
    from rso_engine.training import RSOTrainer

    main = RSOTrainer(tiny)
    main.set_chunking(4)
    lanes = LaneSet([variant(tiny, "RSO batch 64"), variant(tiny, "SGD")], "samples")
    lanes.prepare(tiny, main.dataset)
    lanes.lanes[0].trainer.set_chunking(3)
    gen = main.events()
    next(gen)
    chunks = 0
    for ev in gen:
        if type(ev) is not ChunkDone:
            continue
        chunks += 1
        lanes.catch_up(main)
        m = progress(main, "samples")
        rso_lane, sgd_lane = (lane.trainer for lane in lanes.lanes)
        assert m <= progress(rso_lane, "samples") < m + 3 * 3 * 64  # one chunk: 3 weights × 3 passes × 64
        if not sgd_lane.finished:  # (the SGD lane's whole run is 16 steps of 32 images)
            assert m <= progress(sgd_lane, "samples") < m + sgd_lane.batch_size
        if chunks == 12:
            break
    assert lanes.lanes[0].trainer.steps >= main.steps * 16 // 64 > 0 and lanes.lanes[1].trainer.finished


# ------------------------------------------------------------------------------------------ the runner


@pytest.fixture
def small(tiny):
    """conv1 only (40 weights a cycle): a whole race in well under a second of compute."""
    return tiny.replace(train_layers=["conv1"], cycles=3)


@pytest.mark.parametrize("rule", ["samples", "cycles"])
def test_the_runner_races_the_lanes_fairly_to_the_end(start, small, rule):
    lanes = (variant(small, "RSO batch 64"), variant(small, "SGD"))
    r = start(small, sgd=True, lanes=lanes, fairness=rule)
    levels = []

    def measure():  # on the engine thread, between bursts: the exact counts
        runs = [r.rso, *r.lanes.trainers]
        return [progress(t, rule) for t in runs], [t.finished for t in runs], [len(t.history) for t in runs]

    seen = []
    r.set_rate(60)
    r.play()
    while r.state != RunState.FINISHED:
        try:
            levels.append(r.call_between(measure).result(TIMEOUT))
        except RuntimeError:
            break
        if r.latest is not None:
            seen.append(r.latest)
        time.sleep(0.02)
    wait_for(lambda: r.state == RunState.FINISHED)
    snap = r.latest
    assert snap.finished and [v.number for v in snap.lanes] == [2, 3]
    assert [v.label for v in snap.lanes] == ["RSO batch 64", "SGD"]
    assert [v.algorithm for v in snap.lanes] == ["rso", "sgd"]
    for view, lane in zip(snap.lanes, r.lanes.lanes, strict=True):
        assert view.finished and lane.trainer.finished and len(view.history) == small.cycles + 1
        assert view.filters is not None and view.filters.shape == snap.params[view.filter_param].shape
    # each lane's history grew during the race, not only at its end
    assert len({s.lanes[0].history[-1].cycle for s in seen if s.lanes}) >= 3
    # fair: whenever the main run was still going, no lane was behind it by more than one of its exact states
    main_rso, lane_rso, lane_sgd = (r.rso, *r.lanes.trainers)
    step = {
        "samples": (3 * main_rso.config.batch_size, 3 * 64, lane_sgd.batch_size),
        "cycles": (1 / main_rso.weights_per_cycle, 1 / lane_rso.weights_per_cycle, 1 / lane_sgd.steps_per_epoch),
    }[rule]
    checked = 0
    for prog, done, _ in levels:
        if done[0]:
            continue
        for k in (1, 2):
            if not done[k]:
                assert prog[k] >= prog[0] - 1e-9, (rule, prog)  # caught up
                # and ahead by less than one of its own chunks (RSO: the trainer's chunk, at most 64 weights)
                assert prog[k] - prog[0] < step[k] * (64 if k == 1 else 1) + step[0] * 64, (rule, prog)
                checked += 1
    assert checked >= 3 and r.lanes.rounds > 0


def test_a_session_with_lanes_continues_each_lane_exactly(start, small, tmp_path):
    from rso_engine.session import save_session

    lanes = (variant(small, "RSO batch 64"), variant(small, "SGD"))
    r = start(small, sgd=True, lanes=lanes)
    for _ in range(3):
        r.step_weight(7)
        wait_for(lambda: r.mode == PAUSE and r.state == RunState.PAUSED)
    path = r.call_between(lambda: save_session(tmp_path / "race.rso.npz", r.rso, r.sgd, lanes=r.lanes.trainers)).result(
        TIMEOUT
    )
    before = [
        ({k: np.array(v) for k, v in t.model.params.items()}, list(t.history), t.forward_samples)
        for t in r.lanes.trainers
    ]
    assert all(fs > 0 for _, _, fs in before)
    opened = load_session(path, dataset=r.rso.dataset)
    assert len(opened.lanes) == 2
    for (params, history, fs), t in zip(before, opened.lanes, strict=True):
        assert all(np.array_equal(params[k], np.asarray(t.model.params[k])) for k in params)
        assert [h._replace(seconds=0) for h in history] == [h._replace(seconds=0) for h in t.history]
        assert t.forward_samples == fs
    # continued in a runner: the lanes pick up where they were and run to the same end as uninterrupted
    r2 = start(small, sgd=True, lanes=lanes, session=str(path))
    assert [v.forward_samples for v in r2.latest.lanes] == [fs for _, _, fs in before]
    r.play()
    r2.play()
    wait_for(lambda: r.state == RunState.FINISHED and r2.state == RunState.FINISHED)
    for a, b in zip(r.lanes.trainers, r2.lanes.trainers, strict=True):
        assert all(np.array_equal(np.asarray(a.model.params[k]), np.asarray(b.model.params[k])) for k in a.model.params)
        assert [h._replace(seconds=0) for h in a.history] == [h._replace(seconds=0) for h in b.history]


# ------------------------------------------------------------------------------------------ the window
def _wait_paused(qtbot, w, timeout=60_000):
    c = w.controller
    qtbot.waitUntil(
        lambda: c.runner is not None and c.runner.mode == PAUSE and c.latest() is not None
        and c.latest().state != RunState.RUNNING and c.state in ("paused", "finished"),
        timeout=timeout,
    )  # fmt: skip


def test_the_window_races_lanes_draws_a_curve_and_legend_each_and_saves_them(make_window, qtbot, small, tmp_path):
    from rso_gui import exporting
    from rso_gui.lanes_dialog import add_lane, open_lanes_dialog, remove_lane, room
    from rso_gui.sessions import open_window_session, save_window_session

    w = make_window(small, sgd=True)
    assert w.compare.title == "Runs compared" and room(w) == 2
    add_lane(w, "RSO batch 64", fairness="cycles")  # equal cycles: every lane has a cycle done with the main run
    add_lane(w, "SGD")
    assert room(w) == 0 and w.controller.fairness == "cycles"
    assert [s.label for s in w.controller.lanes] == ["RSO batch 64", "SGD"]
    with pytest.raises(ValueError, match="four runs"):
        add_lane(w, "RSO layer-parallel")
    qtbot.waitUntil(lambda: w.controller.latest() is not None and len(w.controller.latest().lanes) == 2, timeout=30_000)
    w.controller.set_speed(None)
    w.controller.runner.step_layer()  # conv1: one cycle
    _wait_paused(qtbot, w)
    w.controller.runner.step_weight(9)
    _wait_paused(qtbot, w)
    w.refresh()
    snap = w.controller.latest()
    assert all(len(v.history) >= 2 for v in snap.lanes)  # each lane's history grew with the main run's
    p = w.compare
    for key in ("lane2", "lane3"):
        acc, loss = p.curves[key]
        assert acc.isVisible() and len(acc.xData) == len(snap.lanes[int(key[4:]) - 2].history)
    # one legend entry per run, in its colour
    text = p.summary.text()
    for name in ("1 · RSO", "SGD", "2 · RSO batch 64", "3 · SGD"):
        assert name in text, text
    assert p.lane_rows.isVisibleTo(p) and p.lane_rows.labels == ["1 · RSO", "2 · RSO batch 64", "3 · SGD"]
    # every x-axis draws every lane
    for axis in X_AXES:
        p.set_x_axis(axis)
        assert p.curves["lane3"][0].isVisible(), axis
    assert "2 · RSO batch 64" in (p.readout(float(p._data["lane2"][0][-1]), "accuracy") or "")

    # exports carry the lanes
    files = {f.name for f in exporting.export_all(w, tmp_path / "export")}
    assert "history-lane2-rso-batch-64.csv" in files and "history-lane3-sgd.json" in files
    # the session carries them, with their exact weights and histories
    path = save_window_session(w, tmp_path / "race")
    before = [(v.filters.copy(), v.history, v.forward_samples) for v in snap.lanes]
    lanes_before = w.controller.lanes
    remove_lane(w)
    assert len(w.controller.lanes) == 1
    dlg = open_lanes_dialog(w)
    assert dlg.list.count() == 3  # main, SGD baseline, one lane
    dlg.close()
    w.controller.set_lanes(())
    qtbot.waitUntil(lambda: w.controller.latest() is not None and not w.controller.latest().lanes, timeout=30_000)
    w.refresh()
    assert not p.lane_rows.isVisibleTo(p)

    open_window_session(w, path)
    assert w.controller.lanes == lanes_before
    qtbot.waitUntil(lambda: w.controller.latest() is not None and len(w.controller.latest().lanes) == 2, timeout=30_000)
    _wait_paused(qtbot, w)
    again = w.controller.latest()
    for (filters, history, samples), v in zip(before, again.lanes, strict=True):
        assert np.array_equal(filters, v.filters) and v.forward_samples == samples
        assert [h._replace(seconds=0) for h in history] == [h._replace(seconds=0) for h in v.history]


def test_the_sgd_baseline_takes_the_last_lane_s_place_when_four_runs_race(make_window, qtbot, small):
    from rso_gui.lanes_dialog import add_lane, room

    w = make_window(small, sgd=False)
    for source in ("RSO batch 64", "RSO layer-parallel", "SGD"):
        add_lane(w, source)
    assert room(w) == 0 and len(w.controller.lanes) == 3
    with qtbot.waitSignal(w.controller.noticed, timeout=5_000) as notice:
        w.controller.set_sgd_enabled(True)
    assert "SGD" in notice.args[0] and [s.label for s in w.controller.lanes] == ["RSO batch 64", "RSO layer-parallel"]
    qtbot.waitUntil(lambda: w.controller.latest() is not None and len(w.controller.latest().lanes) == 2, timeout=30_000)


def test_the_lanes_dialog_adds_from_a_variant_or_a_preset_removes_and_sets_the_rule(make_window, qtbot, small):
    from rso_gui.lanes_dialog import open_lanes_dialog

    w = make_window(small, sgd=True)
    dlg = open_lanes_dialog(w)
    assert dlg.list.count() == 2  # the main run and the SGD baseline
    dlg.source.setCurrentIndex(dlg.source.findData("RSO layer-parallel"))
    dlg.add_button.click()
    dlg.source.setCurrentIndex(dlg.source.findData("preset:quick-demo"))
    dlg.add_button.click()
    lanes = w.controller.lanes
    assert [s.label for s in lanes] == ["RSO layer-parallel", "quick-demo"] and not dlg.add_button.isEnabled()
    assert lanes[1].config.dataset == small.dataset and lanes[1].config.seed == small.seed  # the race's data
    assert dlg.list.count() == 4 and "layer-parallel" in dlg.list.item(2).text()
    dlg.fairness.setCurrentIndex(dlg.fairness.findData("cycles"))
    assert w.controller.fairness == "cycles"
    dlg.list.setCurrentRow(2)  # lane 2
    dlg.remove_button.click()
    assert [s.label for s in w.controller.lanes] == ["quick-demo"] and dlg.add_button.isEnabled()
    dlg.close()
    qtbot.waitUntil(lambda: w.controller.latest() is not None and len(w.controller.latest().lanes) == 1, timeout=30_000)
