"""Atomic file writes: every file rso saves (checkpoints, sessions, histories, figures, reports, presets).

The data go to a temporary file beside the target, are flushed to disk, get the permissions ``open()``
would give a new file (0666 less the umask; ``mkstemp`` alone would leave them private), and are then
renamed over the target: a crash at any point leaves either the old file or the new one, never half.

A process killed mid-write (``kill -9``, a power cut) leaves its temporary file behind; the next save
of the same target removes those of its temporaries that are older than :data:`STALE_SECONDS` (a
younger one may belong to a save still under way in another process). Only names of the exact form
``.<target name>.<8 characters of mkstemp>.tmp`` are touched, never another file.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

#: a temporary file older than this (seconds since its last change) is a leftover of a killed save
STALE_SECONDS = 3600.0
_TMP_SUFFIX = ".tmp"
_MKSTEMP_NAME = re.compile(r"[a-z0-9_]{8}")  # what tempfile puts between prefix and suffix


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, briefly, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, chmod, rename); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=_TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.chmod(tmp, 0o666 & ~_umask())
        except OSError:  # a file system without permissions: the content is written all the same
            pass
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def remove_stale_temporaries(path: str | Path, older_than: float = STALE_SECONDS) -> list[Path]:
    """Delete the temporary files that :func:`write_atomic` left beside ``path`` in a save that never
    finished and that are older than ``older_than`` seconds; return those deleted. Errors are ignored
    (a leftover that cannot be removed is no reason to fail a save)."""
    path = Path(path)
    prefix = _tmp_prefix(path)
    now = time.time()
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(_TMP_SUFFIX)):
            continue
        if not _MKSTEMP_NAME.fullmatch(name[len(prefix) : -len(_TMP_SUFFIX)]):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if now - entry.stat(follow_symlinks=False).st_mtime < older_than:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed
