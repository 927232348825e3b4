"""Datasets as arrays: the :class:`Dataset` type, normalisation, the bundled sample and :func:`load_dataset`.

Images come back as float32 ``(N, C, H, W)``, labels as int64. Every dataset follows one rule,
``x = (pixel/255 - channel_mean[c]) / std``, with the statistics of its training split:

- MNIST-like (``C = 1``, 28×28): standardised, ``channel_mean = (mean,)`` and ``std`` the mean and
  standard deviation of the training pixels in [0, 1] (the paper's X ← (X − mean)/std).
- CIFAR-10 (``C = 3``, 32×32): inputs minus the per-channel training mean, the authors' preprocessing:
  ``channel_mean`` is the mean of the training split's red, green and blue values in [0, 1], and
  ``std = 1`` (nothing is divided); ``mean`` is their average.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..resources import resource_path
from .catalogue import (
    DATASET_NAMES,
    DOWNLOAD_SIZES,
    IDX_FILE_NAMES,
    MNIST_CLASSES,
    SYSTEM_DIRS,
    SYSTEM_PACKAGES,
    classes_for,
    normalise_name,
)
from .cifar import FIX_CACHE_CIFAR, CifarArrays, cifar_cache_status, fetch_cifar10, find_cifar10, read_cifar10
from .download import default_cache_dir, fetch_idx_files
from .errors import DataError
from .idx import FIX_DELETE, find_idx, find_idx_files, read_idx

__all__ = ["SAMPLE_FILE", "Dataset", "describe_datasets", "load_dataset", "sample_split"]

SAMPLE_FILE = "mnist_5k.npz"
SAMPLE_SEED = 20200512
SAMPLE_TEST_FRACTION = 5  # one in five images of each class goes to the test split


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A train/test pair of normalised image arrays with their labels."""

    name: str
    train_x: np.ndarray  # float32 (N, C, H, W), (x/255 - channel_mean[c]) / std
    train_y: np.ndarray  # int64 (N,)
    test_x: np.ndarray
    test_y: np.ndarray
    mean: float  # of the training pixels in [0, 1]; used for both splits
    std: float  # of the training pixels (MNIST-like), or 1.0 (CIFAR-10: only the mean is subtracted)
    source: str  # where it came from, for people
    classes: tuple[str, ...]
    channel_mean: tuple[float, ...] = ()  # what is subtracted from each channel; () means (mean,) * C

    def __post_init__(self) -> None:
        if not self.channel_mean:
            object.__setattr__(self, "channel_mean", (float(self.mean),) * int(self.train_x.shape[1]))

    @property
    def n_train(self) -> int:
        """The number of training examples."""
        return int(self.train_x.shape[0])

    @property
    def n_test(self) -> int:
        """The number of test examples."""
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
            channel_mean=self.channel_mean,
        )

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_train={self.n_train}, n_test={self.n_test}, "
            f"image_shape={self.image_shape}, source={self.source!r})"
        )


# --------------------------------------------------------------------------------------------------
# From arrays


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


def _channel_means(train: np.ndarray) -> tuple[float, ...]:
    """The mean of each channel of uint8 ``(N, C, H, W)`` images, in [0, 1] (exact integer sums)."""
    n = train.shape[0] * train.shape[2] * train.shape[3]
    sums = [sum(int(train[i : i + 4096, c].sum(dtype=np.uint64)) for i in range(0, train.shape[0], 4096))
            for c in range(train.shape[1])]
    return tuple(s / n / 255.0 if n else 0.0 for s in sums)


def _subtract_channel_means(images: np.ndarray, means: tuple[float, ...]) -> np.ndarray:
    """uint8 ``(N, C, H, W)`` -> float32 ``x/255 - means[c]`` (through a per-channel lookup table)."""
    values = np.arange(256, dtype=np.float64) / 255.0
    out = np.empty(images.shape, dtype=np.float32)
    for c, m in enumerate(means):
        out[:, c] = (values - m).astype(np.float32)[images[:, c]]
    return out


def _dataset_from_cifar(name: str, arrays: CifarArrays, source: str) -> Dataset:
    """A :class:`Dataset` from CIFAR-10's raw arrays: inputs minus the per-channel training mean."""
    means = _channel_means(arrays.train_x)
    return Dataset(
        name=name,
        train_x=_subtract_channel_means(arrays.train_x, means),
        train_y=arrays.train_y.astype(np.int64),
        test_x=_subtract_channel_means(arrays.test_x, means),
        test_y=arrays.test_y.astype(np.int64),
        mean=float(np.mean(means)),
        std=1.0,
        source=source,
        classes=arrays.classes,
        channel_mean=means,
    )


def _as_uint8_images(arr: np.ndarray, path: Path, fix: str) -> np.ndarray:
    if arr.ndim != 3:
        raise DataError(f"{path}: expected images (a rank-3 IDX file), found shape {arr.shape}; {fix}.")
    if arr.dtype != np.uint8:
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise DataError(f"{path}: pixel values include NaN or infinity; {fix}.")
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
            raise DataError(f"{path}: pixel values outside 0..255; {fix}.")
        arr = arr.astype(np.uint8)
    return arr


def _as_labels(arr: np.ndarray, path: Path, fix: str, n_classes: int) -> np.ndarray:
    if arr.ndim != 1:
        raise DataError(f"{path}: expected labels (a rank-1 IDX file), found shape {arr.shape}; {fix}.")
    if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and np.all(arr == np.round(arr))):
        raise DataError(f"{path}: labels are not whole numbers; {fix}.")
    labels = arr.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{path}: labels must lie in 0..{n_classes - 1}, found {labels.min()}..{labels.max()}; {fix}.")
    return labels


def _dataset_from_files(
    name: str, files: Mapping[str, Path], classes: tuple[str, ...], source: str, fix: str
) -> Dataset:
    arrays = {role: read_idx(files[role], fix) for role in IDX_FILE_NAMES}
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
    for split in ("train", "test"):
        if xs[split].shape[0] == 0:
            raise DataError(f"{files[f'{split}_images']} holds no images: {fix}.")
    if xs["train"].shape[1:] != xs["test"].shape[1:]:  # whether a model takes the size is the trainer's check
        (h, w), (th, tw) = xs["train"].shape[1:], xs["test"].shape[1:]
        raise DataError(f"{files['train_images']} holds {h}x{w} images but {files['test_images']} holds "
                        f"{th}x{tw}; both splits must have one size: {fix}.")
    train_x, test_x, mean, std = _normalise(xs["train"], xs["test"])
    return Dataset(name, train_x, ys["train"], test_x, ys["test"], mean, std, source, classes)


# --------------------------------------------------------------------------------------------------
# The bundled sample


def sample_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
        or images.shape[1:] != (28, 28)
        or labels.ndim != 1
        or images.shape[0] != labels.shape[0]
        or labels.size == 0
        or labels.max() > 9
    ):
        raise DataError(
            f"The bundled MNIST sample {path} has unexpected contents "
            f"(images {images.dtype} {images.shape}, labels {labels.shape}): {fix}."
        )
    train_idx, test_idx = sample_split(labels)
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


# --------------------------------------------------------------------------------------------------
# By name or folder


def _load_folder(folder: Path, key: str | None) -> Dataset:
    if not folder.is_dir():
        raise DataError(
            f"The data folder {folder} does not exist. Pass --data-dir a folder holding the four IDX files "
            f"({', '.join(IDX_FILE_NAMES.values())}, each optionally .gz)."
        )
    found, missing = find_idx(folder)
    if missing:
        raise DataError(
            f"The data folder {folder} lacks {len(missing)} of the four IDX files: missing "
            + ", ".join(f"{m} (or {m}.gz)" for m in missing)
            + f". Expected names: {', '.join(IDX_FILE_NAMES.values())}, each optionally gzipped."
        )
    if key is None:
        key = "fashion-mnist" if "fashion" in folder.name.lower() else "mnist"
    return _dataset_from_files(
        f"idx:{folder.name or folder}", found, classes_for(key), str(folder), "replace it with a good copy"
    )


def _load_cifar_path(path: Path) -> Dataset:
    source = find_cifar10(path) or path
    return _dataset_from_cifar(f"cifar10:{source.name or source}", read_cifar10(path), str(source))


def _load_downloadable(key: str, cache_root: Path, progress: bool, download: bool) -> Dataset:
    if key == "cifar10":
        folder = fetch_cifar10(cache_root / key, progress=progress, download=download)
        return _dataset_from_cifar(key, read_cifar10(folder, FIX_CACHE_CIFAR), str(folder))
    for system_dir in SYSTEM_DIRS.get(key, ()):
        files = find_idx_files(system_dir)
        if files is not None:
            package = SYSTEM_PACKAGES.get(key)
            fix = f"reinstall it (apt-get install --reinstall {package})" if package else "replace it with a good copy"
            return _dataset_from_files(key, files, classes_for(key), str(system_dir), fix)
    folder = cache_root / key
    files = fetch_idx_files(key, folder, progress=progress, download=download)
    return _dataset_from_files(key, files, classes_for(key), str(folder), FIX_DELETE)


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def load_dataset(
    name: str = "mnist-sample",
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    download: bool = True,
) -> Dataset:
    """Load a dataset by name (one of :data:`DATASET_NAMES`), or from a folder of IDX files or CIFAR-10.

    ``data_dir`` replaces the lookup by name: the folder's four IDX files are read and the dataset is
    called ``idx:<folder name>`` (class names are Fashion-MNIST's when ``name`` is ``fashion-mnist`` or
    the folder's name says "fashion", else digits). When ``name`` is ``cifar10``, or ``data_dir`` is a
    ``cifar-10-batches-bin`` folder, a folder holding one or ``cifar-10-binary.tar.gz``, or a tar.gz
    itself, it is read as CIFAR-10 instead (called ``cifar10:<folder or file name>``). ``cache_dir`` defaults to
    :func:`default_cache_dir`; ``download=False`` raises instead of downloading; ``progress=False``
    hides the download progress bar.
    """
    if data_dir is not None:
        key = normalise_name(name) if name and name != "mnist-sample" else None
        path = Path(data_dir).expanduser()
        if key == "cifar10" or (key is None and find_cifar10(path) is not None):
            return _load_cifar_path(path)
        return _load_folder(path, key)
    key = normalise_name(name)
    if key == "mnist-sample":
        return _load_sample()
    return _load_downloadable(key, _cache_root(cache_dir), progress, download)


def describe_datasets(cache_dir: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """``(name, status)`` for each of :data:`DATASET_NAMES`, for ``rso info``. Reads no data files."""
    cache_root = _cache_root(cache_dir)
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
    for key in DATASET_NAMES[1:]:
        if key == "cifar10":
            rows.append((key, cifar_cache_status(cache_root / key)))
            continue
        system = next((d for d in SYSTEM_DIRS.get(key, ()) if find_idx_files(d) is not None), None)
        folder = cache_root / key
        present = [b for b in IDX_FILE_NAMES.values() if (folder / (b + ".gz")).is_file()]
        if system is not None:
            status = f"found in system folder {system}"
        elif len(present) == len(IDX_FILE_NAMES):
            status = f"cached at {folder}"
        elif present:
            status = f"partly downloaded in {folder} ({len(present)} of 4 files); the rest downloads on first use"
        else:
            status = f"not downloaded yet ({DOWNLOAD_SIZES[key]}, goes to {folder} on first use)"
            if key in SYSTEM_PACKAGES:
                status += f"; or install Debian's {SYSTEM_PACKAGES[key]}"
        rows.append((key, status))
    return rows
