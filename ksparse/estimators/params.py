"""Checks of the estimators' run parameters (those outside the configs): a value that would
only fail later, deep in training, is refused when the parameters are validated, with a
:class:`ksparse.config.ConfigError` naming the parameter and what it accepts."""

import os

import numpy as np

from ksparse.config import ConfigError, ConfigTypeError
from ksparse.errors import not_2d


def check_callable(name, value):
    """``value`` is None or a callable; else ConfigTypeError naming ``name``."""
    if value is not None and not callable(value):
        raise ConfigTypeError(name, "must be a callable or None", value)
    return value


def check_bool(name, value):
    """``value`` is True or False (a NumPy bool too); else ConfigTypeError naming ``name``."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise ConfigTypeError(name, "must be True or False", value)
    return bool(value)


def check_path(name, value):
    """``value`` is None or a non-empty path (str or os.PathLike); else ConfigTypeError (another
    type) or ConfigError (an empty path) naming ``name``."""
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise ConfigTypeError(name, "must be a file path (str or os.PathLike) or None", value)
    if value is not None and not os.fspath(value).strip():  # '' is falsy: no checkpoint would be written
        raise ConfigError(name, "must be a file path or None, not empty", value)
    return value


def check_progress(value):
    """``progress``: True (a tqdm bar), False or None (none), or a callable ``progress(rows)``."""
    if value is None or type(value).__name__ in ("bool", "bool_") or callable(value):
        return value
    raise ConfigTypeError("progress", "must be True (a tqdm bar), False or None (none), or a callable "
                          "progress(rows)", value)


def check_fraction(name, value, high_open=True):
    """A finite number in [0, 1) (``high_open``) or [0, 1]; else ConfigError naming ``name``."""
    bad_type = isinstance(value, bool) or not isinstance(value, (int, float)) and \
        type(value).__name__ not in ("float64", "float32", "int64")
    rule = f"must be a number in [0, 1{')' if high_open else ']'}"
    if bad_type:
        raise ConfigTypeError(name, rule, value)
    if not (0.0 <= float(value) < 1.0 if high_open else 0.0 <= float(value) <= 1.0):
        raise ConfigError(name, rule, value)
    return float(value)


class progress_bar:
    """What ``progress`` means during one fit: a context manager giving a ``progress(rows)``
    function or None. True opens a tqdm bar over ``total`` samples (closed on exit)."""

    def __init__(self, progress, total):
        self.progress, self.total, self.bar = progress, total, None

    def __enter__(self):
        if callable(self.progress):
            return self.progress
        if not self.progress:  # False or None (check_progress let nothing else through)
            return None
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, unit="sample", unit_scale=True, desc="training")
        return self.bar.update

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False


def check_2d(X, name="X", columns="n_features"):
    """Refuse a 0-D or 1-D ``X`` in one line, as scikit-learn words it ("Reshape your data"),
    before scikit-learn's own message, which prints the whole array, and a 3-D or higher one
    naming the reshape that flattens its samples; other inputs pass unchanged.

    Raises
    ------
    ValueError
        ``X must be 2-D (n_samples, n_features), got 1-D shape (5,). Reshape your data: ...``.
    """
    ndim = getattr(X, "ndim", None)
    if ndim is None and isinstance(X, (list, tuple)):  # a flat list of numbers
        ndim = 1 if len(X) and not hasattr(X[0], "__len__") else None
    if ndim in (0, 1):
        shape = tuple(getattr(X, "shape", (len(X),)))
        raise ValueError(f"{name} must be 2-D (n_samples, {columns}), got {ndim}-D shape {shape}. "
                         f"Reshape your data: one sample is {name}.reshape(1, -1)")
    if ndim is not None and ndim > 2:
        raise not_2d(name, X.shape, columns)
    return X


def check_labels(X, y, name_X="X", name_y="y"):
    """Refuse labels ``y`` that are not one per row of ``X`` (after :func:`check_2d`): missing, of
    more than one column, or of another length, in one line naming both; ``y`` of shape (N, 1)
    passes (scikit-learn warns and ravels it).

    Raises
    ------
    ValueError
        ``y has 50 labels but X has 60 rows; give one label per row of X``.
    """
    if y is None:
        raise ValueError(f"this estimator requires {name_y} to be passed, but the target {name_y} is None; "
                         f"give one class label per row of {name_X}, shape (n_samples,)")
    shape = getattr(y, "shape", None)
    if shape is None:
        try:
            shape = np.asarray(y).shape  # not np.shape: array-likes may refuse __array_function__
        except ValueError:  # ragged nested lists
            shape = (len(y), None)
    n = (getattr(X, "shape", None) or np.asarray(X).shape)[0]
    if len(shape) != 1 and not (len(shape) == 2 and shape[1] == 1):
        raise ValueError(f"{name_y} must be 1-D (n_samples,), one class label per row of {name_X}, got shape "
                         f"{tuple(shape)}")
    if shape[0] != n:
        raise ValueError(f"{name_y} has {shape[0]} labels but {name_X} has {n} rows; give one label per row "
                         f"of {name_X}")
    return y
