"""``ksparse train`` and ``ksparse encode`` on a .npy read by rows (memory map), codes written by blocks."""

import numpy as np
import pytest
from scipy import sparse

from ksparse.cli import main
from ksparse.estimators.autoencoder import KSparseAutoencoder
from ksparse.training import epoch

TINY = ["--n-hidden", "40", "--k", "5", "--k-start", "10", "--alpha", "2", "--max-iter", "2",
        "--batch-size", "32", "--quiet", "--no-logreg"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream")
    x = np.random.default_rng(0).random((700, 16)).astype(np.float32)
    np.save(folder / "x.npy", x)
    return folder, x


@pytest.fixture(scope="module")
def model(data):
    folder, x = data
    KSparseAutoencoder(n_hidden=40, k=5, k_start=10, alpha=2.0, max_iter=1).fit(x).save(folder / "model.npz")
    return folder / "model.npz"


def test_train_on_npy_streams_and_equals_the_estimator(data, monkeypatch):
    folder, x = data
    monkeypatch.setattr(epoch, "BLOCK_ROWS", 64)
    monkeypatch.setattr(epoch, "SHUFFLE_ROWS", 256)
    out = folder / "run"
    assert main(["train", *TINY, "--dataset", str(folder / "x.npy"), "--out", str(out)]) == 0
    model = KSparseAutoencoder.load(out / "model.npz")
    est = KSparseAutoencoder(n_hidden=40, k=5, k_start=10, alpha=2.0, max_iter=2, batch_size=32).fit(x)
    np.testing.assert_array_equal(model.W_, est.W_)


@pytest.mark.parametrize("form, name", [("dense", "h.npy"), ("sparse", "h.npz"), ("topk", "h.npz")])
def test_encode_writes_each_form_block_by_block(data, model, form, name, capsys):
    folder, x = data
    est = KSparseAutoencoder.load(model)
    out = folder / f"{form}-{name}"
    assert main(["encode", str(model), str(folder / "x.npy"), str(out), "--form", form]) == 0
    h = est.transform(x)
    if form == "dense":
        np.testing.assert_array_equal(np.load(out), h)
    elif form == "sparse":
        s = sparse.load_npz(out)
        assert isinstance(s, sparse.csr_array) and s.nnz == 700 * 10
        np.testing.assert_array_equal(s.toarray(), h)
    else:
        with np.load(out) as z:
            index, value, H = z["index"], z["value"], int(z["n_hidden"])
        assert H == 40 and index.shape == (700, 10)
        np.testing.assert_array_equal(np.take_along_axis(h, index.astype(np.intp), axis=1), value)
        np.testing.assert_allclose(est.inverse_transform((index, value)), est.inverse_transform(h),
                                   rtol=1e-5, atol=1e-6)


def test_encode_form_needs_the_matching_suffix(data, model, capsys):
    folder, _ = data
    code = main(["encode", str(model), str(folder / "x.npy"), str(folder / "h.npy"),
                 "--form", "topk"])
    err = capsys.readouterr().err
    assert code == 2 and "--form topk writes .npz" in err and "Traceback" not in err
