"""The GUI's engine loop without Qt: exact pauses, stepping, SGD in step, snapshots, tile layouts."""

from __future__ import annotations

import time

import numpy as np
import pytest

from helpers import wait_for
from rso_engine.events import LayerDone, WeightTried
from rso_engine.training import RSOTrainer
from rso_engine.vocabulary import RunState
from rso_gui.live.probes import feature_maps
from rso_gui.live.runner import PAUSE, Runner
from rso_gui.live.snapshot import TRACE_EMPTY
from rso_gui.views.tiles import TileLayout


def test_single_steps_match_a_plain_trainer(start, tiny):
    """Stepping through the runner gives the same weights and decisions as iterating a trainer."""
    r = start(tiny, sgd=False)
    for k in range(1, 6):
        r.step_weight()
        wait_for(lambda k=k: r.mode == PAUSE and r.latest.steps == k)
    ref = RSOTrainer(tiny)
    ref.set_chunking(1)  # so its state after 5 events is the state after 5 weights
    evs = []
    gen = ref.events()
    while len(evs) < 5:
        ev = next(gen)
        if isinstance(ev, WeightTried):
            evs.append(ev)
    assert r.latest.last == evs[-1]
    for name, value in ref.model.params_numpy().items():
        np.testing.assert_array_equal(r.latest.params[name], value)
    trace = r.latest.trace
    assert list(trace[-5:]) == [ev.choice for ev in evs] and np.all(trace[:-5] == TRACE_EMPTY)


def test_step_requests_accumulate(start, tiny):
    r = start(tiny, sgd=False)
    r.step_weight(3)
    r.step_weight()
    wait_for(lambda: r.mode == PAUSE and r.latest.steps >= 4)
    time.sleep(0.05)
    assert r.weight_events == 4 == r.latest.steps


def test_pause_lands_on_an_exact_state_and_play_resumes(start, tiny):
    r = start(tiny, sgd=False, autoplay=True)
    wait_for(lambda: r.weight_events > 10)
    r.pause()
    wait_for(lambda: r.state == RunState.PAUSED)
    n = r.weight_events
    assert r.rso.steps == n == r.latest.steps  # no computed-but-unshown weights
    assert r.latest.curve is not None and r.latest.curve.exact
    r.play()
    wait_for(lambda: r.weight_events > n)


def test_sgd_keeps_pace_with_rso_and_both_finish(start, tiny):
    cfg = tiny.replace(train_layers=["conv1"])  # 40 weights per cycle, 2 cycles
    r = start(cfg, autoplay=True)
    wait_for(lambda: r.state == RunState.FINISHED)
    snap = r.latest
    assert snap.finished and snap.steps == 80
    assert len(snap.rso_history) == len(snap.sgd_history) == 3
    assert r.sgd.finished and snap.sgd_steps == 2 * r.sgd.steps_per_epoch


def test_sgd_fraction_follows_rso(start, tiny):
    r = start(tiny)
    r.step_layer()  # conv1: 40 of 7,890 weights per cycle
    wait_for(lambda: r.mode == PAUSE and r.latest.steps == 40)
    frac_rso = r.rso.steps / (tiny.cycles * r.rso.weights_per_cycle)
    frac_sgd = r.sgd.steps / (tiny.cycles * r.sgd.steps_per_epoch)
    assert frac_sgd >= frac_rso and frac_sgd - frac_rso <= 1 / (tiny.cycles * r.sgd.steps_per_epoch) + 1e-9


def test_rate_limit_and_view_options(start, tiny):
    r = start(tiny, sgd=False, rate=200.0, autoplay=True)
    wait_for(lambda: r.weight_events >= 3)
    assert r.rso.chunking[0] <= 6  # a limited speed hands the evaluator small chunks
    r.pause()
    wait_for(lambda: r.state == RunState.PAUSED)
    seq = r.latest.seq
    r.set_view(landscape="2d-weights")
    wait_for(lambda: r.latest.seq > seq and r.latest.slice2d is not None)
    s = r.latest.slice2d.slice
    assert s.kind == "weights" and s.losses.shape == (21, 21) and np.all(np.isfinite(s.losses))
    r.set_view(features=False, digit=3)
    wait_for(lambda: r.latest.feature_maps == () and r.latest.digit is not None)
    with pytest.raises(ValueError):
        r.set_view(landscape="3d")
    with pytest.raises(KeyError):
        r.set_view(colour="red")


def test_feature_maps_and_info(start, tiny):
    r = start(tiny.replace(model="twoconv"), sgd=False)
    snap = r.latest
    info = r.info
    assert [name for name, _ in info.plan] == ["conv1", "conv2", "fc"]
    assert info.filter_params == ("conv1.weight", "conv2.weight")
    assert info.dense_inputs["fc.weight"] == (16, 7, 7)
    assert [m.shape for _, m in snap.feature_maps] == [(16, 28, 28), (16, 14, 14)]
    assert snap.digit.shape == (28, 28) and 0 <= snap.digit_label < 10
    assert snap.current[:2] == ("conv1", "conv1.weight") and snap.last is None
    assert snap.curve is not None and snap.curve.event is None  # the weight about to be tried


def test_stop_while_loading_returns_promptly(tiny):
    r = Runner(tiny)
    r.stop()
    r.run()  # returns at once: nothing to do
    assert r.state == RunState.STOPPED and r.rso is None


def test_errors_are_reported(start, tiny):
    msgs = []
    r = start(tiny.replace(batch_size=10_000), on_error=msgs.append)
    wait_for(lambda: r.state == "error")
    assert msgs and "batch size" in msgs[0]


@pytest.mark.parametrize(
    "shape, spatial, size",
    [
        ((4, 1, 3, 3), None, (3, 15)),  # 4 filters, one input channel: wrapped into a row
        ((16, 16, 3, 3), None, (63, 63)),  # filters across, input channels down
        ((10, 784), (4, 14, 14), (59, 149)),  # class templates: 10 × 4 tiles of 14×14
        ((10, 16), None, (16, 10)),  # a plain matrix, no gaps
        ((7,), None, (1, 7)),
    ],
)
def test_tile_layout_places_every_weight_once(shape, spatial, size):
    lay = TileLayout(shape, spatial)
    assert (lay.height, lay.width) == size
    values = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    img = lay.image(values)
    assert np.count_nonzero(lay.mask) == values.size and np.all(img[~lay.mask] == 0)
    for idx in [tuple(0 for _ in shape), tuple(s - 1 for s in shape), tuple(s // 2 for s in shape)]:
        r, c = lay.pixel(idx)
        assert img[r, c] == values[idx]


def test_what_the_window_shows_of_the_schedule_is_the_trainers(start, tiny):
    """σ on the landscape and the σ scale come from the trainer's schedule: full σ_d in the first cycle,
    annealed in the second; the weight shown before a decision is the trainer's next one."""
    cfg = tiny.replace(train_layers=["conv1"], cycles=2, anneal_to=0.5)  # 40 weights per cycle
    r = start(cfg, sgd=False)
    up = r.rso.upcoming()
    assert r.latest.current == (up.layer, up.param, up.index, up.position, up.layer_size)
    assert r.latest.cycle == 1 and r.latest.cycle_weights == 0
    assert r.latest.curve.sigma == up.sigma == r.rso.model.sigma[up.param]
    r.step_layer()
    wait_for(lambda: r.mode == PAUSE and r.latest.steps == 40)
    snap = r.latest  # the cycle's last weight: shown in its own cycle, at its own σ, the cycle complete
    assert (snap.cycle, snap.cycle_weights) == (1, 40) and snap.last.cycle == 1
    assert snap.curve.sigma == r.rso.model.sigma[snap.last.param]
    r.step_layer()  # a layer step from a layer's end runs the next layer (it used to do nothing)
    wait_for(lambda: r.mode == PAUSE and r.latest.steps == 80)
    snap = r.latest
    assert (snap.cycle, snap.cycle_weights) == (2, 40) and snap.last.cycle == 2
    assert snap.curve.sigma == pytest.approx(r.rso.model.sigma[snap.last.param] * 0.75)


def test_feature_maps_show_every_conv_block_of_the_paper_net(tiny):
    """One map per block: after each ReLU, and block 6's batch norm, which feeds global pooling directly."""
    t = RSOTrainer(tiny.replace(model="papernet"))
    image, label, pred, maps = feature_maps(t, 3)
    assert [name for name, _ in maps] == ["relu1", "relu2", "relu3", "relu4", "relu5", "bn6"]
    assert [m.shape for _, m in maps] == [(16, 28, 28), (16, 14, 14), (16, 14, 14), (16, 7, 7), (16, 7, 7), (16, 7, 7)]
    assert image.shape == (28, 28) and 0 <= pred < 10 and label == int(t.y_test[3])


def test_a_layer_parallel_run_shows_the_layer_start_until_the_merge(start, tiny):
    """Stepping a layer-parallel run: the weights the window shows stay at the layer's start, and jump at its end."""
    cfg = tiny.replace(train_layers=["conv1"], update="layer-parallel")
    r = start(cfg, sgd=False)
    before = r.latest.params["conv1.weight"].copy()
    for k in range(1, 4):
        r.step_weight()
        wait_for(lambda k=k: r.mode == PAUSE and r.latest.steps == k)
        np.testing.assert_array_equal(r.latest.params["conv1.weight"], before)
    r.step_layer()
    wait_for(lambda: r.mode == PAUSE and r.latest.steps == 40)
    after = r.latest.params["conv1.weight"]
    ref = RSOTrainer(cfg)
    for ev in ref.events():
        if isinstance(ev, LayerDone):  # the merge has happened
            break
    np.testing.assert_array_equal(after, ref.model.params_numpy()["conv1.weight"])
    assert not np.array_equal(after, before)
