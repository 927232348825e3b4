"""What a loss-surface study (``rso landscape``) writes: figures (PNG and SVG, headless matplotlib in the style of
:mod:`rso_engine.plots`) and the data as CSV and NPZ.

A folder gets ``surface.{png,svg}`` (the train loss over the plane, filled contours on a log scale, with
every run's path projected onto it), ``surface.csv`` (``alpha, beta, train_loss, test_loss,
test_accuracy``), ``paths.csv`` (``run, cycle, alpha, beta``), ``surface.npz`` (the grids, the two
directions as ``d1/NAME``, ``d2/NAME``, and the paths), ``landscape.json`` (the runs, the plane, the
share of variance it explains) and, when the runs include RSO and SGD, ``interpolation.{png,svg,csv}``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from . import plots
from .files import write_atomic
from .landscape_study import Grid, SurfaceStudy

_PATH_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _colour(label: str, i: int) -> str:
    low = label.lower().split()
    if "rso" in low and "sgd" not in low:
        return _PATH_COLOURS[0] if i == 0 else _PATH_COLOURS[(i + 2) % len(_PATH_COLOURS)]
    if "sgd" in low:
        return _PATH_COLOURS[1]
    return _PATH_COLOURS[i % len(_PATH_COLOURS)]


def surface_figure(study: SurfaceStudy, size=(900, 750), dpi: int = 100, title: str | None = None):
    """The train loss over the plane (filled log-scale contours) with each run's path and end point."""
    from matplotlib.colors import LogNorm  # noqa: PLC0415

    fig = plots._new_figure(plots.parse_size(size), dpi)
    ax = fig.subplots()
    g = study.grid
    z = np.where(np.isfinite(g.train_loss), g.train_loss, np.nan)
    finite = z[np.isfinite(z)]
    if finite.size:
        lo, hi = max(float(finite.min()), 1e-6), max(float(finite.max()), 1e-6)
        levels = np.geomspace(lo, hi * (1 + 1e-9), 25) if hi > lo else np.array([lo, lo * 1.01])
        cs = ax.contourf(g.a, g.b, z.T, levels=levels, norm=LogNorm(lo, levels[-1]), cmap="viridis")
        ax.contour(g.a, g.b, z.T, levels=levels[::3], colors="white", linewidths=0.5, alpha=0.6)
        bar = fig.colorbar(cs, ax=ax, label="train loss (mean cross-entropy, log scale)")
        bar.set_ticks(levels[::3])
        bar.set_ticklabels([f"{v:.3g}" for v in levels[::3]])
    for i, (label, (pa, pb, cycles)) in enumerate(study.paths.items()):
        colour = _colour(label, i)
        ax.plot(pa, pb, "o-", color=colour, ms=3, lw=1.5, label=f"{label} ({len(cycles)} points)")
        ax.plot(pa[-1:], pb[-1:], "*", color=colour, ms=12, markeredgecolor="black")
    ax.plot([0], [0], "+", color="black", ms=12, mew=2, label=f"centre: {study.center.label}")
    ax.set_xlabel(study.plane.labels[0])
    ax.set_ylabel(study.plane.labels[1])
    share = study.plane.explained_total
    sub = f"{study.plane.kind} plane"
    if share is not None:
        sub += f", explaining {share:.1%} of the paths' variance"
    ax.set_title(title or f"loss surface around {study.center.label} ({study.center.config.model})\n{sub}")
    ax.legend(fontsize="small", loc="best")
    return fig


def interpolation_figure(grid: Grid, labels: tuple[str, str], size=(1100, 450), dpi: int = 100):
    """Train and test loss (left) and test accuracy (right) along (1 − t)·W_a + t·W_b."""
    fig = plots._new_figure(plots.parse_size(size), dpi)
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(grid.a, grid.train_loss, "--", color="#555555", label="train")
    ax_loss.plot(grid.a, grid.test_loss, "-", color="#222222", label="test")
    ax_acc.plot(grid.a, grid.test_accuracy, "-", color="#2ca02c")
    for ax in (ax_loss, ax_acc):
        for t, label, colour in ((0.0, labels[0], "#d62728"), (1.0, labels[1], "#1f77b4")):
            ax.axvline(t, color=colour, lw=1, ls=":")
            ax.annotate(label, (t, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom",
                        color=colour, fontsize="small")
        ax.set_xlabel(f"t: (1 − t)·{labels[0]} + t·{labels[1]}")
        ax.grid(True, alpha=0.3)
    ax_loss.set_ylabel("mean cross-entropy")
    ax_loss.legend(fontsize="small")
    ax_acc.set_ylabel("test accuracy")
    return fig


def _csv(header, rows) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


def write_landscape(study: SurfaceStudy, out_dir: str | Path, size=(900, 750), dpi: int = 100,
                    command: str | None = None) -> list[Path]:
    """Write the study's figures and data into ``out_dir`` (see the module docstring); the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    fig = surface_figure(study, size, dpi)
    files += [plots.save_figure(fig, out / f"surface.{ext}", size=size, dpi=dpi) for ext in ("png", "svg")]
    g = study.grid
    rows = [(float(a), float(b), g.train_loss[i, j], g.test_loss[i, j], g.test_accuracy[i, j])
            for i, a in enumerate(g.a) for j, b in enumerate(g.b)]
    files.append(write_atomic(out / "surface.csv", _csv(("alpha", "beta", "train_loss", "test_loss",
                                                          "test_accuracy"), rows)))
    path_rows = [(label, int(c), float(x), float(y)) for label, (pa, pb, cycles) in study.paths.items()
                 for x, y, c in zip(pa, pb, cycles)]
    files.append(write_atomic(out / "paths.csv", _csv(("run", "cycle", "alpha", "beta"), path_rows)))
    arrays = {"alpha": g.a, "beta": g.b, "train_loss": g.train_loss, "test_loss": g.test_loss,
              "test_accuracy": g.test_accuracy}
    arrays.update({f"d1/{k}": v for k, v in study.plane.d1.items()})
    arrays.update({f"d2/{k}": v for k, v in study.plane.d2.items()})
    for i, (pa, pb, cycles) in enumerate(study.paths.values()):
        arrays.update({f"path{i}/alpha": pa, f"path{i}/beta": pb, f"path{i}/cycle": cycles})
    interp = study.interpolation
    if interp is not None:
        arrays.update({"interp/t": interp.a, "interp/train_loss": interp.train_loss,
                       "interp/test_loss": interp.test_loss, "interp/test_accuracy": interp.test_accuracy})
        fig = interpolation_figure(interp, study.interpolation_runs, dpi=dpi)
        files += [plots.save_figure(fig, out / f"interpolation.{ext}", dpi=dpi) for ext in ("png", "svg")]
        files.append(write_atomic(out / "interpolation.csv", _csv(
            ("t", "train_loss", "test_loss", "test_accuracy"),
            [(float(t), a, b, c) for t, a, b, c in zip(interp.a, interp.train_loss, interp.test_loss,
                                                        interp.test_accuracy)])))
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    files.append(write_atomic(out / "surface.npz", buf.getvalue()))
    plane = study.plane
    doc = {
        "command": command, "plane": plane.kind, "axes": list(plane.labels),
        "explained": list(plane.explained) if plane.explained else None, "explained_by_plane": plane.explained_total,
        "centre": {"label": study.center.label, "file": str(study.center.path)},
        "runs": [{"label": r.label, "file": str(r.path), "algorithm": r.algorithm, "config": r.config.to_dict(),
                  "trajectory_points": len(r.trajectory) if r.trajectory is not None else 0} for r in study.runs],
        "grid": {"points": [len(g.a), len(g.b)], "alpha": [float(g.a[0]), float(g.a[-1])],
                 "beta": [float(g.b[0]), float(g.b[-1])]},
        "interpolation": list(study.interpolation_runs) if study.interpolation_runs else None,
    }  # fmt: skip
    files.append(write_atomic(out / "landscape.json", (json.dumps(doc, indent=2) + "\n").encode()))
    return files
