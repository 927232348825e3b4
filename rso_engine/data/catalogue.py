"""The datasets rso knows: their names, files, published checksums, mirrors and class names.

Plain data and two small look-ups, all public; nothing here touches the disk or the network.
"""

from __future__ import annotations

from pathlib import Path

from .errors import DataError

DATASET_NAMES = ("mnist-sample", "mnist", "fashion-mnist", "cifar10")

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

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


# CIFAR-10's binary version: one archive holding the folder CIFAR10_FOLDER with five training batches,
# one test batch and the class names. A record is 1 label byte then 3,072 pixel bytes (the 1,024 red,
# 1,024 green and 1,024 blue values of a 32×32 image, row-major).
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch.bin"
CIFAR10_META_FILE = "batches.meta.txt"
CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32

# The four standard files, by role; each may be gzipped (".gz") or raw.
IDX_FILE_NAMES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# The checksums a downloadable file may have, as pooch spells them ("sha256:<hex>", "md5:<hex>"). A
# download is checked against the first; a file already in the cache is accepted if it matches any.
KNOWN_DIGESTS: dict[str, dict[str, tuple[str, ...]]] = {
    # The SHA-256 of the original MNIST files (the mirrors serve the same bytes; their published MD5s
    # are f68b3c2d…, d53e105e…, 9fb629c4…, ec29112d…).
    "mnist": {
        "train-images-idx3-ubyte.gz": ("sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",),
        "train-labels-idx1-ubyte.gz": ("sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",),
        "t10k-images-idx3-ubyte.gz": ("sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",),
        "t10k-labels-idx1-ubyte.gz": ("sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",),
    },
    # Fashion-MNIST: the SHA-256 of its authors' gz files (their published MD5s are 8d4fb7e6…, 25c81989…,
    # bef4ecab…, bb300cfd…), then that of the gz files in Debian's dataset-fashion-mnist
    # 0.0~git20200523.55506a9-1, which were recompressed (so their bytes differ) but hold the same data.
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            "sha256:3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "sha256:b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        ),
        "train-labels-idx1-ubyte.gz": (
            "sha256:a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "sha256:0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        ),
        "t10k-images-idx3-ubyte.gz": (
            "sha256:346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "sha256:cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "sha256:67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "sha256:8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        ),
    },
    # CIFAR-10: the MD5 its authors publish for the binary version
    # (https://www.cs.toronto.edu/~kriz/cifar.html).
    "cifar10": {CIFAR10_ARCHIVE: ("md5:c32a1d4ab5d03f1284b67883e8d87530",)},
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
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}
MIRROR_ENV_VARS: dict[str, str] = {
    "mnist": "RSO_MNIST_MIRROR",
    "fashion-mnist": "RSO_FASHION_MNIST_MIRROR",
    "cifar10": "RSO_CIFAR10_MIRROR",
}

# Folders where a system package installs a dataset; looked at before the cache.
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "mnist": (),
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
    "cifar10": (),
}
SYSTEM_PACKAGES: dict[str, str] = {"fashion-mnist": "dataset-fashion-mnist"}

TITLES: dict[str, str] = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
DOWNLOAD_SIZES: dict[str, str] = {"mnist": "about 11 MB", "fashion-mnist": "about 30 MB", "cifar10": "about 163 MB"}
# What to put where instead of downloading, for the messages.
MANUAL_FILES: dict[str, str] = {
    "cifar10": f"download {CIFAR10_ARCHIVE} yourself and pass --data-dir with it (or with its extracted "
    f"{CIFAR10_FOLDER} folder)",
}


def classes_for(key: str) -> tuple[str, ...]:
    """The class names of dataset ``key`` (digits unless it is Fashion-MNIST or CIFAR-10)."""
    return {"fashion-mnist": FASHION_MNIST_CLASSES, "cifar10": CIFAR10_CLASSES}.get(key, MNIST_CLASSES)


def normalise_name(name: str) -> str:
    """The canonical spelling of a dataset name ("fashion" -> "fashion-mnist"); DataError if unknown."""
    key = name.strip().lower().replace("_", "-")
    key = {
        "sample": "mnist-sample",
        "fashion": "fashion-mnist",
        "fashionmnist": "fashion-mnist",
        "cifar": "cifar10",
        "cifar-10": "cifar10",
    }.get(key, key)
    if key not in DATASET_NAMES:
        raise DataError(f"Unknown dataset {name!r}: choose one of {', '.join(DATASET_NAMES)}.")
    return key
