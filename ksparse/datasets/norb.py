"""small NORB from the official binary matrix files, as 2048-dimensional standardised vectors.

Each stereo pair (2 x 96 x 96) is cropped to its centre 64x64, resized to 32x32 with
antialiased bicubic interpolation (the kernel and weights of PIL's ``Image.resize(...,
BICUBIC)``, computed here as a resize matrix), joined into 2 * 32 * 32 = 2048 values
(left image first, each row-major), and standardised per dimension with the training set's
mean and standard deviation. Files are read from ``DIR/norb/``, ``DIR/smallnorb/`` or ``DIR/``.
See ``docs/data.md`` for the layout and the file format.
"""

import dataclasses
import glob
import math
import os
import struct

import numpy as np

from ksparse.datasets import Dataset
from ksparse.datasets import data_dir as _resolve_dir
from ksparse.datasets._files import check_end, on_disk_size, open_data, read_exact
from ksparse.errors import DataFileError, reject_complex

# magic number -> element dtype (little-endian); 0x1E3D4C52 (packed) is not supported
MAGIC = {
    0x1E3D4C51: "<f4",  # single-precision matrix
    0x1E3D4C53: "<f8",  # double-precision matrix
    0x1E3D4C54: "<i4",  # integer matrix (the -cat.mat and -info.mat files)
    0x1E3D4C55: "u1",  # byte matrix (the -dat.mat files)
    0x1E3D4C56: "<i2",  # short matrix
}
MAX_NDIM = 16
CHUNK = 1024  # image pairs resized at a time


@dataclasses.dataclass
class NorbDataset(Dataset):
    """A :class:`Dataset` that also carries the training-set standardisation.

    New features ``f`` from :func:`norb_features` are standardised by
    ``(f - feature_mean) / feature_std``.
    """

    feature_mean: np.ndarray = None
    feature_std: np.ndarray = None


def read_norb_matrix(path):
    """Read a file in the NORB binary matrix format (``.mat`` or ``.mat.gz``).

    Notes
    -----
    Header, all int32 little-endian: the magic number (element type), ``ndim``, then
    ``max(3, ndim)`` dimension sizes; a matrix with fewer than 3 dimensions pads its header
    with sizes of 1, which are not part of its shape. The elements follow, little-endian.

    Raises
    ------
    ValueError
        For an unknown magic number, an implausible ``ndim``, a header promising more data
        than the file holds (checked before any large allocation), or trailing bytes.
    """
    path = os.fspath(path)
    with open_data(path) as f:
        magic, ndim = struct.unpack("<2i", read_exact(f, 8, path))
        if magic & 0xFFFFFFFF not in MAGIC:
            raise DataFileError(
                f"{path!r} is not a NORB binary matrix of a supported type (magic {magic & 0xFFFFFFFF:#x}; "
                f"expected one of {', '.join(hex(m) for m in MAGIC)})"
            )
        if not 0 < ndim <= MAX_NDIM:
            raise DataFileError(f"{path!r} has ndim {ndim} in its header; the file is corrupt")
        n_dims = max(3, ndim)
        dims = struct.unpack(f"<{n_dims}i", read_exact(f, 4 * n_dims, path))
        if min(dims) < 0:
            raise DataFileError(f"{path!r} has negative sizes {dims} in its header; the file is corrupt")
        shape = dims[:ndim]
        dtype = np.dtype(MAGIC[magic & 0xFFFFFFFF])
        n_bytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        size = on_disk_size(path)
        if size is not None and size != 8 + 4 * n_dims + n_bytes:
            raise DataFileError(
                f"{path!r} holds {size} bytes but its header (shape {shape}) describes "
                f"{8 + 4 * n_dims + n_bytes}; the file is truncated or corrupt"
            )
        body = read_exact(f, n_bytes, path)
        check_end(f, path)
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def _cubic(x, a=-0.5):
    """Keys' cubic convolution kernel with a = -0.5 (as PIL's BICUBIC)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def resize_matrix(n_in, n_out):
    """Matrix ``A`` (n_out, n_in) such that ``A @ v`` resizes ``v`` with antialiased bicubic weights.

    Notes
    -----
    PIL's convention: output sample ``i`` sits at ``(i + 0.5) * s`` with ``s = n_in / n_out``;
    when shrinking, the kernel is stretched by ``s`` (antialiasing); weights falling outside
    the input are dropped and each row is renormalised to sum to 1.
    """
    scale = n_in / n_out
    stretch = max(scale, 1.0)
    A = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo = max(int(center - 2 * stretch + 0.5), 0)
        hi = min(int(center + 2 * stretch + 0.5), n_in)
        x = np.arange(lo, hi)
        A[i, lo:hi] = _cubic((x - center + 0.5) / stretch)
    return A / A.sum(axis=1, keepdims=True)


def norb_features(pairs, crop=64, size=32, dtype="float32"):
    """Centre-crop each image to ``crop`` x ``crop``, resize to ``size`` x ``size``, flatten.

    Parameters
    ----------
    pairs : ndarray, shape (N, 2, H, W)
        Stereo pairs as stored in a ``-dat.mat`` file (96 x 96 in small NORB).

    Returns
    -------
    features : ndarray, shape (N, 2 * size * size)
        Left image then right image, each row-major, on the original 0-255 scale.
    """
    reject_complex(pairs, "pairs")
    if pairs.ndim != 4 or min(pairs.shape[2:]) < crop:
        raise ValueError(f"expected image pairs (N, 2, H, W) with H, W >= {crop}, got shape {pairs.shape}")
    top, left = (pairs.shape[2] - crop) // 2, (pairs.shape[3] - crop) // 2
    A = resize_matrix(crop, size)
    out = np.empty((len(pairs), pairs.shape[1] * size * size), dtype=dtype)
    for s in range(0, len(pairs), CHUNK):
        block = pairs[s : s + CHUNK, :, top : top + crop, left : left + crop].astype(np.float64)
        out[s : s + CHUNK] = (A @ block @ A.T).reshape(len(block), -1)  # (n, 2, size, size)
    return out


def find_norb(root):
    """Return ``{"train_dat", "train_cat", "test_dat", "test_cat"}`` paths under ``root``.

    Raises
    ------
    ValueError
        If a file is missing; the message names the files and the folder.
    """
    folders = [os.path.join(root, "norb"), os.path.join(root, "smallnorb"), root]
    paths, missing = {}, []
    for part, word in (("train", "training"), ("test", "testing")):
        for kind in ("dat", "cat"):
            suffix = f"{word}-{kind}.mat"
            found = None
            for folder in folders:
                hits = sorted(glob.glob(os.path.join(glob.escape(folder), f"*{suffix}")))
                hits += sorted(glob.glob(os.path.join(glob.escape(folder), f"*{suffix}.gz")))
                found = found or (hits[0] if hits else None)
            paths[f"{part}_{kind}"] = found
            if paths[f"{part}_{kind}"] is None:
                missing.append(f"smallnorb-*-{suffix}")
    if missing:
        raise ValueError(
            f"small NORB files not found: {', '.join(missing)}. Put the four files (as .mat or .mat.gz, e.g. "
            f"smallnorb-5x46789x9x18x6x2x96x96-training-dat.mat) into {folders[0]}{os.sep}, "
            "or choose another folder with data_dir=... / --data-dir / KSPARSE_DATA "
            "(how to get them: docs/data.md)"
        )
    return paths


def _read_part(dat_path, cat_path, limit):
    pairs, labels = read_norb_matrix(dat_path), read_norb_matrix(cat_path)
    if pairs.ndim != 4 or pairs.shape[1] != 2:
        raise DataFileError(f"{dat_path!r} holds shape {pairs.shape}; expected stereo pairs (N, 2, 96, 96)")
    if labels.ndim != 1 or len(labels) != len(pairs) or labels.dtype.kind != "i":
        raise DataFileError(
            f"{cat_path!r} holds {labels.dtype} of shape {labels.shape}; expected {len(pairs)} integer labels"
        )
    return pairs[:limit], labels[:limit].astype(np.int64)


def load_small_norb(data_dir=None, n_train=None, n_test=None, crop=64, size=32, dtype="float32"):
    """small NORB as (N, 2048) vectors: centre crop, bicubic resize, per-dimension standardisation.

    Parameters
    ----------
    data_dir : str, optional
        Folder holding ``norb/`` (or the files); default ``$KSPARSE_DATA``, else ``~/.cache/ksparse``.
    n_train, n_test : int, optional
        Keep only the first so many pairs of each file (the files are not shuffled).
    crop, size : int
        Centre crop and output side (64 and 32 as in the paper).

    Returns
    -------
    NorbDataset
        ``X_train``/``X_test`` standardised with the training mean and std (a constant
        dimension gets std 1), labels 0-4, ``image_shape`` (2, size, size).
    """
    for value, name in ((n_train, "n_train"), (n_test, "n_test")):
        integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        if value is not None and (not integer or value < 1):
            raise ValueError(f"{name} must be None or a positive integer, got {value!r}")
    paths = find_norb(_resolve_dir(data_dir))
    train_pairs, y_train = _read_part(paths["train_dat"], paths["train_cat"], n_train)
    test_pairs, y_test = _read_part(paths["test_dat"], paths["test_cat"], n_test)
    X_train = norb_features(train_pairs, crop, size, dtype)
    mean = X_train.mean(axis=0, dtype=np.float64)
    std = X_train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    X_test = norb_features(test_pairs, crop, size, dtype)
    for X in (X_train, X_test):  # in place: the full set is 24,300 x 2048 per split
        X -= mean.astype(X.dtype)
        X /= std.astype(X.dtype)
    return NorbDataset(
        "norb", X_train, y_train, X_test, y_test,
        image_shape=(2, size, size), feature_mean=mean, feature_std=std,
    )
