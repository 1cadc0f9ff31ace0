"""Eq. (11): SGD with momentum, v <- m v - lr grad; theta <- theta + v."""

import numpy as np

from ksparse.nn.optim import sgd_momentum, sgd_momentum_


def test_sgd_momentum_eq11_values():
    param, grad, velocity = np.array([1.0, -2.0]), np.array([0.5, 4.0]), np.array([0.2, 0.0])
    new_param, new_velocity = sgd_momentum(param, grad, velocity, lr=0.1, momentum=0.9)
    # v = 0.9 * [0.2, 0] - 0.1 * [0.5, 4] = [0.13, -0.4]; theta = [1.13, -2.4]
    np.testing.assert_allclose(new_velocity, [0.13, -0.4], rtol=1e-12)
    np.testing.assert_allclose(new_param, [1.13, -2.4], rtol=1e-12)
    assert param.tolist() == [1.0, -2.0]  # out of place


def test_sgd_momentum_zero_momentum_is_plain_sgd():
    param, grad = np.array([3.0]), np.array([2.0])
    new_param, _ = sgd_momentum(param, grad, np.zeros(1), lr=0.25, momentum=0.0)
    assert new_param.tolist() == [2.5]


def test_sgd_momentum_in_place_matches_out_of_place_over_steps():
    rng = np.random.default_rng(0)
    params = {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    velocity = {n: np.zeros_like(a) for n, a in params.items()}
    ref_p = {n: a.copy() for n, a in params.items()}
    ref_v = {n: a.copy() for n, a in velocity.items()}
    W_id = id(params["W"])
    for _ in range(3):
        grads = {n: rng.normal(size=a.shape) for n, a in params.items()}
        assert sgd_momentum_(params, grads, velocity, 0.05, 0.9) is None
        for n in params:
            ref_p[n], ref_v[n] = sgd_momentum(ref_p[n], grads[n], ref_v[n], 0.05, 0.9)
    assert id(params["W"]) == W_id
    for n in params:
        np.testing.assert_allclose(params[n], ref_p[n], rtol=1e-12)
        np.testing.assert_allclose(velocity[n], ref_v[n], rtol=1e-12)
