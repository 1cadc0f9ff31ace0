"""The project's own exception types (the bottom layer, beside :mod:`ksparse.backend`).

Each subclasses the built-in exception a caller would catch anyway (``ValueError``), so
``except ValueError`` keeps working, while ``except ksparse.errors.KSparseError`` catches
exactly the faults this library reports. Every message names the one thing that is wrong
and the one thing to do.
"""

import numpy as np


class KSparseError(Exception):
    """Base class of every error that ksparse raises on purpose."""


class FileFormatError(KSparseError, ValueError):
    """A file is missing, truncated, corrupt, or not of the kind it should be."""


class DataFileError(FileFormatError):
    """A data file (IDX, CIFAR-10 binary, NORB matrix, ``.npy``, ``.npz``) cannot be read."""


class ModelFileError(FileFormatError):
    """A model file (``model.npz`` from ``ksparse train`` or ``save``) cannot be used."""


class OutputNotWritableError(KSparseError, OSError):
    """An output location cannot be written; found before any work was done."""


class OutputOverwritesError(KSparseError, ValueError):
    """An output would replace one of the command's own inputs, or an earlier result not meant to go."""


class NotEnoughMemoryError(KSparseError, ValueError):
    """A run would need more memory than the machine has available; nothing was allocated."""


class ComplexDataError(KSparseError, ValueError, TypeError):
    """Complex numbers where ksparse needs real ones (it never drops an imaginary part).

    Both a ``ValueError`` (as scikit-learn raises for complex data) and a ``TypeError``.
    """


class InputKindError(KSparseError, ValueError, TypeError):
    """Data of the wrong kind: a container of arrays (an h5py File, an ``.npz`` loaded whole), a
    path, or text where numbers belong (:mod:`ksparse.estimators.inputs`).

    Both a ``ValueError`` (NumPy's conversion raised one) and a ``TypeError``.
    """


def not_2d(name, shape, columns="n_features"):
    """The ValueError for data that is not 2-D, naming the reshape that makes it so.

    Parameters
    ----------
    name : str
        The data's name in the message (an argument or a file).
    shape : tuple of int
    columns : str
        What the columns are (``n_features``).
    """
    shape = tuple(shape)
    if len(shape) > 2:
        hint = "flatten each sample first: a.reshape(len(a), -1) for a numpy array a"
    else:
        hint = "one sample is a.reshape(1, -1) and one feature a.reshape(-1, 1) for a numpy array a"
    return ValueError(f"{name} must be 2-D (n_samples, {columns}), got {len(shape)}-D shape {shape}; {hint}")


def reject_complex(x, name="X"):
    """Raise :class:`ComplexDataError` if ``x`` holds complex numbers; return ``x`` unchanged.

    NumPy would silently drop the imaginary part on conversion to float (with only a
    ``ComplexWarning``); every place where data enters ksparse calls this first.
    """
    dtype = getattr(x, "dtype", None)
    if (dtype is not None and getattr(dtype, "kind", None) == "c") or (dtype is None and _any_complex(x)):
        raise ComplexDataError(f"Complex data not supported: {name} holds complex numbers; pass the real "
                               "values you mean (X.real, or abs(X) for magnitudes)")
    return x


def _any_complex(x):
    """True if a non-array input (a list, a scalar) holds a complex number."""
    if isinstance(x, complex):
        return True
    if isinstance(x, (list, tuple)):
        return any(_any_complex(v) for v in x)
    return False


def reject_nonfinite(x, name="X", first_row=0):
    """Raise ``ValueError`` naming the first row and column of ``x`` that holds NaN or inf.

    Parameters
    ----------
    x : ndarray, shape (n_rows, n_features)
        A block of data (NumPy).
    name : str
        The argument's name in the message.
    first_row : int
        The index of ``x``'s first row in the whole data set (for blocks of a stream).
    """
    bad = ~np.isfinite(x)
    if not bad.any():
        return x
    where = np.argwhere(bad)
    row, col = (int(i) for i in where[0]) if bad.ndim == 2 else (int(where[0][0]), None)
    at = f"row {first_row + row}" + ("" if col is None else f", column {col}")
    more = f" (and {len(where) - 1} more value{'s' if len(where) > 2 else ''})" if len(where) > 1 else ""
    value = float(x[tuple(where[0])])
    raise ValueError(f"{name} contains NaN or inf: {value} at {at}{more}; clean or impute the data first")
