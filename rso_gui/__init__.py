"""rso_gui: the PySide6 + pyqtgraph window that runs rso_engine live."""
