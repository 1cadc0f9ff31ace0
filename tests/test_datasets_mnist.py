"""MNIST loader: IDX parsing, malformed files, the split, and downloads (pooch) from a local HTTP server."""

import functools
import gzip
import hashlib
import http.server
import os
import struct
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ksparse.datasets import load_dataset
from ksparse.datasets._files import download
from ksparse.datasets.mnist import FILES, load_mnist, read_idx

N_TRAIN, N_TEST, SHAPE = 30, 12, (5, 4)


def idx_bytes(array):
    """The IDX encoding of a uint8 array."""
    array = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def fake_mnist(seed=0):
    """File name (no .gz) -> (array, IDX bytes) for a tiny MNIST-like set."""
    rng = np.random.default_rng(seed)
    arrays = {
        FILES["train_images"]: rng.integers(0, 256, (N_TRAIN, *SHAPE)),
        FILES["train_labels"]: rng.integers(0, 10, N_TRAIN),
        FILES["test_images"]: rng.integers(0, 256, (N_TEST, *SHAPE)),
        FILES["test_labels"]: rng.integers(0, 10, N_TEST),
    }
    return {name: (a.astype(np.uint8), idx_bytes(a)) for name, a in arrays.items()}


def md5_table(files):
    return {name: hashlib.md5(raw).hexdigest() for name, (_, raw) in files.items()}


def served_hashes(folder):
    """pooch's registry for the .gz files in ``folder``: md5 of the bytes as served."""
    return {p.name: "md5:" + hashlib.md5(p.read_bytes()).hexdigest() for p in folder.glob("*.gz")}


def write_files(folder, files, gz=True):
    os.makedirs(folder, exist_ok=True)
    for name, (_, raw) in files.items():
        if gz:
            with open(os.path.join(folder, name + ".gz"), "wb") as f:
                f.write(gzip.compress(raw, mtime=0))  # the same bytes in every folder
        else:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(raw)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Reach the local server directly even where the environment sets an HTTP proxy."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    failed = set()  # paths under flaky/ already refused once

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/flaky/") and self.path not in self.failed:
            self.failed.add(self.path)
            self.send_error(503, "try again")
            return
        super().do_GET()


@pytest.fixture(scope="module")
def mirror_root(tmp_path_factory):
    """A local HTTP server on 127.0.0.1 serving good/, bad/ (wrong content) and trunc/ mirrors."""
    files = fake_mnist()
    root = tmp_path_factory.mktemp("www")
    write_files(root / "good", files)
    write_files(root / "flaky", files)  # refuses each file once, then serves it
    write_files(root / "bad", fake_mnist(seed=1))  # valid IDX, wrong md5
    os.makedirs(root / "trunc")
    for name, (_, raw) in files.items():
        (root / "trunc" / (name + ".gz")).write_bytes(gzip.compress(raw)[:-12])
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files, served_hashes(root / "good")
    server.shutdown()
    server.server_close()


def all_files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=4), gz=st.booleans())
def test_read_idx_round_trip(tmp_path_factory, shape, gz):
    array = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    raw = idx_bytes(array)
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    out = read_idx(path, md5=hashlib.md5(raw).hexdigest())
    assert out.shape == tuple(shape) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, array)


def test_read_idx_wrong_magic(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 3) + b"abc")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_header_promises_too_much(tmp_path, gz):
    # 2**31 x 2**31 bytes promised, 3 held: must fail without allocating
    raw = bytes([0, 0, 0x08, 2]) + struct.pack(">2I", 2**31, 2**31) + b"abc"
    path = tmp_path / ("x.gz" if gz else "x")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_read_idx_truncated_gzip_and_trailing_bytes(tmp_path):
    raw = idx_bytes(np.ones((10, 5, 5)))
    (tmp_path / "t.gz").write_bytes(gzip.compress(raw)[:-12])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "t.gz")
    (tmp_path / "extra").write_bytes(raw + b"\0")
    with pytest.raises(ValueError, match="header"):
        read_idx(tmp_path / "extra")
    (tmp_path / "extra.gz").write_bytes(gzip.compress(raw + b"\0"))
    with pytest.raises(ValueError, match="more bytes"):
        read_idx(tmp_path / "extra.gz")


def test_read_idx_md5_mismatch(tmp_path):
    (tmp_path / "a").write_bytes(idx_bytes(np.ones(4)))
    with pytest.raises(ValueError, match="md5"):
        read_idx(tmp_path / "a", md5="0" * 32)


@pytest.mark.parametrize("sub,gz", [("", True), ("mnist", True), ("mnist", False), ("", False)])
def test_load_mnist_local_layouts_and_split(tmp_path, sub, gz):
    files = fake_mnist()
    write_files(tmp_path / sub, files, gz=gz)
    data = load_mnist(tmp_path, val_size=10, download=False, checksums=md5_table(files))
    train = files[FILES["train_images"]][0].reshape(N_TRAIN, -1) / 255.0
    assert data.X_train.shape == (N_TRAIN - 10, 20) and data.X_train.dtype == np.float32
    assert data.X_val.shape == (10, 20) and data.X_test.shape == (N_TEST, 20)
    np.testing.assert_allclose(data.X_train, train[:-10], rtol=1e-6)
    np.testing.assert_allclose(data.X_val, train[-10:], rtol=1e-6)
    np.testing.assert_array_equal(data.y_val, files[FILES["train_labels"]][0][-10:])
    assert data.y_train.dtype == np.int64 and data.image_shape == SHAPE
    assert 0.0 <= data.X_train.min() and data.X_train.max() <= 1.0


def test_load_mnist_limits_dtype_and_registry(tmp_path):
    files = fake_mnist()
    write_files(tmp_path, files)
    data = load_dataset(
        "mnist", data_dir=tmp_path, val_size=10, n_train=7, n_val=3, n_test=5,
        dtype="float64", download=False, verify=False,
    )
    assert (len(data.X_train), len(data.X_val), len(data.X_test)) == (7, 3, 5)
    assert data.X_train.dtype == np.float64 and len(data.y_val) == 3
    with pytest.raises(ValueError, match="n_train"):
        load_mnist(tmp_path, n_train=-1, download=False)
    with pytest.raises(ValueError, match="val_size"):
        load_mnist(tmp_path, val_size=N_TRAIN, download=False, verify=False)


def test_load_mnist_local_md5_mismatch(tmp_path):
    write_files(tmp_path, fake_mnist())
    with pytest.raises(ValueError, match="md5"):
        load_mnist(tmp_path, val_size=10, download=False)  # the canonical table


def test_load_mnist_offline_says_where(tmp_path):
    with pytest.raises(ValueError) as info:
        load_mnist(tmp_path / "data", download=False)
    msg = str(info.value)
    assert os.path.join(str(tmp_path / "data"), "mnist") in msg
    assert all(name in msg for name in FILES.values())
    # a mirror that refuses connections: same message plus a short reason; no folder is made
    with pytest.raises(ValueError, match="downloading failed") as info:
        load_mnist(tmp_path / "data", mirrors=["http://127.0.0.1:9/", "http://127.0.0.1:9/b/"], timeout=5)
    msg = str(info.value)
    assert "127.0.0.1:9: no connection" in msg and "docs/data.md" in msg and len(msg) < 800, msg
    assert not (tmp_path / "data").exists()


def test_download_from_local_mirror(tmp_path, mirror_root):
    url, files, hashes = mirror_root
    table = md5_table(files)
    data = load_mnist(tmp_path, val_size=10, mirrors=[url + "/missing/", url + "/good/"], checksums=table,
                      hashes=hashes, retries=0)
    assert all_files(tmp_path) == sorted(f"mnist/{name}.gz" for name in FILES.values())
    np.testing.assert_array_equal(data.y_test, files[FILES["test_labels"]][0])
    again = load_mnist(tmp_path, val_size=10, mirrors=[], checksums=table)  # now read from disk
    np.testing.assert_array_equal(again.X_train, data.X_train)


def test_download_retries_a_failed_attempt(tmp_path, mirror_root):
    url, files, hashes = mirror_root
    name = FILES["test_labels"] + ".gz"
    md5 = md5_table(files)[FILES["test_labels"]]
    path = download(name, [url + "/flaky/"], str(tmp_path), hashes[name], md5, progress=True)  # one retry
    assert os.path.samefile(path, tmp_path / name), path
    assert all_files(tmp_path) == [name]
    with pytest.raises(ValueError, match="503"):
        download(FILES["test_images"] + ".gz", [url + "/flaky/"], str(tmp_path / "none"), retries=0)


@pytest.mark.parametrize("registry", [True, False])
def test_download_skips_bad_mirror(tmp_path, mirror_root, registry):
    url, files, hashes = mirror_root
    mirrors = [url + "/bad/", url + "/good/"]
    data = load_mnist(tmp_path, val_size=10, mirrors=mirrors, checksums=md5_table(files),
                      hashes=hashes if registry else None, retries=0)
    assert len(data.X_test) == N_TEST


@pytest.mark.parametrize("mirror,registry,reason", [
    ("bad", True, "hash"), ("trunc", True, "hash"),  # pooch's check of the served file
    ("bad", False, "md5 of the decompressed"), ("trunc", False, "truncated"),  # then ours
])
def test_download_failure_leaves_nothing(tmp_path, mirror_root, mirror, registry, reason):
    url, files, hashes = mirror_root
    with pytest.raises(ValueError, match=reason) as info:
        load_mnist(tmp_path, val_size=10, mirrors=[f"{url}/{mirror}/"], checksums=md5_table(files),
                   hashes=hashes if registry else None, retries=0)
    assert os.path.join(str(tmp_path), "mnist") in str(info.value)
    assert all_files(tmp_path) == []


def test_the_canonical_registry_rejects_other_files(tmp_path, mirror_root):
    url, files, _ = mirror_root
    with pytest.raises(ValueError, match="hash"):
        load_mnist(tmp_path, val_size=10, mirrors=[url + "/good/"], checksums=md5_table(files), retries=0)
    assert all_files(tmp_path) == []


@pytest.mark.skipif(not os.environ.get("KSPARSE_DATA"), reason="KSPARSE_DATA is not set")
def test_load_mnist_real_data():
    data = load_mnist(download=False)  # verifies the canonical md5s of the decompressed bytes
    assert data.X_train.shape == (50000, 784) and data.X_val.shape == (10000, 784)
    assert data.X_test.shape == (10000, 784) and data.image_shape == (28, 28)
    assert data.X_train.dtype == np.float32 and data.X_train.max() == 1.0 and data.X_train.min() == 0.0
    assert set(np.unique(data.y_test)) == set(range(10))
    assert np.bincount(data.y_test).tolist()[:3] == [980, 1135, 1032]
    assert data.y_train[:5].tolist() == [5, 0, 4, 1, 9]



def test_load_mnist_empty_splits_keep_width(tmp_path):
    """n_val=0 and n_test=0 give empty arrays with the image width, not a reshape error."""
    files = fake_mnist()
    write_files(tmp_path, files)
    data = load_mnist(tmp_path, val_size=10, n_val=0, n_test=0, download=False, checksums=md5_table(files))
    assert data.X_test.shape == (0, 20)
    assert data.X_val.shape == (0, 20)
