"""The words the engine, the command line and the window share, each defined once with its label.

- **History x-axes** (:data:`X_AXES`): what the x-axis of an accuracy/loss-over-training plot counts, the
  :class:`~rso_engine.events.Evaluated` field it reads and its label. ``rso compare --x-axis``, the
  matplotlib figures (:mod:`rso_engine.plots`) and the window's RSO-vs-SGD panel use these names;
  :func:`x_axis_name` also accepts the old spelling the window stored (``"cycle"``).
- **The log-x rule** (:func:`log_x_by_default`): which axes are drawn on a log scale unless asked otherwise.
- **Evaluator names** (:data:`EVALUATOR_NAMES`), in the order "auto" prefers them.
- **Landscape modes** (:class:`LandscapeMode`, :data:`LANDSCAPE_MODES`, :func:`landscape_mode`) with their labels.
- **Run states** (:class:`RunState`) with their display text (:func:`state_text`).

The enums are ``str``-valued: a member equals (and hashes like) its plain string, so code that publishes
or compares the plain strings (``"paused"``, ``"2d-weights"``) keeps working, and ``str(member)`` is
the string itself. Qt-free, like all of :mod:`rso_engine`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "DEFAULT_LANDSCAPE",
    "DEFAULT_X_AXIS",
    "EVALUATOR_NAMES",
    "LANDSCAPE_LABELS",
    "LANDSCAPE_MODES",
    "STATE_TEXT",
    "X_AXES",
    "X_AXIS_ALIASES",
    "LandscapeMode",
    "RunState",
    "XAxis",
    "landscape_mode",
    "log_x_by_default",
    "state_text",
    "x_axis_name",
]


class _Word(str, Enum):
    """A ``str`` enum whose ``str()`` and ``format()`` are the value (``enum.StrEnum`` is Python ≥ 3.11)."""

    __str__ = str.__str__
    __format__ = str.__format__


# --------------------------------------------------------------------------- history x-axes
@dataclass(frozen=True)
class XAxis:
    """One x-axis of the history plots: the ``Evaluated`` field it reads, its label, and whether it is a
    budget axis, where RSO and SGD differ by orders of magnitude (drawn on a log scale by default)."""

    field: str
    label: str
    log: bool = False


#: x-axis name -> what it reads and how it is labelled, in the order the window cycles through them
X_AXES: dict[str, XAxis] = {
    "cycles": XAxis("cycle", "cycles (RSO) / epochs (SGD)"),
    "weight_updates": XAxis("weight_updates", "weight updates", log=True),
    "forward_samples": XAxis("forward_samples", "forward-pass samples", log=True),
    "seconds": XAxis("seconds", "training time (s)"),
}
DEFAULT_X_AXIS = "cycles"
#: old spellings still read: the window stored ``"cycle"`` in its settings and saved sessions
X_AXIS_ALIASES: dict[str, str] = {"cycle": "cycles"}


def x_axis_name(name: str) -> str:
    """The x-axis called ``name`` (a key of :data:`X_AXES`, or an old spelling of one); ValueError if none."""
    key = X_AXIS_ALIASES.get(name, name) if isinstance(name, str) else name
    if key not in X_AXES:
        raise ValueError(f"unknown x-axis {name!r}: choose one of {', '.join(X_AXES)}")
    return key


def log_x_by_default(name: str) -> bool:
    """Whether the x-axis ``name`` is drawn on a log scale unless asked otherwise (the budget axes:
    weight updates and forward samples). A log axis leaves out the evaluation before training (at 0)."""
    return X_AXES[x_axis_name(name)].log


# --------------------------------------------------------------------------- evaluators
#: the evaluators by name, in the order ``evaluator="auto"`` prefers them (the GPU kernels, the CPU's compiled
#: kernels, vectorised incremental, the authors' layer cache, the reference). Here, not in the registry, so a
#: config can be checked without importing the evaluators (and Numba); the registry asserts it matches.
EVALUATOR_NAMES: tuple[str, ...] = ("incremental-cupy", "incremental-numba", "incremental", "layer-cached", "reference")


# --------------------------------------------------------------------------- loss-landscape modes
class LandscapeMode(_Word):
    """What the loss-landscape view shows around the weight RSO just decided."""

    ONE_D = "1d"  # the loss along this weight
    TWO_D_WEIGHTS = "2d-weights"  # over this weight and the next one in the sweep
    TWO_D_DIRECTIONS = "2d-directions"  # over two filter-normalised random directions (Li et al. 2018)


LANDSCAPE_LABELS: dict[LandscapeMode, str] = {
    LandscapeMode.ONE_D: "1-D: along this weight",
    LandscapeMode.TWO_D_WEIGHTS: "2-D: this weight × the next",
    LandscapeMode.TWO_D_DIRECTIONS: "2-D: random directions (Li et al.)",
}
#: the modes as plain strings, in the order key D cycles through them
LANDSCAPE_MODES: tuple[str, ...] = tuple(m.value for m in LandscapeMode)
DEFAULT_LANDSCAPE = LandscapeMode.ONE_D.value


def landscape_mode(name: str) -> str:
    """The landscape mode called ``name`` (one of :data:`LANDSCAPE_MODES`); ValueError if none."""
    if name not in LANDSCAPE_MODES:
        raise ValueError(f"unknown landscape mode {name!r}: choose one of {', '.join(LANDSCAPE_MODES)}")
    return str(name)


# --------------------------------------------------------------------------- run states
class RunState(_Word):
    """The state of a run in the window's engine loop, as the runner publishes it."""

    PREPARING = "preparing"  # building the model and loading the data
    PAUSED = "paused"
    RUNNING = "running"
    FINISHED = "finished"
    ERROR = "error"  # stopped by a failure (the message is reported separately)
    STOPPED = "stopped"  # asked to stop (reset, new settings, shutdown)


STATE_TEXT: dict[RunState, str] = {
    RunState.PREPARING: "preparing…",
    RunState.PAUSED: "paused",
    RunState.RUNNING: "running",
    RunState.FINISHED: "finished",
    RunState.ERROR: "error",
    RunState.STOPPED: "stopped",
}


def state_text(state: str) -> str:
    """The display text of a run state (a :class:`RunState` or its plain string; unknown ones as they are)."""
    return STATE_TEXT.get(state, str(state))
