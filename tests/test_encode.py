"""Sec. 2.2 sparse encoding: h = supp_{alpha k}(W^T x + b)."""

import numpy as np
import pytest
from scipy import sparse

from ksparse.kernels.encode import OUTPUTS, alpha_k, decode, encode
from ksparse.kernels.fast import has_numba
from ksparse.nn.layers import decode_forward, encode_forward, select_forward


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


# -- block-wise encoding in three forms ------------------------------------------------------

KERNELS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    not has_numba(), reason="numba is not installed"))]


def _scatter(index, value, H):
    h = np.zeros((index.shape[0], H), value.dtype)
    np.put_along_axis(h, index.astype(np.intp), value, axis=1)
    return h


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_encode_three_forms_agree(kernel, dtype):
    rng = np.random.default_rng(0)
    x, W, b = rng.random((300, 20)), rng.normal(size=(20, 500)), rng.normal(size=500)
    x, W, b = x.astype(dtype), W.astype(dtype), b.astype(dtype)
    h = encode(x, W, b, 25, 3.0, kernel=kernel, block_rows=64)
    index, value = encode(x, W, b, 25, 3.0, output="topk", kernel=kernel, block_rows=64)
    s = encode(x, W, b, 25, 3.0, output="sparse", kernel=kernel, block_rows=64)
    assert isinstance(s, sparse.csr_array) and s.shape == h.shape and h.dtype == dtype
    assert index.shape == value.shape == (300, 75) and index.dtype == np.int32 and value.dtype == dtype
    assert (np.diff(s.indptr) == 75).all() and s.nnz == 300 * 75  # exactly alpha k stored per row
    assert (np.diff(index, axis=1) > 0).all()  # columns ascending in each row
    np.testing.assert_array_equal(s.toarray(), h)
    np.testing.assert_array_equal(_scatter(index, value, 500), h)
    assert ((h != 0).sum(axis=1) == 75).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_encode_blocks_equal_plain_path(gapped_problem, kernel):
    """Any block size gives Sec. 2.2's h: the support of select_forward and z's values on it."""
    x, W, b, _ = gapped_problem(N=50, d=40, H=30)
    z, _ = encode_forward(x, W, b)
    expected = select_forward(z, 12)[0]
    for rows in (1, 7, 64, None):
        h = encode(x, W, b, 4, 3.0, kernel=kernel, block_rows=rows)
        np.testing.assert_array_equal(h != 0, expected != 0)
        np.testing.assert_allclose(h, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_encode_numba_matches_numpy_at_mnist_shape(kernel):
    """The compiled selection (sampled threshold, bisection) equals argpartition's support."""
    rng = np.random.default_rng(1)
    x, W = rng.random((200, 64)), rng.normal(0, 0.05, size=(64, 1000))
    b = rng.normal(0, 0.01, size=1000)
    index, value = encode(x, W, b, 25, 3.0, output="topk", kernel=kernel)
    z = x @ W + b
    expected = np.sort(np.argpartition(z, 1000 - 75, axis=1)[:, -75:], axis=1)
    np.testing.assert_array_equal(index, expected)
    np.testing.assert_allclose(value, np.take_along_axis(z, expected, axis=1), rtol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_encode_exact_when_the_sampled_threshold_is_too_high(kernel):
    """Rows built so that the strided sample overestimates the threshold: the full-row fallback."""
    H, ak = 1000, 75
    z = np.zeros((3, H))
    sampled = np.arange(0, H, H // 128)[:128]
    z[:, sampled[:16]] = 100.0          # 16 sampled entries on top, the rest of the sample low
    z[:, sampled[16:]] = -100.0
    others = np.setdiff1d(np.arange(H), sampled)
    z[:, others[:75]] = 50.0 + np.arange(75)  # the next 59 largest are among these
    h = encode(z, np.eye(H), np.zeros(H), ak, kernel=kernel)
    expected = np.sort(np.concatenate([sampled[:16], others[16:75]]))
    for row in h:
        np.testing.assert_array_equal(np.flatnonzero(row), expected)


@pytest.mark.parametrize("kernel", KERNELS)
def test_encode_ties_keep_exactly_alpha_k(kernel):
    z = np.zeros((4, 300))
    z[:, ::3] = 1.0  # 100 equal largest entries, 50 kept
    index, value = encode(z, np.eye(300), np.zeros(300), 50, output="topk", kernel=kernel)
    assert (value == 1.0).all() and index.shape == (4, 50) and (index % 3 == 0).all()


def test_encode_reads_a_memmap_block_by_block(tmp_path):
    rng = np.random.default_rng(2)
    x, W, b = rng.random((500, 16)), rng.normal(size=(16, 40)), rng.normal(size=40)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    np.testing.assert_array_equal(encode(mm, W, b, 5, block_rows=64), encode(x, W, b, 5, block_rows=64))


def test_decode_accepts_the_three_forms():
    rng = np.random.default_rng(3)
    x, W = rng.random((100, 12)), rng.normal(size=(12, 80))
    b, b_prime = rng.normal(size=80), rng.normal(size=12)
    h = encode(x, W, b, 5, 2.0)
    expected = decode_forward(h, W, b_prime)[0]
    for form in ("dense", "sparse", "topk"):
        codes = encode(x, W, b, 5, 2.0, output=form)
        np.testing.assert_allclose(decode(codes, W, b_prime), expected, rtol=1e-12, atol=1e-12)


def test_encode_and_decode_reject_bad_input():
    W, b = np.zeros((3, 5)), np.zeros(5)
    with pytest.raises(ValueError, match="output must be one of"):
        encode(np.zeros((2, 3)), W, b, 2, output="coo")
    with pytest.raises(ValueError, match="matching d and H"):
        encode(np.zeros((2, 4)), W, b, 2)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 5\)"):
        decode((np.array([[0, 5]]), np.ones((1, 2))), W, np.zeros(3))
    with pytest.raises(ValueError, match="n_hidden = 5"):
        decode(np.zeros((2, 4)), W, np.zeros(3))


@pytest.mark.skipif(not has_numba(), reason="needs numba (the `fast` extra)")
@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("output", ["dense", "topk"])
def test_encode_split_over_threads_equals_plain_path(gapped_problem, n_threads, output, monkeypatch,
                                                     one_blas_thread):
    """Each block's product and selection cut into row ranges, one per thread: the same codes."""
    from ksparse.kernels import _cpu

    monkeypatch.setattr(_cpu, "threads_for", lambda N, d, H: n_threads)
    x, W, b, _ = gapped_problem(N=50, d=40, H=30)
    expected = select_forward(encode_forward(x, W, b)[0], 12)[0]
    for rows in (1, 7, None):
        codes = encode(x, W, b, 4, 3.0, output=output, kernel="numba", block_rows=rows)
        if output == "topk":
            h = np.zeros_like(expected)
            np.put_along_axis(h, codes[0].astype(np.int64), codes[1], axis=1)
            codes = h
        np.testing.assert_allclose(codes, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not has_numba(), reason="needs numba (the `fast` extra)")
def test_training_encoding_and_supp_k_share_one_compiled_selection(one_blas_thread):
    """The step, the three encoder outputs and supp_k call one selection kernel with the same
    argument types, so that a first run compiles it once per dtype (benchmarks/compile.py)."""
    import numba

    from ksparse.kernels import _encode_numba
    from ksparse.kernels.fast import fast_train_step_, supp_k

    rng = np.random.default_rng(4)
    x, W = rng.random((20, 12)).astype(np.float32), rng.normal(size=(12, 30)).astype(np.float32)
    params = {"W": W, "b": np.zeros(30, np.float32), "b_prime": np.zeros(12, np.float32)}
    fast_train_step_(x, params, {n: np.zeros_like(p) for n, p in params.items()}, 3, 0.1, 0.9, kernel="numba")
    for output in OUTPUTS:
        encode(x, W, params["b"], 3, 2.0, output=output, kernel="numba")
    supp_k(x @ W, 3, kernel="numba")
    float32 = [sig for sig in _encode_numba.select_rows.signatures if sig[0].dtype == numba.float32]
    assert len(float32) == 1


@pytest.mark.skipif(not has_numba(), reason="needs numba")
@pytest.mark.parametrize("spread", [3, 1000, 2**31 - 1])  # many ties, some, almost none
def test_kth_largest_by_count_is_the_sorted_keys_rth_largest(spread):
    """The bisection (with its early exit at a threshold exactly r keys reach) against a sort."""
    from ksparse.kernels._encode_numba import _kth_largest_by_count

    rng = np.random.default_rng(spread % 97)
    for _ in range(300):
        n = int(rng.integers(1, 300))
        keys = rng.integers(-spread, spread, size=n, endpoint=True).astype(np.int32)
        r = int(rng.integers(1, n + 1))
        assert _kth_largest_by_count(keys, n, r) == np.sort(keys)[::-1][r - 1]
