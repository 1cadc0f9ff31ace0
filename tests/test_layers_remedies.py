"""D9 (pre-encoder bias) and D10 (AuxK): values (their gradient checks: ksparse.testing, test_testing.py)."""

import numpy as np

from ksparse.nn.layers import (
    auxk_forward,
    ksparse_step,
    pre_encode_forward,
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


def test_ksparse_step_pre_bias_b_prime_gains_the_encoder_share(gapped_problem):
    x, W, b, b_prime = pre_bias_problem(gapped_problem, 8)
    _, plain, _ = ksparse_step(x - b_prime, W, b, np.zeros_like(b_prime), 2)
    _, grads, _ = ksparse_step(x, W, b, b_prime, 2, pre_bias=True)
    close(grads["W"], plain["W"])
    close(grads["b_prime"], plain["b_prime"] - W @ plain["b"])  # db' = sum dX_hat - W db


def test_ksparse_step_auxk_changes_only_dead_units_b(gapped_problem):
    x, W, b, b_prime = gapped_problem(seed=12, N=6, d=10, H=8)
    dead = np.zeros(8, bool)
    dead[[0, 5]] = True
    _, plain, _ = ksparse_step(x, W, b, b_prime, 2)
    _, aux, _ = ksparse_step(x, W, b, b_prime, 2, dead=dead, k_aux=2, c_aux=1.0)
    close(aux["b"][~dead], plain["b"][~dead])
    assert np.abs(aux["b"][dead] - plain["b"][dead]).min() > 0
