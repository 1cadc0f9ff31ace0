"""CIFAR-10 patches: binary batches, malformed files, patch extraction, LCN and ZCA properties."""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ksparse.datasets import load_dataset
from ksparse.datasets.cifar10 import (
    PatchDataset,
    extract_patches,
    fit_zca,
    lcn,
    load_cifar10_patches,
    read_cifar_batch,
    zca_whiten,
)


def write_batch(path, images, labels):
    """Write images (N, 32, 32, 3) uint8 and labels in the official record layout."""
    planes = np.asarray(images, dtype=np.uint8).transpose(0, 3, 1, 2).reshape(len(images), -1)
    records = np.concatenate([np.asarray(labels, dtype=np.uint8)[:, None], planes], axis=1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    records.tofile(path)


def smooth_images(n, seed):
    """Images with spatial correlation, so patches look a little like natural ones."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 9, 9, 3)).cumsum(axis=1).cumsum(axis=2)
    big = np.kron(base, np.ones((1, 4, 4, 1)))[:, :32, :32]
    big = (big - big.min()) / (big.max() - big.min()) * 255
    return (big + rng.normal(0, 8, big.shape)).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_batch(str(root / "cifar10" / "data_batch_1.bin"), smooth_images(40, 0), np.arange(40) % 10)
    write_batch(str(root / "cifar10" / "data_batch_2.bin"), smooth_images(20, 1), np.arange(20) % 10)
    write_batch(str(root / "cifar10" / "test_batch.bin"), smooth_images(15, 2), np.arange(15) % 10)
    return root


def test_read_cifar_batch_layout(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    write_batch(str(tmp_path / "b.bin"), images, [7, 0, 9])
    got, labels = read_cifar_batch(tmp_path / "b.bin")
    np.testing.assert_array_equal(got, images)
    assert labels.tolist() == [7, 0, 9]
    raw = np.fromfile(tmp_path / "b.bin", dtype=np.uint8)
    assert raw[0] == 7 and raw[1] == images[0, 0, 0, 0] and raw[1 + 1024] == images[0, 0, 0, 1]  # R then G


@pytest.mark.parametrize("cut", [1, 3072, 3074])
def test_read_cifar_batch_rejects_partial_records(tmp_path, cut):
    write_batch(str(tmp_path / "b.bin"), np.zeros((2, 32, 32, 3)), [1, 2])
    data = (tmp_path / "b.bin").read_bytes()
    (tmp_path / "b.bin").write_bytes(data[:-cut])
    with pytest.raises(ValueError, match="whole number"):
        read_cifar_batch(tmp_path / "b.bin")


def test_read_cifar_batch_rejects_empty_and_bad_labels(tmp_path):
    (tmp_path / "e.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="whole number"):
        read_cifar_batch(tmp_path / "e.bin")
    write_batch(str(tmp_path / "l.bin"), np.zeros((1, 32, 32, 3)), [200])
    with pytest.raises(ValueError, match="labels are 0-9"):
        read_cifar_batch(tmp_path / "l.bin")


def test_load_cifar10_patches_missing_says_where(tmp_path):
    with pytest.raises(ValueError) as info:
        load_cifar10_patches(tmp_path)
    assert os.path.join(str(tmp_path), "cifar10") in str(info.value) and "data_batch_1.bin" in str(info.value)


def test_extract_patches_are_contiguous_windows():
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    image = np.stack([rows * 100 + cols, rows * 100 + cols + 10000, rows * 100 + cols + 20000], axis=-1)
    images = np.stack([image, image + 100000])
    patches, which = extract_patches(images, 500, np.random.default_rng(0), size=8)
    assert patches.shape == (500, 192) and set(which.tolist()) == {0, 1}
    p = patches.reshape(500, 8, 8, 3) - 100000 * which[:, None, None, None]
    corner = p[:, 0, 0, 0]
    expected = corner[:, None, None] + 100 * np.arange(8)[:, None] + np.arange(8)
    np.testing.assert_array_equal(p[..., 0], expected)
    np.testing.assert_array_equal(p[..., 2], expected + 20000)
    assert (corner // 100).max() <= 24 and (corner % 100).max() <= 24


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, (5, 12), elements=st.floats(0, 255)))
def test_lcn_zero_mean_and_scaled_variance(patches):
    out = lcn(patches, eps=10.0)
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-10)
    var = patches.var(axis=1, ddof=1)
    np.testing.assert_allclose(out.var(axis=1, ddof=1), var / (var + 10.0), rtol=1e-8, atol=1e-12)


def test_fit_zca_gives_unit_covariance_as_eps_goes_to_zero():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(10, 10))
    x = rng.normal(size=(20000, 10)) @ A + 5.0
    mean, P = fit_zca(x, eps=1e-10)
    np.testing.assert_allclose(P, P.T, atol=1e-12)
    np.testing.assert_allclose(np.cov(zca_whiten(x, mean, P).T), np.eye(10), atol=1e-6)
    _, P_eps = fit_zca(x, eps=0.1)
    assert np.all(np.diag(np.cov(zca_whiten(x, mean, P_eps).T)) < 1.0)  # eps shrinks the variances


def test_load_cifar10_patches_whitened_and_reproducible(cifar_dir):
    data = load_cifar10_patches(cifar_dir, n_patches=6000, n_test_patches=50, zca_eps=1e-8, random_state=3)
    assert isinstance(data, PatchDataset) and data.image_shape == (8, 8, 3)
    assert data.X_train.shape == (6000, 192) and data.X_train.dtype == np.float32
    assert data.X_test.shape == (50, 192) and data.y_train.shape == (6000,)
    # LCN removes each patch's mean, so the all-ones direction is empty; unit covariance elsewhere
    u = np.ones(192) / np.sqrt(192)
    Q = np.eye(192) - np.outer(u, u)
    C = np.cov(data.X_train.astype(np.float64).T)
    np.testing.assert_allclose(Q @ C @ Q, Q, atol=2e-3)
    again = load_dataset("cifar10-patches", data_dir=cifar_dir, n_patches=6000, n_test_patches=50,
                         zca_eps=1e-8, random_state=3)
    np.testing.assert_array_equal(again.X_train, data.X_train)


def test_load_cifar10_patches_test_whitened_with_train_parameters(cifar_dir):
    data = load_cifar10_patches(cifar_dir, n_patches=300, n_test_patches=20, random_state=1, dtype="float64")
    test_images, _ = read_cifar_batch(cifar_dir / "cifar10" / "test_batch.bin")
    rng = np.random.default_rng(1)
    train_images = np.concatenate([read_cifar_batch(cifar_dir / "cifar10" / f"data_batch_{i}.bin")[0]
                                   for i in (1, 2)])
    extract_patches(train_images, 300, rng)  # the same draws as the loader
    raw, _ = extract_patches(test_images, 20, rng)
    expected = zca_whiten(lcn(raw, data.lcn_eps), data.zca_mean, data.zca_matrix)
    np.testing.assert_allclose(data.X_test, expected, rtol=1e-10, atol=1e-10)
    assert data.zca_eps == 0.1 and data.lcn_eps == 10.0


def test_load_cifar10_patches_rejects_bad_options(cifar_dir):
    with pytest.raises(ValueError, match="n_patches"):
        load_cifar10_patches(cifar_dir, n_patches=1)
    with pytest.raises(ValueError, match="patch_size"):
        load_cifar10_patches(cifar_dir, patch_size=40)


@pytest.mark.skipif(not os.environ.get("KSPARSE_DATA"), reason="KSPARSE_DATA is not set")
def test_cifar10_real_data():
    folder = os.path.join(os.environ["KSPARSE_DATA"], "cifar10")
    images, labels = read_cifar_batch(os.path.join(folder, "data_batch_1.bin"))
    test_images, test_labels = read_cifar_batch(os.path.join(folder, "test_batch.bin"))
    assert images.shape == (4000, 32, 32, 3) and test_images.shape == (1000, 32, 32, 3)
    assert labels[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert test_labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    data = load_cifar10_patches(n_patches=2000, n_test_patches=100)
    assert data.X_train.shape == (2000, 192) and data.X_test.shape == (100, 192)
    assert np.isfinite(data.X_train).all() and np.abs(data.X_train.mean(axis=0)).max() < 1e-4
