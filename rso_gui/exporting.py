"""Exports from the window: plots (PNG/SVG), histories (CSV/JSON), filters (PNG grid), panels (PNG).

Every function takes plain values (a window, a snapshot, paths) and no dialog, so tests call them
directly; the menu (``rso_gui.tools``) only picks the paths. Weights and histories come from the newest
:class:`~rso_gui.live.snapshot.Snapshot`, which holds NumPy copies made by the engine thread: nothing here
touches the engine's own state.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters as pg_exporters
from PySide6.QtCore import Qt

from rso_engine.experiment import save_history
from rso_engine.plots import save_filter_grid, save_histories_plot

from .live.lanes import lane_config

DEFAULT_SIZE = (1200, 800)


class ExportError(ValueError):
    """Nothing to export yet, or a file cannot be written; the message says which."""


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "plot"


def plot_items(window) -> dict[str, pg.PlotItem]:
    """Every pyqtgraph plot of the window's panels, by a file-name-friendly key (``rso-vs-sgd-1``, ...)."""
    out: dict[str, pg.PlotItem] = {}
    for panel in window.export_targets():
        items = []
        for view in panel.findChildren(pg.GraphicsView):
            scene = view.scene()
            if scene is None:
                continue
            found = [it for it in scene.items() if isinstance(it, pg.PlotItem)]
            found.sort(key=lambda it: (it.scenePos().y(), it.scenePos().x()))
            items.extend(found)
        for i, item in enumerate(items, start=1):
            out[f"{slug(panel.title)}-{i}"] = item
    return out


def export_plot(item: pg.PlotItem, path: str | Path, size: tuple[int, int] = DEFAULT_SIZE) -> Path:
    """One plot to ``path``: PNG (``size[0]`` pixels wide; pyqtgraph keeps the plot's aspect ratio, so the
    height follows its shape on screen) or SVG (by the suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        try:
            pg_exporters.SVGExporter(item).export(str(path))
        except (ValueError, IndexError):  # pyqtgraph's SVG clean-up fails on some Qt versions' output
            _render_svg(item, path)
    elif suffix == ".png":
        exp = pg_exporters.ImageExporter(item)
        params = exp.parameters()
        params["width"] = int(size[0])  # (the height follows: pyqtgraph locks the aspect ratio)
        exp.export(str(path))
    else:
        raise ExportError(f"cannot export a plot as {path.suffix or 'a file without a suffix'}: use .png or .svg")
    if not path.exists():
        raise ExportError(f"the plot was not written to {path}")
    return path


def _render_svg(item: pg.GraphicsObject, path: Path) -> None:
    """The item's part of its scene painted into an SVG by Qt itself (no pyqtgraph post-processing)."""
    from PySide6.QtCore import QRect, QRectF, QSize  # noqa: PLC0415
    from PySide6.QtGui import QPainter  # noqa: PLC0415
    from PySide6.QtSvg import QSvgGenerator  # noqa: PLC0415

    src = item.sceneBoundingRect()
    w, h = max(1, round(src.width())), max(1, round(src.height()))
    gen = QSvgGenerator()
    gen.setFileName(str(path))
    gen.setSize(QSize(w, h))
    gen.setViewBox(QRect(0, 0, w, h))
    gen.setTitle("rso plot")
    painter = QPainter(gen)
    try:
        item.scene().render(painter, QRectF(0, 0, w, h), src)
    finally:
        painter.end()


def export_panel_png(panel, path: str | Path, size: tuple[int, int] | None = None) -> Path:
    """A whole panel as it is on screen (scaled to ``size`` if given) to a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = panel.grab().toImage()
    if size is not None:
        img = img.scaled(
            int(size[0]), int(size[1]), Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
    if not img.save(str(path), "PNG"):
        raise ExportError(f"cannot write {path}")
    return path


def _snapshot(window):
    snap = window.controller.latest()
    if snap is None:
        raise ExportError("nothing to export yet: the run is still being prepared")
    return snap


def export_history(window, path: str | Path, which: str = "rso") -> Path:
    """The RSO (``which="rso"``), SGD (``"sgd"``) or a race lane's (``"lane2"``, …) history to CSV (``.csv``)
    or JSON (other suffixes, with the run's config)."""
    snap = _snapshot(window)
    cfg = window.controller.config
    lanes = {f"lane{v.number}": v for v in snap.lanes}
    if which in lanes:
        history = lanes[which].history
        specs = window.controller.lanes
        number = lanes[which].number
        if number - 2 < len(specs):
            cfg = lane_config(cfg, specs[number - 2].config)
    else:
        history = snap.rso_history if which == "rso" else snap.sgd_history
    if not history:
        raise ExportError(f"there is no {which.upper()} history in this run")
    if which == "sgd":
        cfg = cfg.replace(algorithm="sgd")
    return save_history(path, list(history), cfg)


def export_comparison(
    window,
    path: str | Path,
    size: tuple[int, int] = (1200, 500),
    dpi: int = 100,
    panels: tuple[str, ...] = ("accuracy", "loss"),
) -> Path:
    """The RSO-vs-SGD figure (matplotlib, as ``rso compare`` draws it) to PNG/SVG/PDF, with every race lane."""
    snap = _snapshot(window)
    histories = {"RSO" if not snap.lanes else "1 · RSO": list(snap.rso_history)}
    if snap.sgd_history:
        histories["SGD"] = list(snap.sgd_history)
    for lane in snap.lanes:
        if lane.history:
            histories[f"{lane.number} · {lane.label}"] = list(lane.history)
    return save_histories_plot(path, histories, window.compare_x_axis(), size=size, dpi=dpi, panels=panels)


def filter_layers(window) -> list[str]:
    """Layers whose filters can be exported (``conv1``, ...), from the run's info."""
    info = window.controller.info
    if info is None:
        return []
    return [p.rsplit(".", 1)[0] for p in info.filter_params]


def export_filters(
    window, path: str | Path, layer: str | None = None, size: tuple[int, int] | None = None, dpi: int = 100
) -> Path:
    """The current filters of ``layer`` (default: the first) as a grid image, from the newest snapshot."""
    snap = _snapshot(window)
    layers = filter_layers(window)
    if not layers:
        raise ExportError("this model has no filters to export")
    return save_filter_grid(snap.params, layer or layers[0], path, size=size, dpi=dpi)


def export_all(window, folder: str | Path, size: tuple[int, int] = DEFAULT_SIZE, dpi: int = 100) -> list[Path]:
    """Everything into ``folder``: each plot as PNG and SVG, each panel as PNG, the RSO-vs-SGD figure, the
    histories (RSO, SGD, each race lane: ``history-lane2-….csv``) as CSV and JSON, the filters of each layer
    as PNG."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for key, item in plot_items(window).items():
        for ext in ("png", "svg"):
            written.append(export_plot(item, folder / f"{key}.{ext}", size))
    for panel in window.export_targets():
        written.append(export_panel_png(panel, folder / f"panel-{slug(panel.title)}.png"))
    snap = _snapshot(window)
    written.append(export_comparison(window, folder / "rso-vs-sgd.png", size=size, dpi=dpi))
    runs = [("rso", "rso", snap.rso_history), ("sgd", "sgd", snap.sgd_history)]
    runs += [(f"lane{v.number}", f"lane{v.number}-{slug(v.label)}", v.history) for v in snap.lanes]
    for which, name, hist in runs:
        if hist:
            for ext in ("csv", "json"):
                written.append(export_history(window, folder / f"history-{name}.{ext}", which))
    for layer in filter_layers(window):
        written.append(export_filters(window, folder / f"filters-{slug(layer)}.png", layer, dpi=dpi))
    return written


__all__ = [
    "ExportError",
    "export_all",
    "export_comparison",
    "export_filters",
    "export_history",
    "export_panel_png",
    "export_plot",
    "filter_layers",
    "plot_items",
]
