"""A user's ``.npz``: one data array, ``X`` with optional labels ``y``, or a labelled train/test
split ``X_train, y_train, X_test, y_test`` (the split the registered data sets have). Every
array is used or the file is refused: no array is dropped without a word.
"""

import numpy as np

from ksparse.errors import DataFileError
from ksparse.io import npz_keys, open_npz, read_npz_array

#: the arrays of a labelled split, and how to write one
SPLIT = ("X_train", "y_train", "X_test", "y_test")
SPLIT_HOW = "numpy.savez('d.npz', X_train=..., y_train=..., X_test=..., y_test=...)"


def read_npz(path):
    """The arrays of ``path`` as ``{"X_train", "y_train", "X_test", "y_test"}`` (None where absent).

    Raises
    ------
    ksparse.errors.DataFileError
        (a ``ValueError``) Naming the one wrong thing: a split missing some of its four arrays,
        arrays besides the accepted ones, no ``X`` among several arrays, matrices that are not
        2-D or differ in width, labels that are not one per row or not class labels.
    """
    with open_npz(path) as zf:
        keys = npz_keys(zf)
        given = [k for k in SPLIT if k in keys]
        known = SPLIT if given else ("X", "y") if "X" in keys else keys[:1] if len(keys) == 1 else ()
        if not known:
            raise DataFileError(f"{path!r} holds the arrays {keys}; name the data array 'X' (its labels "
                                f"'y'), or store a labelled split with {SPLIT_HOW}")
        if given and len(given) < len(SPLIT):
            raise DataFileError(f"{path!r} holds {given} but not {[k for k in SPLIT if k not in keys]}; "
                                f"a labelled split is all four arrays: {SPLIT_HOW}")
        other = [k for k in keys if k not in known]
        if other:
            raise DataFileError(f"{path!r} holds {other} besides {[k for k in known if k in keys]}, which "
                                "ksparse would not use; save only the arrays it reads (X, or X and y, or "
                                "X_train, y_train, X_test, y_test)")
        arrays = {k: read_npz_array(zf, k, repr(path)) for k in known if k in keys}
    if not given:
        arrays = {"X_train": arrays.pop("X", None) if "X" in arrays else arrays.popitem()[1],
                  "y_train": arrays.get("y")}
    return _checked(path, {k: arrays.get(k) for k in SPLIT}, given)


def _checked(path, arrays, split):
    """``arrays`` once the matrices of a split are 2-D of one width and each label vector fits."""
    if split:
        shapes = {k: np.shape(arrays[k]) for k in ("X_train", "X_test")}
        for k, shape in shapes.items():
            if len(shape) != 2:
                raise DataFileError(f"{path!r}: {k} must be 2-D (one sample per row), got shape {shape}")
        if shapes["X_train"][1] != shapes["X_test"][1]:
            raise DataFileError(f"{path!r}: X_test has {shapes['X_test'][1]} features per row, X_train "
                                f"{shapes['X_train'][1]}; both need the same columns")
    for x_name, y_name in (("X_train", "y_train"), ("X_test", "y_test")):
        y, x = arrays[y_name], arrays[x_name]
        if y is None:
            continue
        label = "y" if not split else y_name
        rows = np.shape(x)[0] if np.ndim(x) else 0
        if np.ndim(y) != 1:
            raise DataFileError(f"{path!r}: {label} must be 1-D (one label per row), got shape {np.shape(y)}"
                                + ("; save y.ravel()" if np.ndim(y) == 2 and 1 in np.shape(y) else ""))
        if len(y) != rows:
            raise DataFileError(f"{path!r}: {label} has {len(y)} labels but {'X' if not split else x_name} "
                                f"has {rows} rows; give one label per row")
        _check_classes(path, label, y)
    if split and len(np.unique(arrays["y_train"])) < 2:
        raise DataFileError(f"{path!r}: y_train holds one class; logistic regression needs at least 2")
    return arrays


def _check_classes(path, label, y):
    """Class labels: integers, booleans, strings, or whole numbers stored as floats."""
    kind = y.dtype.kind
    whole = kind == "f" and bool(np.all(np.isfinite(y))) and bool(np.all(y == np.round(y)))
    if kind not in "iubUS" and not whole:
        bad = y[~(np.isfinite(y) & (y == np.round(y)))][0] if kind == "f" else y[0]
        raise DataFileError(f"{path!r}: {label} holds {y.dtype} values such as {bad.item()!r}, not class "
                            "labels; store integers or strings (logistic regression classifies)")
