"""KSparseAutoencoder on large inputs (ksparse.estimators.codes): the three code forms, streamed
and Dask inputs, dask-ml's Incremental."""

import numpy as np
import pytest
from scipy import sparse

from ksparse.estimators.autoencoder import KSparseAutoencoder

SMALL = {"n_hidden": 40, "k": 4, "alpha": 2.0, "k_start": 8, "max_iter": 2, "batch_size": 32,
         "random_state": 0}


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).random((300, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def fitted(X):
    return KSparseAutoencoder(**SMALL, center=True).fit(X)


def test_transform_three_forms_agree_and_invert(fitted, X):
    h = fitted.transform(X)
    s = fitted.transform(X, output="sparse")
    index, value = fitted.transform(X, output="topk")
    assert isinstance(s, sparse.csr_array) and s.nnz == 300 * 8 and (np.diff(s.indptr) == 8).all()
    assert index.shape == value.shape == (300, 8)
    np.testing.assert_array_equal(s.toarray(), h)
    np.testing.assert_array_equal(np.take_along_axis(h, index.astype(np.intp), axis=1), value)
    x_hat = fitted.inverse_transform(h)
    for codes in (s, (index, value)):
        np.testing.assert_allclose(fitted.inverse_transform(codes), x_hat, rtol=1e-5, atol=1e-6)


def test_transform_rejects_an_unknown_output(fitted, X):
    with pytest.raises(ValueError, match="output must be one of"):
        fitted.transform(X, output="coo")


def test_fit_partial_fit_transform_score_on_a_memmap(tmp_path, X):
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    a = KSparseAutoencoder(**SMALL).fit(X)
    b = KSparseAutoencoder(**SMALL).fit(mm)
    np.testing.assert_array_equal(a.W_, b.W_)
    assert b.n_features_in_ == 16
    np.testing.assert_array_equal(b.transform(mm), a.transform(X))
    assert b.score(mm) == pytest.approx(a.score(X), rel=1e-6)
    c, e = KSparseAutoencoder(**SMALL), KSparseAutoencoder(**SMALL)
    for _ in range(2):
        c.partial_fit(mm)
        e.partial_fit(X)
    np.testing.assert_array_equal(c.W_, e.W_)


def test_transform_of_a_dask_array_is_lazy_and_equal(fitted, X):
    da = pytest.importorskip("dask.array")
    import dask

    Xd = da.from_array(X, chunks=(100, 16))
    h = fitted.transform(Xd)
    assert isinstance(h, da.Array) and h.shape == (300, 40)
    np.testing.assert_allclose(h.compute(), fitted.transform(X), rtol=1e-6, atol=1e-6)
    index, value = dask.compute(*fitted.transform(Xd, output="topk"))
    expected = fitted.transform(X, output="topk")
    np.testing.assert_array_equal(index, expected[0])
    np.testing.assert_allclose(value, expected[1], rtol=1e-6, atol=1e-6)


def test_dask_ml_incremental_runs_partial_fit_per_block(X):
    da = pytest.importorskip("dask.array")
    Incremental = pytest.importorskip("dask_ml.wrappers").Incremental

    Xd = da.from_array(X, chunks=(100, 16))
    inc = Incremental(KSparseAutoencoder(**SMALL), shuffle_blocks=False).fit(Xd)
    ref = KSparseAutoencoder(**SMALL)
    for lo in range(0, 300, 100):
        ref.partial_fit(X[lo:lo + 100])
    np.testing.assert_array_equal(inc.estimator_.W_, ref.W_)
    np.testing.assert_allclose(inc.transform(Xd).compute(), ref.transform(X), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name, output", [("codes.txt", "dense"), ("codes", "dense"), ("codes.npz", "dense"),
                                          ("codes.npy", "sparse"), ("codes.txt", "topk")])
def test_save_codes_refuses_a_name_without_the_forms_suffix_before_any_work(fitted, X, tmp_path, monkeypatch,
                                                                           name, output):
    """save_codes wrote ``codes.txt`` (a .npy under another name); now one message listing the
    suffixes, before a block is encoded."""
    import ksparse.estimators.codes as codes

    monkeypatch.setattr(codes, "iter_codes", lambda *a, **k: pytest.fail("encoded before the check"))
    with pytest.raises(ValueError) as e:
        codes.save_codes(tmp_path / name, fitted.state_, X, fitted.alpha, output)
    want = ".npy" if output == "dense" else ".npz"
    for word in (".npy for output='dense'", ".npz for output='sparse' or output='topk'",
                 f"name it '{tmp_path / 'codes'}{want}'"):
        assert word in str(e.value), str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_save_codes_refuses_an_unknown_form_a_missing_folder_and_its_own_input(fitted, X, tmp_path):
    from ksparse.blockio import NpyRows
    from ksparse.estimators.codes import save_codes

    with pytest.raises(ValueError, match="output must be one of"):
        save_codes(tmp_path / "codes.npz", fitted.state_, X, fitted.alpha, "coo")
    with pytest.raises(OSError, match="does not exist"):
        save_codes(tmp_path / "missing" / "codes.npy", fitted.state_, X, fitted.alpha)
    np.save(tmp_path / "x.npy", X)
    before = (tmp_path / "x.npy").read_bytes()
    for source in (NpyRows(tmp_path / "x.npy"), np.load(tmp_path / "x.npy", mmap_mode="r")):
        with pytest.raises(ValueError, match="is the file X is read from"):
            save_codes(tmp_path / "x.npy", fitted.state_, source, fitted.alpha)
    assert (tmp_path / "x.npy").read_bytes() == before
    save_codes(tmp_path / "codes.npy", fitted.state_, X, fitted.alpha)  # the right name: written
    np.testing.assert_array_equal(np.load(tmp_path / "codes.npy"), fitted.transform(X))
