"""Forward/backward pairs D1-D8 and the composite step: values (gradient checks: test_testing.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ksparse.nn.layers import (
    decode_backward,
    decode_forward,
    encode_backward,
    encode_forward,
    ksparse_step,
    mse_backward,
    mse_forward,
    select_backward,
    select_forward,
    supp_k,
    support_mask,
)

RTOL, ATOL = 1e-6, 1e-8


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


# -- D2: supp_k ---------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 12), st.data())
def test_supp_k_keeps_the_k_largest(N, H, data):
    z = data.draw(arrays(np.float64, (N, H), elements=st.floats(-1e6, 1e6)))
    k = data.draw(st.integers(1, H))
    Gamma = supp_k(z, k)
    assert Gamma.shape == (N, k)
    mask = support_mask(Gamma, H)
    assert (mask.sum(axis=1) == k).all()  # k distinct indices per row
    for row, m in zip(z, mask, strict=True):
        if k < H:
            assert row[m].min() >= row[~m].max()


def test_supp_k_k_equals_H_selects_all():
    z = np.random.default_rng(0).normal(size=(4, 5))
    assert (np.sort(supp_k(z, 5), axis=1) == np.arange(5)).all()


def test_supp_k_k1_is_argmax():
    z = np.random.default_rng(1).normal(size=(7, 9))
    assert (supp_k(z, 1)[:, 0] == z.argmax(axis=1)).all()


@pytest.mark.parametrize("k", [0, -1, 6])
def test_supp_k_bad_k_raises(k):
    with pytest.raises(ValueError, match="k must satisfy"):
        supp_k(np.zeros((2, 5)), k)


def test_support_mask_marks_gamma():
    mask = support_mask(np.array([[0, 2], [3, 1]]), 4)
    assert mask.tolist() == [[True, False, True, False], [False, True, False, True]]


# -- forward values -------------------------------------------------------------------------
def test_encode_forward_is_x_W_plus_b(gapped_problem):
    x, W, b, _ = gapped_problem()
    z, _ = encode_forward(x, W, b)
    close(z, np.einsum("nd,dh->nh", x, W) + b)


def test_select_forward_zero_off_support(gapped_problem):
    x, W, b, _ = gapped_problem()
    z, _ = encode_forward(x, W, b)
    z_k, (Gamma, H) = select_forward(z, 2)
    top2 = np.sort(z, axis=1)[:, -2:]
    close(np.sort(z_k[z_k != 0].reshape(-1, 2), axis=1), top2)
    assert ((z_k != 0).sum(axis=1) == 2).all()


def test_decode_forward_is_W_z_plus_b_prime(gapped_problem):
    x, W, b, b_prime = gapped_problem()
    z_k = np.random.default_rng(2).normal(size=(x.shape[0], W.shape[1]))
    x_hat, _ = decode_forward(z_k, W, b_prime)
    close(x_hat, np.stack([W @ zi + b_prime for zi in z_k]))


def test_mse_forward_convention_sum_over_dims_mean_over_samples():
    x = np.zeros((2, 3))
    x_hat = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    E, _ = mse_forward(x_hat, x)
    assert E == pytest.approx((1 + 4 + 9) / 2)


# -- backward: the gradient checks of every pair are in tests/test_testing.py (ksparse.testing) --
@pytest.mark.parametrize("k", [1, 3, 6])
def test_select_backward_only_gamma_receives_gradient(gapped_problem, k):
    x, W, b, _ = gapped_problem()
    z, _ = encode_forward(x, W, b)
    dz_k = np.random.default_rng(4).normal(size=z.shape)
    _, cache = select_forward(z, k)
    dz = select_backward(dz_k, cache)
    assert ((dz != 0).sum(axis=1) == k).all()  # D6: only Gamma receives gradient
    np.testing.assert_array_equal(dz[dz != 0], dz_k[dz != 0])


def test_ksparse_step_tied_gradient_is_encoder_plus_decoder(gapped_problem):
    x, W, b, b_prime = gapped_problem(seed=8)
    _, grads, _ = ksparse_step(x, W, b, b_prime, 2)
    z, enc_cache = encode_forward(x, W, b)
    z_k, sel_cache = select_forward(z, 2)
    x_hat, dec_cache = decode_forward(z_k, W, b_prime)
    dx_hat, _ = mse_backward(1.0, mse_forward(x_hat, x)[1])
    dz_k, dW_dec, _ = decode_backward(dx_hat, dec_cache)
    _, dW_enc, _ = encode_backward(select_backward(dz_k, sel_cache), enc_cache)
    close(grads["W"], dW_enc + dW_dec)
    assert np.abs(dW_enc).max() > 0 and np.abs(dW_dec).max() > 0


def test_ksparse_step_does_not_modify_inputs(gapped_problem):
    x, W, b, b_prime = gapped_problem(seed=9)
    copies = [a.copy() for a in (x, W, b, b_prime)]
    ksparse_step(x, W, b, b_prime, 3)
    for a, c in zip((x, W, b, b_prime), copies, strict=True):
        assert np.array_equal(a, c)
