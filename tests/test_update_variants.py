"""The paper's parallel updates and the authors' batch semantics, against plain reference implementations.

Each reference below is written from the definition alone (full forward passes of the model, the trainer's
random streams drawn one weight at a time) and shares no code with the trainer's variants: in float64 the
trainer must make the same choices and leave bitwise the same weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import sample
from rso_engine.backend import get_backend
from rso_engine.config import AUTHORS_PREFIX_CHUNK, ConfigError, RunConfig
from rso_engine.events import LayerDone, WeightTried
from rso_engine.experiment import load_checkpoint, save_checkpoint
from rso_engine.models import cross_entropy
from rso_engine.training import RSOTrainer
from rso_engine.training.batches import BatchStream
from rso_engine.training.parallel_update import neuron_size
from rso_engine.training.plan import sigma_scale

NUMPY = get_backend("numpy")


def _config(**kw) -> RunConfig:
    base = dict(model="oneconv", n_train=96, n_test=32, batch_size=8, cycles=1, dtype="float64",
                eval_train_samples=32, bn_calibration_samples=32)
    base.update(kw)
    return RunConfig(**base).validated()


def _trainer(evaluator="auto", **kw) -> RSOTrainer:
    return RSOTrainer(_config(**kw), sample(), NUMPY, evaluator=evaluator)


def _run(t: RSOTrainer) -> list[tuple]:
    return [(e.param, e.index, e.choice, e.new) for e in t.events() if isinstance(e, WeightTried)]


def reference_run(cfg: RunConfig, dataset=None) -> tuple[dict[str, np.ndarray], list[tuple]]:
    """The variants as defined, one weight at a time with full forward passes (float64), on ``dataset``
    (the bundled sample by default)."""
    t = RSOTrainer(cfg, dataset or sample(), NUMPY, evaluator="reference")  # only for its model, data and plan
    model, x, y = t.model, t.x_train, t.y_train
    delta_rng = np.random.default_rng([cfg.seed, 1])
    stream = BatchStream(t.n_train, cfg.batch_size, np.random.default_rng([cfg.seed, 2]))
    top = model.top_level_index()  # a layer inside a residual block runs from the block
    tried = []
    for e in range(cfg.cycles):
        shared = stream.take(1)[0] if cfg.batch_mode == "cycle" else None
        for planned in t.plan:
            if cfg.batch_mode == "layer":
                shared = stream.take(1)[0]
            start_layer = top[planned.name]
            frozen = None
            if cfg.batch_mode == "authors":  # the layer's input for the training set, BN over chunks of 2,000
                parts = [model.forward(x[:, s : s + AUTHORS_PREFIX_CHUNK], train=True, stop=start_layer)
                         for s in range(0, x.shape[1], AUTHORS_PREFIX_CHUNK)]
                frozen = np.concatenate(parts, axis=1 if parts[0].ndim == 4 else 0) if start_layer else x
            start = {p: model.params[p].copy() for p in planned.params}
            pending = {p: a.copy() for p, a in start.items()}
            for p in planned.params:
                shape = model.params[p].shape
                size = int(np.prod(shape))
                order = np.arange(size)[::-1] if cfg.in_layer_order == "reverse" else np.arange(size)
                sigma = model.sigma[p] * sigma_scale(e, cfg.cycles, cfg.anneal, cfg.anneal_to)
                per = neuron_size(shape) if cfg.update == "neuron-parallel" else 1
                for n, f in enumerate(order):
                    delta = delta_rng.standard_normal(1)[0] * sigma
                    idx = stream.take(1)[0] if shared is None else shared
                    if cfg.update == "layer-parallel" or (cfg.update == "neuron-parallel" and n % per == 0):
                        for q in planned.params:  # score against the layer's starting state
                            model.params[q][...] = start[q]
                        if cfg.update == "neuron-parallel":  # the neuron's own earlier choices stand
                            model.params[p].reshape(-1)[order[n - n % per : n]] = \
                                pending[p].reshape(-1)[order[n - n % per : n]]
                    view = model.params[p].reshape(-1)
                    w = float(view[f])
                    losses = []
                    for v in (w + delta, w * (1 - cfg.stay_decay), w - delta):
                        view[f] = v
                        if frozen is None:
                            out = model.forward(x[:, idx], train=True)
                        else:
                            rows = frozen[:, idx] if frozen.ndim == 4 else frozen[idx]
                            out = model.forward(rows, train=True, start=start_layer)
                        losses.append(float(cross_entropy(out, y[idx])))
                    lp, ls, lm = losses
                    choice = 0 if (ls <= lp and ls <= lm) else (1 if lp <= lm else -1)
                    value = (w * (1 - cfg.stay_decay), w + delta, w - delta)[{0: 0, 1: 1, -1: 2}[choice]]
                    view[f] = value
                    pending[p].reshape(-1)[f] = value
                    tried.append((p, tuple(int(i) for i in np.unravel_index(f, shape)), choice, float(value)))
            for q in planned.params:  # the merge (for "sequential" the values are already in place)
                model.params[q][...] = pending[q]
    return model.params_numpy(), tried


PAPER = dict(model="papernet", n_train=40, batch_size=4)
CASES = [  # (evaluator, options): small sweeps, since the references are slow
    ("auto", dict(update="layer-parallel", train_layers=["conv1"])),  # candidates stacked through per-sample layers
    ("auto", dict(update="layer-parallel", model="mlp", train_layers=["fc2"])),  # output layer, gathered batches
    ("auto", dict(update="layer-parallel", model="mlp", train_layers=["fc2"], batch_mode="layer", stay_decay=0.01)),
    ("auto", dict(update="layer-parallel", train_layers=["fc", "conv1"], search_bn=False, **PAPER)),  # BN after/before
    ("reference", dict(update="neuron-parallel", train_layers=["conv1"])),
    ("auto", dict(update="neuron-parallel", model="mlp", train_layers=["fc2"], in_layer_order="reverse")),
    ("auto", dict(update="neuron-parallel", train_layers=["conv1"], **PAPER)),
    ("reference", dict(batch_mode="authors", train_layers=["fc"], **PAPER)),
    ("layer-cached", dict(batch_mode="authors", train_layers=["fc"], **PAPER)),
    ("auto", dict(batch_mode="authors", update="layer-parallel", train_layers=["fc"], **PAPER)),
]


@pytest.mark.parametrize("evaluator,kw", CASES, ids=[f"{e}-" + "-".join(str(v) for v in kw.values())[:50]
                                                     for e, kw in CASES])
def test_variants_match_their_plain_reference(evaluator, kw):
    cfg = _config(**kw)
    want_params, want = reference_run(cfg)
    t = RSOTrainer(cfg, sample(), NUMPY, evaluator=evaluator)
    t.set_chunking(7)
    assert _run(t) == want
    got = t.model.params_numpy()
    assert all(np.array_equal(got[p], want_params[p]) for p in want_params)


def test_authors_mode_caches_with_batch_norm_over_chunks_of_2000():
    """With more than 2,000 images the batch norms before the swept layer see two different chunks."""
    cfg = _config(model="papernet", train_layers=["conv6"], n_train=2600, batch_size=4, batch_mode="authors")
    t = RSOTrainer(cfg, sample(), NUMPY, evaluator="auto")
    t.set_chunking(20)
    events = []
    for ev in t.events():
        if isinstance(ev, WeightTried):
            events.append((ev.param, ev.index, ev.choice, ev.new))
            if len(events) == 40:
                break
    ref = RSOTrainer(cfg, sample(), NUMPY, evaluator="reference")
    ref.set_chunking(20)
    assert [(e.param, e.index, e.choice, e.new) for e, _ in zip(
        (e for e in ref.events() if isinstance(e, WeightTried)), range(40))] == events


def test_layer_parallel_keeps_the_model_at_the_layer_start_until_the_merge():
    t = _trainer(update="layer-parallel", train_layers=["conv1"])
    start = t.model.params_numpy()
    t.set_chunking(5)
    for ev in t.events():
        if isinstance(ev, WeightTried):
            assert np.array_equal(t.model.params["conv1.weight"], start["conv1.weight"])
        if isinstance(ev, LayerDone):
            break
    changed = not np.array_equal(t.model.params["conv1.weight"], start["conv1.weight"])
    assert changed  # the merge: the chosen values land together when the layer ends


@pytest.mark.parametrize("update", ["layer-parallel", "neuron-parallel"])
def test_a_run_resumed_inside_a_parallel_layer_continues_identically(tmp_path, update):
    kw = dict(update=update, model="mlp", train_layers=["fc2"], cycles=2)
    full = _run(_trainer(**kw))
    t = _trainer(**kw)
    t.set_chunking(1)
    first = []
    for ev in t.events():
        if isinstance(ev, WeightTried):
            first.append((ev.param, ev.index, ev.choice, ev.new))
        if len(first) == 157 and not isinstance(ev, WeightTried):  # a ChunkDone inside fc2's neuron 4
            break
    save_checkpoint(tmp_path / "c.npz", t)
    (t2,), _ = load_checkpoint(tmp_path / "c.npz", dataset=sample(), backend=NUMPY, evaluator="auto")
    assert first + _run(t2) == full


def test_impossible_update_names_are_refused():
    with pytest.raises(ConfigError, match="update"):
        _config(update="parallel")


def test_a_refused_layer_state_leaves_the_trainer_as_it_was_and_misfits_are_named():
    t = _trainer(update="layer-parallel", model="mlp", train_layers=["fc2"])
    t.set_chunking(3)
    for ev in t.events():
        if isinstance(ev, WeightTried) and ev.step == 9:
            break
    meta, arrays = t.state_dict()
    fresh = _trainer(update="layer-parallel", model="mlp", train_layers=["fc2"])
    before = fresh.model.params_numpy()
    bad = {k: v for k, v in arrays.items() if k != "rso/pending/fc2.bias"}
    with pytest.raises(Exception, match="rso/pending/fc2.bias is missing"):
        fresh.load_state_dict(meta, bad)
    assert all(np.array_equal(fresh.model.params_numpy()[p], before[p]) for p in before)  # nothing changed
    assert fresh.history == [] and fresh.steps == 0
    with pytest.raises(Exception, match="do not belong to the layer in progress"):
        fresh.load_state_dict(meta, {**arrays, "rso/start/fc1.weight": arrays["param/fc1.weight"]})
    shifted = {**arrays, "rso/start/fc2.weight": arrays["rso/start/fc2.weight"] + 1}
    with pytest.raises(Exception, match="rso/start/fc2.weight does not match the saved weights"):
        fresh.load_state_dict(meta, shifted)
    fresh.load_state_dict(meta, arrays)  # the file as saved loads
    assert fresh.steps == t.steps
