"""The Qt-free half of the window: the engine loop its worker thread runs, and what it hands the views.

- :mod:`.snapshot`: the immutable data the views draw (``Snapshot``, ``RunInfo`` and their parts);
- :mod:`.info`: the fixed facts of a run, asked of its trainers;
- :mod:`.probes`: the loss landscape and feature maps computed on the engine's state;
- :mod:`.loading`: datasets loaded once per process, error messages for people;
- :mod:`.runner`: the command state machine and the loop (``Runner``).

Nothing in this package imports Qt (an import-linter contract keeps it so).
"""
