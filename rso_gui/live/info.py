"""The fixed facts of a run for the views (:class:`~rso_gui.live.snapshot.RunInfo`), asked of its trainers,
and what a run can be set to (:class:`~rso_gui.live.snapshot.RunChoices`)."""

from __future__ import annotations

from rso_engine.data import DATASET_NAMES
from rso_engine.evaluators import evaluator_names
from rso_engine.layers import Dense, Flatten
from rso_engine.models import MODELS
from rso_engine.training import RSOTrainer, SGDTrainer

from .snapshot import LayerInfo, RunChoices, RunInfo


def run_choices() -> RunChoices:
    """The models, datasets and evaluators this installation offers."""
    return RunChoices(
        models=tuple((name, description) for name, (_, description) in MODELS.items()),
        datasets=tuple(DATASET_NAMES),
        evaluators=("auto", *evaluator_names()),
    )


def per_sample_shape(x) -> tuple[int, ...]:
    """The shape of one sample of a model-layout activation: (C, H, W) for (C, N, H, W), else the rest."""
    if x.ndim == 4:  # (C, N, H, W)
        return (int(x.shape[0]), int(x.shape[2]), int(x.shape[3]))
    return tuple(int(s) for s in x.shape[1:])


def layer_shapes(model, x) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Per-sample (input, output) shape of every layer for a model-layout input ``x`` of one image."""
    out = []
    P = model.params
    for layer in model.layers:
        in_shape = per_sample_shape(x)
        x, _ = layer.forward(P, x, True)
        out.append((in_shape, per_sample_shape(x)))
    return out


def build_info(rso: RSOTrainer, sgd: SGDTrainer | None) -> RunInfo:
    """What stays fixed during the run of ``rso`` (and its SGD baseline ``sgd``, if any)."""
    model = rso.model
    shapes = layer_shapes(model, rso.x_test[:, :1])
    layers = []
    dense_inputs: dict[str, tuple[int, ...] | None] = {}
    for i, layer in enumerate(model.layers):
        layers.append(LayerInfo(layer.name, layer.kind, layer.describe(), layer.params, *shapes[i]))
        if isinstance(layer, Dense):
            prev = model.layers[i - 1] if i else None
            dense_inputs[layer.full("weight")] = shapes[i - 1][0] if isinstance(prev, Flatten) else None
    conv = tuple(g.params[0] for g in model.groups if g.kind == "conv")
    if not conv:
        first = next((p for p, s in dense_inputs.items() if s is not None), None)
        conv = (first,) if first else ()
    cfg = rso.config
    ds = rso.dataset
    return RunInfo(
        config=cfg,
        model=model.name,
        model_description=MODELS[model.name][1],
        dataset=ds.name,
        dataset_source=ds.source,
        n_train=rso.n_train,
        n_test=int(rso.y_test.shape[0]),
        classes=tuple(ds.classes),
        backend=rso.backend.describe(),
        is_gpu=rso.backend.is_gpu,
        evaluator=rso.scoring.name,
        layers=tuple(layers),
        plan=tuple((pl.name, pl.params) for pl in rso.plan),
        param_shapes=model.param_shapes(),
        sigma=dict(model.sigma),
        layer_sizes={pl.name: rso.layer_size(pl) for pl in rso.plan},
        weights_per_cycle=rso.weights_per_cycle,
        cycles=cfg.cycles,
        sgd=sgd is not None,
        sgd_steps_per_epoch=sgd.steps_per_epoch if sgd is not None else 0,
        dense_inputs=dense_inputs,
        filter_params=conv,
    )
