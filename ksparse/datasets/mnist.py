"""MNIST from the four standard IDX files, with the paper's 50,000 / 10,000 / 10,000 split.

The files are looked up in ``DIR/mnist/`` and then ``DIR/``, gzipped or not, where ``DIR`` is
the ``data_dir`` argument, else ``$KSPARSE_DATA``, else ``~/.cache/ksparse``. Missing files
are downloaded from public mirrors into ``DIR/mnist/`` by pooch (which checks the served
files' hashes, retries, and moves a file into place only once it is verified), then
verified by the md5 of their decompressed bytes. See ``docs/data.md``.
"""

import hashlib
import math
import os
import struct

import numpy as np

from ksparse.datasets import Dataset
from ksparse.datasets import data_dir as _resolve_dir
from ksparse.datasets._files import check_end, find_file, on_disk_size, open_data, read_exact
from ksparse.datasets._files import download as _download
from ksparse.errors import DataFileError

# Base URLs tried in turn; each serves the four ``.gz`` files.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# role -> file name without ``.gz``
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# md5 of the decompressed bytes (../shared/DESIGN.md, "Data")
MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

# pooch's registry: md5 of the gzipped files as the mirrors serve them (the originals of
# yann.lecun.com, as also listed by torchvision). Local copies may be re-compressed, so
# files read from a data directory are verified by MD5, the decompressed bytes, instead.
HASHES = {
    "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
}

# IDX type byte -> NumPy dtype (the data are big-endian)
IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path, md5=None):
    """Read an IDX file (``.gz`` or raw) into a NumPy array.

    Parameters
    ----------
    path : str
    md5 : str, optional
        Expected md5 hex digest of the (decompressed) file; checked when given.

    Returns
    -------
    array : ndarray, shape given by the header

    Raises
    ------
    ValueError
        For a wrong magic number, a header that promises more data than the file holds
        (checked before any large allocation), trailing bytes, or an md5 mismatch.
    """
    path = os.fspath(path)
    digest = hashlib.md5()
    with open_data(path) as f:
        magic = read_exact(f, 4, path, digest)
        if magic[:2] != b"\0\0" or magic[2] not in IDX_TYPES or magic[3] == 0:
            raise DataFileError(f"{path!r} is not an IDX file (magic bytes {magic.hex()}, expected 0000TTNN)")
        dtype = np.dtype(IDX_TYPES[magic[2]])
        dims = struct.unpack(f">{magic[3]}I", read_exact(f, 4 * magic[3], path, digest))
        n_bytes = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
        size = on_disk_size(path)
        if size is not None and size != 4 + 4 * len(dims) + n_bytes:
            raise DataFileError(
                f"{path!r} holds {size} bytes but its header (shape {dims}) describes "
                f"{4 + 4 * len(dims) + n_bytes}; the file is truncated or corrupt"
            )
        body = read_exact(f, n_bytes, path, digest)
        check_end(f, path)
    if md5 is not None and digest.hexdigest() != md5:
        raise DataFileError(
            f"{path!r} has md5 {digest.hexdigest()} (decompressed), expected {md5}; "
            "delete it so that it is downloaded again"
        )
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _missing_message(root, missing, failures):
    names = ", ".join(f"{name}.gz" for name in missing)
    where = os.path.join(root, "mnist")
    msg = (f"the MNIST files {names} are not in {where}{os.sep} (nor in {root}{os.sep}); put the IDX "
           f"files there (gzipped or not), or point --data-dir / KSPARSE_DATA at a folder holding "
           f"mnist/ (how to get them: docs/data.md)")
    return msg + (f"; downloading failed: {failures}" if failures else "; downloading is switched off")


def locate_mnist(root, download=True, mirrors=MIRRORS, checksums=MD5, timeout=60, hashes=HASHES,
                 retries=1, progress=False):
    """Return ``{role: path}`` for the four files, downloading the missing ones if allowed.

    Downloads go through :func:`ksparse.datasets._files.download` (pooch): checked against
    ``hashes`` (the gzipped files), then against ``checksums`` (their decompressed bytes).

    Raises
    ------
    ValueError
        If a file is missing and cannot be downloaded; the message says where to put it.
    """
    folders = [os.path.join(root, "mnist"), root]
    paths, missing, failures = {}, [], []
    for role, name in FILES.items():
        paths[role] = find_file(folders, [name + ".gz", name])
        if paths[role] is None:
            missing.append(name)
    for name in list(missing) if download else []:
        role = next(r for r, n in FILES.items() if n == name)
        try:
            paths[role] = _download(name + ".gz", mirrors, os.path.join(root, "mnist"),
                                    (hashes or {}).get(name + ".gz"), checksums.get(name), timeout,
                                    retries, progress)
            missing.remove(name)
        except ValueError as e:
            failures.append(str(e))
            break  # the other files come from the same mirrors: one failure says enough
    if missing:
        raise ValueError(_missing_message(root, missing, "; ".join(failures)))
    return paths


def _check_count(value, name):
    integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if value is not None and (not integer or value < 0):
        raise ValueError(f"{name} must be None or a non-negative integer, got {value!r}")


def _pixels(images, count, dtype):
    """First ``count`` images as flat rows in [0, 1]."""
    images = images[:count]
    flat = images.reshape(len(images), int(np.prod(images.shape[1:])))
    return flat.astype(dtype) / dtype.type(255)


def load_mnist(
    data_dir=None,
    n_train=None,
    n_val=None,
    n_test=None,
    val_size=10000,
    dtype="float32",
    download=True,
    mirrors=MIRRORS,
    checksums=MD5,
    verify=True,
    timeout=60,
    hashes=HASHES,
    retries=1,
    progress=False,
):
    """MNIST with the paper's split: 50,000 train, 10,000 validation, 10,000 test.

    Parameters
    ----------
    data_dir : str, optional
        Folder holding ``mnist/`` (or the files themselves); default ``$KSPARSE_DATA``, else
        ``~/.cache/ksparse``.
    n_train, n_val, n_test : int, optional
        Keep only the first so many samples of each split (for speed).
    val_size : int
        Validation set: the last ``val_size`` images of the training file (10,000 in the paper).
    dtype : str or dtype
        Floating dtype of the pixels, scaled to [0, 1].
    download : bool
        Fetch missing files from ``mirrors`` (base URLs, tried in turn).
    checksums : dict
        File name (without ``.gz``) -> md5 of its decompressed bytes; downloads are always
        verified against it, local files too when ``verify`` is true.
    timeout : float
        Seconds to wait for a mirror.
    hashes : dict or None
        pooch's registry: file name (with ``.gz``) -> hash of the file as served
        (``"md5:..."``); downloads are checked against it before they are kept.
    retries : int
        Further attempts per mirror after a failed download.
    progress : bool
        Draw a download progress bar on stderr.

    Returns
    -------
    Dataset
        ``X_*`` of shape (N, 784), ``y_*`` int64 labels 0-9, ``image_shape`` (28, 28).
    """
    for value, name in ((n_train, "n_train"), (n_val, "n_val"), (n_test, "n_test"), (val_size, "val_size")):
        _check_count(value, name)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating type such as 'float32', got {dtype}")
    root = _resolve_dir(data_dir)
    paths = locate_mnist(root, download, mirrors, checksums, timeout, hashes, retries, progress)
    arrays = {}
    for role, path in paths.items():
        arrays[role] = read_idx(path, checksums.get(FILES[role]) if verify else None)
    for part in ("train", "test"):
        images, labels = arrays[part + "_images"], arrays[part + "_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"MNIST {part} files do not match: images {images.shape}, labels {labels.shape}; "
                "expected (N, rows, cols) and (N,)"
            )
    images, labels = arrays["train_images"], arrays["train_labels"].astype(np.int64)
    n_fit = len(images) - val_size
    if n_fit <= 0:
        raise ValueError(f"val_size={val_size} leaves no training images out of {len(images)}")
    n_train = n_fit if n_train is None else min(n_train, n_fit)
    n_val = val_size if n_val is None else min(n_val, val_size)
    test_images, test_labels = arrays["test_images"], arrays["test_labels"].astype(np.int64)
    n_test = len(test_images) if n_test is None else min(n_test, len(test_images))
    return Dataset(
        "mnist",
        X_train=_pixels(images, n_train, dtype),
        y_train=labels[:n_train],
        X_test=_pixels(test_images, n_test, dtype),
        y_test=test_labels[:n_test],
        X_val=_pixels(images[n_fit:], n_val, dtype) if val_size else None,
        y_val=labels[n_fit : n_fit + n_val] if val_size else None,
        image_shape=tuple(int(s) for s in images.shape[1:]),
    )
