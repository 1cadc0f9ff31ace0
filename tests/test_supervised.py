"""The discriminative pairs S1-S4: values and structure (their gradient checks: test_testing.py)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ksparse.nn.supervised import (
    hidden_names,
    network_forward,
    network_step,
    softmax,
    softmax_ce_backward,
    softmax_ce_forward,
    sparse_layer_backward,
    sparse_layer_forward,
)
from ksparse.testing.pairs import kink_gap


def gapped_layer(rng, N, d, H, n_keep, scale=1.0):
    """Inputs whose rows have a wide gap at the alpha k boundary, so top-k has no kink nearby."""
    for _ in range(100):
        x = rng.normal(size=(N, d))
        W = rng.normal(scale=scale, size=(d, H))
        b = rng.normal(scale=scale, size=H)
        if kink_gap(x @ W + b, n_keep) > 1e-3:
            return x, W, b
    raise AssertionError("no well-separated draw found")


def test_softmax_ce_forward_matches_definition():
    rng = np.random.default_rng(0)
    s, y = rng.normal(size=(6, 4)), rng.integers(0, 4, 6)
    E, (p, _) = softmax_ce_forward(s, y)
    expected = -np.mean(np.log(np.exp(s[np.arange(6), y]) / np.exp(s).sum(axis=1)))
    assert np.isclose(E, expected)
    np.testing.assert_allclose(p, softmax(s))


def test_softmax_ce_forward_is_stable_for_large_scores():
    s = np.array([[1000.0, 0.0], [0.0, -1000.0]])
    E, (p, _) = softmax_ce_forward(s, np.array([0, 0]))
    assert np.isfinite(E) and np.allclose(p.sum(axis=1), 1)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(2, 5), st.integers(0, 2**32 - 1))
def test_softmax_ce_backward_rows_sum_to_zero(N, C, seed):
    rng = np.random.default_rng(seed)
    s, y = rng.normal(scale=5, size=(N, C)), rng.integers(0, C, N)
    _, cache = softmax_ce_forward(s, y)
    ds = softmax_ce_backward(1.0, cache)
    np.testing.assert_allclose(ds.sum(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(cache[0].sum(axis=1), 1)


def test_sparse_layer_forward_keeps_alpha_k_largest():
    rng = np.random.default_rng(2)
    x, W, b = gapped_layer(rng, 4, 6, 10, 3)
    h, _ = sparse_layer_forward(x, W, b, 3)
    z = x @ W + b
    assert ((h != 0).sum(axis=1) == 3).all()
    threshold = -np.sort(-z, axis=1)[:, 2:3]
    np.testing.assert_array_equal(h, np.where(z >= threshold, z, 0))


def test_sparse_layer_backward_flows_only_through_support():
    rng = np.random.default_rng(4)
    x, W, b = gapped_layer(rng, 5, 6, 12, 4)
    h, cache = sparse_layer_forward(x, W, b, 4)
    dh = rng.normal(size=h.shape)
    dx, dW, db = sparse_layer_backward(dh, cache)
    off = h == 0
    assert np.all(dW[:, off.all(axis=0)] == 0)  # units never chosen get no gradient
    dh_off = np.where(off, dh, 0.0)
    dx0, dW0, db0 = sparse_layer_backward(dh_off, cache)
    assert not dx0.any() and not dW0.any() and not db0.any()


def test_sparse_layer_backward_without_dx_matches():
    rng = np.random.default_rng(5)
    x, W, b = gapped_layer(rng, 4, 6, 10, 3)
    _, cache = sparse_layer_forward(x, W, b, 3)
    dh = rng.normal(size=(4, 10))
    full = sparse_layer_backward(dh, cache)
    part = sparse_layer_backward(dh, cache, need_dx=False)
    assert part[0] is None
    np.testing.assert_allclose(part[1], full[1])
    np.testing.assert_allclose(part[2], full[2])


def two_layer_net(seed, N=5, d=6, H1=10, H2=8, C=3, n_keep=(4, 3)):
    """A two-layer network whose two top-k selections both have wide gaps."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        params = {"W1": rng.normal(size=(d, H1)), "b1": rng.normal(size=H1),
                  "W2": rng.normal(scale=0.5, size=(H1, H2)), "b2": rng.normal(size=H2),
                  "W_out": rng.normal(size=(H2, C)), "b_out": rng.normal(size=C)}
        x, y = rng.normal(size=(N, d)), rng.integers(0, C, N)
        z1 = x @ params["W1"] + params["b1"]
        h1, _ = sparse_layer_forward(x, params["W1"], params["b1"], n_keep[0])
        z2 = h1 @ params["W2"] + params["b2"]
        if kink_gap(z1, n_keep[0]) > 1e-3 and kink_gap(z2, n_keep[1]) > 1e-3:
            return x, y, params, list(n_keep)
    raise AssertionError("no well-separated draw found")


def test_network_step_gives_every_parameter_a_gradient():
    x, y, params, n_keep = two_layer_net(6)
    E, grads = network_step(x, y, params, n_keep)
    assert set(grads) == set(hidden_names(2)) | {"W_out", "b_out"}
    for name, g in grads.items():
        assert g.shape == params[name].shape and np.abs(g).max() > 0


def test_network_step_first_layer_frozen_matches_full_network():
    x, y, params, n_keep = two_layer_net(7)
    _, full = network_step(x, y, params, n_keep)
    h1, _ = sparse_layer_forward(x, params["W1"], params["b1"], n_keep[0])
    E2, top = network_step(h1, y, params, n_keep, first=2)
    assert set(top) == {"W2", "b2", "W_out", "b_out"}
    for name, g in top.items():
        np.testing.assert_allclose(g, full[name])
    _, head = network_step(sparse_layer_forward(h1, params["W2"], params["b2"], n_keep[1])[0],
                           y, params, n_keep, first=3)
    assert set(head) == {"W_out", "b_out"}
    np.testing.assert_allclose(head["W_out"], full["W_out"])


def test_network_forward_scores_shape():
    x, _, params, n_keep = two_layer_net(8)
    s, _ = network_forward(x, params, n_keep)
    assert s.shape == (x.shape[0], params["W_out"].shape[1])
