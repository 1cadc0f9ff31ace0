"""Checks of the estimators' run parameters (those outside the configs): a value that would
only fail later, deep in training, is refused when the parameters are validated, with a
:class:`ksparse.config.ConfigError` naming the parameter and what it accepts."""

import difflib
import inspect
import os

import numpy as np

from ksparse.argparsing import SYNONYMS
from ksparse.config import ConfigError, ConfigTypeError
from ksparse.errors import not_2d
from ksparse.estimators.inputs import reject_wrong_kind


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
    """Refuse data of the wrong kind (:func:`ksparse.estimators.inputs.reject_wrong_kind`), and a 0-D
    or 1-D ``X`` in one line, as scikit-learn words it ("Reshape your data"), before scikit-learn's
    own message, which prints the whole array, and a 3-D or higher one naming the reshape that
    flattens its samples; other inputs pass unchanged.

    Raises
    ------
    ValueError
        ``X must be 2-D (n_samples, n_features), got 1-D shape (5,). Reshape your data: ...``.
    """
    reject_wrong_kind(X, name)  # an h5py File, an .npz loaded whole, a dict, a path, text
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


#: parameters renamed since ksparse 0.1.0 (docs/changes.md), old -> new, in either estimator
RENAMED_PARAMS = {"n_epochs": "max_iter", "seed": "random_state", "hidden_layer_sizes": "n_hidden",
                  "pretrain_epochs": "pretrain_max_iter"}


class KnownParams:
    """Mixin of the estimators: a keyword that is not one of the parameters is the TypeError
    Python raises, naming the closest parameters (``n_hiden`` -> ``n_hidden``) or the new name of
    a renamed one; checked in ``__new__``, so that ``__init__`` only stores its arguments."""

    def __new__(cls, *args, **kwargs):
        names = cls._get_param_names() if kwargs or args else ()
        unknown = [name for name in kwargs if name not in names]
        if unknown:
            raise TypeError(unknown_params_message(cls.__name__, unknown[0], names))
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        if args and all(p.kind == p.KEYWORD_ONLY for p in params):
            raise TypeError(f"{cls.__name__}() takes its parameters by name only, e.g. "
                            f"{cls.__name__}({params[0].name}={args[0]!r})")
        return super().__new__(cls)


def unknown_params_message(owner, name, names):
    """``KSparseAutoencoder() got an unexpected keyword argument 'n_hiden'; did you mean 'n_hidden'?``"""
    text = f"{owner}() got an unexpected keyword argument {name!r}"
    if RENAMED_PARAMS.get(name) in names:
        return f"{text}; {name!r} is now {RENAMED_PARAMS[name]!r} (docs/changes.md)"
    synonyms = {old[2:].replace("-", "_"): new[2:].replace("-", "_") for old, new in SYNONYMS.items()}
    if synonyms.get(name.lower()) in names:  # another library's word: learning_rate
        return f"{text}; did you mean {synonyms[name.lower()]!r}?"
    near = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.6)
    if near:
        return f"{text}; did you mean " + " or ".join(repr(n) for n in near) + "?"
    return f"{text}; {owner}().get_params() lists its parameters"
