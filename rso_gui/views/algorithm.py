"""Panel 5: Algorithm 1 as pseudo-code, with the line being executed lit and its values bound beside it.

The lines follow the variant that runs (``RunConfig.update``, ``batch_mode``, ``layer_order``): a batch
drawn per weight sits inside the weight loop, one per layer or per cycle above it; the parallel updates
score every weight against the layer's starting state W⁰ and add a "merge" line at the layer's end.

When every weight is shown (paused, stepping, slow motion) the decision just taken is bound to the lines:
cycle c, layer d, the weight's index, the batch (its size and first images), σ and Δ, the three losses
(mean per image, as the landscape shows them) and the choice. The lit line is the last one executed: "keep
the argmin" after a weight (or "merge" after a parallel layer's last weight); in slow motion the light
walks through the weight's lines first. At full speed the lines show counts instead: weights tried,
batches drawn, losses computed, and how often w+Δ, w and w−Δ were kept. Everything comes from the
snapshot (the engine's events and answers); nothing here re-derives the algorithm.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFontMetrics, QImage, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from rso_engine.events import CHOICE_NAMES, MINUS, PLUS, STAY
from rso_engine.vocabulary import RunState

from ..live.snapshot import AlgorithmView, Snapshot
from ..theme import Theme
from .base import Panel

REVEAL = ("batch", "delta", "losses", "keep")  # the lines the light walks through in slow motion
REVEAL_MS = 90  # per line (2 weights a second leave 0.5 s per weight)


def algorithm_lines(update: str, batch_mode: str, layer_order: str) -> list[tuple[str, int, str]]:
    """Algorithm 1's lines for a variant: (key, indent, code)."""
    parallel = update in ("layer-parallel", "neuron-parallel")
    state = "W⁰" if parallel else "W"
    order = "d = D … 1  (output first)" if layer_order == "output-first" else "d = 1 … D  (input first)"
    batch = {
        "weight": "(x, l) ← a fresh batch of B images",
        "authors": "(x, l) ← a fresh batch (layer input cached)",
        "layer": "(x, l) ← one batch of B for the layer",
        "cycle": "(x, l) ← one batch of B for the cycle",
    }.get(batch_mode, "(x, l) ← a batch of B images")
    lines: list[tuple[str, int, str]] = [
        ("normalise", 0, "X ← (X − mean) / std"),
        ("init", 0, "W_d ~ N(0, σ_d²),  σ_d = √(2 / fan_in)"),
        ("cycle", 0, "for c = 1 … C:"),
    ]
    if batch_mode == "cycle":
        lines.append(("batch", 1, batch))
    lines.append(("layer", 1, f"for {order}:"))
    if batch_mode == "layer":
        lines.append(("batch", 2, batch))
    if parallel:
        lines.append(("start", 2, "W⁰ ← W  (the layer's starting state)"))
    inner = 3
    if update == "neuron-parallel":
        lines.append(("neuron", 2, "for each output neuron n of W_d, in parallel:"))
        lines.append(("weight", 3, "for each weight w_j into n:"))
        inner = 4
    else:
        what = "for each weight w_j of W_d" + (", from W⁰:" if parallel else ":")
        lines.append(("weight", 2, what))
    if batch_mode in ("weight", "authors"):
        lines.append(("batch", inner, batch))
    lines += [
        ("delta", inner, "Δ ~ N(0, σ_d(c))"),
        ("losses", inner, f"F({state}+Δ), F({state}), F({state}−Δ) on (x, l)"),
        ("keep", inner, "w_j ← the argmin (a tie keeps w)"),
    ]
    if parallel:
        lines.append(("merge", 2, "merge: W_d ← every chosen w_j at once"))
    return lines


def thumbnails(images: np.ndarray, height: int, gap: int = 4) -> QPixmap:
    """The images (k, C, H, W) side by side, each scaled to ``height`` pixels (min-max per image)."""
    k, c, h, w = images.shape
    scale = max(1, int(height) // max(h, 1))
    tiles = []
    for img in images:
        a = img.astype(np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = np.zeros_like(a) if hi <= lo else (a - lo) / (hi - lo)
        rgb = np.repeat(a, 3, axis=0) if c == 1 else a[:3]
        tile = (rgb.transpose(1, 2, 0) * 255).astype(np.uint8)
        tiles.append(np.kron(tile, np.ones((scale, scale, 1), np.uint8)))
    th, tw = tiles[0].shape[:2]
    out = np.zeros((th, k * tw + (k - 1) * gap, 3), np.uint8)
    for i, tile in enumerate(tiles):
        out[:, i * (tw + gap) : i * (tw + gap) + tw] = tile
    out = np.ascontiguousarray(out)
    qimg = QImage(out.data, out.shape[1], out.shape[0], out.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(qimg.copy())


class AlgorithmPanel(Panel):
    title = "Algorithm 1"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.variant = QLabel("–")
        self.variant.setWordWrap(True)
        self.body.addWidget(self.variant)
        # the lines scroll rather than squeeze into each other when the panel is short (every panel at once
        # in presentation mode)
        sheet = QWidget()
        self.lines = QVBoxLayout(sheet)
        self.lines.setContentsMargins(0, 0, 0, 0)
        self.lines.setSpacing(2)
        self.lines.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidget(sheet)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the window's single-key shortcuts stay the window's
        self.body.addWidget(self.scroll, 1)
        self.thumbs = QLabel()
        self._rows: dict[str, tuple[QFrame, QLabel, QLabel, QLabel]] = {}
        self._key: tuple | None = None
        self.lit: str | None = None  # the lit line's key
        self.values: dict[str, object] = {}  # what is bound, raw (tests read it)
        self.counts: dict[str, int] = {}  # what is counted (tests read it)
        self._snap: Snapshot | None = None
        self._shown_step = -1
        self._reveal = len(REVEAL)
        self._timer = QTimer(self)
        self._timer.setInterval(REVEAL_MS)
        self._timer.timeout.connect(self._advance)
        self._has = False

    # ------------------------------------------------------------------------------------------ setup
    def _build(self, view: AlgorithmView) -> None:
        key = (view.update, view.batch_mode, view.layer_order)
        if key == self._key:
            return
        self._key = key
        # the old batch line's thumbnails go with its frame: until the new one exists nothing may draw into them
        # (a resize while the lines are rebuilt draws at once)
        self.thumbs = QLabel()
        for frame, *_ in self._rows.values():
            frame.hide()
            frame.setParent(None)
            frame.deleteLater()
        self._rows = {}
        t = self.theme
        scale = 1.0 if t.presentation else 0.9  # the code's font
        indent_px = QFontMetrics(t.font(scale)).horizontalAdvance("MM") * 3 // 4
        for number, (name, indent, code) in enumerate(algorithm_lines(*key), start=1):
            frame = QFrame()
            frame.setObjectName("algoLine")
            grid = QGridLayout(frame)
            grid.setContentsMargins(4, 1, 4, 1)
            grid.setHorizontalSpacing(8)
            grid.setVerticalSpacing(0)
            num = QLabel(str(number))
            num.setFixedWidth(QFontMetrics(t.font(scale)).horizontalAdvance("00"))
            num.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
            text = QLabel(code)
            text.setTextFormat(Qt.TextFormat.PlainText)
            text.setContentsMargins(indent * indent_px, 0, 0, 0)
            value = QLabel("")
            value.setTextFormat(Qt.TextFormat.RichText)
            value.setWordWrap(True)
            value.setContentsMargins(indent * indent_px + indent_px, 0, 0, 0)
            value.setVisible(False)
            count = QLabel("")
            count.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
            grid.addWidget(num, 0, 0)
            grid.addWidget(text, 0, 1)
            if name == "keep":  # its counts are long: a row of their own, under its value
                count.setWordWrap(True)
                count.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
                count.setContentsMargins(indent * indent_px + indent_px, 0, 0, 0)
                grid.addWidget(count, 3, 1)
                grid.addWidget(value, 1, 1)
            else:  # beside the value, under the code: the code alone sets the panel's narrowest width
                row = QHBoxLayout()
                row.setSpacing(8)
                row.addWidget(value, 1)
                row.addWidget(count, 0, Qt.AlignmentFlag.AlignTop)
                grid.addLayout(row, 1, 1)
            grid.setColumnStretch(1, 1)
            for w in (num, text, value, count):
                w.setFont(t.font(scale))
            text.setMinimumWidth(text.sizeHint().width())  # the code is never cut
            for w in (num, count):
                w.setStyleSheet(f"color: {t.muted}")
            self.lines.insertWidget(self.lines.count() - 1, frame)
            if name == "batch":
                self.thumbs = QLabel()
                self.thumbs.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
                self.thumbs.setContentsMargins(indent * indent_px + indent_px, 0, 0, 0)
                self.thumbs.setVisible(False)
                grid.addWidget(self.thumbs, 2, 1)
            self._rows[name] = (frame, text, value, count)
        self.lit = None
        self.variant.setText(self._variant_text(view))

    def _variant_text(self, v: AlgorithmView) -> str:
        update = {"sequential": "each weight from the current state (the paper's Algorithm 1)",
                  "layer-parallel": "layer-parallel: every weight scored from the layer's start, merged at its end",
                  "neuron-parallel": "neuron-parallel: each neuron's weights in turn, the neurons merged"}
        batch = {"weight": "a fresh batch per weight", "authors": "a fresh batch per weight, layer input cached",
                 "layer": "one batch per layer", "cycle": "one batch per cycle"}
        decay = f" · stay candidate w·(1 − {v.stay_decay:g})" if v.stay_decay else ""
        return f"{update.get(v.update, v.update)} · {batch.get(v.batch_mode, v.batch_mode)}{decay}"

    def apply_theme(self, theme: Theme) -> None:
        super().apply_theme(theme)
        self.variant.setFont(theme.font(0.85))
        self.scroll.viewport().setAutoFillBackground(False)
        self.scroll.widget().setAutoFillBackground(False)
        self.variant.setStyleSheet(f"color: {theme.muted}")
        self._key = None  # rebuilt with the new fonts at the next snapshot
        if self._snap is not None and self._snap.algorithm is not None:
            self._build(self._snap.algorithm)
            self._draw(self._snap)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._snap is not None and self._rows:
            self._draw(self._snap)  # as many batch images as the new width takes

    def has_content(self) -> bool:
        return self._has

    # ------------------------------------------------------------------------------------------ drawing
    def update_view(self, snap: Snapshot) -> None:
        view = snap.algorithm
        if view is None or self.info is None:
            return
        self._build(view)
        ev = snap.last
        step = ev.step if ev is not None else 0
        if step != self._shown_step:
            self._shown_step = step
            slow = view.every_weight and snap.state == RunState.RUNNING and ev is not None
            self._reveal = 0 if slow else len(REVEAL)
            if slow:
                self._timer.start()
        self._snap = snap
        self._draw(snap)
        self._has = True

    def _advance(self) -> None:
        self._reveal += 1
        if self._reveal >= len(REVEAL):
            self._timer.stop()
        if self._snap is not None:
            self._draw(self._snap)

    def _draw(self, snap: Snapshot) -> None:
        view, ev, info, t = snap.algorithm, snap.last, self.info, self.theme
        if view is None or info is None:
            return
        hl = t.highlight
        values: dict[str, object] = {}
        text: dict[str, str] = {}
        text["normalise"] = f"{info.dataset}: {info.n_train:,} training images"
        if ev is not None:
            layer, param, index, c, sigma = ev.layer, ev.param, tuple(ev.index), ev.cycle, view.sigma
            position, size = ev.position, ev.layer_size
        elif view.upcoming is not None:
            c, layer, param, index, position, size, sigma = view.upcoming
        else:
            layer = param = None
        if layer is not None:
            sweep = [name for name, _ in info.plan]
            k = sweep.index(layer) + 1 if layer in sweep else 0
            values.update(cycle=c, layer=layer, param=param, index=index, sigma=sigma)
            text["init"] = f"σ_d of {param} = {info.sigma.get(param, float('nan')):.4g}"
            text["cycle"] = f"c = <b>{c}</b> of {view.cycles}"
            text["layer"] = f"d = <b>{layer}</b> ({k} of {len(sweep)}: {' → '.join(sweep)})"
            text["weight"] = f"j = <b>{param}[{', '.join(map(str, index))}]</b> · {position + 1:,} of {size:,}"
        bind = (view.every_weight or snap.state != RunState.RUNNING) and ev is not None
        stage = self._reveal if bind else -1
        lit = None
        if bind:
            B = max(ev.batch_size, 1)
            losses = (ev.loss_plus / B, ev.loss_stay / B, ev.loss_minus / B)
            values.update(batch_size=ev.batch_size, batch_index=view.batch_index, delta=ev.delta,
                          losses=losses, choice=ev.choice, old=ev.old, new=ev.new)
            first = ", ".join(f"#{i}" for i in view.batch_index[:4])
            text["batch"] = f"B = <b>{ev.batch_size}</b> images: {first}, …" if first else f"B = <b>{ev.batch_size}</b>"
            text["delta"] = f"σ = <b>{sigma:.4g}</b> · Δ = <b>{ev.delta:+.4g}</b>"
            names = {PLUS: "w+Δ", STAY: "w", MINUS: "w−Δ"}
            parts = []
            rows = ((PLUS, losses[0], t.plus), (STAY, losses[1], t.stay), (MINUS, losses[2], t.minus))
            for choice, loss, color in rows:
                s = f"{names[choice]} {loss:.4f}"
                parts.append(self.label_html(f"<b><u>{s}</u></b>" if choice == ev.choice else s, color))
            text["losses"] = " · ".join(parts) + "  (mean per image)"
            color = {PLUS: t.plus, STAY: t.stay, MINUS: t.minus}[ev.choice]
            text["keep"] = self.label_html(f"<b>kept {CHOICE_NAMES[ev.choice]}</b>", color) + (
                f": w = {ev.old:+.4f} → {ev.new:+.4f}")
            lit = REVEAL[min(stage, len(REVEAL) - 1)]
            last_of_layer = ev.position + 1 == ev.layer_size
            if "merge" in self._rows and last_of_layer and stage >= len(REVEAL):
                lit = "merge"
                text["merge"] = f"the layer's {ev.layer_size:,} chosen values applied together"
            for later in REVEAL[stage + 1 :]:
                text[later] = "…"
        elif ev is None and view.upcoming is not None:
            lit = "init"
            text["delta"] = f"σ = {sigma:.4g} (cycle {c})"
        self.values = values
        self._counts(snap, text)
        for name, (frame, code, value, count) in self._rows.items():
            on = name == lit
            style = f"QFrame#algoLine {{ background: {t.window}; border-left: 6px solid {hl}; }}" if on else ""
            if frame.styleSheet() != style:
                frame.setStyleSheet(style)
                code.setStyleSheet(f"color: {hl}; font-weight: bold" if on else "")
            self.set_text(value, text.get(name, ""))
            if value.isHidden() == bool(text.get(name)):
                value.setVisible(bool(text.get(name)))
            self.set_text(count, self._count_text.get(name, ""))
        if lit is not None and lit != self.lit and lit in self._rows:  # a short panel scrolls to the lit line
            QTimer.singleShot(0, lambda key=lit: self._show_line(key))
        self.lit = lit
        images = view.batch_images if bind and stage >= 0 else None
        if images is not None and len(images):
            h = int(self.variant.fontMetrics().lineSpacing() * (2.6 if t.presentation else 2.2))
            room = self.thumbs.contentsRect().width() if self.thumbs.isVisible() else self.scroll.viewport().width()
            scale = max(1, h // images.shape[2])
            k = max(1, min(len(images), room // (images.shape[3] * scale + 4)))  # as many as fit
            self.thumbs.setPixmap(thumbnails(images[:k], h))
            self.thumbs.setFixedHeight(images.shape[2] * scale)
            self.thumbs.setVisible(True)
        else:
            self.thumbs.clear()
            self.thumbs.setVisible(False)
        self.flush_text(force=snap.state != RunState.RUNNING or bind)

    def _show_line(self, key: str) -> None:
        row = self._rows.get(key)
        if row is not None:
            self.scroll.ensureWidgetVisible(row[0], 0, 0)

    def _counts(self, snap: Snapshot, text: dict[str, str]) -> None:
        """The counts per line (always shown; the only values at full speed)."""
        stats = snap.layer_stats.values()
        tried = sum(s.tried for s in stats)
        changed = sum(s.changed for s in stats)
        plus = sum(s.plus for s in stats)
        view = snap.algorithm
        batches = {"layer": None, "cycle": None}.get(view.batch_mode, tried)
        self.counts = {"tried": tried, "plus": plus, "stay": tried - changed, "minus": changed - plus}
        c = self.counts
        pct = (lambda n: f" ({100 * n / tried:.0f}%)") if tried else (lambda n: "")
        self._count_text = {
            "weight": f"tried {tried:,}",
            "losses": f"{3 * tried:,} losses",
            "keep": f"kept so far: w+Δ {c['plus']:,}{pct(c['plus'])} · w {c['stay']:,}{pct(c['stay'])} · "
                    f"w−Δ {c['minus']:,}{pct(c['minus'])}",
        }
        if batches is not None:
            self._count_text["batch"] = f"drawn {batches:,}"
        self._count_text["delta"] = f"drawn {tried:,}"
