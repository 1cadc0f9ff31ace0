"""One-file persistence: a model and its full training state in one ``.npz``, written atomically.

The file holds the arrays ``W``, ``b``, ``b_prime`` and their velocities ``v_W``,
``v_b``, ``v_b_prime``, plus ``meta``: a JSON string with the hyperparameters, the
number of finished epochs, the RNG state, the history, the library version and the
file format (``ksparse-checkpoint-N``). Reading validates every array: its dtype, its
shape against ``W`` and its values (all finite), and refuses files of a newer format.
"""

import json
import os

import numpy as np

from ksparse.backend import to_numpy
from ksparse.errors import ModelFileError
from ksparse.io import atomic_write, npz_keys, open_npz, read_npz_array

PARAM_NAMES = ("W", "b", "b_prime")
FORMAT_PREFIX = "ksparse-checkpoint-"
FORMAT_VERSION = 1
FORMAT = f"{FORMAT_PREFIX}{FORMAT_VERSION}"
FLOAT_DTYPES = ("float32", "float64")
_GIVE_MODEL = "give a model.npz written by `ksparse train` or save()"


def save_checkpoint(path, params, velocity, meta):
    """Write params, velocities and a JSON-able ``meta`` dict to ``path`` atomically."""
    from ksparse import __version__

    arrays = {name: to_numpy(params[name]) for name in PARAM_NAMES}
    arrays.update({"v_" + name: to_numpy(velocity[name]) for name in PARAM_NAMES})
    meta = dict(meta, format=FORMAT, version=__version__)
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def check_format(meta, path):
    """Raise ModelFileError unless ``meta`` names a checkpoint format this version reads."""
    fmt = meta.get("format") if isinstance(meta, dict) else None
    number = fmt[len(FORMAT_PREFIX):] if isinstance(fmt, str) and fmt.startswith(FORMAT_PREFIX) else ""
    if not number.isdigit():
        if isinstance(meta, dict) and fmt is None and {"epochs", "history"} <= set(meta):
            raise ModelFileError(_cached_by_reproduce(meta, path))
        what = f"format {fmt!r}" if fmt is not None else "its metadata names no model format"
        raise ModelFileError(f"{path!r} is not a readable ksparse model file ({what}); " + _GIVE_MODEL)
    version = int(number)
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path!r} was written by a newer ksparse ({meta.get('version', '?')}, model format {version}; "
            f"this ksparse reads format {FORMAT_VERSION} and older); upgrade ksparse to read it")


def _cached_by_reproduce(meta, path):
    """What a model cached by ``ksparse reproduce`` is, and what to do with it: its arrays by
    numpy.load, or the ``ksparse train`` command of a model with its settings."""
    from ksparse.config import PAPER_OFF, AutoencoderConfig, flag

    settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
    method, data = settings.get("method", "?"), settings.get("data", "?")
    text = (f"{path!r} is a model cached by `ksparse reproduce` ({method} on {data}): its weights and "
            "history, not the model file with training state that ksparse info/encode and "
            f"KSparseAutoencoder.load read; read its arrays with numpy.load({os.fspath(path)!r})")
    if method != "ksparse":
        return text + " (it is not a k-sparse autoencoder)"
    defaults = AutoencoderConfig().to_dict()
    ignored = PAPER_OFF if settings.get("paper") else ()
    options = [f"{flag(n)} {v}" if not isinstance(v, bool) else flag(n) if v else "--no-" + flag(n)[2:]
               for n, v in settings.items() if n in defaults and v != defaults[n] and n not in ignored]
    return (text + " (codes of raw inputs x: x @ W_enc + b_enc, then the alpha k largest), or train "
            f"such a model: ksparse train --dataset {data} {' '.join(options)} --out DIR")


def check_arrays(params, velocity, path):
    """Raise ModelFileError unless the six arrays are float, consistent in shape and finite.

    ``W`` is (d, H), ``b`` (H,), ``b_prime`` (d,); each velocity has its parameter's shape;
    all six share one dtype, float32 or float64, and hold no NaN or inf.
    """
    W = params["W"]
    if W.ndim != 2 or 0 in W.shape:
        raise ModelFileError(f"{path!r} holds W of shape {W.shape}, not a (d, H) matrix; the file is corrupt")
    shapes = {"W": W.shape, "b": (W.shape[1],), "b_prime": (W.shape[0],)}
    for name in PARAM_NAMES:
        for label, a in ((name, params[name]), ("v_" + name, velocity[name])):
            if a.dtype.name not in FLOAT_DTYPES or a.dtype != W.dtype:
                raise ModelFileError(f"{path!r} holds {label} of dtype {a.dtype}, expected {W.dtype} "
                                     "(float32 or float64); the file is corrupt")
            if a.shape != shapes[name]:
                raise ModelFileError(f"{path!r} holds {label} of shape {a.shape}, expected {shapes[name]} "
                                     f"for W of shape {W.shape}; the file is corrupt")
            if not np.all(np.isfinite(a)):
                raise ModelFileError(f"{path!r} holds NaN or inf in {label}; the model is unusable, "
                                     "train it again (or resume from an earlier checkpoint)")


def load_checkpoint(path):
    """Read a file written by :func:`save_checkpoint`.

    Returns
    -------
    params : dict of NumPy arrays
    velocity : dict of NumPy arrays
    meta : dict

    Raises
    ------
    ksparse.errors.ModelFileError
        (a ``ValueError``) If the file is missing, truncated, corrupt, not a ksparse
        checkpoint, of a newer format, or holds arrays of wrong dtype, shape or non-finite values.
    """
    path = os.fspath(path)
    if os.path.isdir(path):  # `--resume runs/x`, `encode runs/x ...`: the run's folder, not its model
        inside = os.path.join(path, "model.npz")
        fix = (f"give the model file in it, {inside}" if os.path.isfile(inside) else
               "give the path of a model.npz written by `ksparse train` or save()")
        raise ModelFileError(f"model file {path!r} is a folder; {fix}")
    if not os.path.isfile(path):
        raise ModelFileError(f"model file {path!r} does not exist; check the path")
    what = f"{path!r} (a ksparse model file)"
    with open_npz(path, ModelFileError, "a readable ksparse model file", _GIVE_MODEL) as zf:
        if "meta" not in npz_keys(zf):
            raise ModelFileError(f"{path!r} is not a readable ksparse model file (it has no 'meta'); " +
                                 _GIVE_MODEL)
        raw = read_npz_array(zf, "meta", what, ModelFileError)
        try:
            meta = json.loads(str(raw[()]))
        except (ValueError, TypeError, IndexError, RecursionError):
            raise ModelFileError(f"{path!r} has unreadable metadata; the file is corrupt") from None
        check_format(meta, path)
        params = {name: read_npz_array(zf, name, what, ModelFileError) for name in PARAM_NAMES}
        velocity = {name: read_npz_array(zf, "v_" + name, what, ModelFileError) for name in PARAM_NAMES}
    check_arrays(params, velocity, path)
    return params, velocity, meta
