"""Datasets: the bundled MNIST sample, full MNIST and Fashion-MNIST.

- ``mnist-sample`` (the default) is the 5,000-digit sample shipped with the package, split into
  4,000 training and 1,000 test images by a fixed, stratified split. It needs no network.
- ``mnist`` is downloaded on first use as the four standard IDX files into
  ``<cache>/mnist/`` (see :func:`default_cache_dir`), checked against the published checksums.
- ``fashion-mnist`` is read from Debian's ``dataset-fashion-mnist`` package
  (``/usr/share/datasets/fashion-mnist/``) when installed, else downloaded like MNIST.
- ``data_dir=`` reads the four IDX files (gzipped or not) from any folder.

Images come back as float32 ``(N, 1, H, W)``, scaled to [0, 1] and then standardised with the
mean and standard deviation of the training pixels; labels as int64. Every problem with a file
raises :class:`DataError`, whose message names the file and says what to do about it.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import re
import sys
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rso_engine import __version__
from rso_engine.resources import resource_path

__all__ = [
    "DATASET_NAMES",
    "FASHION_MNIST_CLASSES",
    "IDX_FILE_NAMES",
    "KNOWN_DIGESTS",
    "MIRRORS",
    "MIRROR_ENV_VARS",
    "MNIST_CLASSES",
    "SYSTEM_DIRS",
    "DataError",
    "Dataset",
    "default_cache_dir",
    "describe_datasets",
    "download_file",
    "find_idx_files",
    "load_dataset",
    "read_idx",
]

log = logging.getLogger(__name__)

DATASET_NAMES = ("mnist-sample", "mnist", "fashion-mnist")

MNIST_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(10))
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# The four standard files, by role; each may be gzipped (".gz") or raw.
IDX_FILE_NAMES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# One checksum is ``(algorithm, hexdigest)`` with algorithm "md5" or "sha256"; a table entry is one
# checksum or a tuple of alternatives, any of which accepts the file.
Digest = tuple[str, str]
DigestSpec = str | Digest | Iterable[Digest] | None

KNOWN_DIGESTS: dict[str, dict[str, tuple[Digest, ...]]] = {
    # The MD5s published for the original MNIST files (the ones torchvision and others check).
    "mnist": {
        "train-images-idx3-ubyte.gz": (("md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),),
        "train-labels-idx1-ubyte.gz": (("md5", "d53e105ee54ea40749a09fcbcd1e9432"),),
        "t10k-images-idx3-ubyte.gz": (("md5", "9fb629c4189551a2d022fa330f9573f3"),),
        "t10k-labels-idx1-ubyte.gz": (("md5", "ec29112dd5afa0611ce80d1b7f02629c"),),
    },
    # Fashion-MNIST: the MD5s its authors publish for their gz files, and the SHA-256 of the gz files
    # in Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1, which were recompressed (so their
    # bytes differ) but hold the same data: the decompressed files' SHA-256 are
    # c59f468a... (train images), bad3541b... (train labels), 5b4141f0... (t10k images) and
    # 0402a96d... (t10k labels), the published ones.
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            ("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            ("sha256", "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
        ),
        "train-labels-idx1-ubyte.gz": (
            ("md5", "25c81989df183df01b3e8a0aad5dffbe"),
            ("sha256", "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"),
        ),
        "t10k-images-idx3-ubyte.gz": (
            ("md5", "bef4ecab320f06d8554ea6380940ec79"),
            ("sha256", "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
        ),
        "t10k-labels-idx1-ubyte.gz": (
            ("md5", "bb300cfdad3c16e7a12a480ee83cd310"),
            ("sha256", "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"),
        ),
    },
}

# Base URLs tried in order; an environment variable (one or more base URLs, separated by spaces or
# commas) replaces the list.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}
MIRROR_ENV_VARS: dict[str, str] = {"mnist": "RSO_MNIST_MIRROR", "fashion-mnist": "RSO_FASHION_MNIST_MIRROR"}

# Folders where a system package installs a dataset; looked at before the cache.
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "mnist": (),
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}
_SYSTEM_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}

_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
_DOWNLOAD_SIZES = {"mnist": "about 11 MB", "fashion-mnist": "about 30 MB"}

SAMPLE_FILE = "mnist_5k.npz"
SAMPLE_SEED = 20200512
SAMPLE_TEST_FRACTION = 5  # one in five images of each class goes to the test split

_CHUNK = 1 << 16
_FIX_DELETE = "delete it and run again to download it afresh, or replace it with a good copy"

# IDX type codes: https://yann.lecun.com/exdb/mnist/ (big-endian data after the header).
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DataError(Exception):
    """A dataset cannot be loaded; the message names the file and says what to do."""


class _DownloadError(DataError):
    """The network or the server failed (the next mirror may do better)."""


class _ChecksumError(DataError):
    """A download arrived whole but is not the expected file."""


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A train/test pair of normalised image arrays with their labels."""

    name: str
    train_x: np.ndarray  # float32 (N, 1, H, W), (x/255 - mean) / std
    train_y: np.ndarray  # int64 (N,)
    test_x: np.ndarray
    test_y: np.ndarray
    mean: float  # of the training pixels in [0, 1]; used for both splits
    std: float
    source: str  # where it came from, for people
    classes: tuple[str, ...]

    @property
    def n_train(self) -> int:
        return int(self.train_x.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.test_x.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one image."""
        return tuple(int(s) for s in self.train_x.shape[1:])  # type: ignore[return-value]

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> Dataset:
        """The first ``n_train`` training and ``n_test`` test examples (None keeps a split whole).

        The splits are already in mixed class order, so a prefix is roughly balanced. The mean and
        std stay those of the full training split, so values are comparable across subsets.
        """
        for label, n, have in (("n_train", n_train, self.n_train), ("n_test", n_test, self.n_test)):
            if n is not None and not 0 <= n <= have:
                raise ValueError(f"{label}={n} is out of range: {self.name} has {have} such examples")
        tr = self.n_train if n_train is None else int(n_train)
        te = self.n_test if n_test is None else int(n_test)
        return Dataset(
            name=self.name,
            train_x=self.train_x[:tr],
            train_y=self.train_y[:tr],
            test_x=self.test_x[:te],
            test_y=self.test_y[:te],
            mean=self.mean,
            std=self.std,
            source=self.source,
            classes=self.classes,
        )

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_train={self.n_train}, n_test={self.n_test}, "
            f"image_shape={self.image_shape}, source={self.source!r})"
        )


# --------------------------------------------------------------------------------------------------
# Locations


def default_cache_dir() -> Path:
    """Where downloads go: ``$RSO_CACHE_DIR``, else ``$XDG_CACHE_HOME/rso``, else ``~/.cache/rso``."""
    explicit = os.environ.get("RSO_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "rso"
    return Path.home() / ".cache" / "rso"


def _candidates(base: str) -> tuple[str, ...]:
    # The standard name, gzipped or not, and the "train-images.idx3-ubyte" spelling some copies use.
    dotted = re.sub(r"-(idx\d-ubyte)$", r".\1", base)
    return (base, base + ".gz", dotted, dotted + ".gz")


def _find_idx(folder: Path) -> tuple[dict[str, Path], list[str]]:
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
    found, missing = _find_idx(folder)
    return None if missing else found


# --------------------------------------------------------------------------------------------------
# IDX files


def _read_idx(path: Path, fix: str) -> np.ndarray:
    def fail(problem: str) -> DataError:
        return DataError(f"{path}: {problem}. The file is damaged or not an IDX file: {fix}.")

    try:
        with open(path, "rb") as fh:
            is_gz = fh.read(2) == b"\x1f\x8b"
        if is_gz:
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file.") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise fail(f"its gzip data is cut short or corrupt ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}).") from None

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
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
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


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or raw) as an array of its dims, in native byte order.

    Checks the magic number, the rank and that exactly the promised number of bytes follows the header;
    raises :class:`DataError` naming the file otherwise.
    """
    return _read_idx(Path(path), _FIX_DELETE)


# --------------------------------------------------------------------------------------------------
# Checksums and downloads


def _as_digests(spec: DigestSpec) -> tuple[Digest, ...]:
    """``None`` -> (); a bare hex string -> a SHA-256; one pair or several pairs -> the pairs."""
    if spec is None:
        return ()
    if isinstance(spec, str):
        return (("sha256", spec.lower()),)
    items = tuple(spec)
    if len(items) == 2 and all(isinstance(x, str) for x in items):
        items = (items,)  # type: ignore[assignment]
    out = []
    for algo, hexdigest in items:  # type: ignore[misc]
        algo = algo.lower().replace("-", "")
        hashlib.new(algo)  # ValueError for an unknown algorithm
        out.append((algo, hexdigest.lower()))
    return tuple(out)


def _hash_file(path: Path, algorithms: Iterable[str]) -> dict[str, str]:
    hashers = {a: hashlib.new(a) for a in set(algorithms)}
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            for h in hashers.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashers.items()}


def _check(path: Path, digests: tuple[Digest, ...]) -> tuple[bool, dict[str, str]]:
    """Whether ``path`` matches any of ``digests`` (True when there are none), with its hashes."""
    hashes = _hash_file(path, {"sha256", *(a for a, _ in digests)})
    ok = not digests or any(hashes[a] == d for a, d in digests)
    return ok, hashes


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_sidecar(path: Path, sha256: str) -> None:
    side = _sidecar(path)
    tmp = side.with_name(side.name + ".tmp")
    tmp.write_text(f"{sha256}  {path.name}\n", encoding="ascii")
    os.replace(tmp, side)


def _read_sidecar(path: Path) -> str | None:
    try:
        text = _sidecar(path).read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    if text and re.fullmatch(r"[0-9a-f]{64}", text[0]):
        return text[0]
    return None


def _content_range_start(value: str | None) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-", value or "")
    return int(m.group(1)) if m else None


def _fetch(url: str, part: Path, progress: bool, timeout: float) -> None:
    """Stream ``url`` into ``part``, resuming an existing ``part`` with a Range request if possible."""
    from tqdm import tqdm  # imported here: only downloads need it

    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": f"rso/{__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:  # the .part is not a prefix of what the server has: restart
            part.unlink()
            return _fetch(url, part, progress, timeout)
        raise
    with response:
        if (
            offset
            and response.status == 206
            and _content_range_start(response.headers.get("Content-Range")) == offset
        ):
            mode = "ab"
        else:
            offset, mode = 0, "wb"  # the server sent the whole file (or an unusable range)
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        total = None if remaining is None else offset + remaining
        received = 0
        with (
            open(part, mode) as fh,
            tqdm(
                total=total,
                initial=offset,
                desc=part.name[: -len(".part")],
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                fh.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if remaining is not None and received < remaining:
            raise http.client.IncompleteRead(b"", remaining - received)


def download_file(
    url: str,
    dest: str | os.PathLike,
    sha256: DigestSpec = None,
    progress: bool = True,
    timeout: float = 30,
) -> Path:
    """Download ``url`` to ``dest`` atomically and check it.

    The data streams into ``<dest>.part`` (a ``.part`` left by an interrupted run is resumed with an
    HTTP Range request when the server allows it, else started afresh), is checked, and only then
    renamed to ``dest``; a ``<dest>.sha256`` file records its SHA-256 for cheap later checks.
    ``sha256`` is a SHA-256 hex string, an ``(algorithm, hexdigest)`` pair ("md5" or "sha256"), several
    such pairs (any may match), or None for no check. A file with the wrong checksum is deleted and a
    :class:`DataError` says so; network failures raise a :class:`DataError` too (the ``.part`` stays,
    to be resumed). The progress bar goes to stderr unless ``progress`` is False.
    """
    dest = Path(dest)
    digests = _as_digests(sha256)
    part = dest.with_name(dest.name + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"Cannot create the folder {dest.parent} for downloads ({exc}).") from None
    try:
        _fetch(url, part, progress, timeout)
    except urllib.error.HTTPError as exc:
        raise _DownloadError(f"{url}: HTTP error {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise _DownloadError(f"{url}: {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        have = part.stat().st_size if part.exists() else 0
        raise _DownloadError(
            f"{url}: the connection closed with {exc.expected} bytes still to come "
            f"({have} bytes kept in {part}, resumed next time)"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _DownloadError(f"{url}: {exc.__class__.__name__}: {exc}") from None

    ok, hashes = _check(part, digests)
    if not ok:
        part.unlink(missing_ok=True)
        expected = " or ".join(f"{a} {d}" for a, d in digests)
        got = ", ".join(f"{a} {hashes[a]}" for a in dict.fromkeys(a for a, _ in digests))
        raise _ChecksumError(
            f"{dest.name} downloaded from {url} is not the expected file: expected {expected}, got {got}. "
            "The bad download was deleted. Run again to retry; if it keeps failing, that mirror serves "
            "another file: get the four files elsewhere and pass --data-dir FOLDER."
        )
    os.replace(part, dest)
    try:
        _write_sidecar(dest, hashes["sha256"])
    except OSError:
        pass  # only an optimisation
    return dest


def _mirrors(key: str) -> tuple[str, ...]:
    env = os.environ.get(MIRROR_ENV_VARS[key], "").strip()
    bases = tuple(b for b in re.split(r"[\s,]+", env) if b) if env else MIRRORS[key]
    return tuple(b if b.endswith("/") else b + "/" for b in bases)


def _download_from_mirrors(key: str, filename: str, dest: Path, progress: bool) -> Path:
    digests = _as_digests(KNOWN_DIGESTS.get(key, {}).get(filename))
    problems: list[str] = []
    checksum_error: _ChecksumError | None = None
    for base in _mirrors(key):
        try:
            return download_file(base + filename, dest, digests, progress=progress)
        except _ChecksumError as exc:
            checksum_error = exc
            problems.append(str(exc))
        except _DownloadError as exc:
            problems.append(str(exc))
    if checksum_error is not None:
        raise checksum_error
    names = ", ".join(b + ".gz" for b in IDX_FILE_NAMES.values())
    raise DataError(
        f"Could not download {_TITLES[key]} ({filename}):\n  "
        + "\n  ".join(problems)
        + f"\nCheck the internet connection and run again (partial downloads in {dest.parent} are resumed), "
        f"or put the four files ({names}) in one folder yourself and pass --data-dir FOLDER. "
        f"The cache folder is {dest.parent} (set RSO_CACHE_DIR to move it)."
    )


def _cached_ok(path: Path, key: str) -> bool:
    """Whether a cached download is intact; a damaged one is deleted (with its sidecar)."""
    if not path.is_file():
        return False
    recorded = _read_sidecar(path)
    if recorded is not None:
        ok, hashes = _check(path, (("sha256", recorded),))
    else:
        ok, hashes = _check(path, _as_digests(KNOWN_DIGESTS.get(key, {}).get(path.name)))
    if ok:
        if recorded is None:
            try:
                _write_sidecar(path, hashes["sha256"])
            except OSError:
                pass
        return True
    log.warning("%s is damaged (checksum mismatch); deleting it to download it again", path)
    path.unlink(missing_ok=True)
    _sidecar(path).unlink(missing_ok=True)
    return False


# --------------------------------------------------------------------------------------------------
# Building datasets


def _normalise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """uint8 (N, H, W) splits -> float32 (N, 1, H, W), standardised with the training statistics."""
    flat = train.reshape(-1)
    counts = np.zeros(256, dtype=np.float64)
    for start in range(0, flat.size, 1 << 20):  # in chunks: bincount casts its input to intp
        counts += np.bincount(flat[start : start + (1 << 20)], minlength=256)
    values = np.arange(256, dtype=np.float64) / 255.0
    n = counts.sum()
    mean = float((counts * values).sum() / n) if n else 0.0
    std = float(np.sqrt((counts * (values - mean) ** 2).sum() / n)) if n else 1.0
    if not std > 0:
        std = 1.0
    lut = ((values - mean) / std).astype(np.float32)
    return lut[train][:, None], lut[test][:, None], mean, std


def _as_uint8_images(arr: np.ndarray, path: Path, fix: str) -> np.ndarray:
    if arr.ndim != 3:
        raise DataError(f"{path}: expected images (a rank-3 IDX file), found shape {arr.shape}; {fix}.")
    if arr.dtype != np.uint8:
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
            raise DataError(f"{path}: pixel values outside 0..255; {fix}.")
        arr = arr.astype(np.uint8)
    return arr


def _as_labels(arr: np.ndarray, path: Path, fix: str, n_classes: int) -> np.ndarray:
    if arr.ndim != 1:
        raise DataError(f"{path}: expected labels (a rank-1 IDX file), found shape {arr.shape}; {fix}.")
    if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
        raise DataError(f"{path}: labels are not whole numbers; {fix}.")
    labels = arr.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(
            f"{path}: labels must lie in 0..{n_classes - 1}, found {labels.min()}..{labels.max()}; {fix}."
        )
    return labels


def _dataset_from_files(
    name: str, files: Mapping[str, Path], classes: tuple[str, ...], source: str, fix: str
) -> Dataset:
    arrays = {role: _read_idx(files[role], fix) for role in IDX_FILE_NAMES}
    xs, ys = {}, {}
    for split in ("train", "test"):
        ipath, lpath = files[f"{split}_images"], files[f"{split}_labels"]
        xs[split] = _as_uint8_images(arrays[f"{split}_images"], ipath, fix)
        ys[split] = _as_labels(arrays[f"{split}_labels"], lpath, fix, len(classes))
        if xs[split].shape[0] != ys[split].shape[0]:
            raise DataError(
                f"{ipath} holds {xs[split].shape[0]} images but {lpath} holds {ys[split].shape[0]} labels; "
                f"they must match: {fix}."
            )
    if xs["train"].shape[1:] != xs["test"].shape[1:]:
        raise DataError(
            f"{files['train_images']} has {xs['train'].shape[1]}x{xs['train'].shape[2]} images but "
            f"{files['test_images']} has {xs['test'].shape[1]}x{xs['test'].shape[2]}; they must match: {fix}."
        )
    if xs["train"].shape[0] == 0:
        raise DataError(f"{files['train_images']} holds no images: {fix}.")
    train_x, test_x, mean, std = _normalise(xs["train"], xs["test"])
    return Dataset(name, train_x, ys["train"], test_x, ys["test"], mean, std, source, classes)


def _sample_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the fixed stratified train/test split of the bundled sample.

    Uses only ``Generator.random`` (whose doubles are stable across NumPy versions) and stable sorts,
    so the split is the same on every machine.
    """
    rng = np.random.default_rng(SAMPLE_SEED)
    train, test = [], []
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        idx = idx[np.argsort(rng.random(idx.size), kind="stable")]
        n_test = idx.size // SAMPLE_TEST_FRACTION
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    train_idx = train_idx[np.argsort(rng.random(train_idx.size), kind="stable")]
    test_idx = test_idx[np.argsort(rng.random(test_idx.size), kind="stable")]
    return train_idx, test_idx


def _load_sample() -> Dataset:
    fix = "reinstall rso (pip install --force-reinstall rso) to restore it"
    try:
        path = resource_path(SAMPLE_FILE)
    except FileNotFoundError as exc:
        raise DataError(str(exc)) from None
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, labels = np.asarray(npz["images"]), np.asarray(npz["labels"])
    except FileNotFoundError:
        raise DataError(f"The bundled MNIST sample {path} is missing: {fix}.") from None
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"The bundled MNIST sample {path} is damaged ({exc}): {fix}.") from None
    if (
        images.dtype != np.uint8
        or images.ndim != 3
        or labels.ndim != 1
        or images.shape[0] != labels.shape[0]
        or labels.size == 0
        or labels.max() > 9
    ):
        raise DataError(
            f"The bundled MNIST sample {path} has unexpected contents "
            f"(images {images.dtype} {images.shape}, labels {labels.shape}): {fix}."
        )
    train_idx, test_idx = _sample_split(labels)
    train_x, test_x, mean, std = _normalise(images[train_idx], images[test_idx])
    return Dataset(
        name="mnist-sample",
        train_x=train_x,
        train_y=labels[train_idx].astype(np.int64),
        test_x=test_x,
        test_y=labels[test_idx].astype(np.int64),
        mean=mean,
        std=std,
        source="bundled sample",
        classes=MNIST_CLASSES,
    )


def _classes_for(key: str) -> tuple[str, ...]:
    return FASHION_MNIST_CLASSES if key == "fashion-mnist" else MNIST_CLASSES


def _load_folder(folder: Path, key: str | None) -> Dataset:
    if not folder.is_dir():
        raise DataError(
            f"The data folder {folder} does not exist. Pass --data-dir a folder holding the four IDX files "
            f"({', '.join(IDX_FILE_NAMES.values())}, each optionally .gz)."
        )
    found, missing = _find_idx(folder)
    if missing:
        raise DataError(
            f"The data folder {folder} lacks {len(missing)} of the four IDX files: missing "
            + ", ".join(f"{m} (or {m}.gz)" for m in missing)
            + f". Expected names: {', '.join(IDX_FILE_NAMES.values())}, each optionally gzipped."
        )
    if key is None:
        key = "fashion-mnist" if "fashion" in folder.name.lower() else "mnist"
    return _dataset_from_files(
        f"idx:{folder.name or folder}",
        found,
        _classes_for(key),
        str(folder),
        "replace it with a good copy",
    )


def _load_downloadable(key: str, cache_root: Path, progress: bool, download: bool) -> Dataset:
    title = _TITLES[key]
    for system_dir in SYSTEM_DIRS.get(key, ()):
        files = find_idx_files(system_dir)
        if files is not None:
            package = _SYSTEM_PACKAGES.get(key)
            fix = (
                f"reinstall it (apt-get install --reinstall {package})"
                if package
                else "replace it with a good copy"
            )
            return _dataset_from_files(key, files, _classes_for(key), str(system_dir), fix)

    folder = cache_root / key
    files: dict[str, Path] = {}
    announced = False
    for role, base in IDX_FILE_NAMES.items():
        filename = base + ".gz"
        dest = folder / filename
        if not _cached_ok(dest, key):
            if progress and download and not announced:
                print(f"Downloading {title} ({_DOWNLOAD_SIZES[key]}) into {folder}", file=sys.stderr)
                announced = True
            if not download:
                raise DataError(
                    f"{title} is not downloaded yet ({dest} is missing) and downloading is turned off. "
                    f"Allow the download ({_DOWNLOAD_SIZES[key]}), or pass --data-dir FOLDER with the four "
                    "IDX files."
                )
            dest = _download_from_mirrors(key, filename, dest, progress)
        files[role] = dest
    return _dataset_from_files(key, files, _classes_for(key), str(folder), _FIX_DELETE)


def _normalise_name(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    key = {"sample": "mnist-sample", "fashion": "fashion-mnist", "fashionmnist": "fashion-mnist"}.get(
        key, key
    )
    if key not in DATASET_NAMES:
        raise DataError(f"Unknown dataset {name!r}: choose one of {', '.join(DATASET_NAMES)}.")
    return key


def load_dataset(
    name: str = "mnist-sample",
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    download: bool = True,
) -> Dataset:
    """Load a dataset by name (one of :data:`DATASET_NAMES`), or from a folder of IDX files.

    ``data_dir`` replaces the lookup by name: the folder's four IDX files are read and the dataset is
    called ``idx:<folder name>`` (class names are Fashion-MNIST's when ``name`` is ``fashion-mnist`` or
    the folder's name says "fashion", else digits). ``cache_dir`` defaults to
    :func:`default_cache_dir`; ``download=False`` raises instead of downloading; ``progress=False``
    hides the download progress bar.
    """
    if data_dir is not None:
        key = _normalise_name(name) if name and name != "mnist-sample" else None
        return _load_folder(Path(data_dir).expanduser(), key)
    key = _normalise_name(name)
    if key == "mnist-sample":
        return _load_sample()
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return _load_downloadable(key, cache_root, progress, download)


def describe_datasets(cache_dir: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """``(name, status)`` for each of :data:`DATASET_NAMES`, for ``rso info``. Reads no data files."""
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    rows: list[tuple[str, str]] = []
    try:
        sample = resource_path(SAMPLE_FILE)
        rows.append(
            ("mnist-sample", f"bundled: 5,000 MNIST digits, 4,000 train / 1,000 test ({sample})")
            if sample.is_file()
            else ("mnist-sample", f"MISSING: {sample} (reinstall rso)")
        )
    except FileNotFoundError as exc:
        rows.append(("mnist-sample", f"MISSING: {exc}"))
    for key in ("mnist", "fashion-mnist"):
        system = next((d for d in SYSTEM_DIRS.get(key, ()) if find_idx_files(d) is not None), None)
        folder = cache_root / key
        present = [b for b in IDX_FILE_NAMES.values() if (folder / (b + ".gz")).is_file()]
        if system is not None:
            status = f"found in system folder {system}"
        elif len(present) == len(IDX_FILE_NAMES):
            status = f"cached at {folder}"
        elif present or any(folder.glob("*.part")):
            status = (
                f"partly downloaded in {folder} ({len(present)} of 4 files); the rest downloads on first use"
            )
        else:
            status = f"not downloaded yet ({_DOWNLOAD_SIZES[key]}, goes to {folder} on first use)"
            if key in _SYSTEM_PACKAGES:
                status += f"; or install Debian's {_SYSTEM_PACKAGES[key]}"
        rows.append((key, status))
    return rows
