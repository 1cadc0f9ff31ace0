"""ksparse.training.remedies: the step with resampling on the support equals the plain path."""

import numpy as np
import pytest

from ksparse.kernels.fast import has_numba
from ksparse.training.remedies import DeadTracker, RemedyStep, plain_residual
from ksparse.training.steps import StepSettings

KERNELS = ["numpy"] + (["numba"] if has_numba() else [])


def _run(kernel, pre_bias, n_batches=40, N=16, d=10, H=40, k=3, window=48, ratio=1.0, lazy="auto"):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n_batches * N, d))
    params = {"W": rng.normal(0, 0.3, (d, H)), "b": rng.normal(0, 0.1, H), "b_prime": rng.normal(0, 0.1, d)}
    velocity = {n: np.zeros_like(a) for n, a in params.items()}
    step = RemedyStep(DeadTracker(H, window), pre_bias=pre_bias, resample=True, kernel=kernel,
                      bias_lr_ratio=ratio, lazy=lazy)
    settings = StepSettings(lr=0.02, momentum=0.9, k=k)
    for i in range(n_batches):
        step((x[i * N:(i + 1) * N],), params, velocity, settings)
    step.end_epoch_(params, velocity)  # lazy momentum: every unit up to date
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


@pytest.mark.parametrize("kernel,lazy", [("numpy", False)] + ([("numba", False), ("numba", True)]
                                                               if has_numba() else []))
def test_bias_lr_ratio_fused_equals_plain(kernel, lazy, one_blas_thread):
    # D13 on the fused kernels (and lazy momentum) by rescaling the biases' velocities equals the
    # plain update at lr for W and ratio * lr for b, b'; with units dying and resampled; float64
    want_p, want_v, want_t = _run("plain", True, ratio=0.1)
    got_p, got_v, got_t = _run(kernel, True, ratio=0.1, lazy=lazy)
    assert want_t.n_resampled > 0
    assert got_t.n_resampled == want_t.n_resampled
    for name in want_p:
        np.testing.assert_allclose(got_p[name], want_p[name], rtol=1e-8, atol=1e-11)
        np.testing.assert_allclose(got_v[name], want_v[name], rtol=1e-8, atol=1e-11)


def test_bias_lr_ratio_plain_update_is_eq_11_per_group():
    # the plain path: one step of Eq. (11) from zero velocity at lr for W, ratio * lr for the biases
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 5))
    params = {"W": rng.normal(0, 0.3, (5, 12)), "b": rng.normal(0, 0.1, 12), "b_prime": rng.normal(0, 0.1, 5)}
    start = {n: a.copy() for n, a in params.items()}
    from ksparse.nn.layers import ksparse_step

    _, grads, _ = ksparse_step(x, params["W"], params["b"], params["b_prime"], 3, pre_bias=True)
    velocity = {n: np.zeros_like(a) for n, a in params.items()}
    step = RemedyStep(DeadTracker(12, 10**6), pre_bias=True, kernel="plain", bias_lr_ratio=0.25)
    step((x,), params, velocity, StepSettings(lr=0.1, momentum=0.9, k=3))
    for name, lr in (("W", 0.1), ("b", 0.025), ("b_prime", 0.025)):
        np.testing.assert_allclose(params[name], start[name] - lr * grads[name], rtol=1e-12, atol=1e-14)


def test_bias_lr_ratio_out_of_range_is_refused():
    with pytest.raises(ValueError, match="bias_lr_ratio must be in"):
        RemedyStep(DeadTracker(4, 10), bias_lr_ratio=0.0)


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


def test_top_variance_share_is_lambda_1_over_the_total_for_any_scale_and_shift():
    from ksparse.training.remedies import top_variance_share

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 6)) * np.array([3.0, 1.0, 1.0, 0.5, 0.5, 0.1])
    c = np.cov(x.T, bias=True)
    expected = np.linalg.eigvalsh(c)[-1] / np.trace(c)
    assert top_variance_share(x) == pytest.approx(expected, rel=1e-6)
    assert top_variance_share(1e6 * x + 255) == pytest.approx(expected, rel=1e-6)
    assert top_variance_share(rng.normal(size=(50, 1))) == 1.0  # one direction holds all of it
    assert top_variance_share(np.ones((5, 3))) == 1.0  # no variance: one rate
    # beyond max_rows, 10 evenly spread blocks: every one of them is read
    blocks = np.repeat(np.eye(10), 100, axis=0)  # 10 groups of rows, each along its own axis:
    assert top_variance_share(blocks, max_rows=100) == pytest.approx(1 / 9, rel=1e-6)  # 1/8 if one is missed


def test_fit_sets_the_bias_ratio_from_the_data_and_keeps_it(tmp_path):
    from ksparse.training.loop import fit, load_state, save_state
    from ksparse.training.remedies import top_variance_share

    x = np.random.default_rng(1).random((300, 10)) * np.linspace(0.2, 2.0, 10)
    small = {"n_hidden": 16, "k": 4, "k_start": 4, "max_iter": 2}
    state = fit(x, small)
    assert state.bias_ratio == pytest.approx(top_variance_share(x))
    assert fit(x, dict(small, bias_lr_ratio=0.3)).bias_ratio == 0.3
    assert fit(x, dict(small, paper=True)).bias_ratio == 1.0
    save_state(tmp_path / "m.npz", state)
    loaded = load_state(tmp_path / "m.npz")
    assert loaded.bias_ratio == state.bias_ratio
    resumed = fit(10 * x, small, state=loaded, max_iter=3)  # a resumed run keeps its ratio
    assert resumed.bias_ratio == state.bias_ratio
