"""The support-only step with D9 and D10 equals the plain ``ksparse.nn.layers`` path."""

import numpy as np
import pytest

from ksparse.kernels.fast import has_numba
from ksparse.kernels.remedies import remedies_step, remedies_train_step_, residual_on_support
from ksparse.nn.layers import ksparse_step
from ksparse.nn.optim import sgd_momentum_

KERNELS = ["numpy"] + (["numba"] if has_numba() else [])


def problem(seed=0, N=40, d=12, H=30, n_dead=9):
    rng = np.random.default_rng(seed)
    x = rng.random((N, d))
    W = rng.normal(0, 0.3, (d, H))
    b = rng.normal(0, 0.1, H)
    b_prime = rng.random(d) * 0.5
    dead = np.zeros(H, bool)
    dead[rng.choice(H, n_dead, replace=False)] = True
    return x, W, b, b_prime, dead


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("pre_bias", [False, True])
@pytest.mark.parametrize("k_aux,c_aux", [(0, 0.0), (4, 1 / 32), (20, 0.5)])
def test_remedies_step_equals_layers(kernel, pre_bias, k_aux, c_aux):
    x, W, b, b_prime, dead = problem()
    want = ksparse_step(x, W, b, b_prime, 5, pre_bias=pre_bias, dead=dead, k_aux=k_aux, c_aux=c_aux)
    got = remedies_step(x, np.asfortranarray(W), b, b_prime, 5, pre_bias=pre_bias, dead=dead,
                        k_aux=k_aux, c_aux=c_aux, kernel=kernel)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-10)
    for name in ("W", "b", "b_prime"):
        np.testing.assert_allclose(got[1][name], want[1][name], rtol=1e-9, atol=1e-12)
    assert np.array_equal(np.sort(got[2], axis=1), np.sort(want[2], axis=1))


def test_residual_on_support_is_x_minus_x_hat():
    x, W, b, _, _ = problem(1)
    from ksparse.nn.layers import select_forward

    z_k, (Gamma, _) = select_forward(x @ W + b, 4)
    np.testing.assert_allclose(residual_on_support(x, W, b, Gamma), x - z_k @ W.T, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_remedies_train_step_equals_layers_then_sgd_float32(kernel):
    x, W, b, b_prime, dead = problem(2)
    params = {"W": W.astype(np.float32), "b": b.astype(np.float32), "b_prime": b_prime.astype(np.float32)}
    velocity = {n: np.full_like(a, 0.01) for n, a in params.items()}
    want_p = {n: a.astype(np.float64) for n, a in params.items()}
    want_v = {n: a.astype(np.float64) for n, a in velocity.items()}
    _, grads, _ = ksparse_step(x, want_p["W"], want_p["b"], want_p["b_prime"], 5, pre_bias=True,
                               dead=dead, k_aux=6, c_aux=0.25)
    sgd_momentum_(want_p, grads, want_v, 0.05, 0.9)
    remedies_train_step_(x.astype(np.float32), params, velocity, 5, 0.05, 0.9, kernel=kernel,
                         pre_bias=True, dead=dead, k_aux=6, c_aux=0.25)
    for name in params:
        np.testing.assert_allclose(params[name], want_p[name], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(velocity[name], want_v[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("pre_bias", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_remedies_train_step_fused_equals_layers_then_sgd(kernel, pre_bias, n_threads, monkeypatch,
                                                          one_blas_thread):
    # the fused compiled step (D9 without D10), over several steps, split over threads
    if kernel == "numba":
        from ksparse.kernels import _cpu

        monkeypatch.setattr(_cpu, "threads_for", lambda N, d, H: n_threads)
    x, W, b, b_prime, _ = problem(3)
    rng = np.random.default_rng(4)
    params = {"W": W, "b": b, "b_prime": b_prime}
    velocity = {n: rng.normal(0, 0.01, a.shape) for n, a in params.items()}
    want_p = {n: a.copy() for n, a in params.items()}
    want_v = {n: a.copy() for n, a in velocity.items()}
    for _ in range(3):
        E_want, grads, Gamma_want = ksparse_step(x, want_p["W"], want_p["b"], want_p["b_prime"], 5,
                                                 pre_bias=pre_bias)
        e_want = x - (ksparse_step_x_hat(x, want_p, Gamma_want, pre_bias))
        sgd_momentum_(want_p, grads, want_v, 0.05, 0.9)
        E, Gamma, e, norms2 = remedies_train_step_(x, params, velocity, 5, 0.05, 0.9, kernel=kernel,
                                                   residual=True, pre_bias=pre_bias)
        assert np.array_equal(np.sort(Gamma, axis=1), np.sort(Gamma_want, axis=1))
        np.testing.assert_allclose(E, E_want, rtol=1e-10)
        np.testing.assert_allclose(e, e_want, rtol=1e-9, atol=1e-12)
        for name in params:
            np.testing.assert_allclose(params[name], want_p[name], rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(velocity[name], want_v[name], rtol=1e-10, atol=1e-13)
        if norms2 is not None:
            np.testing.assert_allclose(norms2, (want_p["W"] ** 2).sum(axis=0), rtol=1e-10)


def ksparse_step_x_hat(x, p, Gamma, pre_bias):
    """x_hat of D3 on the support Gamma, from the equations (D1 or D9, then D3)."""
    z = (x - p["b_prime"] if pre_bias else x) @ p["W"] + p["b"]
    z_k = np.zeros_like(z)
    np.put_along_axis(z_k, Gamma, np.take_along_axis(z, Gamma, axis=1), axis=1)
    return z_k @ p["W"].T + p["b_prime"]
