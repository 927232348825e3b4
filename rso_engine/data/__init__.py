"""Datasets: the bundled MNIST sample, full MNIST, Fashion-MNIST and CIFAR-10.

- ``mnist-sample`` (the default) is the 5,000-digit sample shipped with the package, split into
  4,000 training and 1,000 test images by a fixed, stratified split. It needs no network.
- ``mnist`` is downloaded on first use (through pooch) as the four standard IDX files into
  ``<cache>/mnist/`` (see :func:`default_cache_dir`), checked against the published SHA-256 sums.
- ``fashion-mnist`` is read from Debian's ``dataset-fashion-mnist`` package
  (``/usr/share/datasets/fashion-mnist/``) when installed, else downloaded like MNIST.
- ``cifar10`` is CIFAR-10's binary version, downloaded on first use (``cifar-10-binary.tar.gz``, checked
  against its published MD5) and extracted into ``<cache>/cifar10/``; 3×32×32 images minus the
  per-channel training mean.
- ``data_dir=`` reads the four IDX files (gzipped or not) from any folder, or CIFAR-10 from its
  ``cifar-10-batches-bin`` folder, that folder's parent or the tar.gz.

Every problem with a file raises :class:`DataError`, whose message names the file and says what to do.
The modules: :mod:`.catalogue` (what is known about each dataset), :mod:`.idx` (IDX files), :mod:`.cifar`,
:mod:`.download` (the cache folder and pooch downloads), :mod:`.datasets` (:class:`Dataset`,
:func:`load_dataset`) and :mod:`.errors`.
"""

from .catalogue import (
    CIFAR10_CLASSES,
    DATASET_NAMES,
    FASHION_MNIST_CLASSES,
    IDX_FILE_NAMES,
    KNOWN_DIGESTS,
    MIRROR_ENV_VARS,
    MIRRORS,
    MNIST_CLASSES,
    SYSTEM_DIRS,
)
from .datasets import Dataset, describe_datasets, load_dataset
from .download import DownloadFailed, default_cache_dir, download_file, file_matches
from .errors import DataError
from .idx import find_idx_files, read_idx

__all__ = [
    "CIFAR10_CLASSES",
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
    "DownloadFailed",
    "default_cache_dir",
    "describe_datasets",
    "download_file",
    "file_matches",
    "find_idx_files",
    "load_dataset",
    "read_idx",
]
