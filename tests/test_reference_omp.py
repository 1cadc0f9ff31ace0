"""reference.omp: plain OMP and batch OMP (Gram matrix, progressive Cholesky) against scikit-learn."""

import numpy as np
import pytest
from sklearn.linear_model import orthogonal_mp
from threadpoolctl import threadpool_limits

from reference.frames import gaussian_dictionary, two_ortho
from reference.omp import batch_omp, omp_plain


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(1):
        yield


@pytest.mark.parametrize("seed, d, H, k", [(0, 20, 40, 5), (1, 30, 90, 8), (2, 16, 16, 16), (3, 50, 60, 1)])
def test_batch_omp_matches_sklearn(seed, d, H, k):
    rng = np.random.default_rng(seed)
    W = gaussian_dictionary(d, H, seed)
    x = rng.normal(size=(25, d))
    z, Gamma = batch_omp(x, W, k)
    z_ref = orthogonal_mp(W, x.T, n_nonzero_coefs=k).T
    np.testing.assert_array_equal(z != 0, z_ref != 0)  # the same support
    np.testing.assert_allclose(z, z_ref, rtol=0, atol=1e-8)
    assert np.all(np.sum(z != 0, axis=1) == k) and np.all(Gamma >= 0)


def test_omp_plain_matches_sklearn_and_batch():
    rng = np.random.default_rng(5)
    W = gaussian_dictionary(24, 48, 5)
    x = rng.normal(size=(6, 24))
    z_batch, G_batch = batch_omp(x, W, 6)
    z_ref = orthogonal_mp(W, x.T, n_nonzero_coefs=6).T
    for i in range(6):
        z, Gamma = omp_plain(x[i], W, 6)
        np.testing.assert_allclose(z, z_ref[i], rtol=0, atol=1e-8)
        np.testing.assert_array_equal(Gamma, G_batch[i])  # same atoms, same order


def test_batch_omp_tolerance_matches_sklearn():
    rng = np.random.default_rng(6)
    W = gaussian_dictionary(30, 60, 6)
    x = rng.normal(size=(20, 30))
    tol = 0.3 * float(np.min(np.sum(x ** 2, axis=1)))
    z, Gamma = batch_omp(x, W, 30, tol=tol)
    z_ref = orthogonal_mp(W, x.T, tol=tol).T
    np.testing.assert_array_equal(z != 0, z_ref != 0)
    np.testing.assert_allclose(z, z_ref, rtol=0, atol=1e-8)
    assert np.all(np.sum((x - z @ W.T) ** 2, axis=1) <= tol + 1e-9)
    assert np.any(Gamma == -1)  # some samples stopped before 30 atoms
    z1, _ = omp_plain(x[0], W, 30, tol=tol)
    np.testing.assert_allclose(z1, z_ref[0], rtol=0, atol=1e-8)


def test_batch_omp_zero_signal_and_precomputed_gram():
    W = two_ortho(8)
    x = np.vstack([np.zeros(8), W[:, 3] + 0.5 * W[:, 12]])
    z, Gamma = batch_omp(x, W, 3, tol=1e-20, G=W.T @ W)
    assert np.all(z[0] == 0) and np.all(Gamma[0] == -1)
    np.testing.assert_allclose(z[1, [3, 12]], [1.0, 0.5], atol=1e-12)
    assert np.count_nonzero(z[1]) == 2
    with pytest.raises(ValueError, match="G must be"):
        batch_omp(x, W, 3, G=np.eye(3))


def test_omp_bad_input_raises():
    W = two_ortho(4)
    with pytest.raises(ValueError, match="k must satisfy"):
        batch_omp(np.ones((2, 4)), W, 5)
    with pytest.raises(ValueError, match="unit-norm"):
        batch_omp(np.ones((2, 4)), 3 * W, 2)
    with pytest.raises(ValueError, match="NaN"):
        omp_plain(np.array([np.nan, 0, 0, 0]), W, 2)
    with pytest.raises(ValueError, match="tol"):
        batch_omp(np.ones((2, 4)), W, 2, tol=-1.0)
    with pytest.raises(ValueError, match="one signal"):
        omp_plain(np.ones((2, 4)), W, 2)
