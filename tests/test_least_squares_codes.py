"""Least-squares coefficients on the encoder's support (Eq. 3, ITI's pseudo-inverse step):
:func:`ksparse.kernels.encode.least_squares_values` against the reference oracle, and
``coefficients="least_squares"`` through the estimator, the large-data paths and ``ksparse encode``."""

import numpy as np
import pytest

from ksparse.backend import gpu_available, to_numpy
from ksparse.cli import main
from ksparse.config import ConfigError
from ksparse.estimators.autoencoder import KSparseAutoencoder
from ksparse.kernels.encode import encode, least_squares_values
from reference.iti import lstsq_on_support


def test_least_squares_values_equal_the_reference_pseudo_inverse():
    rng = np.random.default_rng(0)
    W, t = rng.normal(size=(30, 50)), rng.normal(size=(40, 30))
    index, _ = encode(t, W, np.zeros(50), 6, output="topk")
    value = least_squares_values(t, W, index)
    np.testing.assert_allclose(value, lstsq_on_support(t, W, index.astype(np.int64)), rtol=1e-6, atol=1e-9)


def test_a_support_of_dependent_atoms_gets_the_minimum_norm_values():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(20, 8))
    W[:, 3] = W[:, 2]  # two equal atoms: W_Gamma is rank deficient on any support holding both
    t = rng.normal(size=(5, 20))
    index = np.tile(np.array([[1, 2, 3, 5]]), (5, 1))
    value = least_squares_values(t, W, index)
    expected = lstsq_on_support(t, W, index)
    assert np.isfinite(value).all()
    np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(value[:, 1], value[:, 2], rtol=1e-6)  # the weight is shared equally


def test_least_squares_values_reject_mismatched_shapes_and_foreign_units():
    W = np.ones((4, 6))
    with pytest.raises(ValueError, match="matching N and d"):
        least_squares_values(np.ones((3, 5)), W, np.zeros((3, 2), dtype=int))
    with pytest.raises(ValueError, match=r"index must lie in \[0, 6\)"):
        least_squares_values(np.ones((3, 4)), W, np.full((3, 2), 6))


@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")
def test_least_squares_values_on_the_gpu_equal_numpys():
    import cupy

    rng = np.random.default_rng(2)
    W, t = rng.normal(size=(30, 50)), rng.normal(size=(40, 30))
    index, _ = encode(t, W, np.zeros(50), 6, output="topk")
    value = least_squares_values(cupy.asarray(t), cupy.asarray(W), cupy.asarray(index))
    assert isinstance(value, cupy.ndarray)
    np.testing.assert_allclose(to_numpy(value), least_squares_values(t, W, index), rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    return X[:1200], X[1200:]


@pytest.fixture(scope="module")
def fitted(digits):
    return KSparseAutoencoder(max_iter=5).fit(digits[0])  # the defaults otherwise


def test_the_default_is_the_encoders_values(fitted):
    assert KSparseAutoencoder().coefficients == "encoder" == fitted.coefficients


@pytest.mark.parametrize("alpha", [1.0, 3.0])
def test_same_support_and_no_worse_reconstruction_on_every_row(fitted, digits, alpha):
    X = digits[1]
    enc = fitted.set_params(alpha=alpha, coefficients="encoder")
    i_enc, _ = enc.transform(X, output="topk")
    err_enc = ((enc.inverse_transform(enc.transform(X)) - X) ** 2).sum(axis=1)
    lsq = fitted.set_params(coefficients="least_squares")
    i_lsq, v_lsq = lsq.transform(X, output="topk")
    h = lsq.transform(X)
    err_lsq = ((lsq.inverse_transform(h) - X) ** 2).sum(axis=1)
    np.testing.assert_array_equal(i_lsq, i_enc)  # Eq. 3 changes the values, not the support
    np.testing.assert_array_equal(np.take_along_axis(h, i_lsq.astype(np.intp), axis=1), v_lsq)
    assert (err_lsq <= err_enc * (1 + 1e-4) + 1e-6).all()
    assert err_lsq.mean() < 0.8 * err_enc.mean()
    assert lsq.score(X) == pytest.approx(-err_lsq.mean() / X.shape[1], rel=1e-5)
    fitted.set_params(alpha=3.0, coefficients="encoder")


def test_streamed_and_dask_inputs_give_the_in_memory_codes(fitted, digits, tmp_path):
    X = digits[1].astype(np.float32)
    est = fitted.set_params(coefficients="least_squares")
    try:
        h = est.transform(X)
        np.save(tmp_path / "x.npy", X)
        mm = np.load(tmp_path / "x.npy", mmap_mode="r")
        np.testing.assert_array_equal(est.transform(mm), h)
        assert est.score(mm) == pytest.approx(est.score(X), rel=1e-6)
        da = pytest.importorskip("dask.array")
        np.testing.assert_allclose(est.transform(da.from_array(X, chunks=200)).compute(), h, atol=1e-5)
    finally:
        fitted.set_params(coefficients="encoder")


def test_an_unknown_coefficients_value_is_refused_before_any_work(fitted, digits):
    with pytest.raises(ConfigError, match="coefficients"):
        KSparseAutoencoder(coefficients="omp").fit(digits[0])
    bad = fitted.set_params(coefficients="pinv")
    try:
        with pytest.raises(ConfigError, match="coefficients"):
            bad.transform(digits[1])
    finally:
        fitted.set_params(coefficients="encoder")


def test_cli_encode_writes_the_least_squares_codes(fitted, digits, tmp_path, capsys):
    X = digits[1]
    model, inp = tmp_path / "model.npz", tmp_path / "x.npy"
    fitted.save(model)
    np.save(inp, X)
    assert main(["encode", str(model), str(inp), str(tmp_path / "h.npz"), "--form", "topk",
                 "--coefficients", "least_squares"]) == 0
    assert "least_squares coefficients" in capsys.readouterr().out
    codes = np.load(tmp_path / "h.npz")
    index, value = fitted.set_params(coefficients="least_squares").transform(X, output="topk")
    fitted.set_params(coefficients="encoder")
    np.testing.assert_array_equal(codes["index"], index)
    np.testing.assert_allclose(codes["value"], value, rtol=1e-6)
    assert main(["encode", str(model), str(inp), str(tmp_path / "g.npz"), "--form", "topk",
                 "--coefficients", "lsq"]) == 2
    assert "invalid choice: 'lsq'" in capsys.readouterr().err
    assert not (tmp_path / "g.npz").exists()
