"""reference.coherence and reference.frames: Eq. (8), Welch bound, Babel function, Thm 3.1's condition."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from reference.coherence import (
    babel,
    check_dictionary,
    mutual_coherence,
    normalize_columns,
    theorem31_condition,
    theorem31_ratio,
    unit_norm_atol,
    welch_bound,
)
from reference.frames import alternating_projection, gaussian_dictionary, two_ortho


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _brute_mu(W):
    H = W.shape[1]
    return max(abs(float(W[:, i] @ W[:, j])) for i, j in itertools.product(range(H), range(H)) if i != j)


@pytest.mark.parametrize("seed", range(3))
def test_mutual_coherence_matches_brute_force(seed):
    W = gaussian_dictionary(7, 13, seed)
    assert mutual_coherence(W) == pytest.approx(_brute_mu(W), abs=1e-14)


def test_mutual_coherence_of_known_frames():
    assert mutual_coherence(np.eye(4)) == 0.0
    assert mutual_coherence(two_ortho(16)) == pytest.approx(0.25, abs=1e-14)
    mercedes = np.array([[np.cos(t), np.sin(t)] for t in (0, 2 * np.pi / 3, 4 * np.pi / 3)]).T
    assert mutual_coherence(mercedes) == pytest.approx(0.5)  # an ETF: meets the Welch bound
    assert welch_bound(2, 3) == pytest.approx(0.5)


@settings(max_examples=25, deadline=None)
@given(d=st.integers(2, 12), extra=st.integers(1, 20), seed=st.integers(0, 10**6))
def test_welch_bound_never_beaten(d, extra, seed):
    H = d + extra
    assert mutual_coherence(gaussian_dictionary(d, H, seed)) >= welch_bound(d, H) - 1e-12


def test_welch_bound_never_beaten_by_optimised_frames():
    for d in (4, 8, 16):
        W = alternating_projection(d, 2 * d, 0, n_iter=50)
        assert welch_bound(d, 2 * d) - 1e-12 <= mutual_coherence(W) < mutual_coherence(gaussian_dictionary(
            d, 2 * d, 0))
    assert welch_bound(5, 5) == 0.0 and welch_bound(5, 3) == 0.0


def test_babel_matches_brute_force():
    W = gaussian_dictionary(5, 8, 1)
    mu = mutual_coherence(W)
    curve = babel(W)
    assert curve.shape == (7,) and curve[0] == pytest.approx(mu)
    for m in (1, 2, 3):
        brute = max(sum(abs(W[:, i] @ W[:, j]) for j in L) for i in range(8)
                    for L in itertools.combinations([j for j in range(8) if j != i], m))
        assert babel(W, m) == pytest.approx(brute)
        assert babel(W, m) <= m * mu + 1e-12
    assert np.all(np.diff(curve) >= 0)


def test_theorem31_condition_on_hand_made_codes():
    W = two_ortho(16)  # mu = 1/4: k = 2 needs z_k / z_1 >= 1
    z = np.zeros((3, 32))
    z[0, [1, 5]] = 1.0  # rho = 2 * 2 * 0.25 * 1 / 1 = 1: holds
    z[1, [1, 5]] = [1.0, 0.5]  # rho = 2: fails
    z[2, [3]] = -1.0  # negative code: the theorem says nothing
    assert theorem31_condition(W, z).tolist() == [True, False, False]
    assert theorem31_ratio(0.25, z)[:2] == pytest.approx([1.0, 2.0])


@pytest.mark.parametrize("bad, message", [
    (np.array([[1.0, 0.0], [0.0, 2.0]]), "unit-norm"),
    (np.array([[1.0, 0.0], [0.0, 0.0]]), "zero columns"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    (np.ones(3), "2-D"),
])
def test_mutual_coherence_bad_input_raises(bad, message):
    with pytest.raises(ValueError, match=message):
        mutual_coherence(bad)


def test_bad_arguments_raise():
    with pytest.raises(TypeError, match="real numbers"):
        check_dictionary(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="zero columns"):
        normalize_columns(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="d >= 1 and H >= 2"):
        welch_bound(0, 3)
    with pytest.raises(ValueError, match="m must be"):
        babel(np.eye(3), 3)
    with pytest.raises(ValueError, match="power of 2"):
        two_ortho(12)
    with pytest.raises(ValueError, match="atoms"):
        theorem31_condition(np.eye(3), np.ones((1, 4)))


@pytest.mark.parametrize("d", [8, 784, 2048])
def test_check_dictionary_accepts_a_float32_normalised_dictionary(d):
    rng = np.random.default_rng(d)
    W = rng.normal(size=(d, 300)).astype(np.float32)
    W /= np.linalg.norm(W, axis=0)  # normalised in float32, as a float32 pipeline would
    assert np.abs(np.linalg.norm(W.astype(np.float64), axis=0) - 1).max() > 1e-8  # float32 rounding
    assert 0 < mutual_coherence(W) < 1
    assert check_dictionary(W).dtype == np.float64


@pytest.mark.parametrize("dtype, off, ok", [
    ("float64", 1e-12, True), ("float64", 1e-6, False),
    ("float32", 1e-4, True), ("float32", 1e-3, False),
    ("float16", 1e-2, True), ("float16", 1e-1, False),
])
def test_check_dictionary_unit_norm_tolerance_follows_the_dtype(dtype, off, ok):
    W = np.eye(4)
    W[:, 2] *= 1 + off
    W = W.astype(dtype)
    assert unit_norm_atol(dtype) == pytest.approx(np.sqrt(np.finfo(dtype).eps))
    if ok:
        check_dictionary(W)
    else:
        with pytest.raises(ValueError, match=f"column 2 has norm .* from 1 for {dtype}"):
            check_dictionary(W)
