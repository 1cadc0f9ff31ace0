"""The project's own exception types (the bottom layer, beside :mod:`ksparse.backend`).

Each subclasses the built-in exception a caller would catch anyway (``ValueError``), so
``except ValueError`` keeps working, while ``except ksparse.errors.KSparseError`` catches
exactly the faults this library reports. Every message names the one thing that is wrong
and the one thing to do.
"""


class KSparseError(Exception):
    """Base class of every error that ksparse raises on purpose."""


class FileFormatError(KSparseError, ValueError):
    """A file is missing, truncated, corrupt, or not of the kind it should be."""


class DataFileError(FileFormatError):
    """A data file (IDX, CIFAR-10 binary, NORB matrix, ``.npy``, ``.npz``) cannot be read."""


class ModelFileError(FileFormatError):
    """A model file (``model.npz`` from ``ksparse train`` or ``save``) cannot be used."""


class NotEnoughMemoryError(KSparseError, ValueError):
    """A run would need more memory than the machine has available; nothing was allocated."""
