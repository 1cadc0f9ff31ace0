"""Eq. (11): SGD with momentum, v <- m v - lr grad; theta <- theta + v."""

import numpy as np

from ksparse.nn.optim import sgd_momentum_


def test_sgd_momentum_eq11_values():
    params, velocity = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.2, 0.0])}
    grad = np.array([0.5, 4.0])
    assert sgd_momentum_(params, {"w": grad}, velocity, lr=0.1, momentum=0.9) is None
    # v = 0.9 * [0.2, 0] - 0.1 * [0.5, 4] = [0.13, -0.4]; theta = [1.13, -2.4]
    np.testing.assert_allclose(velocity["w"], [0.13, -0.4], rtol=1e-12)
    np.testing.assert_allclose(params["w"], [1.13, -2.4], rtol=1e-12)
    assert grad.tolist() == [0.5, 4.0]  # the gradient is only read


def test_sgd_momentum_zero_momentum_is_plain_sgd():
    params = {"w": np.array([3.0])}
    sgd_momentum_(params, {"w": np.array([2.0])}, {"w": np.array([7.0])}, lr=0.25, momentum=0.0)
    assert params["w"].tolist() == [2.5]


def test_sgd_momentum_in_place_over_steps_and_frozen_parameters():
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=4), "frozen": rng.normal(size=2)}
    velocity = {n: np.zeros_like(a) for n, a in params.items()}
    frozen, W_id = params["frozen"].copy(), id(params["W"])
    ref_p = {n: params[n].copy() for n in ("W", "b")}
    ref_v = {n: np.zeros_like(a) for n, a in ref_p.items()}
    for _ in range(3):
        grads = {n: rng.normal(size=a.shape) for n, a in ref_p.items()}  # no gradient for "frozen"
        sgd_momentum_(params, grads, velocity, 0.05, 0.9)
        for n in ref_p:  # Eq. (11), written out for the test
            ref_v[n] = 0.9 * ref_v[n] - 0.05 * grads[n]
            ref_p[n] = ref_p[n] + ref_v[n]
    assert id(params["W"]) == W_id
    np.testing.assert_array_equal(params["frozen"], frozen)
    for n in ref_p:
        np.testing.assert_allclose(params[n], ref_p[n], rtol=1e-12)
        np.testing.assert_allclose(velocity[n], ref_v[n], rtol=1e-12)
