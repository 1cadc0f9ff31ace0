"""One-file persistence: a model and its full training state in one ``.npz``, written atomically.

The file holds the arrays ``W``, ``b``, ``b_prime`` and their velocities ``v_W``,
``v_b``, ``v_b_prime``, plus ``meta``: a JSON string with the hyperparameters, the
number of finished epochs, the RNG state, the history and the library version.
"""

import json
import os
import zipfile

import numpy as np

from ksparse.backend import to_numpy
from ksparse.io import atomic_write

PARAM_NAMES = ("W", "b", "b_prime")
FORMAT = "ksparse-checkpoint-1"


def save_checkpoint(path, params, velocity, meta):
    """Write params, velocities and a JSON-able ``meta`` dict to ``path`` atomically."""
    from ksparse import __version__

    arrays = {name: to_numpy(params[name]) for name in PARAM_NAMES}
    arrays.update({"v_" + name: to_numpy(velocity[name]) for name in PARAM_NAMES})
    meta = dict(meta, format=FORMAT, version=__version__)
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path):
    """Read a file written by :func:`save_checkpoint`.

    Returns
    -------
    params : dict of NumPy arrays
    velocity : dict of NumPy arrays
    meta : dict

    Raises
    ------
    ValueError
        If the file is missing, truncated, corrupt, or not a ksparse checkpoint.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"][()]))
            params = {name: np.array(data[name]) for name in PARAM_NAMES}
            velocity = {name: np.array(data["v_" + name]) for name in PARAM_NAMES}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise ValueError(f"{path!r} is not a readable ksparse model file ({e})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a ksparse model file (format {meta.get('format')!r})")
    W = params["W"]
    if W.ndim != 2 or params["b"].shape != (W.shape[1],) or params["b_prime"].shape != (W.shape[0],):
        raise ValueError(f"{path!r} holds inconsistent shapes; the file is corrupt")
    return params, velocity, meta
