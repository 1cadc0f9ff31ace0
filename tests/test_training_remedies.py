"""ksparse.training.remedies: the step with resampling on the support equals the plain path."""

import numpy as np
import pytest

from ksparse.kernels.fast import has_numba
from ksparse.training.remedies import DeadTracker, RemedyStep, plain_residual
from ksparse.training.steps import StepSettings

KERNELS = ["numpy"] + (["numba"] if has_numba() else [])


def _run(kernel, pre_bias, n_batches=40, N=16, d=10, H=40, k=3, window=48):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n_batches * N, d))
    params = {"W": rng.normal(0, 0.3, (d, H)), "b": rng.normal(0, 0.1, H), "b_prime": rng.normal(0, 0.1, d)}
    velocity = {n: np.zeros_like(a) for n, a in params.items()}
    step = RemedyStep(DeadTracker(H, window), pre_bias=pre_bias, resample=True, kernel=kernel)
    settings = StepSettings(lr=0.02, momentum=0.9, k=k)
    for i in range(n_batches):
        step((x[i * N:(i + 1) * N],), params, velocity, settings)
    return params, velocity, step.tracker


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("pre_bias", [False, True])
def test_remedy_step_resampling_equals_plain(kernel, pre_bias, one_blas_thread):
    # units die and are resampled from the step's own residual, then come back; float64
    want_p, want_v, want_t = _run("plain", pre_bias)
    got_p, got_v, got_t = _run(kernel, pre_bias)
    assert want_t.n_resampled > 0
    assert got_t.n_resampled == want_t.n_resampled
    np.testing.assert_array_equal(got_t.last_active, want_t.last_active)
    np.testing.assert_array_equal(got_t.last_reset, want_t.last_reset)
    for name in want_p:
        np.testing.assert_allclose(got_p[name], want_p[name], rtol=1e-8, atol=1e-11)
        np.testing.assert_allclose(got_v[name], want_v[name], rtol=1e-8, atol=1e-11)


def test_plain_residual_is_x_minus_x_hat_on_the_support():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 5))
    params = {"W": rng.normal(size=(5, 8)), "b": rng.normal(size=8), "b_prime": rng.normal(size=5)}
    Gamma = np.argsort(-((x - params["b_prime"]) @ params["W"] + params["b"]), axis=1)[:, :3]
    e = plain_residual(x, params, Gamma, pre_bias=True)
    for i in range(6):
        z = (x[i] - params["b_prime"]) @ params["W"] + params["b"]
        x_hat = params["W"][:, Gamma[i]] @ z[Gamma[i]] + params["b_prime"]
        np.testing.assert_allclose(e[i], x[i] - x_hat, rtol=1e-12, atol=1e-12)
