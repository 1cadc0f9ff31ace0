"""One rule for the files a model is written to (KSparseAutoencoder.save, checkpoint_path) and the
command line's output files: the name ends in .npz and its folder exists (an output file is never
given a folder of its own, as `ksparse encode` refuses OUTPUT in a missing folder)."""

import os

import numpy as np
import pytest

from ksparse.estimators.autoencoder import KSparseAutoencoder


@pytest.fixture
def fitted():
    return KSparseAutoencoder(n_hidden=8, k=2, max_iter=1).fit(np.random.default_rng(0).random((50, 6)))


@pytest.mark.parametrize("name, fix", [("X.npy", "X.npz"), ("model", "model.npz"), ("m.pt", "m.npz")])
def test_save_under_another_suffix_names_the_npz_to_use(fitted, tmp_path, monkeypatch, name, fix):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=f"path '{name}': a model file is an .npz archive; name it '{fix}'"):
        fitted.save(name)  # was: an .npz archive written as X.npy (numpy.load returned an NpzFile)
    assert os.listdir(tmp_path) == []


def test_save_and_checkpoint_path_refuse_a_missing_folder(fitted, tmp_path):
    with pytest.raises(OSError, match="its folder .*new' does not exist; create it first"):
        fitted.save(tmp_path / "new" / "m.npz")  # was: the folder made
    est = KSparseAutoencoder(n_hidden=8, k=2, max_iter=1, checkpoint_path=tmp_path / "new" / "c.npz")
    with pytest.raises(OSError, match="checkpoint_path .*its folder .*new' does not exist"):
        est.fit(np.random.default_rng(0).random((50, 6)))
    with pytest.raises(ValueError, match="checkpoint_path .*name it '.*c.npz'"):
        est.set_params(checkpoint_path=tmp_path / "c.npy").fit(np.random.default_rng(0).random((50, 6)))
    assert os.listdir(tmp_path) == []
    fitted.save(tmp_path / "m.npz")
    assert KSparseAutoencoder.load(tmp_path / "m.npz").n_iter_ == 1
