"""The headless command line: ``rso train | compare | sweep | report | presets | session | info``.

Every training command prints the backend it computes on first, shows a progress bar on stderr and ends
with a table. Bad arguments and bad input end with one ``rso: error: …`` line and exit status 2, never a
traceback.

Modules: :mod:`.options` (the run options and the config they build), :mod:`.progress` (header,
progress bar, tables), one per command or pair of commands (:mod:`.train` for train and compare,
:mod:`.sweep`, :mod:`.report`, :mod:`.presets`, :mod:`.session`, :mod:`.info`) and :mod:`.main`
(the parser and the entry point).
"""

from .main import build_parser, main
from .options import config_from_args

__all__ = ["build_parser", "config_from_args", "main"]
