"""``rso-gui``: open the window that trains a network with RSO live, with an SGD baseline beside it.

Usage: ``rso-gui [--presentation] [--theme light|dark] [--model NAME] [--dataset NAME] [--fresh] [--play]
[--lesson NAME] [--list-lessons]``. Starts on the bundled MNIST sample (no network needed); press Space to
start, F1 for help. ``--lesson`` opens a guided lesson (PageDown / PageUp walk through it); ``--list-lessons``
prints the lessons, name and title, one per line, and needs no display.

On a Linux machine without the X11 libraries that Qt's xcb platform plugin needs (``libxcb-cursor0`` and
others, missing on bare or server installs), Qt would abort with "could not load the Qt platform plugin
xcb"; :func:`platform_problem` finds that before the QApplication is made, and ``rso-gui`` prints one line
naming the packages to install and exits with status 2.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
from collections.abc import Callable, Mapping

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from ._compat import leave_a_core_for_the_gui  # noqa: E402

leave_a_core_for_the_gui()  # before NumPy is imported


#: the libraries Qt's xcb platform plugin loads that bare systems lack, with their Debian/Ubuntu package
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
}
EXIT_NO_PLATFORM = 2
EXIT_USAGE = 2  # a lesson that cannot be read


def _loadable(soname: str) -> bool:
    """Can the dynamic linker load ``soname`` (as Qt's plugin would: system paths, LD_LIBRARY_PATH)?"""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> bool:
    """Will Qt start on its xcb (X11) platform plugin? On Linux when ``QT_QPA_PLATFORM`` names xcb first, or
    is unset outside a Wayland session; never for ``offscreen``, ``wayland``, ``vnc``, ... or off Linux."""
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return chosen.split(";")[0].split(":")[0].strip().lower() == "xcb"
    wayland = environ.get("XDG_SESSION_TYPE", "").lower() == "wayland" and bool(environ.get("WAYLAND_DISPLAY"))
    return not wayland


def platform_problem(
    environ: Mapping[str, str] = os.environ,
    platform: str = sys.platform,
    loadable: Callable[[str], bool] | None = None,
) -> str | None:
    """One line naming the system packages Qt needs to open a window on this machine, or None: when Qt
    will use xcb (:func:`uses_xcb`) and a library of :data:`XCB_LIBRARIES` cannot be loaded
    (``loadable(soname)``, default :func:`_loadable`, tells)."""
    if not uses_xcb(environ, platform):
        return None
    loadable = loadable or _loadable
    missing = [lib for lib in XCB_LIBRARIES if not loadable(lib)]
    if missing:
        packages = " ".join(XCB_LIBRARIES[lib] for lib in missing)
        return (
            f"rso-gui: Qt cannot open a window: its X11 (xcb) platform plugin needs {', '.join(missing)}; "
            f"install {'it' if len(missing) == 1 else 'them'} (Debian/Ubuntu: sudo apt install {packages})"
        )
    return display_problem(environ, socket_exists)


def socket_exists(path: str) -> bool:
    """Is there a (socket) file at ``path``?"""
    return os.path.exists(path)


def display_problem(environ: Mapping[str, str], exists: Callable[[str], bool] = socket_exists) -> str | None:
    """One line when no X display can be reached: ``DISPLAY`` unset, or a local display ``:N`` whose X server
    socket (``/tmp/.X11-unix/XN``) is not there. Remote displays (``host:N``) are left to Qt."""
    display = environ.get("DISPLAY", "").strip()
    fix = "run it in a desktop session, under `xvfb-run rso-gui`, or with QT_QPA_PLATFORM=offscreen for no window"
    if not display:
        return f"rso-gui: Qt cannot open a window: no X display (DISPLAY is not set); {fix}"
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if host in ("", "unix") and number.isdigit() and not exists(f"/tmp/.X11-unix/X{number}"):
        return f"rso-gui: Qt cannot open a window: no X server runs on display {display}; {fix}"
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from rso_engine.data import DATASET_NAMES  # noqa: PLC0415
    from rso_engine.models import MODELS  # noqa: PLC0415

    p = argparse.ArgumentParser(prog="rso-gui", description="Watch RSO train a neural network, live.")
    p.add_argument("--presentation", action="store_true", help="large fonts and thick lines, for projectors")
    p.add_argument("--theme", choices=("dark", "light"), help="colour theme")
    p.add_argument("--model", choices=sorted(MODELS), help="model to train (default: the last one used)")
    p.add_argument("--dataset", choices=DATASET_NAMES, help="dataset (default: the last one used)")
    p.add_argument("--fresh", action="store_true", help="ignore the remembered window state and settings")
    p.add_argument("--play", action="store_true", help="start training at once")
    p.add_argument("--lesson", metavar="NAME", help="open a guided lesson (a name from --list-lessons, or a file)")
    p.add_argument("--list-lessons", action="store_true", help="list the lessons (name and title) and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the window; the exit status (2 when Qt cannot open a window on this machine)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    lesson = None
    if args.list_lessons or args.lesson:
        from .controller import DEFAULT_CONFIG  # noqa: PLC0415
        from .live.lessons import LessonError, list_lessons, load_lesson  # noqa: PLC0415

        if args.list_lessons:
            entries = list_lessons()
            width = max((len(e.name) for e in entries), default=0)
            for e in entries:
                print(f"{e.name:<{width}}  {e.title}")
            return 0
        try:
            lesson = load_lesson(args.lesson, DEFAULT_CONFIG)  # a malformed file is refused before any window
        except LessonError as exc:
            print(f"rso-gui: {exc}", file=sys.stderr)
            return EXIT_USAGE
    from PySide6.QtWidgets import QApplication  # noqa: PLC0415

    from .controller import DEFAULT_CONFIG, Controller, running_threads  # noqa: PLC0415
    from .settings import APPLICATION, ORGANIZATION, controller_options, open_settings, read_config  # noqa: PLC0415
    from .window import MainWindow  # noqa: PLC0415

    app = QApplication.instance()
    if app is None:
        problem = platform_problem()
        if problem:
            print(problem, file=sys.stderr)
            return EXIT_NO_PLATFORM
        app = QApplication([sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("RSO live")

    s = open_settings()
    if args.fresh:
        s.clear()
    if args.theme:
        s.setValue("display/theme", args.theme)
    if args.presentation:
        s.setValue("display/presentation", True)
    cfg = read_config(s, DEFAULT_CONFIG)
    changes = {k: v for k, v in (("model", args.model), ("dataset", args.dataset)) if v}
    if changes:
        cfg = cfg.replace(**changes)
    options = controller_options(s)
    if lesson is not None:  # its first run from the start, not the remembered one first
        cfg = lesson.steps[0].config
        options["sgd"] = options.get("sgd", True) if lesson.steps[0].sgd is None else lesson.steps[0].sgd
    controller = Controller(cfg, **options)
    win = MainWindow(controller)
    win.show()
    if lesson is not None:
        win.lessons.open(lesson)
    if args.play:
        controller.start()
    code = int(app.exec())
    if running_threads():  # an engine thread that would not stop: Qt would abort when it is destroyed
        print("rso-gui: an engine thread did not stop in time; exiting without waiting for it", file=sys.stderr)
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
