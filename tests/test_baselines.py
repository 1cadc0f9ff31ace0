"""The baselines: masks, the composite step and training (their gradient checks: test_testing.py)."""

import numpy as np
import pytest

from ksparse.nn.baselines import (
    KINDS,
    ae_step,
    dropout_mask,
    features,
)
from ksparse.training.baselines import fit_baseline
from ksparse.training.steps import BaselineStep, StepSettings


def test_dropout_mask_is_scaled_and_keeps_the_expectation():
    rng = np.random.default_rng(2)
    m = dropout_mask((400, 500), 0.2, rng, np.dtype(np.float64))
    assert set(np.unique(m)) == {0.0, 1.0 / 0.8}
    assert abs(m.mean() - 1.0) < 0.01
    assert dropout_mask((3, 4), 0.5, rng, np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="0 <= p < 1"):
        dropout_mask((2, 2), 1.0, rng, np.dtype(np.float64))


def _problem(seed, activation, N=6, d=5, H=8):
    rng = np.random.default_rng(seed)
    x = rng.random((N, d))
    W = rng.normal(0, 0.5, (d, H))
    b = rng.normal(0, 0.5, H)
    b_prime = rng.normal(0, 0.1, d)
    return rng, x, W, b, b_prime


def test_ae_step_without_masks_is_the_plain_relu_autoencoder():
    rng, x, W, b, b_prime = _problem(4, "relu")
    E, _, h = ae_step(x, W, b, b_prime)
    x_hat = np.maximum(x @ W + b, 0) @ W.T + b_prime
    np.testing.assert_allclose(E, ((x_hat - x) ** 2).sum(axis=1).mean())
    np.testing.assert_allclose(h, features(x, W, b))


def test_denoising_loss_targets_the_clean_input():
    rng, x, W, b, b_prime = _problem(5, "relu")
    mask = dropout_mask(x.shape, 0.2, rng, x.dtype)
    E = ae_step(x, W, b, b_prime, input_mask=mask)[0]
    x_hat = np.maximum((x * mask) @ W + b, 0) @ W.T + b_prime
    np.testing.assert_allclose(E, ((x_hat - x) ** 2).sum(axis=1).mean())


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_fit_baseline_lowers_the_loss(kind):
    rng = np.random.default_rng(6)
    x = rng.random((200, 16))
    state = fit_baseline(x, kind, dict(n_hidden=20, max_iter=6, lr=0.01, batch_size=20, dtype="float64"))
    losses = [r["loss"] for r in state.history]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert state.params["W"].shape == (16, 20)


def test_baseline_step_is_seeded_and_validates():
    rng, x, W, b, b_prime = _problem(7, "relu")
    params = {"W": W, "b": b, "b_prime": b_prime}
    settings = StepSettings(lr=0.1, momentum=0.9)
    E1 = BaselineStep("dropout_denoising", random_state=3).forward_backward((x,), params, settings)[0].loss
    E2 = BaselineStep("dropout_denoising", random_state=3).forward_backward((x,), params, settings)[0].loss
    assert E1 == E2
    assert BaselineStep("denoising").name == "denoising"
    with pytest.raises(ValueError, match="unknown baseline kind"):
        BaselineStep("contractive")
    with pytest.raises(ValueError, match="activation"):
        BaselineStep("relu", activation="tanh")
    with pytest.raises(ValueError, match="activation"):
        features(x, W, b, activation="tanh")
