"""Data of the wrong kind given to any method of either estimator (an h5py File or Group, a zarr
Group, ``np.load`` of an .npz, a dict of arrays, a path, text, a DataFrame with a text column) is
one error naming what it holds and what to pass; and a misspelt or renamed parameter of either
estimator names the parameter meant (ksparse.estimators.inputs, ksparse.estimators.params)."""

import inspect

import numpy as np
import pytest

from ksparse.errors import InputKindError
from ksparse.estimators.autoencoder import KSparseAutoencoder
from ksparse.estimators.classifier import KSparseClassifier
from ksparse.estimators.params import RENAMED_PARAMS

rng = np.random.default_rng(0)
X = rng.random((40, 8))
Y = np.arange(40) % 2


@pytest.fixture(scope="module")
def fitted():
    ae = KSparseAutoencoder(n_hidden=8, k=2, k_start=4, alpha=1.0, max_iter=1).fit(X)
    clf = KSparseClassifier(n_hidden=8, k=2, alpha=1.0, pretrain=False, max_iter=1).fit(X, Y)
    return ae, clf


@pytest.fixture(scope="module")
def containers(tmp_path_factory):
    """{kind: (the container, words its message must hold)}; files closed at the end."""
    import h5py
    import pandas as pd

    d = tmp_path_factory.mktemp("containers")
    with h5py.File(d / "d.h5", "w") as f:
        f["X_train"], f["y_train"] = X, Y
        f.create_group("more")["X_test"] = X
    np.savez(d / "d.npz", X_train=X, y_train=Y)
    f, npz = h5py.File(d / "d.h5", "r"), np.load(d / "d.npz")
    found = {
        "h5py File": (f, ["h5py File", "'X_train' (40, 8)", "'more/X_test' (40, 8)", "'y_train' (40,)",
                          "e.g. f['X_train']"]),
        "h5py Group": (f["more"], ["h5py Group", "'X_test' (40, 8)", "e.g. group['X_test']"]),
        "npz": (npz, ["NpzFile", "'X_train', 'y_train'", "e.g. data['X_train']"]),
        "dict": ({"X": X, "y": Y}, ["a dict", "'X' (40, 8)", "e.g. d['X']"]),
        "path": (str(d / "X.npy"), ["is a str", "np.load("]),
        "words": (["cat", "dog"] * 20, ["holds text ('cat')"]),
        "rows of words": ([["cat"] * 8] * 40, ["holds text ('cat')"]),
        "array of words": (np.array([["cat"] * 8] * 40), ["holds text ('cat')"]),
        "frame with text": (pd.DataFrame({"a": X[:, 0], "name": ["x"] * 40, "when": pd.Timestamp(0)}),
                            ["columns that are not numbers", "'name'", "'when'", "select_dtypes('number')"]),
        "None": (None, ["X is None"]),
    }
    try:
        import zarr

        group = zarr.group(store=str(d / "d.zarr"))
        group["X"] = X
        found["zarr Group"] = (group, ["zarr Group", "'X' (40, 8)", "e.g. group['X']"])
    except ImportError:
        pass
    yield found
    f.close()
    npz.close()


CALLS = {
    "fit": lambda fitted, data: KSparseAutoencoder(max_iter=1).fit(data),
    "partial_fit": lambda fitted, data: KSparseAutoencoder(max_iter=1).partial_fit(data),
    "transform": lambda fitted, data: fitted[0].transform(data),
    "inverse_transform": lambda fitted, data: fitted[0].inverse_transform(data),
    "score": lambda fitted, data: fitted[0].score(data),
    "fit_transform": lambda fitted, data: KSparseAutoencoder(max_iter=1).fit_transform(data),
    "classifier fit": lambda fitted, data: KSparseClassifier(max_iter=1).fit(data, Y),
    "classifier predict": lambda fitted, data: fitted[1].predict(data),
    "classifier predict_proba": lambda fitted, data: fitted[1].predict_proba(data),
    "classifier score": lambda fitted, data: fitted[1].score(data, Y),
}


@pytest.mark.parametrize("method", sorted(CALLS))
def test_every_method_refuses_data_of_the_wrong_kind_naming_what_to_pass(fitted, containers, method):
    for kind, (data, words) in containers.items():
        with pytest.raises(InputKindError) as e:
            CALLS[method](fitted, data)
        assert isinstance(e.value, ValueError) and isinstance(e.value, TypeError)
        message = str(e.value)
        assert "\n" not in message
        name = "codes" if method == "inverse_transform" else "X"  # its argument's name
        for word in words:
            assert word.replace("X is", f"{name} is") in message, (kind, word, message)


def test_numbers_written_as_text_and_one_dataset_still_work(fitted, containers):
    ae = fitted[0]
    assert ae.transform(X.astype(str)).shape == (40, 8)  # NumPy converts '0.63...' as before
    f = containers["h5py File"][0]
    assert np.allclose(ae.transform(f["X_train"]), ae.transform(X))


ESTIMATORS = [KSparseAutoencoder, KSparseClassifier]


def _params(cls):
    return [n for n in inspect.signature(cls).parameters if len(n) > 2]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_a_misspelt_parameter_names_the_closest(cls):
    for name in _params(cls):
        for typo in (name + name[-1], name[:-1], name.upper()):
            meant = f"unexpected keyword argument '{typo}'; did you mean [^?]*'{name}'"
            with pytest.raises(TypeError, match=meant):
                cls(**{typo: 1})


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_a_renamed_parameter_names_its_new_name(cls):
    names = inspect.signature(cls).parameters
    renamed = {old: new for old, new in RENAMED_PARAMS.items() if new in names}
    assert renamed
    for old, new in renamed.items():
        with pytest.raises(TypeError, match=f"'{old}' is now '{new}'"):
            cls(**{old: 3})
    with pytest.raises(TypeError, match="did you mean 'lr'"):
        cls(learning_rate=0.1)
    with pytest.raises(TypeError, match=r"get_params\(\) lists its parameters"):
        cls(frobnicate=1)


def test_the_autoencoder_takes_its_parameters_by_name():
    with pytest.raises(TypeError, match=r"by name only, e.g. KSparseAutoencoder\(n_hidden=5\)"):
        KSparseAutoencoder(5)


def test_set_params_keeps_scikit_learns_message():
    with pytest.raises(ValueError, match="Invalid parameter 'n_hiden'"):
        KSparseAutoencoder().set_params(n_hiden=5)
