"""CIFAR-10's binary version: finding, downloading, extracting and reading its batch files.

The archive ``cifar-10-binary.tar.gz`` holds the folder ``cifar-10-batches-bin/`` with
``data_batch_1.bin`` … ``data_batch_5.bin`` (the 50,000 training images), ``test_batch.bin`` (the 10,000
test images) and ``batches.meta.txt`` (the class names, one a line). A ``.bin`` file is a run of
3,073-byte records: 1 label byte (0..9), then the 1,024 red, 1,024 green and 1,024 blue bytes of a 32×32
image, each plane row-major.

Every problem with a file is a :class:`~rso_engine.data.errors.DataError` that names the file and says
what to do about it.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .catalogue import (
    CIFAR10_ARCHIVE,
    CIFAR10_CLASSES,
    CIFAR10_FOLDER,
    CIFAR10_META_FILE,
    CIFAR10_RECORD_BYTES,
    CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES,
    DOWNLOAD_SIZES,
)
from .download import fetch_file
from .errors import DataError

__all__ = [
    "CIFAR10_BATCH_FILES",
    "FIX_CACHE_CIFAR",
    "CifarArrays",
    "cifar_cache_status",
    "fetch_cifar10",
    "find_cifar10",
    "read_cifar10",
]


CIFAR10_BATCH_FILES: tuple[str, ...] = (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE)
_KEY = "cifar10"
_FIX_GET = f"download {CIFAR10_ARCHIVE} again (https://www.cs.toronto.edu/~kriz/cifar.html) and pass it to --data-dir"
FIX_CACHE_CIFAR = "delete it (or its whole folder) and run again to extract the archive afresh"


@dataclass(frozen=True)
class CifarArrays:
    """The raw contents of CIFAR-10: uint8 images ``(N, 3, 32, 32)``, uint8 labels, the class names."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]


# --------------------------------------------------------------------------------------------------
# Reading


def _records(raw: bytes, where: str, fix: str) -> tuple[np.ndarray, np.ndarray]:
    """Bytes of one batch file -> uint8 images ``(N, 3, 32, 32)`` and labels ``(N,)``."""
    if len(raw) == 0:
        raise DataError(f"{where} is empty: {fix}.")
    if len(raw) % CIFAR10_RECORD_BYTES:
        n, extra = divmod(len(raw), CIFAR10_RECORD_BYTES)
        raise DataError(
            f"{where} is {len(raw):,} bytes, not a whole number of {CIFAR10_RECORD_BYTES:,}-byte records "
            f"({n:,} records and {extra:,} bytes over): it is truncated or not a CIFAR-10 batch file; {fix}."
        )
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR10_RECORD_BYTES)
    labels = rec[:, 0].copy()
    if labels.max() > 9:
        bad = int(np.flatnonzero(labels > 9)[0])
        raise DataError(
            f"{where}: record {bad} has label {labels[bad]}, but CIFAR-10's labels are 0..9: "
            f"it is corrupt or not a CIFAR-10 batch file; {fix}."
        )
    images = rec[:, 1:].reshape(-1, 3, 32, 32).copy()
    return images, labels


def _class_names(text: str | None) -> tuple[str, ...]:
    """The class names in ``batches.meta.txt`` (its first 10 non-blank lines), else the standard ones."""
    if text is None:
        return CIFAR10_CLASSES
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    return names[:10] if len(names) >= 10 else CIFAR10_CLASSES


def _assemble(batches: dict[str, tuple[np.ndarray, np.ndarray]], meta: str | None) -> CifarArrays:
    train = [batches[name] for name in CIFAR10_TRAIN_FILES]
    test_x, test_y = batches[CIFAR10_TEST_FILE]
    return CifarArrays(
        train_x=np.concatenate([x for x, _ in train]),
        train_y=np.concatenate([y for _, y in train]),
        test_x=test_x,
        test_y=test_y,
        classes=_class_names(meta),
    )


def _read_folder(folder: Path, fix: str) -> CifarArrays:
    missing = [name for name in CIFAR10_BATCH_FILES if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"The CIFAR-10 folder {folder} lacks {', '.join(missing)} (it needs {', '.join(CIFAR10_BATCH_FILES)}): "
            f"{fix}."
        )
    batches = {}
    for name in CIFAR10_BATCH_FILES:
        path = folder / name
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DataError(f"Cannot read {path} ({exc.strerror or exc}): {fix}.") from None
        batches[name] = _records(raw, str(path), fix)
    meta_path = folder / CIFAR10_META_FILE
    meta = meta_path.read_text(encoding="utf-8", errors="replace") if meta_path.is_file() else None
    return _assemble(batches, meta)


def _archive_members(archive: Path, fix: str) -> dict[str, bytes]:
    """The batch files and class names in ``archive`` (a .tar.gz), by file name (folders ignored)."""
    wanted = {*CIFAR10_BATCH_FILES, CIFAR10_META_FILE}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in wanted and name not in found:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found[name] = handle.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise DataError(
            f"{archive} is not a readable tar.gz archive ({detail}): it is truncated or corrupt; {fix}."
        ) from None
    missing = [name for name in CIFAR10_BATCH_FILES if name not in found]
    if missing:
        raise DataError(
            f"The archive {archive} lacks {', '.join(missing)} (it needs {', '.join(CIFAR10_BATCH_FILES)} "
            f"in {CIFAR10_FOLDER}/): it is not CIFAR-10's binary version; {fix}."
        )
    return found


def _read_archive(archive: Path, fix: str) -> CifarArrays:
    found = _archive_members(archive, fix)
    batches = {name: _records(found[name], f"{name} in {archive}", fix) for name in CIFAR10_BATCH_FILES}
    meta = found.get(CIFAR10_META_FILE)
    return _assemble(batches, meta.decode("utf-8", errors="replace") if meta is not None else None)


def find_cifar10(path: Path) -> Path | None:
    """The CIFAR-10 source at ``path``: a batch folder, a folder holding one or the archive; None if not CIFAR."""
    if path.is_file():
        return path if path.name.endswith((".tar.gz", ".tgz", ".tar")) else None
    if not path.is_dir():
        return None
    for candidate in (path, path / CIFAR10_FOLDER):
        if any((candidate / name).is_file() for name in CIFAR10_BATCH_FILES):
            return candidate
    if (path / CIFAR10_ARCHIVE).is_file():
        return path / CIFAR10_ARCHIVE
    return None


def read_cifar10(path: str | os.PathLike, fix: str | None = None) -> CifarArrays:
    """Read CIFAR-10 from a ``cifar-10-batches-bin`` folder (or its parent) or from the tar.gz itself."""
    path = Path(path)
    source = find_cifar10(path)
    if source is None:
        if not path.exists():
            raise DataError(
                f"{path} does not exist. Pass --data-dir the {CIFAR10_FOLDER} folder (or its parent), "
                f"or {CIFAR10_ARCHIVE} itself."
            )
        raise DataError(
            f"{path} holds no CIFAR-10 batch files ({', '.join(CIFAR10_BATCH_FILES)}) and no {CIFAR10_ARCHIVE}. "
            f"Pass --data-dir the {CIFAR10_FOLDER} folder (or its parent), or the archive itself."
        )
    if source.is_file():
        return _read_archive(source, fix or _FIX_GET)
    return _read_folder(source, fix or f"replace the folder's files with good copies, or {_FIX_GET}")


# --------------------------------------------------------------------------------------------------
# The download cache


def _extract(archive: Path, folder: Path) -> Path:
    """Write the archive's batch files into ``folder/cifar-10-batches-bin`` (whole, or not at all)."""
    fix = f"delete {archive} and run again to download it afresh"
    found = _archive_members(archive, fix)
    for name in CIFAR10_BATCH_FILES:  # check every file before anything is written
        _records(found[name], f"{name} in {archive}", fix)
    target = folder / CIFAR10_FOLDER
    partial = folder / (CIFAR10_FOLDER + ".partial")
    try:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name, raw in found.items():
            (partial / name).write_bytes(raw)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise DataError(
            f"Cannot extract {archive} into {target} ({exc.strerror or exc}): make sure {folder} can be written "
            "and has room (about 180 MB), or set RSO_CACHE_DIR to another folder."
        ) from None
    return target


def fetch_cifar10(folder: Path, progress: bool = True, download: bool = True) -> Path:
    """The extracted ``cifar-10-batches-bin`` folder in the cache ``folder``, downloading and extracting as needed.

    An extracted folder with every batch file is used as it is. Otherwise the archive is downloaded
    (unless a copy matching the published checksum is already there; a damaged one is deleted first)
    and extracted. With ``download=False`` a missing archive raises :class:`DataError` instead.
    """
    target = folder / CIFAR10_FOLDER
    if all((target / name).is_file() for name in CIFAR10_BATCH_FILES):
        return target
    archive = fetch_file(_KEY, CIFAR10_ARCHIVE, folder,
                         f"pass --data-dir with {CIFAR10_ARCHIVE} or its extracted {CIFAR10_FOLDER} folder",
                         progress, download)
    return _extract(archive, folder)


def cifar_cache_status(folder: Path) -> str:
    """What ``rso info`` says about CIFAR-10 in the cache ``folder``. Reads no data files."""
    target = folder / CIFAR10_FOLDER
    if all((target / name).is_file() for name in CIFAR10_BATCH_FILES):
        return f"cached at {target}"
    if (folder / CIFAR10_ARCHIVE).is_file():
        return f"downloaded to {folder / CIFAR10_ARCHIVE}; extracted on first use"
    return f"not downloaded yet ({DOWNLOAD_SIZES[_KEY]}, goes to {folder} on first use)"

