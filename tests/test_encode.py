"""Sec. 2.2 sparse encoding: h = supp_{alpha k}(W^T x + b)."""

import numpy as np
import pytest

from ksparse.kernels.encode import alpha_k, encode
from ksparse.nn.layers import encode_forward, select_forward


@pytest.mark.parametrize("k, alpha, kept", [(2, 1.0, 2), (2, 2.0, 4), (3, 1.3, 4), (1, 6.0, 6)])
def test_encode_keeps_round_alpha_k_nonzeros(gapped_problem, k, alpha, kept):
    x, W, b, _ = gapped_problem(H=6)
    h = encode(x, W, b, k, alpha)
    z, _ = encode_forward(x, W, b)
    assert h.shape == z.shape
    assert ((h != 0).sum(axis=1) == kept).all()
    np.testing.assert_array_equal(h[h != 0], z[h != 0])  # h is z on the support
    kept_values = np.sort(np.where(h != 0, h, -np.inf), axis=1)[:, -kept:]
    assert (kept_values == np.sort(z, axis=1)[:, -kept:]).all()  # the largest ones


def test_encode_alpha_one_equals_training_selection(gapped_problem):
    x, W, b, _ = gapped_problem()
    z, _ = encode_forward(x, W, b)
    np.testing.assert_array_equal(encode(x, W, b, 3), select_forward(z, 3)[0])


def test_alpha_k_values():
    assert alpha_k(25, 1.0, 1000) == 25
    assert alpha_k(25, 3.0, 1000) == 75
    assert alpha_k(10, 1.26, 1000) == 13


def test_encode_alpha_below_one_raises(gapped_problem):
    x, W, b, _ = gapped_problem()
    with pytest.raises(ValueError, match="alpha must be a finite number >= 1"):
        encode(x, W, b, 2, alpha=0.5)


def test_encode_alpha_k_above_n_hidden_raises(gapped_problem):
    x, W, b, _ = gapped_problem(H=6)
    with pytest.raises(ValueError, match="exceeds n_hidden"):
        encode(x, W, b, 4, alpha=2.0)


@pytest.mark.parametrize("k, alpha, kept", [(5, 1.5, 8), (5, 2.5, 13), (5, 3.5, 18), (2, 1.25, 3),
                                            (4, 1.125, 5), (10, 1.26, 13), (3, 1.0, 3)])
def test_alpha_k_rounds_half_up(k, alpha, kept):
    assert alpha_k(k, alpha, 1000) == kept


@pytest.mark.parametrize("alpha", [float("inf"), float("nan"), 1e400, -float("inf"), "2", None, True])
def test_alpha_k_refuses_non_finite_or_non_numbers(alpha):
    with pytest.raises(ValueError, match="alpha must be a finite number >= 1"):
        alpha_k(5, alpha, 1000)


def test_encode_keeps_alpha_k_rounded_half_up(gapped_problem):
    x, W, b, _ = gapped_problem(d=20, H=20)
    h = encode(x, W, b, 5, alpha=1.5)
    assert np.all((h != 0).sum(axis=1) == 8)
