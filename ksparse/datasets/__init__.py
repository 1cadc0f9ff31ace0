"""Datasets by name: the bundled digits (offline default), user matrices, and the paper's sets.

Every loader returns a :class:`Dataset`. Real data sets are read from a data directory:
the ``data_dir`` argument, else the ``KSPARSE_DATA`` environment variable, else
``~/.cache/ksparse``. The environment is read here, at the edge, and nowhere deeper.
"""

import dataclasses
import importlib
import os

import numpy as np

from ksparse.errors import DataFileError
from ksparse.io import load_npy, npz_keys, open_npz, read_npz_array

# name -> "module:function"; each function takes (data_dir=None, **options) -> Dataset
REGISTRY = {
    "digits": "ksparse.datasets:load_digits",
    "mnist": "ksparse.datasets.mnist:load_mnist",
    "cifar10-patches": "ksparse.datasets.cifar10:load_cifar10_patches",
    "norb": "ksparse.datasets.norb:load_small_norb",
}


@dataclasses.dataclass
class Dataset:
    """Training and test matrices (one sample per row) with optional labels and image shape."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray = None
    X_test: np.ndarray = None
    y_test: np.ndarray = None
    X_val: np.ndarray = None
    y_val: np.ndarray = None
    image_shape: tuple = None


def data_dir(path=None):
    """Return the data directory: ``path``, else $KSPARSE_DATA, else ~/.cache/ksparse."""
    if path:
        return os.fspath(path)
    return os.environ.get("KSPARSE_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "ksparse")


def load_digits(data_dir=None, test_size=0.25, random_state=0):
    """scikit-learn's bundled 8x8 digits scaled to [0, 1], split into train and test (stratified)."""
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    bunch = _load()
    X = bunch.data.astype(np.float64) / 16.0
    Xtr, Xte, ytr, yte = train_test_split(
        X, bunch.target, test_size=test_size, random_state=random_state, stratify=bunch.target
    )
    return Dataset("digits", Xtr, ytr, Xte, yte, image_shape=(8, 8))


#: what a user's data file may be, and how a text table becomes one
FILE_TYPES = (".npy", ".npz")
_TEXT = {".csv": ", delimiter=','", ".tsv": ", delimiter='\\t'", ".txt": ""}


def unsupported_file(path):
    """The message for a data file of a type not read: the types read and how to convert it."""
    ext = os.path.splitext(path)[1].lower()
    how = (f"numpy.save('X.npy', numpy.loadtxt({path!r}{_TEXT[ext]}))" if ext in _TEXT
           else "numpy.save('X.npy', X) with X its (n_samples, n_features) array")
    return (f"{path!r} is a {ext or 'extensionless'} file; ksparse reads {' and '.join(FILE_TYPES)} "
            f"(one sample per row): convert it with {how}, then pass X.npy")


def load_matrix(path):
    """Read a user matrix from ``.npy`` or ``.npz`` (one sample per row) as an unlabelled Dataset.

    Its ``image_shape`` is None: plain features are not guessed to be images from a square
    width (``ksparse train --image-shape HxW`` says they are).

    An ``.npz`` must hold a single array, or an array named ``X`` (with an optional ``y``).
    Files are read by :func:`ksparse.io.load_npy` / :func:`ksparse.io.read_npz_array`: no
    pickles, and no allocation beyond what the file holds.

    Raises
    ------
    ksparse.errors.DataFileError
        (a ``ValueError``) If the file is missing, not ``.npy``/``.npz``, truncated, holds
        Python objects, or is an ``.npz`` without a single or an ``X`` array.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFileError(f"data file {path!r} does not exist; check the path")
    if not path.endswith((".npy", ".npz")):
        raise DataFileError(unsupported_file(path))
    if path.endswith(".npz"):
        with open_npz(path) as zf:
            keys = npz_keys(zf)
            if "X" in keys:
                X = read_npz_array(zf, "X", repr(path))
                y = read_npz_array(zf, "y", repr(path)) if "y" in keys else None
            elif len(keys) == 1:
                X, y = read_npz_array(zf, keys[0], repr(path)), None
            else:
                raise DataFileError(f"{path!r} holds the arrays {keys}; name the data array 'X'")
    else:
        X, y = load_npy(path), None
    return Dataset(os.path.basename(path), X, y, image_shape=None)  # a square width is no image


def load_dataset(name, data_dir=None, **options):
    """Load a dataset by registered name, or from a ``.npy``/``.npz`` path.

    Raises
    ------
    ValueError
        For an unknown name, with the list of known ones.
    """
    name = os.fspath(name)
    if name.endswith((".npy", ".npz")):
        return load_matrix(name)
    if name not in REGISTRY and os.path.isfile(name):
        raise DataFileError(unsupported_file(name))
    if name not in REGISTRY:
        raise ValueError(
            f"unknown dataset {name!r}: use one of {sorted(REGISTRY)} or a path to a .npy/.npz file"
        )
    module, func = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), func)(data_dir=data_dir, **options)
