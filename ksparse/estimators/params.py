"""Checks of the estimators' run parameters (those outside the configs): a value that would
only fail later, deep in training, is refused when the parameters are validated, with a
:class:`ksparse.config.ConfigError` naming the parameter and what it accepts."""

import os

from ksparse.config import ConfigError, ConfigTypeError


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
