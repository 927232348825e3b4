"""``python -m rso_engine.cli``: the same as the ``rso`` command."""

import sys

from .main import main

sys.exit(main())
