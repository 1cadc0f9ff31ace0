"""Gradient checks (float64, centred differences, fixed masks) and behaviour of the baselines."""

import numpy as np
import pytest
from conftest import _numeric_grad

from ksparse.nn.baselines import (
    KINDS,
    ae_step,
    dropout_backward,
    dropout_forward,
    dropout_mask,
    features,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
)
from ksparse.training.baselines import fit_baseline, make_step

EPS = 1e-6


def numeric_grad(f, a, eps=EPS):
    """Centered differences of the scalar f() with respect to every entry of ``a`` (tests/conftest.py)."""
    return _numeric_grad(f, a, 1.0, eps)


def away_from_zero(shape, rng, gap=0.1):
    """Pre-activations with |z| >= gap, so that ReLU's kink is far from +-eps."""
    z = rng.normal(size=shape)
    return np.sign(z) * (np.abs(z) + gap)


@pytest.mark.parametrize("pair", [(relu_forward, relu_backward), (sigmoid_forward, sigmoid_backward)])
def test_activation_backward_matches_finite_differences(pair):
    forward, backward = pair
    rng = np.random.default_rng(0)
    z = away_from_zero((4, 6), rng)
    dh = rng.normal(size=(4, 6))
    dz = backward(dh, forward(z)[1])
    num = numeric_grad(lambda: float((forward(z)[0] * dh).sum()), z)
    np.testing.assert_allclose(dz, num, rtol=1e-6, atol=1e-8)


def test_dropout_backward_matches_finite_differences():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 7))
    mask = dropout_mask(a.shape, 0.5, rng, a.dtype)
    dout = rng.normal(size=a.shape)
    da = dropout_backward(dout, dropout_forward(a, mask)[1])
    num = numeric_grad(lambda: float((dropout_forward(a, mask)[0] * dout).sum()), a)
    np.testing.assert_allclose(da, num, rtol=1e-6, atol=1e-8)


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


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_ae_step_gradients_match_finite_differences(kind, activation):
    rng, x, W, b, b_prime = _problem(3, activation)
    p_in, p_hid = KINDS[kind]["p_input"], KINDS[kind]["p_hidden"]
    in_mask = dropout_mask(x.shape, p_in, rng, x.dtype) if p_in else None
    hid_mask = dropout_mask((x.shape[0], W.shape[1]), p_hid, rng, x.dtype) if p_hid else None
    if activation == "relu":  # keep every pre-activation away from the kink at 0
        x_in = x * in_mask if in_mask is not None else x
        z = x_in @ W + b
        b = b + np.where(np.abs(z) < 0.1, 0.3, 0.0).max(axis=0)
        z = x_in @ W + b
        assert np.abs(z).min() > 1e-3
    E, grads, h = ae_step(x, W, b, b_prime, in_mask, hid_mask, activation)
    assert h.shape == (x.shape[0], W.shape[1])

    def loss():
        return float(ae_step(x, W, b, b_prime, in_mask, hid_mask, activation)[0])

    for name, param in (("W", W), ("b", b), ("b_prime", b_prime)):
        np.testing.assert_allclose(grads[name], numeric_grad(loss, param), rtol=1e-5, atol=1e-7)


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


def test_make_step_is_seeded_and_validates():
    rng, x, W, b, b_prime = _problem(7, "relu")
    E1 = make_step("dropout_denoising", random_state=3)(x, W, b, b_prime, 1)[0]
    E2 = make_step("dropout_denoising", random_state=3)(x, W, b, b_prime, 1)[0]
    assert E1 == E2
    with pytest.raises(ValueError, match="unknown baseline kind"):
        make_step("contractive")
    with pytest.raises(ValueError, match="activation"):
        make_step("relu", activation="tanh")
    with pytest.raises(ValueError, match="activation"):
        features(x, W, b, activation="tanh")
