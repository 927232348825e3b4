"""Loss-surface studies of saved runs (``rso landscape``): 2-D surfaces around a final model and the 1-D path
between the RSO and the SGD solution, every point a full evaluation, the points computed as Dask tasks.

- :func:`load_runs` reads saved runs (sessions ``.rso.npz``: RSO and its SGD baseline; checkpoints
  ``.npz`` from ``rso train --checkpoint`` or a study's ``DIR/runs/``) without their data, and each run's
  per-cycle weights where a trajectory file sits beside it (:mod:`rso_engine.trajectory`).
- :func:`random_plane`: two random directions normalised filter by filter (Li et al., "Visualizing the
  Loss Landscape of Neural Nets", NeurIPS 2018; biases and batch norm's γ/β not moved), the surface over
  ``α, β ∈ [−span, span]``.
- :func:`pca_plane`: the two principal directions of the runs' trajectories taken relative to the centre
  (the SVD of the matrix of ``W_cycle − W_centre``, as Li et al. do), with the share of the trajectories'
  squared distance from the centre that each direction explains.
- :func:`surface` evaluates ``W + α·d1 + β·d2`` on the grid and projects every trajectory onto the
  plane (least squares, so a random plane's share explained is reported too); :func:`interpolation`
  evaluates ``(1 − t)·W_rso + t·W_sgd``.

Each point is exactly the runs' own per-cycle evaluation (:meth:`Trainer.evaluate`): batch-norm population
statistics recomputed at that point from the config's calibration images, then the mean train loss on
its evaluation images and the test loss and accuracy. A point whose loss is not finite is NaN. Grid points
go to the workers in chunks (:func:`rso_engine.distributed.map_chunks`); each worker loads the data
itself and keeps it for its next chunks.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import RunConfig
from .distributed.grid import map_chunks
from .trajectory import Trajectory, load_trajectory, trajectory_path

PLANES = ("random", "pca")


class LandscapeError(ValueError):
    """A loss-surface study cannot be made from these runs; the message says why and what to do."""


@dataclass
class SavedRun:
    """A run read from a file: its config, final weights and, if saved, its per-cycle weights."""

    label: str
    path: Path
    config: RunConfig
    params: dict[str, np.ndarray]
    trajectory: Trajectory | None = None

    @property
    def algorithm(self) -> str:
        return self.config.algorithm


@dataclass
class Plane:
    """Two directions in weight space (NumPy dicts keyed by parameter) and how much of the runs' movement
    they explain: ``explained`` per direction (PCA), ``explained_total`` for the plane (least squares)."""

    kind: str
    d1: dict[str, np.ndarray]
    d2: dict[str, np.ndarray]
    labels: tuple[str, str]
    explained: tuple[float, float] | None = None
    explained_total: float | None = None


@dataclass
class Grid:
    """Evaluations on a grid (``[i, j]`` at ``a[i]``, ``b[j]``) or a line (``b`` empty, shape ``(n,)``)."""

    a: np.ndarray
    b: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    test_accuracy: np.ndarray


@dataclass
class SurfaceStudy:
    """A finished study: the plane, the grid, each run's projected path, and the RSO–SGD interpolation."""

    center: SavedRun
    runs: list[SavedRun]
    plane: Plane
    grid: Grid
    paths: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)  # α, β, cycles
    interpolation: Grid | None = None
    interpolation_runs: tuple[str, str] | None = None


# ------------------------------------------------------------------------------------------ reading runs
def _read(path: Path):
    from .experiment import CHECKPOINT_FORMAT, CheckpointError, checkpoint_configs, read_checkpoint  # noqa: PLC0415
    from .session import SESSION_FORMAT  # noqa: PLC0415

    last: Exception | None = None
    for kind in (SESSION_FORMAT, CHECKPOINT_FORMAT):
        try:
            header, arrays = read_checkpoint(path, kind)
            return kind, checkpoint_configs(path, header, kind), arrays
        except CheckpointError as exc:
            last = exc
            if "holds a" not in str(exc):
                raise
    raise LandscapeError(str(last))


def _study_label(path: Path) -> str | None:
    """A study run's label, from its record beside the checkpoint (``runs/KEY.json``)."""
    try:
        return str(json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))["label"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_runs(paths: Sequence[str | Path]) -> list[SavedRun]:
    """The runs saved in ``paths`` (sessions and checkpoints), in order; a session gives its RSO run, then
    its SGD baseline. Labels: "RSO"/"SGD" for one file, else the file's name (or a study run's label)."""
    runs: list[SavedRun] = []
    for p in map(Path, paths):
        kind, configs, arrays = _read(p)
        for i, cfg in enumerate(configs):
            prefix = f"t{i}/param/"
            params = {k[len(prefix):]: np.asarray(v) for k, v in arrays.items() if k.startswith(prefix)}
            name = _study_label(p) or p.name.removesuffix(".npz").removesuffix(".rso")
            label = cfg.algorithm.upper() if len(paths) == 1 else f"{name} {cfg.algorithm.upper()}"
            if len(paths) > 1 and _study_label(p):
                label = name
            tpath = trajectory_path(p, cfg.algorithm if len(configs) > 1 else None)
            trajectory = load_trajectory(tpath) if tpath.exists() else None
            runs.append(SavedRun(label, p, cfg, params, trajectory))
    if not runs:
        raise LandscapeError("no runs to study: give one or more session or checkpoint files")
    shapes = {k: v.shape for k, v in runs[0].params.items()}
    for run in runs[1:]:
        if run.config.model != runs[0].config.model or {k: v.shape for k, v in run.params.items()} != shapes:
            raise LandscapeError(f"{run.path} holds a {run.config.model} run and {runs[0].path} a "
                                 f"{runs[0].config.model} run: a loss surface compares runs of one network")
    return runs


# ------------------------------------------------------------------------------------------ planes
def _flat(params: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    return np.concatenate([np.asarray(params[k], np.float64).ravel() for k in names])


def _unflat(vector: np.ndarray, like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out, at = {}, 0
    for k, v in like.items():
        out[k] = vector[at : at + v.size].reshape(v.shape)
        at += v.size
    return out


def random_plane(center: SavedRun, seed: int = 0) -> Plane:
    """Two filter-normalised random directions around ``center``'s weights (Li et al. 2018)."""
    from .backend import get_backend  # noqa: PLC0415
    from .landscape import filter_normalized_direction  # noqa: PLC0415
    from .models import build_model  # noqa: PLC0415

    model = build_model(center.config.model, seed=center.config.seed, backend=get_backend("numpy"),
                        dtype=center.config.dtype)
    model.set_params(center.params)
    rng = np.random.default_rng(seed)
    d1 = filter_normalized_direction(model, rng)
    d2 = filter_normalized_direction(model, rng)
    return Plane("random", d1, d2, ("direction 1 (filter-normalised)", "direction 2 (filter-normalised)"))


def _deviations(center: SavedRun, runs: Sequence[SavedRun]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    names = list(center.params)
    c = _flat(center.params, names)
    out = []
    for run in runs:
        if run.trajectory is not None and len(run.trajectory):
            rows = np.stack([_flat(run.trajectory.point(i), names) - c for i in range(len(run.trajectory))])
            out.append((run.label, rows, np.asarray(run.trajectory.cycles)))
        else:
            last = run.config.cycles
            out.append((run.label, (_flat(run.params, names) - c)[None, :], np.asarray([last])))
    return out


def pca_plane(center: SavedRun, runs: Sequence[SavedRun]) -> Plane:
    """The two principal directions of the runs' trajectories relative to ``center`` (Li et al. 2018)."""
    if not any(r.trajectory is not None and len(r.trajectory) >= 2 for r in runs):
        raise LandscapeError(
            "the principal directions need the runs' weights after every cycle, and none of these files has a "
            "trajectory beside it: train them with --trajectories (`rso sweep/report --out DIR`, then give "
            "DIR/runs/*.npz; `rso compare --session FILE`; `rso train --checkpoint FILE`), or use --plane random")
    matrix = np.concatenate([rows for _, rows, _ in _deviations(center, runs)])
    _, s, vt = np.linalg.svd(matrix, full_matrices=False)
    total = float((s**2).sum()) or 1.0
    explained = (float(s[0] ** 2 / total), float(s[1] ** 2 / total) if len(s) > 1 else 0.0)
    d2 = vt[1] if len(s) > 1 else np.zeros_like(vt[0])
    return Plane("pca", _unflat(vt[0], center.params), _unflat(d2, center.params),
                 (f"PC 1 ({explained[0]:.1%} of the variance)", f"PC 2 ({explained[1]:.1%})"),
                 explained, explained[0] + explained[1])


def project(plane: Plane, center: SavedRun, runs: Sequence[SavedRun]):
    """Each run's path on the plane ``{label: (α, β, cycles)}`` and the share of the paths' squared distance
    from the centre the plane explains (least squares onto the two directions)."""
    names = list(center.params)
    basis = np.stack([_flat(plane.d1, names), _flat(plane.d2, names)], axis=1)
    paths, kept, total = {}, 0.0, 0.0
    for label, rows, cycles in _deviations(center, runs):
        coef, *_ = np.linalg.lstsq(basis, rows.T, rcond=None)
        paths[label] = (coef[0], coef[1], cycles)
        kept += float(((basis @ coef) ** 2).sum())
        total += float((rows**2).sum())
    return paths, (kept / total if total > 0 else None)


# ------------------------------------------------------------------------------------------ evaluation
@dataclass(frozen=True)
class PointContext:
    """What a worker needs to evaluate points ``base + Σ c_k·dirs[k]`` (sent once to each worker)."""

    config: RunConfig
    base: dict[str, np.ndarray]
    dirs: tuple[dict[str, np.ndarray], ...]


@functools.lru_cache(maxsize=2)
def _evaluator(config_json: str):
    """A trainer used only for its evaluation (SGD: nothing to set up), built once per process and config."""
    from .distributed.tasks import worker_dataset  # noqa: PLC0415
    from .experiment import make_trainer  # noqa: PLC0415

    cfg = RunConfig.from_json(config_json).replace(algorithm="sgd")
    return make_trainer(cfg, worker_dataset(cfg.dataset, str(cfg.data_dir) if cfg.data_dir else None))


def evaluate_points(points: Sequence[tuple[float, ...]], ctx: PointContext) -> list[tuple[float, float, float]]:
    """(train loss, test loss, test accuracy) at each point, exactly as the run's per-cycle evaluation."""
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    from .distributed.tasks import BLAS_THREADS  # noqa: PLC0415
    from .training import TrainingError  # noqa: PLC0415

    trainer = _evaluator(ctx.config.to_json(indent=None))
    out = []
    with threadpool_limits(BLAS_THREADS, user_api="blas"):
        for coeffs in points:
            params = {k: np.asarray(v, np.float64) + sum(float(c) * d[k] for c, d in zip(coeffs, ctx.dirs))
                      for k, v in ctx.base.items()}
            trainer.model.set_params(params)
            try:
                ev = trainer.evaluate(0)
                out.append((ev.train_loss, ev.test_loss, ev.test_accuracy))
            except TrainingError:
                out.append((float("nan"), float("nan"), float("nan")))
            trainer.history.clear()
    return out


def _grid(points, ctx, shape, client, chunk_size, on_done) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = [v for part in map_chunks(evaluate_points, points, ctx, client=client, chunk_size=chunk_size,
                                       on_done=on_done) for v in part]
    arr = np.asarray(values, dtype=np.float64).reshape(*shape, 3)
    return arr[..., 0], arr[..., 1], arr[..., 2]


def _axis(values: list[np.ndarray], span: float | None, n: int) -> np.ndarray:
    if span is not None:
        return np.linspace(-span, span, n)
    allv = np.concatenate(values + [np.zeros(1)])
    lo, hi = float(allv.min()), float(allv.max())
    pad = 0.25 * (hi - lo) or 1.0
    return np.linspace(lo - pad, hi + pad, n)


def surface(runs: Sequence[SavedRun], plane: str = "random", *, n: int = 15, span: float | None = None,
            seed: int = 0, client=None, chunk_size: int = 8, interpolate: bool = True, n_interp: int = 31,
            on_done: Callable[[int], None] | None = None) -> SurfaceStudy:
    """The loss surface around the first run's final weights on ``plane`` ("random" or "pca"), ``n × n``
    points over ``[−span, span]`` (default: 1 for random directions; for PCA, the projected paths with a
    margin), and, when the runs include RSO and SGD, the interpolation between the first of each at
    ``n_interp`` points of t ∈ [−0.25, 1.25]. ``client``: a Dask client (None: here)."""
    if plane not in PLANES:
        raise LandscapeError(f"--plane must be one of {', '.join(PLANES)} (got {plane!r})")
    if n < 2 or n_interp < 2:
        raise LandscapeError("a grid needs at least 2 points a side")
    center = runs[0]
    plane_obj = random_plane(center, seed) if plane == "random" else pca_plane(center, runs)
    paths, share = project(plane_obj, center, runs)
    plane_obj.explained_total = share if plane_obj.explained_total is None else plane_obj.explained_total
    if plane == "random" and span is None:
        span = 1.0
    a = _axis([p[0] for p in paths.values()], span, n)
    b = _axis([p[1] for p in paths.values()], span, n)
    ctx = PointContext(center.config, center.params, (plane_obj.d1, plane_obj.d2))
    points = [(float(x), float(y)) for x in a for y in b]
    tr, te, acc = _grid(points, ctx, (n, n), client, chunk_size, on_done)
    study = SurfaceStudy(center, list(runs), plane_obj, Grid(a, b, tr, te, acc), paths)
    rso = next((r for r in runs if r.algorithm == "rso"), None)
    sgd = next((r for r in runs if r.algorithm == "sgd"), None)
    if interpolate and rso is not None and sgd is not None:
        study.interpolation = interpolation(rso, sgd, n_interp, client=client, chunk_size=chunk_size, on_done=on_done)
        study.interpolation_runs = (rso.label, sgd.label)
    return study


def interpolation_ts(n: int) -> np.ndarray:
    """The t of an interpolation of ``n`` points: evenly spaced in [−0.25, 1.25], plus 0 and 1 exactly."""
    return np.unique(np.concatenate([np.linspace(-0.25, 1.25, n), [0.0, 1.0]]))


def interpolation(a: SavedRun, b: SavedRun, n: int = 31, *, client=None, chunk_size: int = 8,
                  on_done: Callable[[int], None] | None = None) -> Grid:
    """Evaluations of ``(1 − t)·W_a + t·W_b`` for ``n`` values of t in [−0.25, 1.25] (batch-norm statistics
    recomputed at each point, with ``a``'s data and evaluation settings)."""
    t = interpolation_ts(n)
    diff = {k: np.asarray(b.params[k], np.float64) - np.asarray(v, np.float64) for k, v in a.params.items()}
    ctx = PointContext(a.config, a.params, (diff,))
    tr, te, acc = _grid([(float(x),) for x in t], ctx, (len(t),), client, chunk_size, on_done)
    return Grid(t, np.empty(0), tr, te, acc)
