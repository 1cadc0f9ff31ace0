"""reference.omp: plain OMP and batch OMP (Gram matrix, progressive Cholesky) against scikit-learn."""

import warnings

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


def _repeated_atom_problem():
    """A dictionary whose atom 5 repeats atom 2, and signals that make OMP reach for it."""
    W = gaussian_dictionary(8, 16, 0)
    W[:, 5] = W[:, 2]
    x = np.stack([W[:, 2], W[:, 2] + W[:, 0], 2 * W[:, 5] - W[:, 1]])
    return x, W


def test_batch_omp_stops_and_warns_on_a_repeated_atom():
    x, W = _repeated_atom_problem()
    with pytest.warns(RuntimeWarning, match="stopped early for 3 of 3 samples: the next atom is linearly"):
        z, Gamma = batch_omp(x, W, 4)
    assert np.all(np.isfinite(z)) and np.abs(z).max() < 10
    np.testing.assert_allclose(z @ W.T, x, atol=1e-12)  # the signals are still represented
    assert Gamma.tolist() == [[2, -1, -1, -1], [2, 0, -1, -1], [2, 1, -1, -1]]
    with pytest.warns(RuntimeWarning, match="linear dependence"):  # scikit-learn stops the same way
        z_ref = orthogonal_mp(W, x.T, n_nonzero_coefs=4, precompute=True).T
    np.testing.assert_allclose(z, z_ref, atol=1e-12)


def test_omp_plain_stops_and_warns_on_a_repeated_atom():
    W = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # atom 1 repeats atom 0
    x = np.array([3.0, 0.0])  # after atom 0 the residual is exactly 0, and atom 1 comes next
    with pytest.warns(RuntimeWarning, match="stopped early for 1 of 1 samples"):
        z, Gamma = omp_plain(x, W, 2)
    assert Gamma.tolist() == [0] and z.tolist() == [3.0, 0.0, 0.0]
    with pytest.warns(RuntimeWarning, match="stopped early for 1 of 1 samples"):
        z_batch, Gamma_batch = batch_omp(x[None], W, 2)
    assert Gamma_batch.tolist() == [[0, -1]] and np.array_equal(z_batch[0], z)


def test_batch_omp_on_independent_atoms_does_not_warn():
    rng = np.random.default_rng(3)
    W = gaussian_dictionary(20, 40, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch_omp(rng.normal(size=(10, 20)), W, 20)  # k = d: full rank but never dependent
