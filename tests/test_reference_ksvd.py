"""reference.ksvd: K-SVD and approximate K-SVD recover a planted dictionary (Aharon et al. 2006, Sec. V-A)."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from reference.coherence import mutual_coherence
from reference.frames import gaussian_dictionary
from reference.ksvd import ksvd


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def planted_problem(d=20, H=50, k=3, N=1500, seed=0):
    """Aharon et al.'s synthetic test, noiseless: x = W z with k Gaussian coefficients per sample."""
    rng = np.random.default_rng(seed)
    W = gaussian_dictionary(d, H, seed)
    z = np.zeros((N, H))
    np.put_along_axis(z, np.argsort(rng.random((N, H)), axis=1)[:, :k], rng.normal(size=(N, k)), axis=1)
    return z @ W.T, W


def recovered(W_true, W):
    """Fraction of true atoms matched by a learned atom with |cos| > 0.99."""
    return float(np.mean(np.abs(W_true.T @ W).max(axis=1) > 0.99))


def test_ksvd_recovers_planted_dictionary():
    x, W_true = planted_problem()
    res = ksvd(x, 50, 3, n_iter=30, random_state=0)
    assert recovered(W_true, res.W) >= 0.9
    assert len(res.errors) == 30 and res.errors[-1] < 0.25 * res.errors[0]
    np.testing.assert_allclose(np.linalg.norm(res.W, axis=0), 1.0, atol=1e-12)
    assert res.z.shape == (1500, 50) and np.all(np.count_nonzero(res.z, axis=1) <= 3)


def test_approximate_ksvd_learns_too():
    x, W_true = planted_problem(seed=1)
    res = ksvd(x, 50, 3, n_iter=30, approximate=True, random_state=1)
    assert recovered(W_true, res.W) >= 0.8
    assert res.errors[-1] < 0.5 * res.errors[0]


def test_ksvd_replaces_duplicate_and_unused_atoms():
    rng = np.random.default_rng(2)
    x = np.hstack([rng.normal(size=(200, 6)), np.zeros((200, 2))])  # the data never touch dims 6, 7
    W0 = np.zeros((8, 10))
    W0[:6, :8] = gaussian_dictionary(6, 8, 2)
    W0[:6, 8] = W0[:6, 0]  # a duplicate of atom 0
    W0[7, 9] = 1.0  # an atom no sample can use
    res = ksvd(x, 10, 2, n_iter=3, W0=W0, random_state=0)
    assert res.n_replaced[0] >= 2
    assert mutual_coherence(res.W) < 0.99
    assert np.all(np.abs(res.W[6:]) < 1e-12)  # replacements are (normalised) samples


def test_ksvd_bad_input_raises():
    x, _ = planted_problem(d=6, H=8, N=20)
    with pytest.raises(ValueError, match="k must satisfy"):
        ksvd(x, 8, 7)
    with pytest.raises(ValueError, match="NaN"):
        ksvd(np.where(x > 0.5, np.nan, x), 8, 2)
    with pytest.raises(ValueError, match="H"):
        ksvd(x, 0, 1)
    with pytest.raises(ValueError, match="non-zero samples"):
        ksvd(x[:5], 8, 2)
    with pytest.raises(ValueError, match="unit-norm"):
        ksvd(x, 8, 2, W0=2 * np.eye(6, 8) + 1)
    with pytest.raises(ValueError, match="n_iter"):
        ksvd(x, 8, 2, n_iter=0)


def test_ksvd_stays_finite_on_low_rank_data_and_a_repeated_atom():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2)) @ rng.normal(size=(2, 8))  # rank 2 < k: OMP must break down
    W0 = (x[:16] / np.linalg.norm(x[:16], axis=1, keepdims=True)).T.copy()
    W0[:, 7] = W0[:, 3]  # and a repeated atom
    with pytest.warns(RuntimeWarning, match="stopped early"):
        result = ksvd(x, 16, 4, n_iter=3, W0=W0)
    assert np.all(np.isfinite(result.errors)) and max(result.errors) < 1e-10
    assert np.all(np.isfinite(result.W)) and np.all(np.isfinite(result.z))
