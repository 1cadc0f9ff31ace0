"""Shared fixtures: a centered finite-difference gradient and inputs with a wide top-k gap."""

import numpy as np
import pytest


def _numeric_grad(f, v, dout, eps=1e-6):
    """Centered differences of sum(f() * dout) with respect to ``v``, changed in place and restored."""
    grad = np.zeros_like(v)
    it = np.nditer(v, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = v[i]
        v[i] = old + eps
        plus = np.sum(f() * dout)
        v[i] = old - eps
        minus = np.sum(f() * dout)
        v[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def _gapped_problem(seed=0, N=5, d=10, H=6, gap=0.5):
    """float64 (x, W, b, b_prime) whose z = x W + b has all entries of a row ``gap`` apart.

    Each row of z is a random permutation of ``gap * (arange(H) + 1/3 - H/2)``, so for every k the k-th and
    (k+1)-th largest entries differ by ``gap`` (far more than the step size of the differences).
    Needs d >= H: then W has full column rank and x = (z - b) pinv(W) solves x W = z - b.
    """
    assert d >= H, "the exact construction needs d >= H"
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, H))
    b = rng.normal(size=H)
    b_prime = rng.normal(size=d)
    z = np.stack([(rng.permutation(H) + 1 / 3) * gap for _ in range(N)]) - gap * H / 2  # none is 0
    x = (z - b) @ np.linalg.pinv(W)
    return x, W, b, b_prime


@pytest.fixture
def numeric_grad():
    """``numeric_grad(f, v, dout, eps=1e-6)``: d sum(f() * dout) / dv by centered differences."""
    return _numeric_grad


@pytest.fixture
def gapped_problem():
    """``gapped_problem(seed, N, d, H, gap)`` -> (x, W, b, b_prime) in float64."""
    return _gapped_problem


@pytest.fixture
def one_blas_thread():
    """Run a test with one BLAS thread: tests use small arrays, and on a busy machine
    several BLAS threads per process slow them down many times over."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
