"""The one loop that drives a trainer headless: the command line, the study reports and ``Trainer.run``.

:func:`drive` iterates ``trainer.events()`` to the end (or until a stop predicate says so) and, around
that loop, does what every headless driver needs: a per-event hook, progress updates, and saving the
run (a checkpoint or a session) after every cycle or epoch, at an early stop and on Ctrl-C.

It relies only on what every trainer has (``events()`` and ``history``) and imports no trainer, so
the trainers can offer it as :meth:`Trainer.run`. The window drives trainers its own way (pausing and
stepping between events), not through this loop.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

from .events import ChunkDone, CycleDone, Evaluated, LayerDone, SGDStep, WeightTried

#: events after which a trainer's state is exactly the state after its last event (RSO scores weights in
#: chunks: between a chunk's WeightTried events, weights and random streams are already further on)
EXACT_EVENTS = (ChunkDone, LayerDone, CycleDone, Evaluated, SGDStep)

#: weights tried (RSO) or steps taken (SGD) between two progress updates, at most
PROGRESS_EVERY = 512


class Drivable(Protocol):
    """What :func:`drive` needs of a trainer."""

    history: list[Evaluated]

    def events(self) -> Iterator[Any]: ...


class Progress(Protocol):
    """Where :func:`drive` reports progress (the CLI's progress bar)."""

    def advance(self, steps: int) -> None:
        """``steps`` more weights tried (RSO) or steps taken (SGD)."""

    def evaluated(self, ev: Evaluated) -> None:
        """An evaluation finished (also the one before training, cycle 0)."""

    def close(self) -> None:
        """The run ended, stopped or was interrupted."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while driving; ``saved`` is what the ``save`` hook returned then (e.g. the file), or None
    (no hook, or a second Ctrl-C that did not wait for an exact state)."""

    def __init__(self, saved: Any = None):
        super().__init__()
        self.saved = saved


T = TypeVar("T", bound=Drivable)


class _DeferredCtrlC:
    """While active (in the main thread), the first Ctrl-C only sets :attr:`requested`, so the loop can stop
    at the next exact state and save that; a second one interrupts at once, as usual."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._active = False

    def __enter__(self) -> _DeferredCtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._active = True
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> bool:
        if self._active:
            signal.signal(signal.SIGINT, self._previous)
        return False


def drive(
    trainer: T,
    *,
    on_event: Callable[[Any], None] | None = None,
    progress: Progress | None = None,
    save: Callable[[], Any] | None = None,
    stop: Callable[[T], bool] | None = None,
) -> list[Evaluated]:
    """Run ``trainer`` to the end of its cycles/epochs and return its history.

    ``on_event(ev)``: called for every event, first. ``progress``: told of the weights tried / steps
    taken (in batches of up to :data:`PROGRESS_EVERY`) and of every evaluation, and closed at the end.
    ``save()``: called after every cycle's or epoch's evaluation, at the end if the run stopped after
    its last save, and on Ctrl-C, which then raises :class:`Interrupted` carrying what ``save()``
    returned. Ctrl-C takes effect at the next exact state (:data:`EXACT_EVENTS`; a chunk of weights is
    a fraction of a second), so the saved run continues exactly as if never interrupted; a second Ctrl-C
    stops at once and saves nothing (the last save stays as it was). ``stop(trainer)``: checked after
    every exact event; true ends the run there (the equal-budget study stops SGD at a forward-pass budget).
    """
    pending = 0  # steps not yet reported to progress
    unsaved = False  # events since the last save
    try:
        with _DeferredCtrlC() as ctrl_c:
            for ev in trainer.events():
                if on_event is not None:
                    on_event(ev)
                unsaved = True
                if isinstance(ev, (WeightTried, SGDStep)):
                    pending += 1
                    if pending >= PROGRESS_EVERY and progress is not None:
                        progress.advance(pending)
                        pending = 0
                elif isinstance(ev, Evaluated):
                    if progress is not None:
                        progress.advance(pending)
                        progress.evaluated(ev)
                    pending = 0
                    if save is not None and ev.cycle > 0:
                        save()
                        unsaved = False
                if not isinstance(ev, EXACT_EVENTS):
                    continue
                if ctrl_c.requested:
                    if progress is not None:
                        progress.close()
                        progress = None
                    raise Interrupted(save() if save is not None else None)
                if stop is not None and stop(trainer):
                    break
        if progress is not None and pending:
            progress.advance(pending)
        if save is not None and unsaved:
            save()
    except Interrupted:
        raise
    except KeyboardInterrupt as exc:  # a second Ctrl-C, or one outside the main thread: mid-computation
        if progress is not None:
            progress.close()
            progress = None
        raise Interrupted(None) from exc
    finally:
        if progress is not None:
            progress.close()
    return trainer.history
