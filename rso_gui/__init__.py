"""rso_gui: the PySide6 + pyqtgraph window that runs rso_engine live.

pyqtgraph must bind to PySide6 (the only Qt binding installed with rso); the environment variable is set
before anything here imports it. See ``_compat`` for a work-around of a reference-count bug in
PySide6 6.12.0 on Python 3.11 that would otherwise crash the window after a few minutes.
"""

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from ._compat import protect_singletons  # noqa: E402

protect_singletons()
