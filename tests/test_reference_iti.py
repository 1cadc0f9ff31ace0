"""reference.iti: ITI, Eqs. (2)-(3), and its first step, Eq. (4); Thm 3.1 as a property."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from reference.coherence import mutual_coherence, theorem31_condition
from reference.frames import gaussian_dictionary, two_ortho
from reference.iti import iti, lstsq_on_support, one_step, supp_k
from reference.omp import batch_omp


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def planted(N, H, k, rng, low=0.5):
    """Non-negative k-sparse codes (N, H) on random supports, values in [low, 1]."""
    z = np.zeros((N, H))
    Gamma = np.argsort(rng.random((N, H)), axis=1)[:, :k]
    np.put_along_axis(z, Gamma, rng.uniform(low, 1.0, size=(N, k)), axis=1)
    return z, np.sort(Gamma, axis=1)


def test_supp_k_sorted_and_stable():
    z = np.array([[3.0, 1.0, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    assert supp_k(z, 2).tolist() == [[0, 2], [0, 1]]


def test_iti_orthonormal_converges_in_one_iteration():
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.normal(size=(12, 12)))[0]
    z, true = planted(20, 12, 3, rng)
    res = iti(z @ Q.T, Q, 3)
    assert np.all(res.n_iter == 1) and np.all(res.converged)
    np.testing.assert_array_equal(res.Gamma, true)
    np.testing.assert_allclose(res.z, z, atol=1e-12)
    x = rng.normal(size=(5, 12))  # any signal: the k largest entries of Q^T x, exactly
    res = iti(x, Q, 4)
    y = x @ Q
    expected = np.zeros_like(y)
    np.put_along_axis(expected, supp_k(y, 4), np.take_along_axis(y, supp_k(y, 4), axis=1), axis=1)
    assert np.all(res.n_iter == 1)
    np.testing.assert_allclose(res.z, expected, atol=1e-12)


def test_iti_and_omp_recover_planted_supports_on_incoherent_dictionary():
    rng = np.random.default_rng(1)
    W = two_ortho(64)  # mu = 1/8
    z, true = planted(200, 128, 6, rng, low=0.2)  # well past Thm 3.1's bound: k mu = 0.75
    res = iti(z @ W.T, W, 6)
    np.testing.assert_array_equal(res.Gamma, true)
    np.testing.assert_allclose(res.z, z, atol=1e-10)
    assert np.all(res.converged)
    zo, Go = batch_omp(z @ W.T, W, 6)
    np.testing.assert_array_equal(np.sort(Go, axis=1), true)
    np.testing.assert_allclose(zo, z, atol=1e-10)


def test_iti_fixed_point_satisfies_eq2():
    rng = np.random.default_rng(2)
    W = gaussian_dictionary(20, 40, 2)
    x = rng.normal(size=(30, 20))
    res = iti(x, W, 5, max_iter=200)
    c = res.converged
    assert c.mean() > 0.5
    again = supp_k(res.z + (x - res.z @ W.T) @ W, 5)  # Eq. (2) at the fixed point
    np.testing.assert_array_equal(again[c], res.Gamma[c])
    assert np.all(res.n_iter <= 200) and np.all(res.n_iter >= 1)


def test_one_step_is_first_iteration_and_takes_bias():
    rng = np.random.default_rng(3)
    W = gaussian_dictionary(10, 25, 3)
    x = rng.normal(size=(8, 10))
    z1, G1 = one_step(x, W, 3)
    res = iti(x, W, 3, max_iter=1)
    np.testing.assert_array_equal(G1, res.Gamma)
    np.testing.assert_allclose(z1, res.z)
    np.testing.assert_array_equal(G1, supp_k(x @ W, 3))
    b = rng.normal(size=25)
    _, Gb = one_step(x, W, 3, b=b)
    np.testing.assert_array_equal(Gb, supp_k(x @ W + b, 3))


def test_lstsq_on_support_matches_numpy_lstsq():
    rng = np.random.default_rng(4)
    W = rng.normal(size=(15, 30))
    x = rng.normal(size=(6, 15))
    Gamma = np.sort(np.argsort(rng.random((6, 30)), axis=1)[:, :4], axis=1)
    v = lstsq_on_support(x, W, Gamma)
    for i in range(6):
        np.testing.assert_allclose(v[i], np.linalg.lstsq(W[:, Gamma[i]], x[i], rcond=None)[0], atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["gaussian", "two-ortho"]), log_d=st.integers(4, 7), seed=st.integers(0, 2**31),
       k_frac=st.floats(0, 1), r_frac=st.floats(0, 1), adversarial=st.booleans())
def test_theorem31_holds_on_random_instances(kind, log_d, seed, k_frac, r_frac, adversarial):
    d = 2 ** log_d
    W = gaussian_dictionary(d, d + d // 2, seed) if kind == "gaussian" else two_ortho(d)
    mu = mutual_coherence(W)
    k_max = int(np.floor(1.0 / (2.0 * mu)))
    assume(k_max >= 1)
    k = 1 + int(k_frac * (k_max - 1))
    r = 2 * k * mu + r_frac * (1 - 2 * k * mu)  # z_k / z_1 >= 2 k mu: the condition holds
    rng = np.random.default_rng(seed)
    z = np.zeros((1, W.shape[1]))
    if adversarial:  # support on the atoms most correlated with atom 0, smallest value on atom 0
        order = np.argsort(-np.abs(W.T @ W[:, 0]))
        z[0, order[1:k]] = 1.0
        z[0, 0] = r if k > 1 else 1.0
    else:
        values = [1.0] if k == 1 else np.r_[1.0, rng.uniform(r, 1, k - 2), r]
        z[0, rng.choice(W.shape[1], k, replace=False)] = values
    assert theorem31_condition(W, z)[0]
    np.testing.assert_array_equal(supp_k(z @ W.T @ W, k), supp_k(z, k))


@pytest.mark.parametrize("call", [iti, one_step])
def test_bad_input_raises(call):
    W = two_ortho(4)
    x = np.ones((2, 4))
    with pytest.raises(ValueError, match="k must satisfy"):
        call(x, W, 5)  # k larger than d
    with pytest.raises(ValueError, match="unit-norm"):
        call(x, 2 * W, 2)
    with pytest.raises(ValueError, match="zero columns"):
        call(x, np.hstack([W, np.zeros((4, 1))]), 2, unit_norm=False)
    with pytest.raises(ValueError, match="NaN"):
        call(np.full((2, 4), np.nan), W, 2)
    with pytest.raises(ValueError, match="x must be"):
        call(np.ones((2, 5)), W, 2)
    with pytest.raises(TypeError, match="integer"):
        call(x, W, 2.5)
    with pytest.raises(ValueError, match="max_iter"):
        iti(x, W, 2, max_iter=0)
