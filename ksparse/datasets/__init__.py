"""Datasets by name: the bundled digits (offline default), user matrices, and the paper's sets.

Every loader returns a :class:`Dataset`. Real data sets are read from a data directory:
the ``data_dir`` argument, else the ``KSPARSE_DATA`` environment variable, else
``~/.cache/ksparse``. The environment is read here, at the edge, and nowhere deeper.
"""

import dataclasses
import importlib
import os

import numpy as np

from ksparse.datasets._npz import SPLIT_HOW, read_npz
from ksparse.errors import DataFileError
from ksparse.io import load_npy

# name -> "module:function"; each function takes (data_dir=None, **options) -> Dataset
REGISTRY = {
    "digits": "ksparse.datasets:load_digits",
    "mnist": "ksparse.datasets.mnist:load_mnist",
    "cifar10-patches": "ksparse.datasets.cifar10:load_cifar10_patches",
    "norb": "ksparse.datasets.norb:load_small_norb",
}

#: the registered data sets that come with a package, not from the data folder (data_dir)
BUNDLED = ("digits",)


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
    """Return the data directory: ``path``, else $KSPARSE_DATA, else ~/.cache/ksparse.

    Raises
    ------
    ksparse.errors.DataFileError
        (a ``ValueError``) If the directory named is an existing file, not a folder.
    """
    source = "data_dir (--data-dir)" if path else "KSPARSE_DATA"
    folder = os.fspath(path) if path else os.environ.get("KSPARSE_DATA")
    if not folder:
        return os.path.join(os.path.expanduser("~"), ".cache", "ksparse")
    if os.path.exists(folder) and not os.path.isdir(folder):  # else: a download into it, 'Not a directory'
        raise DataFileError(f"{source} {folder!r} is a file; give the folder that holds mnist/, cifar10/ "
                            "or norb/ (docs/data.md)")
    return folder


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


#: what a user's data file may be, and how a text table or an array store becomes one
FILE_TYPES = (".npy", ".npz")
_TEXT = {".csv": ", delimiter=','", ".tsv": ", delimiter='\\t'", ".txt": ""}
_STORES = {".h5": "h5py.File({path!r})['NAME']", ".hdf5": "h5py.File({path!r})['NAME']",
           ".zarr": "zarr.open({path!r}, mode='r')"}


def unsupported_file(path):
    """The message for a data file of a type not read: the types read and how to convert it
    (a text table with a header row or a label column; an HDF5 or zarr store, which the Python
    API reads by rows)."""
    ext = os.path.splitext(path)[1].lower()
    then = "then pass X.npy"
    if ext in _TEXT:
        header = _has_header(path)
        how = (f"numpy.save('X.npy', numpy.loadtxt({path!r}{_TEXT[ext]}{', skiprows=1' if header else ''})) "
               f"({'skiprows=1 skips its header row' if header else 'add skiprows=1 for a header row'}; "
               "usecols=... keeps only the feature columns)")
        then += f"; with a label column, save {SPLIT_HOW} and pass d.npz"
    elif ext in _STORES:
        store = _STORES[ext].format(path=path)
        how = f"numpy.save('X.npy', {store}[:])"
        then += (f"; data larger than memory train in Python, KSparseAutoencoder().fit({store}) "
                 "reading it by rows (docs/large_data.md)")
    else:
        how = "numpy.save('X.npy', X) with X its (n_samples, n_features) array"
    kind = "folder" if os.path.isdir(path) else "file"
    what = f"a {ext} {kind}" if ext else ("a folder" if kind == "folder" else "a file without an extension")
    return (f"{path!r} is {what}; ksparse reads {' and '.join(FILE_TYPES)} "
            f"(one sample per row): convert it with {how}, {then}")


def _has_header(path):
    """Whether the first line of a text table holds a field that is not a number (a header)."""
    try:
        with open(path, errors="replace") as f:
            fields = f.readline(1 << 16).replace(",", " ").replace("\t", " ").split()
        [float(v) for v in fields]
    except ValueError:
        return True
    except OSError:
        pass
    return False


def load_matrix(path):
    """Read a user matrix from ``.npy`` or ``.npz`` (one sample per row) as a Dataset.

    Its ``image_shape`` is None: plain features are not guessed to be images from a square
    width (``ksparse train --image-shape HxW`` says they are).

    An ``.npz`` holds a single array, an array named ``X`` (with optional labels ``y``), or a
    labelled train/test split ``X_train, y_train, X_test, y_test`` (:mod:`ksparse.datasets._npz`).
    Files are read by :func:`ksparse.io.load_npy` / :func:`ksparse.io.read_npz_array`: no
    pickles, and no allocation beyond what the file holds.

    Raises
    ------
    ksparse.errors.DataFileError
        (a ``ValueError``) If the file is missing, not ``.npy``/``.npz``, truncated, holds
        Python objects, or is an ``.npz`` of other arrays or of labels that do not fit.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataFileError(f"data file {path!r} does not exist; check the path")
    if not path.lower().endswith((".npy", ".npz")):  # X.NPY too: numpy reads any name
        raise DataFileError(unsupported_file(path))
    if not os.path.isfile(path):
        raise DataFileError(f"data file {path!r} is a folder; give the path of a .npy or .npz file")
    arrays = read_npz(path) if path.lower().endswith(".npz") else {"X_train": load_npy(path)}
    return Dataset(os.path.basename(path), **arrays, image_shape=None)  # a square width is no image


def load_dataset(name, data_dir=None, **options):
    """Load a dataset by registered name, or from a ``.npy``/``.npz`` path.

    Raises
    ------
    ValueError
        For an unknown name, with the list of known ones.
    """
    name = os.fspath(name)
    if name.lower().endswith((".npy", ".npz")):
        return load_matrix(name)
    if name not in REGISTRY and os.path.exists(name):  # a file, or a folder such as a zarr store
        raise DataFileError(unsupported_file(name))
    if name not in REGISTRY:
        raise ValueError(
            f"unknown dataset {name!r}: use one of {sorted(REGISTRY)} or a path to a .npy/.npz file"
        )
    module, func = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), func)(data_dir=data_dir, **options)
