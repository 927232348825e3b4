"""``rso-gui``: open the window that trains a network with RSO live, with an SGD baseline beside it.

Usage: ``rso-gui [--presentation] [--theme light|dark] [--model NAME] [--dataset NAME] [--fresh] [--play]``.
Starts on the bundled MNIST sample (no network needed); press Space to start, F1 for help.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from ._compat import leave_a_core_for_the_gui  # noqa: E402

leave_a_core_for_the_gui()  # before NumPy is imported


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
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from PySide6.QtWidgets import QApplication  # noqa: PLC0415

    from .controller import DEFAULT_CONFIG, Controller  # noqa: PLC0415
    from .settings import APPLICATION, ORGANIZATION, open_settings, read_bool, read_config, read_speed  # noqa: PLC0415
    from .window import MainWindow  # noqa: PLC0415

    app = QApplication.instance() or QApplication([sys.argv[0]])
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
    controller = Controller(
        cfg,
        sgd=read_bool(s, "run/sgd", True),
        speed=read_speed(s, None),
        landscape=s.value("view/landscape", "1d", type=str),
        digit=int(s.value("view/digit", 0, type=int)),
        features=read_bool(s, "view/features", True),
    )
    win = MainWindow(controller)
    win.show()
    if args.play:
        controller.start()
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main())
