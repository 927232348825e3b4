"""Headless figures with matplotlib's Agg canvas: histories, batch-size sweeps, filter grids; PNG/SVG export.

Qt-free and display-free: figures are :class:`matplotlib.figure.Figure` objects drawn on an Agg canvas,
never through ``pyplot``, so this works in a terminal, in CI and inside the Qt window alike (the window
reuses :func:`save_filter_grid` and :func:`save_histories_plot` for its export menus). matplotlib is
imported inside the functions, so ``import rso_engine`` stays light.

Sizes are in pixels: a figure saved at ``size=(800, 600)`` and ``dpi=100`` is a PNG of exactly
800 × 600 pixels, and an SVG whose ``width``/``height`` are 576 × 432 pt (8 × 6 in). Files are written
atomically.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backend import to_numpy
from .events import Evaluated
from .files import write_atomic
from .vocabulary import DEFAULT_X_AXIS, X_AXES, log_x_by_default, x_axis_name

FORMATS = ("png", "svg", "pdf")
PANELS = ("accuracy", "loss")
DEFAULT_SIZE = (1200, 500)
DEFAULT_DPI = 100
_COLOURS = {"rso": "#d62728", "sgd": "#1f77b4"}
_GREYS = ("#222222", "#777777", "#aaaaaa")

__all__ = [
    "DEFAULT_DPI",
    "DEFAULT_SIZE",
    "FORMATS",
    "PANELS",
    "X_AXES",
    "PlotError",
    "batch_sweep_figure",
    "filter_grid_figure",
    "filter_mosaic",
    "filter_tiles",
    "histories_figure",
    "parse_size",
    "save_figure",
    "save_filter_grid",
    "save_histories_plot",
]


class PlotError(ValueError):
    """A plot cannot be made or saved as asked (bad size, unknown format or axis, unknown layer)."""


# --------------------------------------------------------------------------- sizes, formats, saving
def parse_size(text: str | Sequence[int]) -> tuple[int, int]:
    """``"800x600"`` (or ``"800×600"``, or a pair) -> ``(800, 600)`` pixels; each side 16 … 20000."""
    if isinstance(text, str):
        m = re.fullmatch(r"\s*(\d+)\s*[x×X*,]\s*(\d+)\s*", text)
        if not m:
            raise PlotError(f"size {text!r} is not WIDTHxHEIGHT in pixels, e.g. 1200x500")
        w, h = int(m.group(1)), int(m.group(2))
    else:
        try:
            w, h = (int(v) for v in text)
        except (TypeError, ValueError):
            raise PlotError(f"size {text!r} is not a (width, height) pair of pixels") from None
    for side in (w, h):
        if not 16 <= side <= 20000:
            raise PlotError(f"size {w}x{h}: each side must be 16 to 20000 pixels")
    return w, h


def _format_of(path: Path, fmt: str | None) -> str:
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise PlotError(f"cannot tell the image format of {path}: use a .png, .svg or .pdf file name")
    return fmt


def _new_figure(size: tuple[int, int], dpi: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    w, h = parse_size(size)
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(
    fig, path: str | Path, size: tuple[int, int] | str | None = None, dpi: int | None = None, fmt: str | None = None
) -> Path:
    """Save a matplotlib figure to ``path`` (.png, .svg or .pdf) atomically; ``size`` in pixels resizes it.

    The PNG is exactly ``size`` pixels (default: the figure's own size at its dpi).
    """
    path = Path(path)
    fmt = _format_of(path, fmt)
    dpi = int(dpi or fig.get_dpi())
    if dpi < 10 or dpi > 1200:
        raise PlotError(f"dpi {dpi} is out of range (10 … 1200)")
    if size is not None:
        w, h = parse_size(size)
        fig.set_size_inches(w / dpi, h / dpi)
    else:
        w_in, h_in = fig.get_size_inches()
        w, h = round(w_in * dpi), round(h_in * dpi)
        fig.set_size_inches(w / dpi, h / dpi)
    fig.set_dpi(dpi)
    buf = io.BytesIO()
    meta = {"Software": "rso (matplotlib)"} if fmt == "png" else None
    with warnings.catch_warnings():  # a small size squeezes the axes; the figure is still written
        warnings.filterwarnings("ignore", message="constrained_layout not applied", category=UserWarning)
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta)
    data = buf.getvalue()
    write_atomic(path, data)
    return path


# --------------------------------------------------------------------------- histories
def _group(histories: Mapping[str, Sequence[Evaluated]] | Iterable[Evaluated]) -> dict[str, list[Evaluated]]:
    if isinstance(histories, Mapping):
        return {str(k): list(v) for k, v in histories.items()}
    out: dict[str, list[Evaluated]] = {}
    for ev in histories:
        out.setdefault(ev.algorithm.upper(), []).append(ev)
    return out


def _colours(labels: Sequence[str]) -> dict[str, str]:
    """Red for a run labelled just "RSO", blue for "SGD"; otherwise SGD runs in greys, the rest in C0…C9."""
    out: dict[str, str] = {}
    n_sgd = n_other = 0
    for label in labels:
        low = label.lower()
        if low in _COLOURS:
            out[label] = _COLOURS[low]
        elif "sgd" in low.split():
            out[label] = _GREYS[n_sgd % len(_GREYS)]
            n_sgd += 1
        else:
            out[label] = f"C{n_other % 10}"
            n_other += 1
    return out


def histories_figure(
    histories: Mapping[str, Sequence[Evaluated]] | Iterable[Evaluated],
    x_axis: str = DEFAULT_X_AXIS,
    title: str | None = None,
    size: tuple[int, int] | str = DEFAULT_SIZE,
    dpi: int = DEFAULT_DPI,
    log_x: bool | None = None,
    panels: Sequence[str] = PANELS,
):
    """Test accuracy (left) and train/test loss (right) against ``x_axis`` (a key of
    :data:`~rso_engine.vocabulary.X_AXES`, or an old spelling of one).

    ``panels`` picks and orders the panels: ``("accuracy", "loss")`` (default), or one of them alone
    (the window exports each of its plots on its own).

    ``histories`` is a flat list of :class:`Evaluated` rows (grouped by algorithm: RSO, SGD) or a
    ``{label: rows}`` mapping (e.g. one entry per batch size). ``log_x`` defaults to
    :func:`~rso_engine.vocabulary.log_x_by_default` (on for the budget axes, weight updates and forward
    samples, where RSO and SGD differ by orders of magnitude); a log axis leaves out the evaluation
    before training (at 0).
    """
    try:
        x_axis = x_axis_name(x_axis)
    except ValueError as exc:
        raise PlotError(str(exc)) from None
    field_name, xlabel = X_AXES[x_axis].field, X_AXES[x_axis].label
    groups = _group(histories)
    if not groups or not any(groups.values()):
        raise PlotError("there is nothing to plot: the histories are empty")
    panels = tuple(panels)
    if not panels or any(p not in PANELS for p in panels) or len(set(panels)) != len(panels):
        raise PlotError(f"panels must be some of {', '.join(PANELS)} (got {', '.join(map(str, panels)) or 'none'})")
    if log_x is None:
        log_x = log_x_by_default(x_axis)
    fig = _new_figure(parse_size(size), dpi)
    axes = dict(zip(panels, np.atleast_1d(fig.subplots(1, len(panels)))))
    ax_acc, ax_loss = axes.get("accuracy"), axes.get("loss")
    colours = _colours(list(groups))
    for label, rows in groups.items():
        if not rows:
            continue
        if log_x:  # the evaluation before training sits at 0, which a log axis cannot show
            rows = [ev for ev in rows if getattr(ev, field_name) > 0] or rows[-1:]
        x = np.array([getattr(ev, field_name) for ev in rows], dtype=float)
        if log_x:
            x = np.maximum(x, 1.0)
        colour = colours[label]
        if ax_acc is not None:
            ax_acc.plot(x, [ev.test_accuracy for ev in rows], "o-", color=colour, label=label, ms=3)
        if ax_loss is not None:
            ax_loss.plot(x, [ev.test_loss for ev in rows], "o-", color=colour, label=f"{label} test", ms=3)
            ax_loss.plot(x, [ev.train_loss for ev in rows], "--", color=colour, label=f"{label} train", alpha=0.7)
    for ax, ylabel in ((ax_acc, "test accuracy"), (ax_loss, "mean cross-entropy")):
        if ax is None:
            continue
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if log_x:
            from matplotlib.ticker import NullFormatter  # noqa: PLC0415

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize="small")
    if ax_acc is not None:
        ax_acc.set_title("test accuracy")
    if ax_loss is not None:
        ax_loss.set_title("loss (train: dashed)")
    if title:
        fig.suptitle(title)
    return fig


def save_histories_plot(
    path: str | Path,
    histories: Mapping[str, Sequence[Evaluated]] | Iterable[Evaluated],
    x_axis: str = DEFAULT_X_AXIS,
    size: tuple[int, int] | str = DEFAULT_SIZE,
    dpi: int = DEFAULT_DPI,
    title: str | None = None,
    panels: Sequence[str] = ("accuracy", "loss"),
) -> Path:
    """:func:`histories_figure` saved to ``path`` (.png/.svg/.pdf); the RSO-vs-SGD figure of ``rso compare``."""
    fig = histories_figure(histories, x_axis=x_axis, title=title, size=size, dpi=dpi, panels=panels)
    return save_figure(fig, path, size=size, dpi=dpi)


# --------------------------------------------------------------------------- batch-size sweeps
def batch_sweep_figure(
    rows: Sequence[Mapping[str, Any]],
    reference: Sequence[Mapping[str, Any]] = (),
    title: str | None = None,
    size: tuple[int, int] | str = DEFAULT_SIZE,
    dpi: int = DEFAULT_DPI,
):
    """Test accuracy and training time against the RSO batch size, one line per model.

    ``rows`` (and ``reference``, e.g. the course project's numbers, drawn dashed) are dicts with
    ``model``, ``batch_size``, ``seconds`` and ``test_accuracy``; rows with algorithm "sgd" are
    drawn as horizontal lines (SGD does not depend on RSO's batch size).
    """
    fig = _new_figure(parse_size(size), dpi)
    ax_acc, ax_time = fig.subplots(1, 2)
    rso_rows = [r for r in rows if r.get("algorithm", "rso") == "rso"]
    sgd_rows = [r for r in rows if r.get("algorithm") == "sgd"]
    models = list(dict.fromkeys(r["model"] for r in rso_rows))
    for i, model in enumerate(models):
        mine = sorted((r for r in rso_rows if r["model"] == model), key=lambda r: r["batch_size"])
        b = [r["batch_size"] for r in mine]
        ax_acc.plot(b, [r["test_accuracy"] for r in mine], "o-", color=f"C{i}", label=f"{model} (this run)")
        ax_time.plot(b, [r["seconds"] for r in mine], "o-", color=f"C{i}", label=f"{model} (this run)")
        ref = sorted((r for r in reference if r["model"] == model), key=lambda r: r["batch_size"])
        ref_acc = [r for r in ref if r.get("test_accuracy") is not None]
        if ref_acc:
            ax_acc.plot(
                [r["batch_size"] for r in ref_acc],
                [r["test_accuracy"] for r in ref_acc],
                "s--",
                color=f"C{i}",
                alpha=0.6,
                label=f"{model} (course project, full MNIST)",
            )
        ref_t = [r for r in ref if r.get("seconds") is not None]
        if ref_t:
            ax_time.plot(
                [r["batch_size"] for r in ref_t],
                [r["seconds"] for r in ref_t],
                "s--",
                color=f"C{i}",
                alpha=0.6,
                label=f"{model} (course project, full MNIST)",
            )
    for j, r in enumerate(sgd_rows):
        colour = f"C{len(models) + j}"
        colour = "#555555" if len(sgd_rows) == 1 else colour
        ax_acc.axhline(r["test_accuracy"], color=colour, ls=":", label=f"{r['model']} SGD")
    batches = sorted({int(r["batch_size"]) for r in rso_rows})
    for ax, ylabel in ((ax_acc, "test accuracy"), (ax_time, "training time (s)")):
        ax.set_xscale("log", base=2)
        if batches:
            ax.set_xticks(batches, [str(b) for b in batches])
            ax.minorticks_off()
        ax.set_xlabel("RSO mini-batch size")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    ax_time.set_yscale("log")
    ax_acc.set_title("test accuracy after training")
    ax_time.set_title("training time")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- filters
def _as_numpy(a: Any) -> np.ndarray:
    return np.asarray(to_numpy(a), dtype=np.float64)


def _dense_image_shape(params: Mapping[str, Any], name: str, fin: int) -> tuple[int, int, int] | None:
    """(C, H, W) that a dense layer's inputs come from: the previous conv's channels × a square map."""
    order = list(params)
    convs = [p for p in order[: order.index(name)] if p.endswith(".weight") and np.ndim(params[p]) == 4]
    if convs:
        c = int(np.shape(params[convs[-1]])[0])
        if fin % c == 0 and math.isqrt(fin // c) ** 2 == fin // c:
            s = math.isqrt(fin // c)
            return c, s, s
    s = math.isqrt(fin)
    return (1, s, s) if s * s == fin else None


def filter_tiles(params: Mapping[str, Any], layer: str) -> tuple[str, np.ndarray]:
    """The tiles of a layer's weight as an array (rows, cols, h, w) and the parameter's name.

    Conv weights (out, in, kh, kw) give one row per output filter and one column per input channel.
    Dense weights whose inputs come from a square map (a conv's output or a 28 × 28 image) give one
    row per output neuron, one column per input channel; any other dense weight gives one tile of
    the whole (out, in) matrix. ``layer`` is a layer ("conv1") or parameter ("conv1.weight") name.
    """
    name = layer if layer in params else f"{layer}.weight"
    if name not in params:
        weights = [p[: -len(".weight")] for p in params if p.endswith(".weight")]
        raise PlotError(f"no layer {layer!r} with a weight: choose one of {', '.join(weights)}")
    w = _as_numpy(params[name])
    if w.ndim == 4:
        return name, w
    if w.ndim == 2:
        shape = _dense_image_shape(params, name, w.shape[1])
        if shape is not None:
            return name, w.reshape(w.shape[0], *shape)
        return name, w[None, None]
    if w.ndim == 1:
        return name, w[None, None, None, :]
    raise PlotError(f"{name} has shape {w.shape}; only conv and dense weights can be drawn as a grid")


def filter_mosaic(tiles: np.ndarray, pad: int = 1) -> np.ndarray:
    """Tiles (rows, cols, h, w) laid out as one image, NaN between tiles (drawn as the background)."""
    rows, cols, h, w = tiles.shape
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan)
    for r in range(rows):
        for c in range(cols):
            out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = tiles[r, c]
    return out


def filter_grid_figure(
    params: Mapping[str, Any],
    layer: str,
    size: tuple[int, int] | str | None = None,
    dpi: int = DEFAULT_DPI,
    cmap: str = "RdBu_r",
    title: str | None = None,
):
    """One image per filter (row: output filter/neuron, column: input channel), on one colour scale.

    The colour levels are symmetric and shared by the whole layer (−m … +m with m = max |w|), so
    white is zero and tiles compare directly; a colour bar shows the scale.
    """
    import matplotlib as mpl  # noqa: PLC0415

    name, tiles = filter_tiles(params, layer)
    rows, cols, h, w = tiles.shape
    m = float(np.max(np.abs(tiles))) or 1.0
    single = rows == cols == 1 and tiles.shape[0] == 1 and np.ndim(params[name]) == 2  # a whole dense matrix
    pad = max(1, min(h, w) // 6)
    mosaic = filter_mosaic(tiles, pad)
    if size is None:
        if single:
            size = (800, 420)
        else:
            scale = max(1, min(48 // max(h, 1), 1200 // max(mosaic.shape[1], 1)))
            size = (
                min(max(mosaic.shape[1] * scale + 160, 360), 2400),
                min(max(mosaic.shape[0] * scale + 90, 240), 2400),
            )
    fig = _new_figure(parse_size(size), dpi)
    ax = fig.subplots()
    colours = mpl.colormaps[cmap].with_extremes(bad="#d9d9d9")
    image = ax.imshow(
        mosaic, cmap=colours, vmin=-m, vmax=m, interpolation="nearest", aspect="auto" if single else "equal"
    )
    if single:
        ax.set_xlabel("input")
        ax.set_ylabel("output neuron")
    else:
        ax.set_yticks(np.arange(rows) * (h + pad) + (h - 1) / 2, [str(r) for r in range(rows)], fontsize="x-small")
        ax.set_xticks(np.arange(cols) * (w + pad) + (w - 1) / 2, [str(c) for c in range(cols)], fontsize="x-small")
        ax.tick_params(length=0)
        ax.set_ylabel("output filter / neuron")
        ax.set_xlabel("input channel")
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.colorbar(image, ax=ax, shrink=0.8, label="weight")
    ax.set_title(title or f"{name} {tuple(np.shape(params[name]))}, colour scale ±{m:.3g}", fontsize="medium")
    return fig


def save_filter_grid(
    params: Mapping[str, Any],
    layer: str,
    path: str | Path,
    size: tuple[int, int] | str | None = None,
    dpi: int = DEFAULT_DPI,
    cmap: str = "RdBu_r",
    title: str | None = None,
) -> Path:
    """Save a layer's filters as a grid image (.png, .svg or .pdf) with symmetric per-layer colour levels.

    ``params`` maps parameter names to arrays (NumPy or CuPy), e.g. ``trainer.model.params`` or
    ``model.params_numpy()``; ``layer`` is e.g. ``"conv1"``. ``size`` in pixels defaults to a size
    that fits the grid.
    """
    fig = filter_grid_figure(params, layer, size=size, dpi=dpi, cmap=cmap, title=title)
    return save_figure(fig, path, size=size, dpi=dpi)
