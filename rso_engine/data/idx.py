"""IDX files (the format of MNIST and Fashion-MNIST): finding the four standard files and reading one.

Every problem with a file is a :class:`~rso_engine.data.errors.DataError` that names the file and says
what to do about it.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import zlib
from pathlib import Path

import numpy as np

from .catalogue import IDX_FILE_NAMES
from .errors import DataError

__all__ = ["FIX_DELETE", "find_idx", "find_idx_files", "read_idx"]

# What to do about a damaged file in the download cache (the default advice of read_idx).
FIX_DELETE = "delete it and run again to download it afresh, or replace it with a good copy"

# IDX type codes: https://yann.lecun.com/exdb/mnist/ (big-endian data after the header).
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _candidates(base: str) -> tuple[str, ...]:
    # The standard name, gzipped or not, and the "train-images.idx3-ubyte" spelling some copies use.
    dotted = re.sub(r"-(idx\d-ubyte)$", r".\1", base)
    return (base, base + ".gz", dotted, dotted + ".gz")


def find_idx(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The standard IDX files present in ``folder`` by role, and the base names of those missing."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for role, base in IDX_FILE_NAMES.items():
        for cand in _candidates(base):
            path = folder / cand
            if path.is_file():
                found[role] = path
                break
        else:
            missing.append(base)
    return found, missing


def find_idx_files(folder: str | os.PathLike) -> dict[str, Path] | None:
    """The four standard IDX files in ``folder``, or None if any is missing.

    Keys are ``train_images``, ``train_labels``, ``test_images`` and ``test_labels``. Each file may be
    gzipped (``train-images-idx3-ubyte.gz``) or raw (``train-images-idx3-ubyte``; the raw one wins when
    both are there); ``train-images.idx3-ubyte`` is accepted too.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found, missing = find_idx(folder)
    return None if missing else found


def _read_bytes(path: Path, fail) -> bytes:
    """The file's bytes, gunzipped if it starts with the gzip magic number."""
    try:
        with open(path, "rb") as fh:
            is_gz = fh.read(2) == b"\x1f\x8b"
        if is_gz:
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file.") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise fail(f"its gzip data is cut short or corrupt ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}).") from None


def read_idx(path: str | os.PathLike, fix: str = FIX_DELETE) -> np.ndarray:
    """Read an IDX file (gzipped or raw) as an array of its dims, in native byte order.

    Checks the magic number, the rank and that exactly the promised number of bytes follows the header;
    raises :class:`DataError` naming the file otherwise, ending with ``fix`` (what to do about it).
    """
    path = Path(path)

    def fail(problem: str) -> DataError:
        return DataError(f"{path}: {problem}. The file is damaged or not an IDX file: {fix}.")

    raw = _read_bytes(path, fail)
    if len(raw) < 4:
        raise fail(f"it is {len(raw)} bytes long, too short for an IDX header")
    zero, type_code, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or type_code not in _IDX_DTYPES or not 1 <= ndim <= 4:
        raise fail(f"wrong magic number 0x{raw[:4].hex()} (an IDX file starts with 0x0000, a type, a rank)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise fail("its header is cut short")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: a damaged header cannot overflow
    got = len(raw) - header
    if got < expected:
        raise fail(
            f"truncated: the header promises {'x'.join(map(str, dims))} values ({expected} bytes) "
            f"but only {got} bytes follow"
        )
    if got > expected:
        raise fail(f"size mismatch: the header promises {expected} bytes of data but {got} follow")
    return (
        np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header)
        .reshape(dims)
        .astype(dtype.newbyteorder("="), copy=True)
    )
