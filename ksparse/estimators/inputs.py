"""The data an estimator method is given, before any conversion: one matrix of numbers.

A container of arrays (an h5py File or Group, a zarr Group, ``np.load`` of an ``.npz``, a dict),
a path or other string, text where numbers belong (a list of words, a DataFrame with a text or
date column) is refused in one line that names what it holds and what to pass instead; NumPy's
own message (``could not convert string to float: 'X'``, the name of the file's first dataset)
says neither. Called by :func:`ksparse.estimators.params.check_2d`, the first check of every
method of both estimators.
"""

import os

import numpy as np

from ksparse.errors import InputKindError

#: members listed in a message, at most; members visited in a container, at most
SHOWN, VISITED = 8, 200
#: a name a user's data matrix often has, tried first for the message's example
LIKELY = ("X", "X_train", "x", "x_train", "data", "features")


def reject_wrong_kind(X, name="X"):
    """Raise :class:`ksparse.errors.InputKindError` for data that is not one matrix of numbers
    (see the module's doc); return ``X`` unchanged otherwise (arrays, lists of numbers, data
    frames of numbers, scipy.sparse, streamed sources: checked later)."""
    if isinstance(X, (str, bytes, os.PathLike)):
        shown = os.fsdecode(X) if not isinstance(X, bytes) or len(X) < 80 else "..."
        raise InputKindError(f"{name} is a {type(X).__name__} ({shown[:80]!r}), not data; load the file "
                             f"first, e.g. np.load({shown[:80]!r}) for a .npy file")
    if X is None or isinstance(X, (set, frozenset)):
        raise InputKindError(f"{name} is {'None' if X is None else 'a set'}, not data; pass a 2-D array of "
                             "numbers, one sample per row")
    if _is_container(X):
        raise InputKindError(_container_message(X, name))
    if hasattr(X, "iloc") and getattr(X, "ndim", 0) == 2:
        _check_frame(X, name)
    elif isinstance(X, np.ndarray) and X.dtype.kind in "US":
        _check_text(X, name)
    elif isinstance(X, (list, tuple)) and len(X):
        first = X[0]
        row = first if isinstance(first, (list, tuple, np.ndarray)) else X
        _check_text(np.asarray([v for v in list(row)[:SHOWN] if isinstance(v, (str, bytes))]), name)
    return X


def _is_container(X):
    """A mapping of names to arrays (h5py File/Group, zarr Group, NpzFile, dict), not a data frame
    (which has ``keys`` too) nor a scipy.sparse dok matrix."""
    return hasattr(X, "keys") and hasattr(X, "__getitem__") and not hasattr(X, "iloc") \
        and not hasattr(X, "tocsr") and not hasattr(X, "shape")


def _kind(X):
    module, cls = type(X).__module__.split(".")[0], type(X).__name__
    if module == "h5py":
        return f"an h5py {cls}", "f" if cls == "File" else "group", "dataset"
    if module == "zarr":
        return f"a zarr {cls}", "group", "array"
    if cls == "NpzFile":
        return "an NpzFile (np.load of an .npz file)", "data", "array"
    return f"a {cls}", "d", "array"


def members(X, prefix="", found=None):
    """``[(path, shape or None)]`` of the arrays in a container, its groups walked (at most
    :data:`VISITED`); an NpzFile's arrays are named without being read (shape None)."""
    found = [] if found is None else found
    if type(X).__name__ == "NpzFile":
        return [(n, None) for n in X.files[:VISITED]]
    for key in list(X.keys())[:VISITED]:
        if len(found) >= VISITED:
            break
        value = X[key]
        if hasattr(value, "shape") and not _is_container(value):
            found.append((prefix + str(key), tuple(value.shape)))
        elif _is_container(value):
            members(value, f"{prefix}{key}/", found)
        else:
            found.append((prefix + str(key), _shape(value)))
    return found


def _shape(value):
    """The shape of a list of numbers (None for a ragged one, or anything else)."""
    try:
        return np.shape(value) if isinstance(value, (list, tuple)) else None
    except ValueError:
        return None


def _container_message(X, name):
    kind, var, item = _kind(X)
    try:
        found = members(X)
    except Exception:  # a container that cannot be listed: say what it is all the same
        found = []
    if not found:
        return f"{name} is {kind} holding no {item}s, not a data matrix; pass one 2-D array of numbers"
    two_d = [p for p, s in found if s is not None and len(s) == 2]
    pick = next((p for p in LIKELY if p in two_d), two_d[0] if two_d else found[0][0])
    listed = ", ".join(f"{p!r}" + ("" if s is None else f" {s}") for p, s in found[:SHOWN])
    more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
    return (f"{name} is {kind}, not a data matrix; it holds the {item}s {listed}{more}: pass one {item}, "
            f"e.g. {var}[{pick!r}]")


def _check_text(values, name):
    """Refuse text that is not numbers written out (those NumPy converts, as before)."""
    if values.dtype.kind not in "US" or not values.size:
        return
    flat = values.ravel()
    for v in flat[:VISITED] if flat.size > VISITED else flat:
        try:
            float(v)
        except ValueError:
            raise InputKindError(f"{name} holds text ({v.item()!r}), not numbers; ksparse trains on numbers: "
                                 "convert the text to features first (e.g. sklearn's TfidfVectorizer), or "
                                 "load a file with np.load, not its name") from None
    if flat.size > VISITED:
        try:
            flat.astype(np.float64)
        except ValueError as e:
            raise InputKindError(f"{name} holds text, not numbers ({e}); convert it to numbers "
                                 "first") from None


def _check_frame(X, name):
    """Refuse a DataFrame with columns that do not convert to numbers (text, dates), named."""
    bad = []
    for column, dtype in X.dtypes.items():
        kind = getattr(dtype, "kind", "O")
        if kind in "biufc":  # numbers (complex: refused by ksparse.errors.reject_complex)
            continue
        if kind in "Mm":  # dates and durations: NumPy finds no common type with float
            bad.append(f"{column!r} ({dtype})")
            continue
        try:
            np.asarray(X[column].to_numpy(), dtype=np.float64)
        except (ValueError, TypeError):
            bad.append(f"{column!r} ({dtype})")
    if bad:
        shown = ", ".join(bad[:SHOWN]) + (f" (and {len(bad) - SHOWN} more)" if len(bad) > SHOWN else "")
        raise InputKindError(f"{name} has columns that are not numbers: {shown}; keep the numeric ones "
                             f"({name}.select_dtypes('number')) or encode the others first (e.g. sklearn's "
                             "OneHotEncoder)")
