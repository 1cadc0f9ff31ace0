"""small NORB: the binary matrix format, malformed files, crop + bicubic resize, standardisation."""

import gzip
import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ksparse.datasets import load_dataset
from ksparse.datasets.norb import (
    NorbDataset,
    load_small_norb,
    norb_features,
    read_norb_matrix,
    resize_matrix,
)

BYTE, INT = 0x1E3D4C55, 0x1E3D4C54
PREFIX = {"training": "smallnorb-5x46789x9x18x6x2x96x96", "testing": "smallnorb-5x01235x9x18x6x2x96x96"}


def matrix_bytes(array, magic):
    """The official binary matrix encoding: magic, ndim, max(3, ndim) sizes (padded with 1), data."""
    array = np.asarray(array)
    dims = list(array.shape) + [1] * (3 - array.ndim)
    dtype = "u1" if magic == BYTE else "<i4"
    return struct.pack(f"<2i{len(dims)}i", magic, array.ndim, *dims) + array.astype(dtype).tobytes()


def write_norb(folder, n_train=7, n_test=4, seed=0, gz=False):
    """Write the four small NORB files; returns {(part, kind): array}."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    out = {}
    for part, n in (("training", n_train), ("testing", n_test)):
        out[part, "dat"] = rng.integers(0, 256, (n, 2, 96, 96)).astype(np.uint8)
        out[part, "cat"] = rng.integers(0, 5, n).astype(np.int32)
        for kind, magic in (("dat", BYTE), ("cat", INT)):
            raw = matrix_bytes(out[part, kind], magic)
            name = f"{PREFIX[part]}-{part}-{kind}.mat" + (".gz" if gz else "")
            with open(os.path.join(folder, name), "wb") as f:
                f.write(gzip.compress(raw) if gz else raw)
    return out


def test_read_norb_matrix_header_layout(tmp_path):
    labels = np.array([4, 0, 3], dtype=np.int32)
    raw = matrix_bytes(labels, INT)
    assert len(raw) == 4 + 4 + 3 * 4 + 3 * 4  # ndim 1 is padded to 3 sizes
    assert raw[:4] == bytes.fromhex("544c3d1e")  # 0x1E3D4C54, little-endian
    (tmp_path / "cat.mat").write_bytes(raw)
    got = read_norb_matrix(tmp_path / "cat.mat")
    assert got.dtype == np.dtype("<i4") and got.tolist() == [4, 0, 3]


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=5), gz=st.booleans())
def test_read_norb_matrix_round_trip(tmp_path_factory, shape, gz):
    array = (np.arange(int(np.prod(shape))) % 251).astype(np.uint8).reshape(shape)
    raw = matrix_bytes(array, BYTE)
    path = tmp_path_factory.mktemp("norb") / ("m.mat.gz" if gz else "m.mat")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    got = read_norb_matrix(path)
    assert got.shape == tuple(shape)
    np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize(
    "header,match",
    [
        (struct.pack("<5i", 0x12345678, 1, 3, 1, 1), "magic"),
        (struct.pack("<2i", BYTE, 1_000_000_000), "ndim"),
        (struct.pack("<2i", BYTE, 0), "ndim"),
        (struct.pack("<5i", BYTE, 3, 4, -1, 2), "negative"),
    ],
)
def test_read_norb_matrix_rejects_bad_headers(tmp_path, header, match):
    (tmp_path / "m.mat").write_bytes(header + b"\0" * 64)
    with pytest.raises(ValueError, match=match):
        read_norb_matrix(tmp_path / "m.mat")


@pytest.mark.parametrize("gz", [False, True])
def test_read_norb_matrix_header_promises_too_much(tmp_path, gz):
    # 2**31-1 cubed bytes promised, 10 held: must fail without allocating
    raw = struct.pack("<5i", BYTE, 3, 2**31 - 1, 2**31 - 1, 2**31 - 1) + b"\0" * 10
    path = tmp_path / ("m.mat.gz" if gz else "m.mat")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(ValueError, match="truncated"):
        read_norb_matrix(path)


def test_read_norb_matrix_truncated_and_trailing(tmp_path):
    raw = matrix_bytes(np.ones((3, 2, 4, 4)), BYTE)
    (tmp_path / "t.mat").write_bytes(raw[:-5])
    with pytest.raises(ValueError, match="truncated"):
        read_norb_matrix(tmp_path / "t.mat")
    (tmp_path / "t.mat.gz").write_bytes(gzip.compress(raw)[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_norb_matrix(tmp_path / "t.mat.gz")
    (tmp_path / "x.mat.gz").write_bytes(gzip.compress(raw + b"\1"))
    with pytest.raises(ValueError, match="more bytes"):
        read_norb_matrix(tmp_path / "x.mat.gz")


def test_resize_matrix_rows_sum_to_one_and_keep_constants():
    A = resize_matrix(64, 32)
    assert A.shape == (32, 64)
    np.testing.assert_allclose(A.sum(axis=1), 1.0)
    np.testing.assert_allclose(A @ np.full((64, 64), 7.0) @ A.T, 7.0)
    np.testing.assert_allclose(A, A[::-1, ::-1], atol=1e-12)  # symmetric about the centre


def test_resize_matrix_matches_pil_bicubic():
    Image = pytest.importorskip("PIL.Image")
    image = np.random.default_rng(0).uniform(0, 255, (64, 64)).astype(np.float32)
    ours = resize_matrix(64, 32) @ image @ resize_matrix(64, 32).T
    pil = np.asarray(Image.fromarray(image, mode="F").resize((32, 32), Image.BICUBIC))
    np.testing.assert_allclose(ours, pil, atol=1e-3)


def test_norb_features_crop_centre():
    pairs = np.full((2, 2, 96, 96), 255, dtype=np.uint8)  # the border is never seen
    pairs[:, 0, 16:80, 16:80] = 10
    pairs[:, 1, 16:80, 16:80] = 20
    features = norb_features(pairs)
    assert features.shape == (2, 2048) and features.dtype == np.float32
    np.testing.assert_allclose(features[:, :1024], 10, rtol=1e-6)
    np.testing.assert_allclose(features[:, 1024:], 20, rtol=1e-6)
    with pytest.raises(ValueError, match="pairs"):
        norb_features(np.zeros((2, 2, 50, 50)))


@pytest.mark.parametrize("sub,gz", [("norb", False), ("", True)])
def test_load_small_norb_standardised(tmp_path, sub, gz):
    arrays = write_norb(tmp_path / sub, gz=gz)
    data = load_small_norb(tmp_path)
    assert isinstance(data, NorbDataset) and data.image_shape == (2, 32, 32)
    assert data.X_train.shape == (7, 2048) and data.X_test.shape == (4, 2048)
    assert data.X_train.dtype == np.float32 and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.y_test, arrays["testing", "cat"])
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1, atol=1e-4)
    raw_test = norb_features(arrays["testing", "dat"], dtype="float64")
    expected = (raw_test - data.feature_mean) / data.feature_std  # the training statistics
    np.testing.assert_allclose(data.X_test, expected, rtol=1e-4, atol=1e-4)
    small = load_dataset("norb", data_dir=tmp_path, n_train=3, n_test=2)
    assert small.X_train.shape == (3, 2048) and small.X_test.shape == (2, 2048)


def test_load_small_norb_errors(tmp_path):
    with pytest.raises(ValueError) as info:
        load_small_norb(tmp_path)
    assert os.path.join(str(tmp_path), "norb") in str(info.value) and "training-dat.mat" in str(info.value)
    write_norb(tmp_path / "norb")
    cat = tmp_path / "norb" / f"{PREFIX['testing']}-testing-cat.mat"
    cat.write_bytes(matrix_bytes(np.zeros(3, dtype=np.int32), INT))  # 3 labels for 4 pairs
    with pytest.raises(ValueError, match="4 integer labels"):
        load_small_norb(tmp_path)
    with pytest.raises(ValueError, match="n_train"):
        load_small_norb(tmp_path, n_train=0)
