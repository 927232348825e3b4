"""What a training command shows: the run's header, a progress bar on stderr while it trains, and tables.

:func:`drive_with_progress` drives one trainer through :func:`rso_engine.driving.drive` (the one loop
the command line and the reports share) with a tqdm bar.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from tqdm import tqdm

from ..driving import Interrupted, drive
from ..evaluators.registry import StandInEvaluator
from ..events import Evaluated
from ..report.tables import plural
from ..training import Trainer, describe_sigma_schedule
from ..training.plan import describe_batching


class ProgressBar:
    """A tqdm bar over a run's weights tried (RSO) or steps (SGD), showing the last test accuracy."""

    def __init__(self, trainer: Trainer, label: str):
        if trainer.algorithm == "rso":
            total, unit = trainer.config.cycles * trainer.weights_per_cycle, "w"
        else:
            total, unit = trainer.config.cycles * trainer.steps_per_epoch, "step"
        self.bar = tqdm(total=total, initial=trainer.steps, desc=label, unit=unit, unit_scale=True,
                        dynamic_ncols=True, file=sys.stderr, disable=None, leave=False)

    def advance(self, steps: int) -> None:
        self.bar.update(steps)

    def evaluated(self, ev: Evaluated) -> None:
        self.bar.set_postfix_str(f"cycle {ev.cycle} test acc {ev.test_accuracy:.4f}")

    def close(self) -> None:
        self.bar.close()


def drive_with_progress(trainer: Trainer, label: str, save: Callable[[], Any] | None = None,
                        stop: Callable[[Trainer], bool] | None = None,
                        on_event: Callable[[Any], None] | None = None) -> list[Evaluated]:
    """Run ``trainer`` to the end with a progress bar and return its history.

    ``save()`` (e.g. a checkpoint or a session) is called after every cycle/epoch, at the end and on
    Ctrl-C, which then says where the run was saved; ``stop`` and ``on_event`` as for
    :func:`rso_engine.driving.drive`.
    """
    try:
        return drive(trainer, progress=ProgressBar(trainer, label), save=save, stop=stop, on_event=on_event)
    except Interrupted as exc:
        if exc.saved is not None:
            print(f"\ninterrupted; saved the run to {exc.saved} (continue with --resume {exc.saved})",
                  file=sys.stderr)
        elif save is not None:
            print("\ninterrupted at once (a second Ctrl-C): nothing saved since the last save", file=sys.stderr)
        raise


def run_header(trainer: Trainer, batch_sizes: Sequence[int] | None = None) -> str:
    """The lines printed before training: backend, model and data, then the algorithm's settings
    (for a batch-size sweep, ``batch_sizes`` replaces the trainer's own batch size)."""
    cfg = trainer.config
    ds = trainer.dataset
    line = (f"backend: {trainer.backend.describe()}\n"
            f"model: {cfg.model} ({trainer.model.n_params} parameters) | data: {ds.name} "
            f"({ds.n_train} train / {ds.n_test} test) | seed {cfg.seed}")
    if trainer.algorithm == "rso":
        batch = ", ".join(str(b) for b in batch_sizes) if batch_sizes else cfg.batch_size
        line += (f"\nRSO: batch {batch}, {describe_batching(cfg)}, {plural(cfg.cycles, 'cycles')}, "
                 f"{describe_sigma_schedule(cfg)} | evaluator: {trainer.scoring.name}")
        if isinstance(trainer.evaluator, StandInEvaluator):  # asked for an evaluator the model does not allow
            line += f"\n{trainer.evaluator.describe()}"
        if cfg.train_layers:
            line += (f"\nlayers searched: {', '.join(pl.name for pl in trainer.plan)} "
                     f"({trainer.weights_per_cycle:,} weights per cycle; the others stay at their initial values)")
    else:
        line += (f"\nSGD: lr {cfg.lr}, momentum {cfg.momentum}, batch {trainer.batch_size}, "
                 f"{plural(cfg.cycles, 'epochs')}")
    return line


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with right-aligned numbers."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


HISTORY_HEADERS = ("algorithm", "cycle", "train loss", "test loss", "test acc", "weight updates",
                   "fwd samples", "seconds")


def history_table(history: Sequence[Evaluated]) -> str:
    """A history as a plain-text table, one row per evaluation."""
    return format_table(HISTORY_HEADERS, [tuple(ev) for ev in history])
