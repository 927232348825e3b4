"""Downloading MNIST, Fashion-MNIST and CIFAR-10 into the cache, through pooch.

A file is fetched with :mod:`pooch`: it streams into a temporary file next to its destination, is
checked against its published checksum (SHA-256, or MD5 for CIFAR-10) and only then renamed into
place, so nothing half-downloaded ever carries the real name. Each mirror is tried in turn (with
``DOWNLOAD_RETRIES`` more attempts on a network error or a bad checksum); when all fail, a
:class:`DataError` lists what was tried.
Interrupted downloads start again from the beginning (pooch does not resume).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs
import pooch
import requests
from tqdm import tqdm

from .. import __version__
from .catalogue import DOWNLOAD_SIZES, IDX_FILE_NAMES, KNOWN_DIGESTS, MANUAL_FILES, MIRROR_ENV_VARS, MIRRORS, TITLES
from .errors import DataError

__all__ = [
    "APP_NAME",
    "DOWNLOAD_RETRIES",
    "DOWNLOAD_TIMEOUT",
    "DownloadFailed",
    "cache_state",
    "default_cache_dir",
    "download_file",
    "download_from_mirrors",
    "fetch_idx_files",
    "file_matches",
    "mirrors",
]

log = logging.getLogger(__name__)

APP_NAME = "rso"
DOWNLOAD_RETRIES = 2  # more attempts per mirror after a failure (pooch waits 1 s, then 2 s)
DOWNLOAD_TIMEOUT = 30.0  # seconds without an answer before an attempt fails
_CHUNK = 1 << 16


class DownloadFailed(DataError):
    """One URL did not give the expected file; ``reason`` says why, ``checksum`` whether it arrived wrong."""

    def __init__(self, url: str, reason: str, fix: str, checksum: bool = False):
        super().__init__(f"{url}: {reason}. {fix}")
        self.url, self.reason, self.checksum = url, reason, checksum


# --------------------------------------------------------------------------------------------------
# Locations and checksums


def default_cache_dir() -> Path:
    """Where downloads go: ``$RSO_CACHE_DIR`` if set, else the user cache folder of ``rso``.

    The latter is platformdirs' ``user_cache_dir("rso")``: ``$XDG_CACHE_HOME/rso`` or ``~/.cache/rso``
    on Linux, ``~/Library/Caches/rso`` on macOS, ``%LOCALAPPDATA%\\rso\\Cache`` on Windows.
    """
    explicit = os.environ.get("RSO_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def file_matches(path: str | os.PathLike, hashes: Iterable[str]) -> bool:
    """Whether the file matches any of ``hashes`` (pooch's ``"sha256:<hex>"`` form; True if none given)."""
    computed: dict[str, str] = {}
    hashes = tuple(hashes)
    for known in hashes:
        alg, _, hexdigest = known.rpartition(":")
        alg = alg.lower() or "sha256"
        if alg not in computed:
            computed[alg] = pooch.file_hash(str(path), alg=alg)
        if computed[alg] == hexdigest.lower():
            return True
    return not hashes


def cache_state(path: Path, hashes: Iterable[str]) -> str:
    """``"ok"``, ``"missing"`` or ``"damaged"`` (present but matching none of ``hashes``)."""
    if not path.is_file():
        return "missing"
    return "ok" if file_matches(path, hashes) else "damaged"


def mirrors(key: str) -> tuple[str, ...]:
    """The base URLs tried for dataset ``key``: ``$RSO_MNIST_MIRROR`` (etc.) if set, else :data:`MIRRORS`."""
    env = os.environ.get(MIRROR_ENV_VARS[key], "").strip()
    bases = tuple(b for b in re.split(r"[\s,]+", env) if b) if env else MIRRORS[key]
    return tuple(b if b.endswith("/") else b + "/" for b in bases)


# --------------------------------------------------------------------------------------------------
# One file


@contextmanager
def _quiet_pooch() -> Iterator[None]:
    """Hide pooch's own "Downloading file …" log lines (rso prints its own)."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class _Bar(tqdm):
    """A tqdm bar that pooch drives even before it knows the size (plain tqdm has no truth value then)."""

    def __bool__(self) -> bool:
        return True


def _downloader(name: str, progress: bool, timeout: float):
    """A pooch downloader; with ``progress``, each attempt draws a tqdm bar named ``name`` on stderr."""
    options = {"chunk_size": _CHUNK, "timeout": timeout, "headers": {"User-Agent": f"rso/{__version__}"}}
    if not progress:
        return pooch.HTTPDownloader(progressbar=False, **options)

    def download(url: str, output_file, fetcher) -> None:
        with _Bar(desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False) as bar:
            pooch.HTTPDownloader(progressbar=bar, **options)(url, output_file, fetcher)

    return download


def _reason(exc: requests.RequestException, timeout: float) -> str:
    """A short account of a failed request, for people."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP error {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return "the connection broke off before the whole file arrived"
    if isinstance(exc, requests.ConnectionError):
        errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
        return f"cannot connect ({errno.group(1) if errno else exc})"
    return f"{type(exc).__name__}: {exc}"


def download_file(
    url: str,
    dest: str | os.PathLike,
    known_hash: str | None = None,
    progress: bool = True,
    timeout: float = DOWNLOAD_TIMEOUT,
    retries: int | None = None,
) -> Path:
    """Download ``url`` to ``dest`` with pooch, checked against ``known_hash`` (``"sha256:<hex>"``).

    Nothing is fetched when ``dest`` already matches ``known_hash`` (or exists and there is no hash). The
    data streams into a temporary file in ``dest``'s folder and is renamed to ``dest`` only once it is
    whole and checked; a failed attempt leaves nothing behind. ``retries`` (default
    :data:`DOWNLOAD_RETRIES`) more attempts follow a network error or a bad checksum. Raises
    :class:`DownloadFailed` (a :class:`DataError`) when the file cannot be had from ``url``, and a plain
    :class:`DataError` when it cannot be written. The progress bar goes to stderr unless ``progress``
    is False.
    """
    dest = Path(dest)
    retries = DOWNLOAD_RETRIES if retries is None else retries
    fetcher = pooch.create(
        path=dest.parent, base_url="", registry={dest.name: known_hash}, urls={dest.name: url}, retry_if_failed=retries
    )
    try:
        with _quiet_pooch():
            fetcher.fetch(dest.name, downloader=_downloader(dest.name, progress, timeout))
    except ValueError as exc:  # pooch's checksum mismatch
        found = re.search(r"expected (\S+) but got (\w+)", str(exc))
        detail = f"expected {found[1]}, got {found[2]}" if found else str(exc)
        raise DownloadFailed(
            url,
            f"{dest.name} is not the expected file ({detail}); the download was deleted",
            "Run again to retry; if it keeps failing, that mirror serves another file: get the files elsewhere "
            "and pass --data-dir FOLDER",
            checksum=True,
        ) from None
    except requests.RequestException as exc:
        raise DownloadFailed(url, _reason(exc, timeout), "Check the internet connection and run again") from None
    except OSError as exc:
        raise DataError(
            f"Cannot write {dest} ({exc.strerror or exc}): make sure the folder {dest.parent} can be created and "
            "written and has room, or set RSO_CACHE_DIR to another folder."
        ) from None
    return dest


# --------------------------------------------------------------------------------------------------
# A dataset's files


def download_from_mirrors(key: str, filename: str, folder: Path, progress: bool = True) -> Path:
    """Download ``filename`` of dataset ``key`` into ``folder``, trying each of :func:`mirrors` in turn.

    When every mirror fails, the :class:`DataError` lists each URL tried and why it failed.
    """
    known = KNOWN_DIGESTS.get(key, {}).get(filename, ())
    tried: list[DownloadFailed] = []
    for base in mirrors(key):
        try:
            return download_file(base + filename, folder / filename, known[0] if known else None, progress)
        except DownloadFailed as exc:
            tried.append(exc)
    names = ", ".join(b + ".gz" for b in IDX_FILE_NAMES.values())
    manual = MANUAL_FILES.get(key, f"put the four files ({names}) in one folder yourself and pass --data-dir FOLDER")
    advice = (
        "A file that arrives with another checksum is not the published one: try another mirror. "
        if any(e.checksum for e in tried)
        else "Check the internet connection and run again. "
    )
    raise DataError(
        f"Could not download {TITLES[key]} ({filename}); tried:\n  "
        + "\n  ".join(f"{e.url}: {e.reason}" for e in tried)
        + f"\n{advice}Other mirrors can be given in ${MIRROR_ENV_VARS[key]} (base URLs, space-separated); "
        f"or {manual}. "
        f"The cache folder is {folder} (set RSO_CACHE_DIR to move it)."
    )


def fetch_file(key: str, filename: str, folder: Path, instead: str, progress: bool = True,
               download: bool = True, announced: set[str] | None = None) -> Path:
    """``filename`` of dataset ``key`` in the cache ``folder``, downloaded if it is not there.

    A cached file that matches a known checksum is used without touching the network. One that matches
    none is damaged: it is deleted and downloaded again, or, with ``download=False``, a :class:`DataError`
    names it (as it does a missing file) and suggests ``instead`` (e.g. "pass --data-dir FOLDER with …").
    With ``progress`` one line announces the download, once per dataset in ``announced`` when given.
    """
    dest = folder / filename
    state = cache_state(dest, KNOWN_DIGESTS.get(key, {}).get(filename, ()))
    if state == "ok":
        return dest
    if not download:
        problem = "is missing" if state == "missing" else "is damaged (its checksum matches none published)"
        raise DataError(
            f"{TITLES[key]} is not downloaded yet ({dest} {problem}) and downloading is turned off. "
            f"Allow the download ({DOWNLOAD_SIZES[key]}), or {instead}."
        )
    if state == "damaged":
        log.warning("%s is damaged (checksum mismatch); deleting it to download it again", dest)
        dest.unlink(missing_ok=True)
    if progress and (announced is None or key not in announced):
        print(f"Downloading {TITLES[key]} ({DOWNLOAD_SIZES[key]}) into {folder}", file=sys.stderr)
        if announced is not None:
            announced.add(key)
    return download_from_mirrors(key, filename, folder, progress)


def fetch_idx_files(key: str, folder: Path, progress: bool = True, download: bool = True) -> dict[str, Path]:
    """The four gzipped IDX files of dataset ``key`` in the cache ``folder``, by role, downloading those
    missing (see :func:`fetch_file`; the download is announced once)."""
    announced: set[str] = set()
    return {role: fetch_file(key, base + ".gz", folder, "pass --data-dir FOLDER with the four IDX files",
                             progress, download, announced)
            for role, base in IDX_FILE_NAMES.items()}
