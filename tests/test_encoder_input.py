"""The encoder's input in one pass (:func:`ksparse.training.loop.encoder_input`), codes written in
place (:func:`ksparse.kernels.encode.encode` with ``out``) and the one-pass finite check: each held
to the plain path it replaces."""

import numpy as np
import pytest

from ksparse.errors import reject_nonfinite
from ksparse.estimators.autoencoder import KSparseAutoencoder
from ksparse.kernels.encode import encode
from ksparse.training.loop import encoder_input, model_input

SMALL = {"n_hidden": 40, "k": 4, "k_start": 8, "max_iter": 2, "batch_size": 32}


@pytest.fixture(scope="module")
def X():
    return (np.random.default_rng(0).random((300, 16)) * 255).astype(np.float32)


@pytest.mark.parametrize("settings", [{}, {"center": True}, {"paper": True}, {"dtype": "float64"}])
@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8", "float16"])
def test_encoder_input_is_model_input_in_the_models_dtype(X, settings, dtype):
    state = KSparseAutoencoder(**SMALL, **settings).fit(X / 255 if settings.get("paper") else X).state_
    x = X.astype(dtype)  # the arithmetic, not the data's scale, is under test
    u = encoder_input(x, state, state.config.dtype)
    plain = model_input(x, state)  # float64, term by term
    assert u.dtype == np.dtype(state.config.dtype) and u.shape == x.shape
    # model_input divides x by s in x's dtype: exact to float64 only for float64 and integer data
    exact = state.config.dtype == "float64" and dtype in ("float64", "uint8")
    tol = 1e-12 if exact else 4 * np.finfo(np.float32).eps
    np.testing.assert_allclose(u, plain, rtol=tol, atol=tol * np.abs(plain).max())


def test_an_offset_far_above_the_spread_keeps_float64_datas_precision():
    rng = np.random.default_rng(1)
    X = 1e6 + rng.random((200, 8))  # float32 would round these to steps of 0.06
    state = KSparseAutoencoder(**SMALL, center=True).fit(X).state_
    u = encoder_input(X, state, np.float32)
    np.testing.assert_allclose(u, model_input(X, state), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("output", ["dense", "topk"])
@pytest.mark.parametrize("kernel", ["numba", "numpy"])
def test_encode_into_out_equals_new_arrays(output, kernel):
    rng = np.random.default_rng(2)
    x, W, b = (rng.random((50, 12), dtype=np.float32), rng.normal(size=(12, 30)).astype(np.float32),
               rng.normal(size=30).astype(np.float32))
    want = encode(x, W, b, 3, 2.0, output=output, kernel=kernel, block_rows=16)
    if output == "dense":
        out = np.full((50, 30), np.nan, np.float32)  # every old value replaced
    else:
        out = (np.full((50, 6), -1, np.int32), np.full((50, 6), np.nan, np.float32))
    got = encode(x, W, b, 3, 2.0, output=output, kernel=kernel, block_rows=16, out=out)
    if output == "dense":
        assert got is out
        np.testing.assert_array_equal(out, want)
    else:
        assert got[0] is out[0] and got[1] is out[1]
        np.testing.assert_array_equal(out[0], want[0])
        np.testing.assert_array_equal(out[1], want[1])


def test_encode_refuses_an_out_of_the_wrong_shape_dtype_or_form():
    x, W, b = np.ones((5, 4), np.float32), np.ones((4, 6), np.float32), np.zeros(6, np.float32)
    for out, output in ((np.zeros((5, 5), np.float32), "dense"), (np.zeros((5, 6)), "dense"),
                        ((np.zeros((5, 2), np.int64), np.zeros((5, 2), np.float32)), "topk"),
                        (np.zeros((5, 6), np.float32), "topk"), (np.zeros((5, 6), np.float32), "sparse")):
        with pytest.raises(ValueError, match="out"):
            encode(x, W, b, 2, output=output, out=out)


def test_the_one_pass_finite_check_still_names_the_first_bad_value():
    x = np.ones((4, 3), np.float32)
    assert reject_nonfinite(x) is x
    huge = np.full((4, 3), 3e38, np.float32)  # finite, but its sum overflows
    assert reject_nonfinite(huge) is huge
    assert reject_nonfinite(np.arange(6).reshape(2, 3)) is not None
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or inf: nan at row 12, column 1"):
        reject_nonfinite(x, first_row=10)
    y = np.zeros((3, 2))
    y[1, 0], y[2, 1] = np.inf, -np.inf  # the sum is NaN
    with pytest.raises(ValueError, match=r"inf at row 1, column 0 \(and 1 more value\)"):
        reject_nonfinite(y)
