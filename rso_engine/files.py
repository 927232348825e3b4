"""Atomic writes of exported files (figures, reports, presets) with ordinary permissions.

:func:`rso_engine.experiment.atomic_write_bytes` writes through ``tempfile.mkstemp``, whose files are
private (mode 0600). That suits checkpoints, but an exported figure or report should be readable like any
file the user's programs create; :func:`write_atomic` writes atomically and then gives the file the
mode ``open()`` would have (0666 less the umask).
"""

from __future__ import annotations

import os
from pathlib import Path

from .experiment import atomic_write_bytes


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, briefly, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename) with mode 0666 & ~umask."""
    path = Path(path)
    atomic_write_bytes(path, data)
    try:
        os.chmod(path, 0o666 & ~_umask())
    except OSError:  # e.g. a file system without permissions; the content is written all the same
        pass
    return path
