"""Tests for CIFAR-10 in rso_engine.data: small batch files in the exact binary format, made here."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from test_data import Server

from rso_engine import data
from rso_engine.config import RunConfig
from rso_engine.data import DataError, download
from rso_engine.data.catalogue import CIFAR10_ARCHIVE, CIFAR10_CLASSES, CIFAR10_FOLDER
from rso_engine.training.base import check_input_shape

N_PER_BATCH = 20
BATCHES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
META = "\n".join(f"class{i}" for i in range(10)) + "\n\n"


def make_batch(seed: int, n: int = N_PER_BATCH) -> tuple[np.ndarray, np.ndarray, bytes]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    rec = np.concatenate([labels[:, None], images.reshape(n, -1)], axis=1)
    return images, labels, rec.tobytes()


@pytest.fixture(scope="module")
def batches() -> dict[str, tuple[np.ndarray, np.ndarray, bytes]]:
    return {name: make_batch(i) for i, name in enumerate(BATCHES)}


def write_folder(folder: Path, batches, meta: str | None = META) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (_, _, raw) in batches.items():
        (folder / name).write_bytes(raw)
    if meta is not None:
        (folder / "batches.meta.txt").write_text(meta)
    return folder


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"{CIFAR10_FOLDER}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


@pytest.fixture(scope="module")
def archive(batches) -> bytes:
    return tar_bytes({**{n: raw for n, (_, _, raw) in batches.items()}, "batches.meta.txt": META.encode()})


def check_values(ds: data.Dataset, batches) -> None:
    train_imgs = np.concatenate([batches[n][0] for n in BATCHES[:5]])
    train_lbls = np.concatenate([batches[n][1] for n in BATCHES[:5]])
    test_imgs, test_lbls, _ = batches["test_batch.bin"]
    assert ds.train_x.shape == (5 * N_PER_BATCH, 3, 32, 32) and ds.train_x.dtype == np.float32
    assert ds.test_x.shape == (N_PER_BATCH, 3, 32, 32) and ds.image_shape == (3, 32, 32)
    assert ds.train_y.dtype == np.int64
    np.testing.assert_array_equal(ds.train_y, train_lbls)
    np.testing.assert_array_equal(ds.test_y, test_lbls)
    means = train_imgs.astype(np.float64).mean(axis=(0, 2, 3)) / 255
    assert ds.channel_mean == pytest.approx(tuple(means), abs=1e-12)
    assert ds.std == 1.0 and ds.mean == pytest.approx(means.mean())
    for c in range(3):  # the R, G, B planes, minus the training mean of their channel (test split too)
        np.testing.assert_allclose(ds.train_x[:, c], train_imgs[:, c] / 255 - means[c], atol=1e-6)
        np.testing.assert_allclose(ds.test_x[:, c], test_imgs[:, c] / 255 - means[c], atol=1e-6)
    # the first record's red plane is its bytes 1..1024, row-major
    first = np.frombuffer(batches["data_batch_1.bin"][2][1:1025], dtype=np.uint8).reshape(32, 32)
    np.testing.assert_allclose(ds.train_x[0, 0], first / 255 - means[0], atol=1e-6)
    assert abs(float(ds.train_x[:, 0].mean())) < 1e-6


def test_catalogue_lists_cifar10():
    assert "cifar10" in data.DATASET_NAMES
    assert data.KNOWN_DIGESTS["cifar10"][CIFAR10_ARCHIVE] == ("md5:c32a1d4ab5d03f1284b67883e8d87530",)
    assert data.MIRRORS["cifar10"] == ("https://www.cs.toronto.edu/~kriz/",)


def test_load_from_folder_and_its_parent(tmp_path, batches):
    folder = write_folder(tmp_path / CIFAR10_FOLDER, batches)
    for path in (folder, tmp_path):
        ds = data.load_dataset("cifar10", data_dir=path)
        check_values(ds, batches)
        assert ds.classes == tuple(f"class{i}" for i in range(10))
    auto = data.load_dataset(data_dir=tmp_path)  # recognised without the name
    assert auto.name == f"cifar10:{CIFAR10_FOLDER}" and auto.image_shape == (3, 32, 32)


def test_standard_class_names_without_meta(tmp_path, batches):
    folder = write_folder(tmp_path / "b", batches, meta=None)
    assert data.load_dataset("cifar10", data_dir=folder).classes == CIFAR10_CLASSES


def test_load_from_tar_gz(tmp_path, batches, archive):
    path = tmp_path / CIFAR10_ARCHIVE
    path.write_bytes(archive)
    ds = data.load_dataset(data_dir=path)
    check_values(ds, batches)
    assert ds.name == f"cifar10:{CIFAR10_ARCHIVE}"
    assert ds.classes[0] == "class0"
    check_values(data.load_dataset("cifar10", data_dir=tmp_path), batches)  # the folder holding the archive
    sub = ds.subset(10, 5)
    assert sub.channel_mean == ds.channel_mean and sub.n_train == 10


@pytest.fixture
def cifar_env(monkeypatch, archive):
    srv = Server({CIFAR10_ARCHIVE: archive})
    monkeypatch.setattr(download, "DOWNLOAD_RETRIES", 0)
    monkeypatch.setenv("RSO_CIFAR10_MIRROR", srv.url)
    md5 = hashlib.md5(archive).hexdigest()
    monkeypatch.setitem(data.KNOWN_DIGESTS, "cifar10", {CIFAR10_ARCHIVE: (f"md5:{md5}",)})
    yield srv
    srv.close()


def test_download_extract_then_cache(tmp_path, cifar_env, batches, monkeypatch):
    status = dict(data.describe_datasets(tmp_path))["cifar10"]
    assert status.startswith("not downloaded yet")
    ds = data.load_dataset("cifar10", cache_dir=tmp_path, progress=False)
    check_values(ds, batches)
    assert cifar_env.requests == [CIFAR10_ARCHIVE]
    extracted = tmp_path / "cifar10" / CIFAR10_FOLDER
    assert sorted(p.name for p in extracted.iterdir()) == sorted([*BATCHES, "batches.meta.txt"])
    assert ds.source == str(extracted)
    assert dict(data.describe_datasets(tmp_path))["cifar10"] == f"cached at {extracted}"
    monkeypatch.setenv("RSO_CIFAR10_MIRROR", "http://127.0.0.1:9/")  # the cache needs no network
    check_values(data.load_dataset("cifar10", cache_dir=tmp_path, progress=False, download=False), batches)
    assert cifar_env.requests == [CIFAR10_ARCHIVE]


def test_download_with_a_wrong_checksum(tmp_path, cifar_env, monkeypatch):
    monkeypatch.setitem(data.KNOWN_DIGESTS, "cifar10", {CIFAR10_ARCHIVE: ("md5:" + "0" * 32,)})
    with pytest.raises(DataError) as exc:
        data.load_dataset("cifar10", cache_dir=tmp_path, progress=False)
    msg = str(exc.value)
    assert CIFAR10_ARCHIVE in msg and "not the expected file" in msg and "--data-dir" in msg
    assert not (tmp_path / "cifar10" / CIFAR10_ARCHIVE).exists()
    assert not (tmp_path / "cifar10" / CIFAR10_FOLDER).exists()


def test_not_downloaded_and_download_off(tmp_path, cifar_env):
    with pytest.raises(DataError, match=r"not downloaded yet .*cifar-10-binary\.tar\.gz is missing"):
        data.load_dataset("cifar10", cache_dir=tmp_path, progress=False, download=False)
    assert cifar_env.requests == []


# --------------------------------------------------------------------------------------------------
# Damaged files


def test_wrong_size_batch_file(tmp_path, batches):
    folder = write_folder(tmp_path / CIFAR10_FOLDER, batches)
    bad = folder / "data_batch_3.bin"
    bad.write_bytes(batches["data_batch_3.bin"][2][:-100])  # truncated mid-record
    with pytest.raises(DataError) as exc:
        data.load_dataset("cifar10", data_dir=folder)
    assert str(bad) in str(exc.value) and "3,073-byte records" in str(exc.value)


def test_empty_batch_file(tmp_path, batches):
    folder = write_folder(tmp_path / CIFAR10_FOLDER, batches)
    (folder / "test_batch.bin").write_bytes(b"")
    with pytest.raises(DataError, match=r"test_batch\.bin is empty"):
        data.load_dataset("cifar10", data_dir=folder)


def test_missing_batch_file(tmp_path, batches):
    folder = write_folder(tmp_path / CIFAR10_FOLDER, batches)
    (folder / "data_batch_5.bin").unlink()
    with pytest.raises(DataError) as exc:
        data.load_dataset("cifar10", data_dir=folder)
    assert "data_batch_5.bin" in str(exc.value) and str(folder) in str(exc.value)


def test_label_out_of_range(tmp_path, batches):
    folder = write_folder(tmp_path / CIFAR10_FOLDER, batches)
    raw = bytearray(batches["data_batch_2.bin"][2])
    raw[3073 * 4] = 10  # the fifth record's label
    (folder / "data_batch_2.bin").write_bytes(bytes(raw))
    with pytest.raises(DataError) as exc:
        data.load_dataset("cifar10", data_dir=folder)
    assert str(folder / "data_batch_2.bin") in str(exc.value) and "record 4 has label 10" in str(exc.value)


def test_bad_tar_gz(tmp_path, archive):
    truncated = tmp_path / "trunc" / CIFAR10_ARCHIVE
    truncated.parent.mkdir()
    truncated.write_bytes(archive[: len(archive) // 2])
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"this is not an archive" * 100)
    for path in (truncated, garbage):
        with pytest.raises(DataError) as exc:
            data.load_dataset("cifar10", data_dir=path)
        assert str(path) in str(exc.value) and "tar.gz" in str(exc.value)


def test_tar_gz_lacking_a_batch(tmp_path, batches):
    path = tmp_path / CIFAR10_ARCHIVE
    path.write_bytes(tar_bytes({n: raw for n, (_, _, raw) in batches.items() if n != "test_batch.bin"}))
    with pytest.raises(DataError) as exc:
        data.load_dataset("cifar10", data_dir=path)
    assert str(path) in str(exc.value) and "test_batch.bin" in str(exc.value)


def test_wrong_size_batch_in_tar_gz(tmp_path, batches):
    files = {n: raw for n, (_, _, raw) in batches.items()}
    files["data_batch_1.bin"] += b"\0" * 7
    path = tmp_path / CIFAR10_ARCHIVE
    path.write_bytes(tar_bytes(files))
    with pytest.raises(DataError) as exc:
        data.load_dataset("cifar10", data_dir=path)
    assert f"data_batch_1.bin in {path}" in str(exc.value)


def test_damaged_download_is_not_extracted(tmp_path, monkeypatch, batches):
    files = {n: raw for n, (_, _, raw) in batches.items()}
    files["data_batch_4.bin"] = files["data_batch_4.bin"][:5000]
    bad = tar_bytes(files)
    srv = Server({CIFAR10_ARCHIVE: bad})
    try:
        monkeypatch.setenv("RSO_CIFAR10_MIRROR", srv.url)
        monkeypatch.setitem(data.KNOWN_DIGESTS, "cifar10", {CIFAR10_ARCHIVE: (f"md5:{hashlib.md5(bad).hexdigest()}",)})
        with pytest.raises(DataError) as exc:
            data.load_dataset("cifar10", cache_dir=tmp_path, progress=False)
    finally:
        srv.close()
    assert "data_batch_4.bin" in str(exc.value) and "delete" in str(exc.value)
    assert not (tmp_path / "cifar10" / CIFAR10_FOLDER).exists()


def test_not_a_cifar_path(tmp_path):
    with pytest.raises(DataError, match="holds no CIFAR-10 batch files"):
        data.load_dataset("cifar10", data_dir=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        data.load_dataset("cifar10", data_dir=tmp_path / "nowhere")


# --------------------------------------------------------------------------------------------------
# Where model and data meet


def test_mnist_models_refuse_cifar_with_one_line(tmp_path, batches):
    from rso_engine.models import build_model
    from rso_engine.training import RSOTrainer

    ds = data.load_dataset("cifar10", data_dir=write_folder(tmp_path / CIFAR10_FOLDER, batches))
    with pytest.raises(ValueError) as exc:
        RSOTrainer(RunConfig(model="oneconv", dataset="cifar10", n_train=10, n_test=5), dataset=ds)
    msg = str(exc.value)
    assert msg.startswith("model oneconv (first layer: ") and "cannot take the 3×32×32 images of cifar10" in msg
    assert "\n" not in msg
    for name in ("oneconv", "twoconv", "papernet", "mlp"):
        check_input_shape(build_model(name), (1, 28, 28), "mnist")  # fits: no error
    with pytest.raises(ValueError, match="papernet"):
        check_input_shape(build_model("papernet"), (3, 32, 32), "cifar10")
