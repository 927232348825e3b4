"""The Algorithm panel: the lit line and its bound values follow the engine when stepping; the counts at
full speed are the engine's; the lines follow the variant that runs."""

from __future__ import annotations

import numpy as np
import pytest

from rso_engine.events import WeightTried
from rso_engine.training import RSOTrainer
from rso_engine.vocabulary import RunState
from rso_gui.live.runner import PAUSE
from rso_gui.live.snapshot import BATCH_THUMBS
from rso_gui.views.algorithm import algorithm_lines

WAIT = 30_000


def drawn(w, snap) -> bool:
    return w._snap is snap and w.algorithm.values.get("index") is not None or snap.last is None


def test_the_lit_line_and_its_values_follow_each_step(make_window, qtbot):
    w = make_window()
    c, panel = w.controller, w.algorithm
    qtbot.waitUntil(lambda: c.state == RunState.PAUSED and w._snap is c.latest(), timeout=WAIT)
    assert panel.lit == "init"  # nothing tried yet: the weights have just been initialised
    up = c.latest().algorithm.upcoming
    assert panel.values["param"] == up[2] and panel.values["sigma"] == up[6]
    for expected in (1, 2, 3):
        w.step_weight()
        qtbot.waitUntil(lambda e=expected: c.latest().steps == e and c.runner.mode == PAUSE, timeout=WAIT)
        snap = c.latest()
        qtbot.waitUntil(lambda s=snap: w._snap is s, timeout=WAIT)
        ev: WeightTried = snap.last
        assert ev.step == expected
        assert panel.lit == "keep"  # the weight's last line: the argmin was kept
        v = panel.values
        rso = c.runner.rso  # paused: the engine's state is exact and still
        B = ev.batch_size
        assert (v["cycle"], v["layer"], v["param"], v["index"]) == (ev.cycle, ev.layer, ev.param, tuple(ev.index))
        assert v["batch_size"] == B == rso.config.batch_size
        assert v["batch_index"] == tuple(int(i) for i in rso.batch_for_step(ev.step)[:BATCH_THUMBS])
        assert v["delta"] == ev.delta and v["sigma"] == pytest.approx(rso.sigma(ev.param, ev.cycle))
        assert v["losses"] == (ev.loss_plus / B, ev.loss_stay / B, ev.loss_minus / B)
        assert (v["choice"], v["old"], v["new"]) == (ev.choice, ev.old, ev.new)
        rows = panel._rows
        assert f"{ev.delta:+.4g}" in rows["delta"][2].text()
        assert f"{ev.loss_plus / B:.4f}" in rows["losses"][2].text()
        assert f"{ev.new:+.4f}" in rows["keep"][2].text()
        assert f"{', '.join(map(str, ev.index))}" in rows["weight"][2].text()
        assert panel.thumbs.pixmap() is not None and not panel.thumbs.pixmap().isNull()
        assert panel.thumbs.pixmap().width() > panel.thumbs.pixmap().height() * 4  # 8 images side by side


def test_counts_at_full_speed_are_the_engines(make_window, qtbot, tiny):
    w = make_window(sgd=False)
    c, panel = w.controller, w.algorithm
    qtbot.waitUntil(lambda: c.state == RunState.PAUSED, timeout=WAIT)
    w.toggle()  # full speed (the default)
    qtbot.waitUntil(lambda: c.state == RunState.RUNNING and c.latest().steps > 60 and w._snap is c.latest(),
                    timeout=WAIT)  # fmt: skip
    assert panel.lit is None  # at full speed no line is lit: the lines count
    w.toggle()
    qtbot.waitUntil(lambda: c.state == RunState.PAUSED and w._snap is c.latest(), timeout=WAIT)
    n = c.latest().steps
    # the same run, headless, to the same weight: its own decisions counted
    rso = RSOTrainer(tiny)
    kept = {1: 0, 0: 0, -1: 0}
    for ev in rso.events():
        if isinstance(ev, WeightTried):
            kept[ev.choice] += 1
            if ev.step == n:
                break
    assert panel.counts == {"tried": n, "plus": kept[1], "stay": kept[0], "minus": kept[-1]}
    assert f"tried {n:,}" in panel._rows["weight"][3].text()
    assert f"w+Δ {kept[1]:,}" in panel._rows["keep"][3].text()
    assert f"{3 * n:,} losses" in panel._rows["losses"][3].text()
    assert panel.lit == "keep"  # paused again: the last decision is bound


def test_the_lines_follow_the_variant():
    keys = [k for k, _, _ in algorithm_lines("sequential", "weight", "output-first")]
    assert keys == ["normalise", "init", "cycle", "layer", "weight", "batch", "delta", "losses", "keep"]
    layer = algorithm_lines("sequential", "layer", "output-first")
    assert [k for k, _, _ in layer].index("batch") < [k for k, _, _ in layer].index("weight")
    cycle = [k for k, _, _ in algorithm_lines("sequential", "cycle", "input-first")]
    assert cycle.index("batch") < cycle.index("layer")
    assert "input first" in dict((k, code) for k, _, code in algorithm_lines("sequential", "cycle", "input-first"))[
        "layer"]
    par = algorithm_lines("layer-parallel", "weight", "output-first")
    assert [k for k, _, _ in par][-1] == "merge" and "W⁰" in dict((k, c) for k, _, c in par)["losses"]
    neuron = [k for k, _, _ in algorithm_lines("neuron-parallel", "weight", "output-first")]
    assert neuron.index("neuron") < neuron.index("weight") and neuron[-1] == "merge"


def test_a_parallel_run_lights_the_merge_line_at_the_layers_end(make_window, qtbot, tiny):
    if "update" not in tiny.to_dict():
        pytest.skip("RunConfig has no update variants yet")
    w = make_window(tiny.replace(update="layer-parallel"), sgd=False)
    c, panel = w.controller, w.algorithm
    qtbot.waitUntil(lambda: c.state == RunState.PAUSED and w._snap is c.latest(), timeout=WAIT)
    assert "merge" in panel._rows and "layer-parallel" in panel.variant.text()
    w.step_weight()
    qtbot.waitUntil(lambda: c.latest().steps == 1 and c.runner.mode == PAUSE and w._snap is c.latest(), timeout=WAIT)
    assert panel.lit == "keep"
    w.step_layer()  # conv1's 40 weights (the tiny run sweeps the input layer first)
    qtbot.waitUntil(lambda: c.latest().steps == 40 and c.runner.mode == PAUSE and w._snap is c.latest(),
                    timeout=WAIT)  # fmt: skip
    assert panel.lit == "merge" and "40" in panel._rows["merge"][2].text()
    np.testing.assert_equal(panel.values["layer"], "conv1")
