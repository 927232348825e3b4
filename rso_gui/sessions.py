"""Saved sessions in the window: save the running session, open one and continue it (no dialogs here).

Saving goes through :meth:`Runner.call_between`, so the trainers are written by the engine thread at an
exact event boundary while the window keeps drawing; opening reads the file's header on the GUI thread
(a damaged or foreign file is refused at once with a :class:`SessionError`) and then starts a run that
restores the trainers in the engine thread and stops paused at the saved point.
"""

from __future__ import annotations

from pathlib import Path

from rso_engine.config import ConfigError, RunConfig
from rso_engine.session import SessionError, read_session_info, save_session, session_path
from rso_engine.vocabulary import RunState

from .live.lanes import DEFAULT_FAIRNESS, FAIRNESS, LaneSpec

SAVE_TIMEOUT_S = 60.0


def save_window_session(window, path: str | Path, timeout: float = SAVE_TIMEOUT_S) -> Path:
    """Save the window's run (RSO, its SGD baseline and race lanes) and view settings to ``path`` (suffix
    added); the lanes' names and the fairness rule go with the view settings."""
    c = window.controller
    r = c.runner
    if r is None or r.rso is None or c.state in (RunState.PREPARING, RunState.STOPPED):
        raise SessionError("nothing to save yet: the run is still being prepared")
    if c.state == RunState.ERROR:
        raise SessionError("the run stopped with an error; reset it (R) before saving a session")
    path = session_path(path)
    extra = {
        "view": c.view_options(),
        "speed": c.speed,
        "x_axis": window.compare_x_axis(),
        "lanes": [spec.label for spec in r.lanes.specs],
        "fairness": r.lanes.fairness,
    }
    future = r.call_between(lambda: save_session(path, r.rso, r.sgd, extra=extra, lanes=r.lanes.trainers))
    try:
        return future.result(timeout)
    except TimeoutError as exc:
        raise SessionError(f"cannot save session {path}: the engine did not answer in {timeout:.0f} s") from exc
    except RuntimeError as exc:
        raise SessionError(f"cannot save session {path}: {exc}") from exc


def open_window_session(window, path: str | Path) -> dict:
    """Open the session at ``path`` in ``window``: its config goes to the controls and a run continuing
    it is prepared, paused at the saved point. Returns the file's info (see ``read_session_info``)."""
    path = Path(path)
    info = read_session_info(path)  # SessionError for damaged, foreign or newer files
    runs = {run["role"]: run for run in info["runs"]}
    try:
        config = RunConfig.from_dict(runs["rso"]["config"])
    except (KeyError, TypeError, ConfigError) as exc:
        raise SessionError(f"{path} is damaged: its run settings cannot be read ({exc})") from exc
    app = info.get("app") or {}
    c = window.controller
    view = app.get("view")
    if isinstance(view, dict):
        known = {k: v for k, v in view.items() if k in c.view_options()}
        if known:
            window.apply_view_options(**known)
    sgd = "sgd" in runs
    names = app.get("lanes") if isinstance(app.get("lanes"), list) else []
    lanes = []
    for i, run in enumerate(r for r in info["runs"] if r["role"] == "lane"):
        label = names[i] if i < len(names) and isinstance(names[i], str) else f"lane {i + 2}"
        lanes.append(LaneSpec(label, RunConfig.from_dict(run["config"])))
    fairness = app.get("fairness") if app.get("fairness") in FAIRNESS else DEFAULT_FAIRNESS
    window.banner.hide()
    c.open_session(str(path), config, sgd, lanes=lanes, fairness=fairness)
    window.controls.set_sgd(sgd)
    if "speed" in app:
        speed = app["speed"]
        window.set_speed(float(speed) if isinstance(speed, (int, float)) and speed > 0 else None)
    if isinstance(app.get("x_axis"), str):  # (sessions saved before the vocabulary say "cycle")
        window.apply_view_options(x_axis=app["x_axis"])
    return info


__all__ = ["SessionError", "open_window_session", "save_window_session"]
