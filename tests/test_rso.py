"""RSO (Algorithm 1) with the reference evaluator: choices, ties, σ annealing, order, reproducibility."""

import numpy as np
import pytest

from helpers import params_equal, sample, tiny_config, without_seconds
from rso_engine.backend import get_backend, to_numpy
from rso_engine.config import ConfigError, RunConfig
from rso_engine.evaluators import choose, choose_many
from rso_engine.events import MINUS, PLUS, STAY, ChunkDone, CycleDone, Evaluated, LayerDone, WeightTried
from rso_engine.experiment import load_checkpoint, save_checkpoint
from rso_engine.models import cross_entropy
from rso_engine.training import RSOTrainer, sigma_scale
from rso_engine.training.batches import BatchStream

NUMPY = get_backend("numpy")


def trainer(evaluator="reference", **changes):
    return RSOTrainer(tiny_config(**changes), sample(), NUMPY, evaluator=evaluator)


def weight_events(t, limit=None):
    out = []
    for ev in t.events():
        if isinstance(ev, WeightTried):
            out.append(ev)
            if limit and len(out) >= limit:
                break
    return out


def test_choose_takes_the_argmin_and_ties_keep_the_weight():
    assert choose(1.0, 2.0, 3.0) == PLUS
    assert choose(3.0, 2.0, 1.0) == MINUS
    assert choose(3.0, 1.0, 2.0) == STAY
    assert choose(1.0, 1.0, 2.0) == STAY  # tie with stay keeps W
    assert choose(2.0, 1.0, 1.0) == STAY
    assert choose(1.0, 1.0, 1.0) == STAY
    assert choose(1.0, 2.0, 1.0) == PLUS  # a tie between w+Δ and w−Δ goes to w+Δ
    assert choose(float("nan"), 2.0, 3.0) == STAY  # NaN never wins
    losses = np.array([[1, 2, 3], [3, 2, 1], [3, 1, 2], [1, 1, 2], [1, 2, 1], [np.nan, 2, 3]], float)
    assert list(choose_many(losses)) == [choose(*row) for row in losses]


def test_reported_losses_are_real_and_the_argmin_is_kept():
    t = trainer(model="papernet", train_layers=["conv1", "fc"], cycles=1)
    t.set_chunking(1)  # each event is then the engine's real state
    gen = t.events()
    next(gen)  # the evaluation before training
    for _ in range(30):
        before = {k: v.copy() for k, v in t.model.params.items()}
        ev = next(gen)
        assert isinstance(ev, WeightTried)
        assert next(gen) == ChunkDone(ev.step, ev.layer, 1)  # every weight its own chunk: an exact state
        idx = t.batch_for_step(ev.step)
        xb, yb = t.x_train[:, idx], t.y_train[idx]
        P = dict(before)
        for value, reported in ((ev.old + ev.delta, ev.loss_plus), (ev.old, ev.loss_stay),
                                (ev.old - ev.delta, ev.loss_minus)):
            w = before[ev.param].copy()
            w[ev.index] = value
            P[ev.param] = w
            assert float(cross_entropy(t.model.forward(xb, P=P), yb)) == pytest.approx(reported, rel=1e-12)
        losses = [ev.loss_plus, ev.loss_stay, ev.loss_minus]
        assert ev.choice == choose(*losses)
        assert losses[1 - ev.choice] == min(losses)
        expected = {PLUS: ev.old + ev.delta, STAY: ev.old, MINUS: ev.old - ev.delta}[ev.choice]
        assert ev.new == pytest.approx(expected, rel=1e-15)
        assert t.model.params[ev.param][ev.index] == ev.new
        changed = [k for k in before if not np.array_equal(before[k], t.model.params[k])]
        assert changed in ([], [ev.param])


def test_a_weight_without_effect_ties_and_stays():
    t = trainer(train_layers=["fc"], cycles=1)
    # kill conv filter 0: its ReLU output is 0 everywhere, so fc weights reading channel 0 change nothing
    t.model.params["conv1.weight"][0] = 0.0
    t.model.params["conv1.bias"][0] = -1.0
    events = weight_events(t, limit=196 + 10)
    dead = [ev for ev in events if ev.index[1] < 196]  # fc.weight[0, j] for j in channel 0's 14×14 block
    assert len(dead) == 196
    for ev in dead:
        assert ev.loss_plus == ev.loss_stay == ev.loss_minus
        assert ev.choice == STAY and ev.new == ev.old
    assert any(ev.choice != STAY for ev in events[196:])


def test_sigma_schedule_is_the_authors_zero_based_one():
    # get_random_perturbation in the authors' train.py: σ_d·(α + (1 − α)·(C − e)/C), e = 0 … C − 1
    assert sigma_scale(0, 10) == 1.0
    assert sigma_scale(9, 10) == pytest.approx(0.1 + 0.9 / 10)
    assert sigma_scale(0, 1) == 1.0  # a single cycle is not annealed
    assert sigma_scale(2, 4, anneal_to=0.5) == pytest.approx(0.5 + 0.5 * 2 / 4)
    assert sigma_scale(3, 10, anneal=False) == 1.0
    t = trainer(cycles=3, anneal_to=0.2)
    sigma = t.model.sigma["conv1.weight"]
    events = [ev for ev in weight_events(t) if ev.param == "conv1.weight"]
    # the trainer draws Δ = z · σ_d · scale(e) from its own stream: recompute the z's
    z = np.random.default_rng([0, 1]).standard_normal(3 * 40)
    ratios = np.array([ev.delta for ev in events if ev.param == "conv1.weight"]) / sigma
    per_cycle = np.array([[0.2 + 0.8 * (3 - e) / 3] * 36 for e in (0, 1, 2)]).ravel()
    zw = np.concatenate([z[c * 40 : c * 40 + 36] for c in range(3)])
    np.testing.assert_allclose(ratios, zw * per_cycle, rtol=1e-12)
    assert ratios[:36] / zw[:36] == pytest.approx(np.ones(36))


def test_anneal_to_is_validated():
    for bad in (0, -0.1, 1.5, float("nan"), True, "0.1"):
        with pytest.raises(ConfigError, match="anneal_to"):
            RunConfig(anneal_to=bad).validated()


def test_sweep_order_is_output_layer_first_then_c_order():
    t = trainer(train_layers=None, model="oneconv")
    order = t.sweep_order()
    assert order[0] == ("fc.weight", (0, 0)) and order[1] == ("fc.weight", (0, 1))
    assert order[784] == ("fc.weight", (1, 0))
    assert order[7840] == ("fc.bias", (0,))
    assert order[7850] == ("conv1.weight", (0, 0, 0, 0))
    assert order[7851] == ("conv1.weight", (0, 0, 0, 1))
    assert order[7853] == ("conv1.weight", (0, 0, 1, 0))
    assert order[-1] == ("conv1.bias", (3,))
    assert len(order) == 7890
    p = RSOTrainer(tiny_config(model="papernet", train_layers=None), sample(), NUMPY, evaluator="reference")
    params = list(dict.fromkeys(name for name, _ in p.sweep_order()))
    assert params[:5] == ["fc.weight", "conv6.weight", "bn6.gamma", "bn6.beta", "conv5.weight"]
    assert params[-3:] == ["conv1.weight", "bn1.gamma", "bn1.beta"]


def test_events_follow_the_sweep_order_and_layer_structure():
    t = trainer(model="twoconv", train_layers=["conv1"], cycles=1, in_layer_order="reverse")
    events = list(t.events())
    weights = [(ev.param, ev.index) for ev in events if isinstance(ev, WeightTried)]
    assert weights == t.sweep_order()
    assert weights[0] == ("conv1.bias", (15,))  # inverted order inside the layer
    kinds = [type(ev) for ev in events if not isinstance(ev, (WeightTried, ChunkDone))]
    assert kinds == [Evaluated, LayerDone, CycleDone, Evaluated]
    assert next(ev for ev in events if isinstance(ev, LayerDone)).ends_cycle
    # a ChunkDone closes each chunk: right after the WeightTried of its step, chunks adding up to the layer
    chunks = [(i, ev) for i, ev in enumerate(events) if isinstance(ev, ChunkDone)]
    assert sum(ev.n_weights for _, ev in chunks) == 160 and chunks[-1][1].step == 160
    assert all(events[i - 1].step == ev.step for i, ev in chunks)
    done = next(ev for ev in events if isinstance(ev, LayerDone))
    assert done.n_weights == 160 and done.n_changed == sum(
        ev.choice != STAY for ev in events if isinstance(ev, WeightTried))


def test_search_bn_off_and_layer_order_input_first():
    t = RSOTrainer(tiny_config(model="papernet", train_layers=["conv1", "conv2"], search_bn=False,
                               layer_order="input-first"), sample(), NUMPY, evaluator="reference")
    params = list(dict.fromkeys(name for name, _ in t.sweep_order()))
    assert params == ["conv1.weight", "conv2.weight"]


def test_batch_streams_are_chunk_invariant_and_batches_distinct():
    a = BatchStream(100, 16, np.random.default_rng(5))
    b = BatchStream(100, 16, np.random.default_rng(5))
    whole = a.take(20)
    parts = np.concatenate([b.take(3), b.take(1), b.take(16)])
    assert np.array_equal(whole, parts)
    assert all(len(set(row)) == 16 for row in whole)
    with pytest.raises(ValueError, match="larger than"):
        BatchStream(10, 16, np.random.default_rng(0))


@pytest.mark.parametrize("mode", ["weight", "layer", "cycle"])
def test_same_config_same_numbers_and_chunking_does_not_matter(mode):
    runs = []
    for chunk in (4096, 1, 7):
        t = trainer(batch_mode=mode, model="mlp", train_layers=["fc2"], n_train=64, batch_size=8, cycles=2)
        t.set_chunking(chunk, seconds=1e9 if chunk > 1 else None)
        history = t.run()
        runs.append((without_seconds(history), t.model.params_numpy()))
    for hist, params in runs[1:]:
        assert hist == runs[0][0]
        assert params_equal(params, runs[0][1])


def test_batch_modes_share_batches_as_documented():
    for mode, expected_distinct in (("layer", 2), ("cycle", 1)):
        t = trainer(batch_mode=mode, model="papernet", train_layers=["conv1", "fc"], n_train=64, batch_size=8,
                    cycles=1, evaluator="auto")  # which batch a weight gets does not depend on the evaluator
        t.set_chunking(1)
        seen = set()
        for ev in t.events():
            if isinstance(ev, WeightTried):
                seen.add(tuple(t.batch_for_step(ev.step)))
        assert len(seen) == expected_distinct, mode


def test_stay_decay_shrinks_the_kept_weight():
    t = trainer(stay_decay=0.5, cycles=1)
    stays = [ev for ev in weight_events(t) if ev.choice == STAY]
    assert stays, "expected some weights to be kept"
    for ev in stays:
        assert ev.new == pytest.approx(ev.old * 0.5)


@pytest.mark.parametrize("stop_after", [5, 40, 77])
def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path, stop_after):
    cfg = dict(train_layers=["fc2"], n_train=64, batch_size=8, cycles=2, model="mlp")  # 330 weights a cycle
    full = trainer(**cfg)
    full.run()
    part = trainer(**cfg)
    gen = part.events()
    for _ in range(stop_after):
        next(gen)
    path = save_checkpoint(tmp_path / "run.npz", part)
    (resumed,), _ = load_checkpoint(path, dataset=sample(), backend=NUMPY, evaluator="reference")
    resumed.run()
    assert params_equal(resumed.model.params_numpy(), full.model.params_numpy())
    assert without_seconds(resumed.history) == without_seconds(full.history)
    assert resumed.forward_samples == full.forward_samples and resumed.steps == full.steps


def test_a_nan_loss_stops_with_a_clear_error():
    from rso_engine.training import TrainingError

    t = trainer(cycles=1)
    t.model.params["fc.weight"][:] = np.nan
    with pytest.raises(TrainingError, match="loss is nan"):
        list(t.events())


def test_rso_learns_on_the_sample():
    t = trainer(train_layers=None, n_train=512, batch_size=32, cycles=1, dtype="float32",
                model="oneconv", n_test=500, evaluator="auto")
    t.run()
    first, last = t.history[0], t.history[-1]
    assert last.train_loss < first.train_loss * 0.8
    assert last.test_accuracy > 0.2  # chance is 0.1
    assert last.weight_updates == 7890 and last.forward_samples == 3 * 32 * 7890
    assert np.isfinite(to_numpy(t.model.params["fc.weight"])).all()


@pytest.mark.parametrize("orders", [("forward", "output-first"), ("reverse", "input-first")])
def test_the_trainer_says_which_weight_comes_next_and_its_sigma(orders):
    """At every exact state (ChunkDone, LayerDone, Evaluated) upcoming() names the next WeightTried and the
    σ its Δ is drawn with, across tensor, layer and cycle boundaries; σ checked against the authors' formula
    written out (0-based e), and cycle_progress against counting."""
    in_layer, layer_order = orders
    C, alpha = 3, 0.3
    t = trainer(model="papernet", train_layers=["fc", "conv1"], cycles=C, anneal_to=alpha, n_train=32,
                batch_size=4, in_layer_order=in_layer, layer_order=layer_order, evaluator="auto")
    t.set_chunking(7)
    wpc = t.weights_per_cycle
    up, seen = t.upcoming(), 0
    for ev in t.events():
        if isinstance(ev, WeightTried):
            if up is not None:  # the weight after an exact state: what upcoming() said there
                assert (up.cycle, up.layer, up.param, up.index, up.position, up.layer_size) == (
                    ev.cycle, ev.layer, ev.param, ev.index, ev.position, ev.layer_size)
                e = ev.cycle - 1
                assert up.sigma == pytest.approx(t.model.sigma[ev.param] * (alpha + (1 - alpha) * (C - e) / C))
                seen += 1
            up = None
            assert t.cycle_progress(ev.step) == ((ev.step - 1) // wpc + 1, (ev.step - 1) % wpc + 1)
        else:  # an exact state
            up = t.upcoming()
    assert up is None and seen > (3 * wpc) // 7  # every chunk's first weight was announced
    with pytest.raises(ValueError, match="cycle"):
        t.sigma_scale(0)  # the method takes the 1-based cycle of the events; 0 is not one
    order = t.sweep_order()
    for k in range(len(order) - 1):
        if order[k + 1][0] == order[k][0]:
            assert t.neighbour(*order[k]) == order[k + 1][1]
    last = [k for k, (p, _) in enumerate(order) if p == "fc.weight"][-1]
    assert t.neighbour("fc.weight", order[last][1]) == order[last - 1][1]  # the last one looks back


def test_chunking_is_validated_and_the_trainer_is_done_at_the_end():
    t = trainer(cycles=1)
    for bad in ({"max_weights": 0}, {"seconds": 0.0}, {"max_weights": True}):
        with pytest.raises(ValueError):
            t.set_chunking(**bad)
    t.set_chunking(3, seconds=0.5)
    assert t.chunking == (3, 0.5)
    t.set_chunking()
    assert t.chunking == (4096, 0.02)
    t.run()
    assert t.upcoming() is None and t.cycle == 1 and t.cycle_progress() == (1, t.weights_per_cycle)


def test_one_cycle_is_not_annealed_and_learns_three_cycles_are():
    """The authors' schedule: cycle e = 0 runs at the full σ_d, so a 1-cycle run is the same with and without
    annealing (and OneConv at batch 64 learns the sample to ≥ 50% in it); later cycles shrink σ."""
    ds = sample()

    def run(cycles, anneal):
        t = RSOTrainer(RunConfig(model="oneconv", batch_size=64, cycles=cycles, anneal=anneal,
                                 train_layers=None if cycles == 1 else ["conv1"]), ds, NUMPY)
        return without_seconds(t.run()), t.model.params_numpy()

    (h_on, p_on), (h_off, p_off) = run(1, True), run(1, False)
    assert h_on == h_off and params_equal(p_on, p_off)
    assert h_on[-1].test_accuracy >= 0.5
    (h3_on, p3_on), (h3_off, p3_off) = run(3, True), run(3, False)
    assert h3_on[1] == h3_off[1]  # the first cycle still agrees
    assert not params_equal(p3_on, p3_off)


def test_a_saved_step_count_must_agree_with_the_sweep_position():
    from rso_engine.training.state import StateError

    t = trainer(cycles=2)
    t.set_chunking(7)
    gen = t.events()
    for _ in range(60):
        next(gen)
    meta, arrays = t.state_dict()
    fresh = trainer(cycles=2)
    fresh.load_state_dict(meta, arrays)  # as saved: fine
    assert fresh.steps == t.steps
    meta["rso"]["steps"] += 1
    with pytest.raises(StateError, match="rso.steps"):
        trainer(cycles=2).load_state_dict(meta, arrays)
