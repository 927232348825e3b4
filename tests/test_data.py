"""Tests for rso_engine.data: the bundled sample, IDX reading, downloads (against a local server)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import logging
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pooch
import pytest

from rso_engine import data
from rso_engine.data import DataError, download
from rso_engine.data.datasets import sample_split
from rso_engine.resources import resource_path

IDX_GZ = {role: base + ".gz" for role, base in data.IDX_FILE_NAMES.items()}


# --------------------------------------------------------------------------------------------------
# Helpers and fixtures


def idx_bytes(arr: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    big = arr.astype(arr.dtype.newbyteorder(">")) if arr.dtype.itemsize > 1 else arr
    header = bytes([0, 0, codes[big.dtype], arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return header + big.tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool | None = None) -> Path:
    raw = idx_bytes(arr)
    if gz if gz is not None else path.suffix == ".gz":
        raw = gzip.compress(raw, mtime=0)
    path.write_bytes(raw)
    return path


def make_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


@pytest.fixture(scope="module")
def idx_files() -> dict[str, bytes]:
    """Gzipped bytes of a tiny MNIST-like dataset (60 train, 20 test), by standard .gz file name."""
    tr_x, tr_y = make_split(60, 1)
    te_x, te_y = make_split(20, 2)
    arrays = {"train_images": tr_x, "train_labels": tr_y, "test_images": te_x, "test_labels": te_y}
    return {IDX_GZ[role]: gzip.compress(idx_bytes(a), mtime=0) for role, a in arrays.items()}


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class Server:
    """A threaded HTTP server on 127.0.0.1 serving ``files``; records the requests' names.

    Names in ``die_after_half`` get the full Content-Length but only half the body before the
    connection closes; ``fail_first[name] = n`` answers 503 to the first ``n`` requests for ``name``.
    """

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.requests: list[str] = []
        self.die_after_half: set[str] = set()
        self.fail_first: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append(name)
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                if server.fail_first.get(name, 0) > 0:
                    server.fail_first[name] -= 1
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in server.die_after_half:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(idx_files):
    srv = Server(idx_files)
    yield srv
    srv.close()


def free_port_url() -> str:
    """A URL on a local port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def dead_url() -> str:
    return free_port_url()


@pytest.fixture(autouse=True)
def no_retries(monkeypatch):
    """Fail fast: no second attempt at a download unless a test asks for one."""
    monkeypatch.setattr(download, "DOWNLOAD_RETRIES", 0)


@pytest.fixture
def mnist_env(monkeypatch, server, idx_files):
    """Point MNIST downloads at the local server and its files' digests; no system folders."""
    monkeypatch.setenv("RSO_MNIST_MIRROR", server.url)
    monkeypatch.setitem(data.KNOWN_DIGESTS, "mnist", {n: (f"sha256:{sha(b)}",) for n, b in idx_files.items()})
    monkeypatch.setitem(data.SYSTEM_DIRS, "mnist", ())
    return server


# --------------------------------------------------------------------------------------------------
# The bundled sample


@pytest.fixture(scope="module")
def sample() -> data.Dataset:
    return data.load_dataset("mnist-sample")


def test_sample_shapes_and_types(sample):
    assert sample.name == "mnist-sample"
    assert sample.source == "bundled sample"
    assert sample.classes == tuple("0123456789")
    assert sample.train_x.shape == (4000, 1, 28, 28) and sample.test_x.shape == (1000, 1, 28, 28)
    assert sample.train_x.dtype == np.float32 and sample.test_x.dtype == np.float32
    assert sample.train_y.dtype == np.int64 and sample.test_y.dtype == np.int64
    assert (sample.n_train, sample.n_test) == (4000, 1000)
    assert np.bincount(sample.train_y, minlength=10).tolist() == [400] * 10
    assert np.bincount(sample.test_y, minlength=10).tolist() == [100] * 10
    # classes are interleaved, not sorted
    assert len(set(sample.train_y[:50].tolist())) == 10
    assert len(set(sample.test_y[:50].tolist())) >= 8


def test_sample_normalised(sample):
    assert abs(float(sample.train_x.mean(dtype=np.float64))) < 1e-4
    assert abs(float(sample.train_x.std(dtype=np.float64)) - 1) < 1e-4
    assert 0.1 < sample.mean < 0.2 and 0.25 < sample.std < 0.35
    # the test split uses the training statistics: its minimum is the normalised 0 pixel
    assert sample.test_x.min() == pytest.approx(-sample.mean / sample.std, rel=1e-6)


def raw_images(ds: data.Dataset, split: str) -> np.ndarray:
    x = getattr(ds, f"{split}_x")
    return np.rint((x[:, 0].astype(np.float64) * ds.std + ds.mean) * 255).astype(np.uint8)


def test_sample_split_is_disjoint_and_complete(sample):
    with np.load(resource_path("mnist_5k.npz")) as npz:
        originals = npz["images"]
    train = {r.tobytes() for r in raw_images(sample, "train")}
    test = {r.tobytes() for r in raw_images(sample, "test")}
    assert len(train) == 4000 and len(test) == 1000
    assert not train & test
    assert train | test == {r.tobytes() for r in originals}


def test_sample_is_deterministic(sample):
    again = data.load_dataset()
    np.testing.assert_array_equal(again.train_x, sample.train_x)
    np.testing.assert_array_equal(again.test_y, sample.test_y)
    # Pinned, so a change in the split (or in NumPy's random stream) is noticed.
    train_idx, test_idx = sample_split(np.repeat(np.arange(10), 500))
    digest = hashlib.sha256(train_idx.astype("<i8").tobytes() + test_idx.astype("<i8").tobytes()).hexdigest()
    assert digest == PINNED_SPLIT_SHA256


PINNED_SPLIT_SHA256 = "87fb9e9be471a43e5c5ab65811eb09a17b181f1e262f9dc3e4d9921e6ff9861d"


def test_subset(sample):
    sub = sample.subset(100, 30)
    assert (sub.n_train, sub.n_test) == (100, 30)
    assert (sub.mean, sub.std, sub.name, sub.classes) == (
        sample.mean,
        sample.std,
        sample.name,
        sample.classes,
    )
    np.testing.assert_array_equal(sub.train_x, sample.train_x[:100])
    assert sample.subset(n_test=10).n_train == 4000
    with pytest.raises(ValueError, match="n_train"):
        sample.subset(n_train=4001)
    assert "n_train=4000" in repr(sample)


def test_unknown_name():
    with pytest.raises(DataError, match="mnist-sample"):
        data.load_dataset("svhn")


# --------------------------------------------------------------------------------------------------
# IDX files


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, gz):
    imgs = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    path = write_idx(tmp_path / ("x.idx.gz" if gz else "x.idx"), imgs, gz)
    out = data.read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, imgs)
    ints = np.array([1, -2, 300000], dtype=np.int32)
    out = data.read_idx(write_idx(tmp_path / "i.idx", ints, gz))
    assert out.dtype == np.int32 and out.tolist() == [1, -2, 300000]


def test_read_idx_errors_name_the_file(tmp_path):
    good = idx_bytes(make_split(10, 5)[0])
    cases = {
        "truncated-raw": good[: len(good) // 2],
        "truncated-gz": gzip.compress(good)[:200],
        "bad-magic": b"\x08\x03\x00\x00" + good[4:],
        "extra-bytes": good + b"\x00" * 5,
        "count-mismatch": bytes([0, 0, 8, 3]) + (11).to_bytes(4, "big") + good[8:],
        "tiny": b"\x00\x00",
    }
    for name, blob in cases.items():
        path = tmp_path / f"{name}-idx3-ubyte"
        path.write_bytes(blob)
        with pytest.raises(DataError) as err:
            data.read_idx(path)
        assert path.name in str(err.value), name
        assert "delete it" in str(err.value), name
    with pytest.raises(DataError, match="no-such-file"):
        data.read_idx(tmp_path / "no-such-file")


def write_folder(folder: Path, gz: bool, n_train=30, n_test=10, **override) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tr_x, tr_y = make_split(n_train, 3)
    te_x, te_y = make_split(n_test, 4)
    arrays = {"train_images": tr_x, "train_labels": tr_y, "test_images": te_x, "test_labels": te_y}
    arrays.update(override)
    for role, arr in arrays.items():
        write_idx(folder / (data.IDX_FILE_NAMES[role] + (".gz" if gz else "")), arr, gz)
    return folder


def test_data_dir_loads_gz_and_raw(tmp_path):
    ds = data.load_dataset(data_dir=write_folder(tmp_path / "plain", gz=False))
    assert ds.name == "idx:plain" and (ds.n_train, ds.n_test) == (30, 10)
    assert ds.train_x.shape == (30, 1, 28, 28) and ds.train_y.dtype == np.int64
    assert abs(float(ds.train_x.mean())) < 1e-5
    gz = data.load_dataset(data_dir=write_folder(tmp_path / "zipped", gz=True))
    np.testing.assert_array_equal(gz.train_x, ds.train_x)
    fashion = data.load_dataset("fashion-mnist", data_dir=tmp_path / "zipped")
    assert fashion.classes == data.FASHION_MNIST_CLASSES
    assert set(data.find_idx_files(tmp_path / "zipped")) == set(data.IDX_FILE_NAMES)


def test_data_dir_missing_files(tmp_path):
    folder = write_folder(tmp_path / "some", gz=True)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    (folder / "train-images-idx3-ubyte.gz").unlink()
    assert data.find_idx_files(folder) is None
    with pytest.raises(DataError) as err:
        data.load_dataset(data_dir=folder)
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte" in msg and "train-images-idx3-ubyte" in msg
    assert "train-labels" not in msg.split("Expected names")[0]
    with pytest.raises(DataError, match="does not exist"):
        data.load_dataset(data_dir=tmp_path / "nowhere")


def test_data_dir_inconsistent_files(tmp_path):
    few_labels = (np.arange(29) % 10).astype(np.uint8)
    folder = write_folder(tmp_path / "a", gz=False, train_labels=few_labels)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*30 images.*train-labels-idx1-ubyte.*29"):
        data.load_dataset(data_dir=folder)
    bad_labels = np.full(30, 12, np.uint8)
    folder = write_folder(tmp_path / "b", gz=False, train_labels=bad_labels)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.*0..9"):
        data.load_dataset(data_dir=folder)
    folder = write_folder(tmp_path / "c", gz=False, test_images=np.zeros((10, 32, 32), np.uint8))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        data.load_dataset(data_dir=folder)


# --------------------------------------------------------------------------------------------------
# Downloads (through pooch, against the local server)


def cache_listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_download_then_cache(tmp_path, mnist_env, idx_files, capsys, monkeypatch, dead_url):
    pooch_log = Records()
    pooch.get_logger().addHandler(pooch_log)
    try:
        ds = data.load_dataset("mnist", cache_dir=tmp_path, progress=False)
    finally:
        pooch.get_logger().removeHandler(pooch_log)
    assert pooch_log.records == []  # rso prints its own lines, not pooch's
    assert (ds.name, ds.n_train, ds.n_test, ds.classes) == ("mnist", 60, 20, data.MNIST_CLASSES)
    assert ds.source == str(tmp_path / "mnist")
    assert sorted(mnist_env.requests) == sorted(idx_files)
    for name, blob in idx_files.items():
        assert (tmp_path / "mnist" / name).read_bytes() == blob
    assert cache_listing(tmp_path / "mnist") == sorted(idx_files)  # no temporary or extra files
    assert capsys.readouterr().err == ""  # progress=False: no bar

    again = data.load_dataset("mnist", cache_dir=tmp_path, progress=False, download=False)
    np.testing.assert_array_equal(again.train_x, ds.train_x)
    monkeypatch.setenv("RSO_MNIST_MIRROR", dead_url)  # a good cache needs no network at all
    data.load_dataset("mnist", cache_dir=tmp_path, progress=False)
    assert len(mnist_env.requests) == 4
    statuses = dict(data.describe_datasets(tmp_path))
    assert statuses["mnist"] == f"cached at {tmp_path / 'mnist'}"


def test_download_progress_goes_to_stderr(tmp_path, server, idx_files, capsys):
    name = IDX_GZ["train_labels"]
    dest = data.download_file(server.url + name, tmp_path / name, f"sha256:{sha(idx_files[name])}", progress=True)
    assert dest == tmp_path / name and dest.read_bytes() == idx_files[name]
    out = capsys.readouterr()
    assert out.out == "" and name in out.err
    data.download_file(server.url + name, dest, f"sha256:{sha(idx_files[name])}")  # already there
    assert server.requests == [name]


def test_damaged_cache_file_is_downloaded_again(tmp_path, mnist_env):
    data.load_dataset("mnist", cache_dir=tmp_path, progress=False)
    target = tmp_path / "mnist" / IDX_GZ["test_images"]
    target.write_bytes(b"garbage")
    data.load_dataset("mnist", cache_dir=tmp_path, progress=False)
    assert mnist_env.requests[4:] == [IDX_GZ["test_images"]]
    assert target.read_bytes()[:2] == b"\x1f\x8b"


def test_damaged_cache_file_with_download_off(tmp_path, mnist_env):
    data.load_dataset("mnist", cache_dir=tmp_path, progress=False)
    target = tmp_path / "mnist" / IDX_GZ["train_labels"]
    target.write_bytes(b"garbage")
    with pytest.raises(DataError) as err:
        data.load_dataset("mnist", cache_dir=tmp_path, progress=False, download=False)
    assert str(target) in str(err.value) and "damaged" in str(err.value)
    assert target.read_bytes() == b"garbage" and len(mnist_env.requests) == 4


def test_wrong_checksum(tmp_path, mnist_env, monkeypatch):
    name = IDX_GZ["train_images"]
    monkeypatch.setitem(data.KNOWN_DIGESTS["mnist"], name, ("sha256:" + "0" * 64,))
    with pytest.raises(DataError) as err:
        data.load_dataset("mnist", cache_dir=tmp_path, progress=False)
    msg = str(err.value)
    assert name in msg and "0" * 64 in msg and "expected" in msg and "got" in msg
    assert "another checksum" in msg and mnist_env.url + name in msg
    assert cache_listing(tmp_path / "mnist") == []  # the bad download is not kept, not even as a temporary


def test_corrupt_gzip_without_a_known_checksum(tmp_path, mnist_env, monkeypatch, idx_files):
    name = IDX_GZ["test_labels"]
    mnist_env.files[name] = idx_files[name][:-12]  # cut short: the gzip trailer is missing
    monkeypatch.setitem(data.KNOWN_DIGESTS["mnist"], name, ())
    with pytest.raises(DataError) as err:
        data.load_dataset("mnist", cache_dir=tmp_path, progress=False)
    msg = str(err.value)
    assert str(tmp_path / "mnist" / name) in msg and "gzip" in msg and "delete it" in msg


def test_server_dies_mid_transfer(tmp_path, mnist_env, idx_files):
    name = IDX_GZ["train_images"]
    mnist_env.die_after_half.add(name)
    with pytest.raises(DataError) as err:
        data.load_dataset("mnist", cache_dir=tmp_path, progress=False)
    msg = str(err.value)
    assert "--data-dir" in msg and str(tmp_path / "mnist") in msg and "broke off" in msg
    assert cache_listing(tmp_path / "mnist") == []  # nothing half-downloaded is left
    # the next run downloads the file again, whole (pooch does not resume)
    mnist_env.die_after_half.clear()
    assert data.load_dataset("mnist", cache_dir=tmp_path, progress=False).n_train == 60
    assert (tmp_path / "mnist" / name).read_bytes() == idx_files[name]
    assert mnist_env.requests.count(name) == 2


def test_a_failed_attempt_is_retried(tmp_path, mnist_env, monkeypatch):
    name = IDX_GZ["test_images"]
    mnist_env.fail_first[name] = 1
    with pytest.raises(DataError, match="HTTP error 503"):
        data.load_dataset("mnist", cache_dir=tmp_path, progress=False)
    mnist_env.fail_first[name] = 1
    monkeypatch.setattr(download, "DOWNLOAD_RETRIES", 1)
    assert data.load_dataset("mnist", cache_dir=tmp_path, progress=False).n_test == 20
    assert mnist_env.requests.count(name) == 3


def test_network_failure_message(tmp_path, monkeypatch, dead_url):
    monkeypatch.setenv("RSO_MNIST_MIRROR", dead_url)
    monkeypatch.setitem(data.SYSTEM_DIRS, "mnist", ())
    with pytest.raises(DataError) as err:
        data.load_dataset("mnist", cache_dir=tmp_path, progress=False)
    msg = str(err.value)
    assert "--data-dir" in msg and str(tmp_path / "mnist") in msg and "train-images-idx3-ubyte.gz" in msg
    assert f"{dead_url}train-images-idx3-ubyte.gz: cannot connect" in msg and "RSO_MNIST_MIRROR" in msg


def test_mirrors_tried_in_order(tmp_path, mnist_env, monkeypatch, dead_url):
    empty = Server({})  # answers 404
    try:
        monkeypatch.setenv("RSO_MNIST_MIRROR", f"{dead_url} {empty.url.rstrip('/')},{mnist_env.url}")
        assert data.load_dataset("mnist", cache_dir=tmp_path, progress=False).n_test == 20
        assert len(empty.requests) == 4 and len(mnist_env.requests) == 4
    finally:
        empty.close()


def test_all_mirrors_dead_lists_them(tmp_path, monkeypatch):
    urls = [free_port_url(), free_port_url()]
    monkeypatch.setenv("RSO_MNIST_MIRROR", " ".join(urls))
    monkeypatch.setitem(data.SYSTEM_DIRS, "mnist", ())
    with pytest.raises(DataError) as err:
        data.load_dataset("mnist", cache_dir=tmp_path, progress=False)
    lines = str(err.value).splitlines()
    name = IDX_GZ["train_images"]
    assert [ln.strip().split(": ")[0] for ln in lines[1:3]] == [u + name for u in urls]


def test_unwritable_cache_folder(tmp_path, mnist_env):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match=r"Cannot write .*a-file.*RSO_CACHE_DIR"):
        data.load_dataset("mnist", cache_dir=blocker, progress=False)


def test_not_downloaded_and_download_off(tmp_path, mnist_env):
    with pytest.raises(DataError, match="not downloaded"):
        data.load_dataset("mnist", cache_dir=tmp_path, download=False)
    assert mnist_env.requests == []


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RSO_CACHE_DIR", str(tmp_path / "explicit"))
    assert data.default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("RSO_CACHE_DIR")
    if sys.platform.startswith("linux"):  # platformdirs follows the XDG spec there
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert data.default_cache_dir() == tmp_path / "xdg" / "rso"
        monkeypatch.delenv("XDG_CACHE_HOME")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert data.default_cache_dir() == tmp_path / "home" / ".cache" / "rso"


def test_downloads_go_to_the_env_cache_dir(tmp_path, mnist_env, monkeypatch, idx_files):
    monkeypatch.setenv("RSO_CACHE_DIR", str(tmp_path / "env"))
    ds = data.load_dataset("mnist", progress=False)
    assert ds.source == str(tmp_path / "env" / "mnist")
    assert cache_listing(tmp_path / "env" / "mnist") == sorted(idx_files)


def test_describe_datasets(tmp_path, monkeypatch):
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion-mnist", ())
    rows = data.describe_datasets(tmp_path)
    assert [n for n, _ in rows] == list(data.DATASET_NAMES)
    status = dict(rows)
    assert status["mnist-sample"].startswith("bundled")
    assert status["mnist"].startswith("not downloaded yet")
    assert "dataset-fashion-mnist" in status["fashion-mnist"]
    write_folder(tmp_path / "fashion-mnist", gz=True)
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion-mnist", (tmp_path / "fashion-mnist",))
    assert dict(data.describe_datasets(tmp_path))["fashion-mnist"].startswith("found in system folder")


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST from Debian's package

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(data.find_idx_files(DEBIAN_FASHION) is None, reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_from_system_folder(tmp_path, monkeypatch, dead_url):
    monkeypatch.setenv("RSO_FASHION_MNIST_MIRROR", dead_url)  # must not download
    start = time.perf_counter()
    ds = data.load_dataset("fashion-mnist", cache_dir=tmp_path, progress=False)
    elapsed = time.perf_counter() - start
    assert (ds.n_train, ds.n_test) == (60000, 10000)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert ds.source == str(DEBIAN_FASHION)
    assert np.bincount(ds.test_y).tolist() == [1000] * 10
    assert ds.mean == pytest.approx(0.2860, abs=1e-4) and ds.std == pytest.approx(0.3530, abs=1e-4)
    assert elapsed < 10
    # the Debian files are among the accepted checksums
    for name, digests in data.KNOWN_DIGESTS["fashion-mnist"].items():
        assert data.file_matches(DEBIAN_FASHION / name, digests), name


def test_data_dir_images_of_one_size_with_finite_pixels_and_both_splits_non_empty(tmp_path):
    small = np.zeros((30, 14, 14), np.uint8)
    folder = write_folder(tmp_path / "small", gz=True, train_images=small)
    with pytest.raises(DataError, match=r"small/train-images-idx3-ubyte.gz holds 14x14 images but "
                                        r".*t10k-images-idx3-ubyte.gz holds 28x28"):
        data.load_dataset(data_dir=folder)
    folder = write_folder(tmp_path / "small2", gz=True, train_images=small, test_images=np.zeros((10, 14, 14),
                                                                                              np.uint8))
    ds = data.load_dataset(data_dir=folder)  # a size of its own loads; whether a model takes it is the trainer's
    from rso_engine.config import RunConfig
    from rso_engine.training import RSOTrainer

    with pytest.raises(ValueError, match=r"model oneconv \(first layer: .*\) cannot take the 1×14×14 images"):
        RSOTrainer(RunConfig(model="oneconv", batch_size=8), dataset=ds)
    nan = np.zeros((10, 28, 28), np.float32)
    nan[3, 4, 5] = np.nan
    folder = write_folder(tmp_path / "nan", gz=False, test_images=nan)
    with pytest.raises(DataError, match=r"nan/t10k-images-idx3-ubyte: pixel values include NaN or infinity"):
        data.load_dataset(data_dir=folder)
    inf_labels = np.full(30, np.inf, np.float32)
    folder = write_folder(tmp_path / "inf", gz=False, train_labels=inf_labels)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: labels are not whole numbers"):
        data.load_dataset(data_dir=folder)
    folder = write_folder(tmp_path / "empty", gz=False, test_images=np.zeros((0, 28, 28), np.uint8),
                          test_labels=np.zeros(0, np.uint8))
    with pytest.raises(DataError, match=r"empty/t10k-images-idx3-ubyte holds no images"):
        data.load_dataset(data_dir=folder)


def test_read_idx_a_header_promising_more_than_fits_in_int64(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 4]) + b"\xff\xff\xff\xff" * 4 + b"\x00" * 100)
    with pytest.raises(DataError, match="huge-idx3-ubyte: truncated: the header promises"):
        data.read_idx(path)
