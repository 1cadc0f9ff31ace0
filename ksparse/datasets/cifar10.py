"""CIFAR-10 patches: random 8x8 patches, local contrast normalisation, ZCA whitening.

The pipeline of Coates, Lee and Ng (2011), used for the paper's Fig. 3. The official binary
batches (``data_batch_*.bin``, ``test_batch.bin``) are read from ``DIR/cifar10/``,
``DIR/cifar-10-batches-bin/`` or ``DIR/``. A patch is a row of 192 values in (row, column,
channel) order, so ``row.reshape(8, 8, 3)`` is an RGB image. See ``docs/data.md``.
"""

import dataclasses
import glob
import os

import numpy as np

from ksparse.datasets import Dataset
from ksparse.datasets import data_dir as _resolve_dir
from ksparse.errors import DataFileError, reject_complex

RECORD = 1 + 3 * 32 * 32  # label byte, then the R, G, B planes (32x32 each, row-major)
LCN_EPS = 10.0  # added to the per-patch variance, on the 0-255 pixel scale (Coates et al. 2011)
ZCA_EPS = 0.1  # added to the eigenvalues of the LCN'd patch covariance (Coates et al. 2011)
CHUNK = 1 << 16  # patches processed at a time, to bound memory for 1,000,000 patches


@dataclasses.dataclass
class PatchDataset(Dataset):
    """A :class:`Dataset` of whitened patches that also carries the whitening parameters.

    New patches ``p`` (raw pixels, (N, 192)) are whitened the same way by
    ``zca_whiten(lcn(p, lcn_eps), zca_mean, zca_matrix)``.
    """

    zca_mean: np.ndarray = None
    zca_matrix: np.ndarray = None
    lcn_eps: float = None
    zca_eps: float = None


def read_cifar_batch(path):
    """Read one official CIFAR-10 binary batch holding any number of whole records.

    Returns
    -------
    images : ndarray of uint8, shape (N, 32, 32, 3)
        A view in (row, column, channel) order.
    labels : ndarray of int64, shape (N,)

    Raises
    ------
    ValueError
        If the file is empty, holds a partial record, or a label outside 0-9.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size == 0 or size % RECORD:
        raise DataFileError(
            f"{path!r} holds {size} bytes, not a whole number of {RECORD}-byte CIFAR-10 records "
            f"({size // RECORD} whole, {size % RECORD} bytes left over); it is truncated or not CIFAR-10"
        )
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise DataFileError(
            f"{path!r} has label {labels.max()}; CIFAR-10 labels are 0-9, so this is not a CIFAR-10 batch")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def find_batches(root):
    """Return (sorted list of training batch paths, test batch path or None) under ``root``.

    Raises
    ------
    ValueError
        If no ``data_batch_*.bin`` is found; the message says where to put them.
    """
    folders = [os.path.join(root, "cifar10"), os.path.join(root, "cifar-10-batches-bin"), root]
    for folder in folders:
        train = sorted(glob.glob(os.path.join(glob.escape(folder), "data_batch_*.bin")))
        if train:
            test = os.path.join(folder, "test_batch.bin")
            return train, (test if os.path.isfile(test) else None)
    raise ValueError(
        f"no CIFAR-10 binary batches found: put data_batch_1.bin ... data_batch_5.bin and "
        f"test_batch.bin (the 'CIFAR-10 binary version') into {folders[0]}{os.sep}, "
        "or choose another folder with data_dir=... / --data-dir / KSPARSE_DATA "
        "(how to get them: docs/data.md)"
    )


def extract_patches(images, n_patches, rng, size=8):
    """Draw ``n_patches`` patches uniformly: a random image, then a random top-left corner.

    Parameters
    ----------
    images : ndarray, shape (N, rows, cols, channels)
    rng : numpy.random.Generator

    Returns
    -------
    patches : ndarray of images.dtype, shape (n_patches, size * size * channels)
    which : ndarray of int64, shape (n_patches,)
        The index of each patch's source image.
    """
    n, rows, cols, channels = images.shape
    which = rng.integers(0, n, n_patches)
    top = rng.integers(0, rows - size + 1, n_patches)
    left = rng.integers(0, cols - size + 1, n_patches)
    step = np.arange(size)
    out = np.empty((n_patches, size * size * channels), dtype=images.dtype)
    for s in range(0, n_patches, CHUNK):
        i, r, c = which[s : s + CHUNK], top[s : s + CHUNK], left[s : s + CHUNK]
        block = images[i[:, None, None], (r[:, None] + step)[:, :, None], (c[:, None] + step)[:, None, :]]
        out[s : s + CHUNK] = block.reshape(len(i), -1)
    return out, which


def lcn(patches, eps=LCN_EPS, dtype=np.float64):
    """Local contrast normalisation per patch: ``(p - mean(p)) / sqrt(var(p) + eps)``.

    Notes
    -----
    ``var`` is the unbiased variance over the patch's values (``ddof=1``, as MATLAB's ``var``
    in the Coates et al. 2011 code), and ``eps = 10`` assumes pixels on the 0-255 scale.
    """
    x = np.asarray(reject_complex(patches, "patches"), dtype=dtype)
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.sqrt(x.var(axis=1, ddof=1, keepdims=True) + eps).astype(dtype)


def fit_zca(x, eps=ZCA_EPS):
    """ZCA whitening parameters: ``mean`` and ``P = V diag(1 / sqrt(D + eps)) V^T``.

    ``V D V^T`` is the eigendecomposition of the covariance of ``x`` (``ddof=1``), accumulated
    in float64 over chunks of rows.

    Returns
    -------
    mean : ndarray of float64, shape (d,)
    P : ndarray of float64, shape (d, d), symmetric
    """
    reject_complex(x, "x")
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"fit_zca needs a 2-D array with at least 2 rows, got shape {x.shape}")
    mean = x.mean(axis=0, dtype=np.float64)
    C = np.zeros((x.shape[1], x.shape[1]))
    for s in range(0, len(x), CHUNK):
        block = x[s : s + CHUNK].astype(np.float64) - mean
        C += block.T @ block
    D, V = np.linalg.eigh(C / (len(x) - 1))
    if eps <= 0 and D.min() <= 0:
        raise ValueError(f"the patch covariance is singular (smallest eigenvalue {D.min():.3g}); use eps > 0")
    return mean, (V / np.sqrt(np.maximum(D, 0) + eps)) @ V.T


def zca_whiten(x, mean, P):
    """Apply ZCA whitening: ``(x - mean) @ P`` (``P`` is symmetric), in x's floating dtype."""
    reject_complex(x, "x")
    dtype = x.dtype if x.dtype.kind == "f" else np.float64
    return ((x - mean.astype(dtype)) @ P.astype(dtype)).astype(dtype, copy=False)


def _whitened_lcn(raw, eps, dtype):
    out = np.empty(raw.shape, dtype=dtype)
    for s in range(0, len(raw), CHUNK):
        out[s : s + CHUNK] = lcn(raw[s : s + CHUNK], eps)
    return out


def _read_all(paths):
    parts = [read_cifar_batch(p) for p in paths]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_cifar10_patches(
    data_dir=None,
    n_patches=10000,
    n_test_patches=None,
    patch_size=8,
    lcn_eps=LCN_EPS,
    zca_eps=ZCA_EPS,
    random_state=0,
    dtype="float32",
):
    """Random CIFAR-10 patches after LCN and ZCA whitening (Coates et al. 2011; the paper's Fig. 3).

    Parameters
    ----------
    data_dir : str, optional
        Folder holding ``cifar10/`` (or the batches); default ``$KSPARSE_DATA``, else ``~/.cache/ksparse``.
    n_patches : int
        Training patches, drawn from the training batches (1,000,000 in the paper).
    n_test_patches : int, optional
        Patches drawn from ``test_batch.bin`` and whitened with the training parameters;
        default ``n_patches // 5``, or none when there is no test batch.
    lcn_eps, zca_eps : float
        The constants of LCN (0-255 scale) and of ZCA whitening.
    random_state : int or numpy.random.Generator

    Returns
    -------
    PatchDataset
        ``X_train`` (n_patches, 3 * patch_size**2), ``y_train`` the source image's label,
        ``image_shape`` (patch_size, patch_size, 3), and the ZCA parameters.
    """
    if isinstance(n_patches, bool) or not isinstance(n_patches, (int, np.integer)) or n_patches < 2:
        raise ValueError(f"n_patches must be an integer >= 2, got {n_patches!r}")
    if not 1 <= patch_size <= 32:
        raise ValueError(f"patch_size must be between 1 and 32, got {patch_size!r}")
    train_paths, test_path = find_batches(_resolve_dir(data_dir))
    if n_test_patches is None:
        n_test_patches = n_patches // 5 if test_path else 0
    if n_test_patches and not test_path:
        raise ValueError(
            f"n_test_patches={n_test_patches} but there is no test_batch.bin beside {train_paths[0]!r}"
        )
    rng = np.random.default_rng(random_state)
    dtype = np.dtype(dtype)
    images, labels = _read_all(train_paths)
    raw, which = extract_patches(images, n_patches, rng, patch_size)
    y_train = labels[which]
    X_train = _whitened_lcn(raw, lcn_eps, dtype)
    mean, P = fit_zca(X_train, zca_eps)
    for s in range(0, n_patches, CHUNK):
        X_train[s : s + CHUNK] = zca_whiten(X_train[s : s + CHUNK], mean, P)
    X_test = y_test = None
    if n_test_patches:
        test_images, test_labels = read_cifar_batch(test_path)
        raw, which = extract_patches(test_images, n_test_patches, rng, patch_size)
        y_test = test_labels[which]
        X_test = zca_whiten(_whitened_lcn(raw, lcn_eps, dtype), mean, P)
    return PatchDataset(
        "cifar10-patches", X_train, y_train, X_test, y_test,
        image_shape=(patch_size, patch_size, 3),
        zca_mean=mean,
        zca_matrix=P,
        lcn_eps=lcn_eps,
        zca_eps=zca_eps,
    )
