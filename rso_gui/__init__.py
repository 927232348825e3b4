"""rso_gui: the PySide6 + pyqtgraph window that runs rso_engine live.

pyqtgraph must bind to PySide6 (the only Qt binding installed with rso); the environment variable is set
before anything here imports it.
"""

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
