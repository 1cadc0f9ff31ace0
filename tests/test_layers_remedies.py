"""D9 (pre-encoder bias) and D10 (AuxK): values and float64 centred-difference gradients."""

import numpy as np
import pytest

from ksparse.nn.layers import (
    auxk_backward,
    auxk_forward,
    decode_forward,
    ksparse_step,
    pre_encode_backward,
    pre_encode_forward,
    select_forward,
)

RTOL, ATOL = 1e-6, 1e-8


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def pre_bias_problem(gapped_problem, seed):
    """A gapped problem for D9: x shifted by b', so that (x - b') W + b is the gapped z."""
    x, W, b, b_prime = gapped_problem(seed=seed)
    return x + b_prime, W, b, b_prime


def test_pre_encode_forward_subtracts_b_prime(gapped_problem):
    x, W, b, b_prime = gapped_problem(seed=1)
    z, (u, _) = pre_encode_forward(x, W, b, b_prime)
    close(z, (x - b_prime) @ W + b)
    close(u, x - b_prime)


def test_pre_encode_backward_gradcheck(gapped_problem, numeric_grad):
    x, W, b, b_prime = gapped_problem(seed=2)
    dz = np.random.default_rng(0).normal(size=(x.shape[0], W.shape[1]))
    dx, dW, db, db_prime = pre_encode_backward(dz, pre_encode_forward(x, W, b, b_prime)[1])
    f = lambda: pre_encode_forward(x, W, b, b_prime)[0]  # noqa: E731
    close(dx, numeric_grad(f, x, dz))
    close(dW, numeric_grad(f, W, dz))
    close(db, numeric_grad(f, b, dz))
    close(db_prime, numeric_grad(f, b_prime, dz))


def aux_inputs(gapped_problem, seed, n_dead=4):
    x, W, b, b_prime = gapped_problem(seed=seed, H=8, d=10)
    rng = np.random.default_rng(seed)
    dead = np.zeros(W.shape[1], bool)
    dead[rng.choice(W.shape[1], n_dead, replace=False)] = True
    e = rng.normal(size=x.shape)
    return x @ W + b, W, e, dead


def test_auxk_forward_uses_only_the_k_aux_largest_dead_units(gapped_problem):
    z, W, e, dead = aux_inputs(gapped_problem, 3)
    E, cache = auxk_forward(z, W, e, dead, 2, 0.5)
    z_aux, mask = cache[0], cache[1]
    assert (mask.sum(axis=1) == 2).all() and not mask[:, ~dead].any()
    for row, m in zip(z, mask, strict=True):  # the two largest among the dead
        assert row[m].min() >= row[dead & ~m].max()
    close(E, 0.5 * ((z_aux @ W.T - e) ** 2).sum() / z.shape[0])


def test_auxk_backward_gradcheck(gapped_problem, numeric_grad):
    z, W, e, dead = aux_inputs(gapped_problem, 4)
    dz, dW = auxk_backward(1.0, auxk_forward(z, W, e, dead, 3, 0.25)[1])
    f = lambda: auxk_forward(z, W, e, dead, 3, 0.25)[0]  # noqa: E731
    close(dz, numeric_grad(f, z, 1.0))
    close(dW, numeric_grad(f, W, 1.0))  # the decoder's share; e is a constant


@pytest.mark.parametrize("k", [1, 3, 6])
def test_ksparse_step_pre_bias_gradcheck(gapped_problem, numeric_grad, k):
    x, W, b, b_prime = pre_bias_problem(gapped_problem, 7)
    _, grads, _ = ksparse_step(x, W, b, b_prime, k, pre_bias=True)
    f = lambda: ksparse_step(x, W, b, b_prime, k, pre_bias=True)[0]  # noqa: E731
    close(grads["W"], numeric_grad(f, W, 1.0))
    close(grads["b"], numeric_grad(f, b, 1.0))
    close(grads["b_prime"], numeric_grad(f, b_prime, 1.0))


def test_ksparse_step_pre_bias_b_prime_gains_the_encoder_share(gapped_problem):
    x, W, b, b_prime = pre_bias_problem(gapped_problem, 8)
    _, plain, _ = ksparse_step(x - b_prime, W, b, np.zeros_like(b_prime), 2)
    _, grads, _ = ksparse_step(x, W, b, b_prime, 2, pre_bias=True)
    close(grads["W"], plain["W"])
    close(grads["b_prime"], plain["b_prime"] - W @ plain["b"])  # db' = sum dX_hat - W db


def total_loss(x, W, b, b_prime, k, dead, k_aux, c_aux, e):
    """E + c_aux E_aux with the residual e held fixed (the stop-gradient of D10)."""
    z, _ = pre_encode_forward(x, W, b, b_prime)
    z_k, _ = select_forward(z, k)
    x_hat, _ = decode_forward(z_k, W, b_prime)
    E = ((x_hat - x) ** 2).sum() / x.shape[0]
    return E + auxk_forward(z, W, e, dead, k_aux, c_aux)[0]


@pytest.mark.parametrize("k_aux", [1, 2, 3])
def test_ksparse_step_auxk_gradcheck(gapped_problem, numeric_grad, k_aux):
    x, W, b, b_prime = gapped_problem(seed=11, N=6, d=10, H=8)
    x = x + b_prime
    dead = np.zeros(8, bool)
    dead[[1, 4, 6]] = True
    z, _ = pre_encode_forward(x, W, b, b_prime)
    e = x - decode_forward(select_forward(z, 2)[0], W, b_prime)[0]
    E, grads, _ = ksparse_step(x, W, b, b_prime, 2, pre_bias=True, dead=dead, k_aux=k_aux, c_aux=0.5)
    f = lambda: total_loss(x, W, b, b_prime, 2, dead, k_aux, 0.5, e)  # noqa: E731
    close(grads["W"], numeric_grad(f, W, 1.0))
    close(grads["b"], numeric_grad(f, b, 1.0))
    close(grads["b_prime"], numeric_grad(f, b_prime, 1.0))
    close(E, ((decode_forward(select_forward(z, 2)[0], W, b_prime)[0] - x) ** 2).sum() / x.shape[0])


def test_ksparse_step_auxk_changes_only_dead_units_b(gapped_problem):
    x, W, b, b_prime = gapped_problem(seed=12, N=6, d=10, H=8)
    dead = np.zeros(8, bool)
    dead[[0, 5]] = True
    _, plain, _ = ksparse_step(x, W, b, b_prime, 2)
    _, aux, _ = ksparse_step(x, W, b, b_prime, 2, dead=dead, k_aux=2, c_aux=1.0)
    close(aux["b"][~dead], plain["b"][~dead])
    assert np.abs(aux["b"][dead] - plain["b"][dead]).min() > 0
