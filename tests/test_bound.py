"""D11, the step bound (ksparse.training.bound): the formula, the plain path, and data with outlier rows."""

import dataclasses

import numpy as np
import pytest

from ksparse.datasets import load_digits
from ksparse.kernels.fast import has_numba
from ksparse.nn.optim import sgd_momentum_
from ksparse.training import loop as train
from ksparse.training.bound import BOUND, BoundedStep, bounded_lr
from ksparse.training.remedies import DeadTracker, RemedyStep
from ksparse.training.steps import StepSettings

pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def standardized_digits():
    """The digits with each pixel standardized: a border pixel inked in a few images becomes
    a value of 10 to 30 there, so a few rows lie far outside the others' norm."""
    x = load_digits().X_train
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _problem(seed=0, N=16, d=12, H=10):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, d))
    x[3] *= 30.0  # one row far outside the others
    params = {"W": rng.normal(0, 0.3, (d, H)), "b": rng.normal(0, 0.1, H), "b_prime": rng.normal(0, 0.1, d)}
    velocity = {n: rng.normal(0, 0.01, a.shape) for n, a in params.items()}
    return x, params, velocity


def test_bounded_lr_is_the_formula():
    x, params, _ = _problem()
    u = x - params["b_prime"]
    expected = BOUND * (1 - 0.9) * x.shape[0] / (u * u).sum(axis=1).max()
    assert expected < 0.25
    assert bounded_lr(x, 0.25, 0.9, params["b_prime"]) == pytest.approx(expected, rel=1e-12)
    assert bounded_lr(x, expected / 2, 0.9, params["b_prime"]) == expected / 2  # a smaller lr stays
    assert bounded_lr(np.zeros((4, 3)), 0.25, 0.9) == 0.25  # nothing to bound


def test_bounded_lr_is_scale_free():
    # data c times larger: the bound falls by c^2, as the gradient's curvature grows
    x, params, _ = _problem()
    for c in (1e-3, 255.0, 1e6):
        assert bounded_lr(c * x, 1e9, 0.9, c * params["b_prime"]) * c**2 == pytest.approx(
            bounded_lr(x, 1e9, 0.9, params["b_prime"]), rel=1e-12)


NUMBA = pytest.mark.skipif(not has_numba(), reason="numba is not installed (the `fast` extra)")


@pytest.mark.parametrize("kernel, lazy", [("plain", False), ("numpy", False),
                                          pytest.param("numba", False, marks=NUMBA),
                                          pytest.param("numba", True, marks=NUMBA)])
@pytest.mark.parametrize("pre_bias", [True, False])
def test_bounded_step_is_the_step_at_the_bounded_lr(kernel, lazy, pre_bias):
    # forward_backward, then Eq. (11) at D11's lr, by hand; the compiled step measures the rows in
    # its kernel (LrCap), the NumPy and lazy paths in a pass of their own, the plain one in BoundedStep
    x, params, velocity = _problem()
    settings = StepSettings(lr=0.25, momentum=0.9, k=3)
    lr = bounded_lr(x, 0.25, 0.9, params["b_prime"] if pre_bias else None)
    step = RemedyStep(DeadTracker(10, 10**6), pre_bias=pre_bias, kernel=kernel, lazy=lazy)
    assert step.takes_lr_bound == (kernel != "plain")
    _, grads = step.forward_backward((x,), params, settings)
    want_p = {n: a.copy() for n, a in params.items()}
    want_v = {n: a.copy() for n, a in velocity.items()}
    sgd_momentum_(want_p, grads, want_v, lr, 0.9)
    bounded = BoundedStep(step, pre_bias=pre_bias)
    bounded((x,), params, velocity, settings)
    step.end_epoch_(params, velocity)  # lazy momentum: every unit up to date
    assert (bounded.n_bounded, bounded.n_steps) == (1, 1)
    for n in params:
        np.testing.assert_allclose(params[n], want_p[n], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(velocity[n], want_v[n], rtol=1e-10, atol=1e-12)


@NUMBA
def test_fit_with_the_bound_in_the_kernel_equals_the_plain_fit(standardized_digits):
    # float64, every option at its default but the kernel: D11 measured in the compiled rows phase
    # (LrCap) against BoundedStep's own pass before the plain step; the bound acts on some minibatches
    x = standardized_digits[:640]
    config = {"max_iter": 2, "dtype": "float64", "n_hidden": 64}
    states = {kernel: train.fit(x, config, step=RemedyStep(DeadTracker(64, 10**6), kernel=kernel, lazy=False))
              for kernel in ("plain", "numba")}
    assert [h["bounded"] for h in states["numba"].history] == [h["bounded"] for h in states["plain"].history]
    assert states["plain"].history[-1]["bounded"] > 0
    for name, want in states["plain"].params.items():
        np.testing.assert_allclose(states["numba"].params[name], want, rtol=1e-8, atol=1e-10)


def test_bounded_step_leaves_ordinary_minibatches_alone():
    x, params, velocity = _problem()
    x[3] /= 30.0
    settings = StepSettings(lr=0.01, momentum=0.9, k=3)
    seen = []

    class Spy(RemedyStep):
        def __call__(self, batch, params, velocity, settings):
            seen.append(settings)
            return super().__call__(batch, params, velocity, settings)

    BoundedStep(Spy(DeadTracker(10, 10**6), kernel="plain"), pre_bias=True)((x,), params, velocity, settings)
    assert seen == [settings]


def test_fit_bound_changes_nothing_on_the_digits():
    # whole minibatches of 64 (a short last one of a few rows may be bounded: each row weighs more)
    x = load_digits().X_train[:1280]
    state = train.fit(x, {"max_iter": 2})
    assert [r["bounded"] for r in state.history] == [0.0, 0.0]
    off = train.fit(x, {"max_iter": 2, "step_bound": False})
    np.testing.assert_array_equal(state.params["W"], off.params["W"])


def test_fit_standardized_data_trains_at_the_defaults(standardized_digits):
    state = train.fit(standardized_digits)  # every option at its default
    assert state.epoch == train.DEFAULTS.max_iter
    assert all(np.isfinite(a).all() for a in state.params.values())
    assert state.history[-1]["fvu"] < 0.2
    assert 0 < state.history[-1]["bounded"] < 0.5  # the bound acted, on the minibatches with outliers


def test_fit_standardized_data_diverges_without_the_bound_and_says_which_option(standardized_digits):
    with pytest.raises(train.TrainingDiverged, match="step_bound=True"):
        with np.errstate(all="ignore"):
            train.fit(standardized_digits, {"step_bound": False})


def test_paper_turns_the_bound_off():
    cfg = dataclasses.replace(train.DEFAULTS, paper=True)
    assert not train.remedies_in_force(cfg, 64)["step_bound"]
    assert train.remedies_in_force(train.DEFAULTS, 64)["step_bound"]


def test_divergence_with_every_remedy_on_names_lr_dead_window_and_bias_rate():
    # with the biases at W's rate (D13 off) bounded steps still diverge: D11 bounds W's steps, not
    # the biases' (lr far too high here; on CIFAR-10 patches, coherent resampled units)
    # each suggestion is a change from the run's value: momentum lower than its 0.9
    advice = r"lr=.*momentum=0.45; it was 0.9\b.*dead_window=\d+.*bias_lr_ratio=0.1"
    with pytest.raises(train.TrainingDiverged, match=advice):
        with np.errstate(all="ignore"):
            train.fit(load_digits().X_train, {"lr": 1e4, "max_iter": 5, "bias_lr_ratio": 1.0})


def test_far_too_high_lr_trains_at_the_defaults():
    # D11 bounds W's steps and D13 ties the biases' steps to them: lr 1e4 cannot blow anything up
    state = train.fit(load_digits().X_train, {"lr": 1e4, "max_iter": 5})
    assert all(np.isfinite(h["loss"]) for h in state.history)
    assert all(np.isfinite(p).all() for p in state.params.values())
