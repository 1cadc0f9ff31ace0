"""The memory a training run needs, estimated and checked before anything is allocated.

One function that the command line and the estimator both reach (through
:func:`ksparse.training.loop.new_state`): a run that cannot fit says how much it needs,
how much is available, and which one option to lower.
"""

import numpy as np

from ksparse.backend import available_memory
from ksparse.errors import NotEnoughMemoryError


def training_bytes(d, n_hidden, batch_size, dtype):
    """Bytes of the arrays a run holds: weights, velocities and z for one batch, in ``dtype``.

    Parameters
    ----------
    d, n_hidden, batch_size : int
    dtype : str or dtype
        The configured floating type (float32 or float64).

    Returns
    -------
    dict
        ``weights`` (W, b, b'), ``velocities`` (the same again, Eq. 11) and ``z`` (one
        minibatch of hidden pre-activations, (batch_size, n_hidden)), in bytes, and ``total``.
    """
    itemsize = np.dtype(dtype).itemsize
    weights = (d * n_hidden + n_hidden + d) * itemsize
    parts = {"weights": weights, "velocities": weights, "z": batch_size * n_hidden * itemsize}
    parts["total"] = sum(parts.values())
    return parts


def _size(n):
    """Bytes as a short decimal string: '805 MB', '77.6 GB'."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def check_memory(d, n_hidden, batch_size, dtype, device="cpu", available=None):
    """Raise NotEnoughMemoryError when a run's arrays (:func:`training_bytes`) exceed what is free.

    Parameters
    ----------
    available : int, optional
        Free bytes; default :func:`ksparse.backend.available_memory` of ``device``. When
        that cannot be told, nothing is checked.

    Returns
    -------
    need : int
        The estimated bytes.

    Raises
    ------
    ksparse.errors.NotEnoughMemoryError
        (a ``ValueError``) Naming the bytes needed, the bytes available, and the option to
        lower: ``n_hidden`` when the weights and velocities dominate, else ``batch_size``.
    """
    parts = training_bytes(d, n_hidden, batch_size, dtype)
    available = available_memory(device) if available is None else available
    if available is not None and parts["total"] > available:
        fix = "n_hidden" if parts["weights"] + parts["velocities"] >= parts["z"] else "batch_size"
        raise NotEnoughMemoryError(
            f"training needs about {_size(parts['total'])} (weights, velocities and one batch of z in "
            f"{np.dtype(dtype).name} for d={d}, n_hidden={n_hidden}, batch_size={batch_size}) but only "
            f"{_size(available)} is available on the {device}; lower {fix}")
    return parts["total"]
