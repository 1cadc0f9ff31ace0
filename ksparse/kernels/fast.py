"""The training step computed on the support only (DESIGN.md, "Cost").

The same math as :func:`ksparse.nn.layers.ksparse_step` (D1-D8), but only D1 is a dense
product. D2 selects Gamma; D3, D6 and D8 touch the k active columns ``W[:, j]`` of each
sample, N k d multiply-adds each, instead of three more dense products. Nothing of
shape (N, H) is allocated beyond z (the NumPy path's top-k works in row blocks of at
most 2^20 entries).

Weight layout: the active columns ``W[:, j]`` are contiguous when ``W`` is stored in
column-major (Fortran) order, i.e. when ``W.T`` is a C-contiguous (H, d) array.
:func:`fast_train_step_` switches ``params["W"]`` and ``velocity["W"]`` to that layout
on its first call (same values, a new array in the dict); :func:`fast_step` accepts
either layout and copies a row-major ``W`` once per call.

Kernels, chosen by ``kernel``:

- ``"numba"``: compiled CPU kernels (:mod:`ksparse.kernels._numba`, the ``fast`` extra),
  run by :mod:`ksparse.kernels._cpu` on numba's thread count: every phase (the product,
  top-k, decode and dz over samples; the weight update over units) is split over the
  same threads, each calling BLAS on one thread;
- ``"numpy"``: NumPy and SciPy only (the fallback);
- ``"auto"``: numba when it is installed, else NumPy. CuPy arrays always take the CUDA
  kernels of :mod:`ksparse.kernels._cupy`.
"""

import numpy as np

from ksparse.backend import get_array_module
from ksparse.nn import layers
from ksparse.nn.optim import sgd_momentum_

KERNELS = ("auto", "numba", "numpy")


def has_numba():
    """Return True when the compiled CPU kernels can be used (numba is installed)."""
    return _numba_kernels() is not None


def _numba_kernels():
    try:
        from ksparse.kernels import _cpu
    except ImportError:
        return None
    return _cpu


def _check(x, W, k, kernel):
    """Validate the arguments shared by both steps; return (xp, x, kernel module or name)."""
    xp = get_array_module(x, W)
    if x.ndim != 2 or W.ndim != 2 or x.shape[1] != W.shape[0]:
        raise ValueError(f"x must be (N, d) and W (d, H) with matching d; got {x.shape} and {W.shape}")
    H = W.shape[1]
    if not 1 <= k <= H:
        raise ValueError(f"k must satisfy 1 <= k <= {H} (the number of hidden units), got {k}")
    if W.dtype not in (np.float32, np.float64):
        raise TypeError(f"W must be float32 or float64, got {W.dtype}")
    x = xp.ascontiguousarray(x, dtype=W.dtype)
    return xp, x, ("cupy" if xp is not np else _resolve(kernel))


def _resolve(kernel):
    """The numba kernel module, or "numpy", for a ``kernel`` name."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    module = _numba_kernels() if kernel != "numpy" else None
    if module is None and kernel == "numba":
        raise ValueError("kernel='numba' needs numba: `pip install -e \".[fast]\"`, or use kernel='numpy'")
    return module or "numpy"


def supp_k(z, k, kernel="auto"):
    """D2: Gamma = supp_k(z), the indices of the k largest entries of each row, exactly.

    The same contract as :func:`ksparse.nn.layers.supp_k` (ties broken arbitrarily, no
    particular order), computed by the compiled O(H)-per-row select when numba is present
    (several times faster than ``argpartition``), else by :func:`ksparse.nn.layers.supp_k`.

    Parameters
    ----------
    z : array, shape (N, H), float32 or float64
    k : int, 1 <= k <= H
    kernel : {"auto", "numba", "numpy"}

    Returns
    -------
    Gamma : int64 array, shape (N, k)
    """
    xp = get_array_module(z)
    if z.ndim != 2 or not 1 <= k <= z.shape[1]:
        raise ValueError(f"z must be 2-D and k must satisfy 1 <= k <= {z.shape[-1]}, got k={k}")
    if xp is not np:
        from ksparse.kernels import _cupy as _cupy_kernels

        return _cupy_kernels.topk(z, xp.zeros(z.shape[1], z.dtype), k)
    impl = _resolve(kernel)
    if impl == "numpy" or z.dtype not in (np.float32, np.float64):
        return layers.supp_k(z, k)
    z = np.ascontiguousarray(z)
    return impl.topk(z, k, impl.threads_for(*z.shape, k))


def _transposed(W):
    """W.T as a C-contiguous (H, d) array: a view when W is column-major, else a copy."""
    WT = W.T
    return WT if WT.flags.c_contiguous else get_array_module(W).ascontiguousarray(WT)


def fast_step(x, W, b, b_prime, k, kernel="auto"):
    """Sec. 2.2 steps 1-3 and D5-D8 on the support only; equals :func:`ksparse.nn.layers.ksparse_step`.

    Parameters
    ----------
    x : array, shape (N, d)
    W : array, shape (d, H)
        Float32 or float64; fastest in column-major order (``W.T`` C-contiguous).
    b : array, shape (H,)
    b_prime : array, shape (d,)
    k : int, 1 <= k <= H
    kernel : {"auto", "numba", "numpy"}, default "auto"

    Returns
    -------
    E : scalar
        The loss D4.
    grads : dict
        ``{"W": dW, "b": db, "b_prime": db_prime}``; ``dW`` is column-major.
    Gamma : int array, shape (N, k)
        The support, in no particular order.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, W = rng.random((4, 6)), rng.normal(size=(6, 5))
    >>> E, grads, Gamma = fast_step(x, W, np.zeros(5), np.zeros(6), k=2)
    >>> Gamma.shape, grads["W"].shape
    ((4, 2), (6, 5))
    """
    xp, x, impl = _check(x, W, k, kernel)
    WT = _transposed(W)
    if impl == "cupy":
        from ksparse.kernels import _cupy as _cupy_kernels

        return _cupy_kernels.step(x, WT, b, b_prime, k)
    if impl == "numpy":
        return _numpy_step(x, WT, b, b_prime, k)
    b, b_prime = (np.ascontiguousarray(a, dtype=x.dtype) for a in (b, b_prime))
    return impl.step(x, WT, b, b_prime, k)


def fast_train_step_(x, params, velocity, k, lr, momentum, kernel="auto"):
    """One training step fused with Eq. (11): :func:`fast_step`, then SGD with momentum in place.

    Equals :func:`ksparse.nn.optim.sgd_momentum_` applied to the gradients of
    :func:`ksparse.nn.layers.ksparse_step` (``tests/test_fast.py`` holds it to that). On
    the compiled kernels the weight gradient is never stored: each unit's ``dW[:, h]``
    lives in a buffer of d numbers while ``W[:, h]`` and its velocity are read and written
    once; those compiled loops (numba and CUDA) are the only other places the arithmetic of
    Eq. (11) appears.

    Parameters
    ----------
    x : array, shape (N, d)
    params, velocity : dict
        ``{"W": (d, H), "b": (H,), "b_prime": (d,)}``, updated in place. A row-major
        ``W`` (and its velocity) is replaced, once, by a column-major copy in the dict.
    k : int
    lr, momentum : float
        Eq. (11)'s eta_k and m_k.
    kernel : {"auto", "numba", "numpy"}

    Returns
    -------
    E : scalar
        The loss D4 before the update.
    Gamma : int array, shape (N, k)
    """
    for store in (params, velocity):
        if not store["W"].T.flags.c_contiguous:
            store["W"] = get_array_module(store["W"]).asfortranarray(store["W"])
    W, b, b_prime = params["W"], params["b"], params["b_prime"]
    xp, x, impl = _check(x, W, k, kernel)
    lr, momentum = W.dtype.type(lr), W.dtype.type(momentum)
    if impl == "cupy":
        from ksparse.kernels import _cupy as _cupy_kernels

        return _cupy_kernels.train_step_(x, params, velocity, k, lr, momentum)
    if impl == "numpy":
        E, grads, Gamma = _numpy_step(x, W.T, b, b_prime, k)
        sgd_momentum_(params, grads, velocity, lr, momentum)
        return E, Gamma
    return impl.train_step_(x, params, velocity, k, lr, momentum)[:2]


def _numpy_step(x, WT, b, b_prime, k, chunk=1 << 20):
    """The support-only step in NumPy and SciPy (see :func:`fast_step`); dW is column-major.

    The sparse code z_k is a CSR matrix with k entries per row, so D3 and D8 are
    sparse-times-dense products that read only the active rows of ``WT``. D2 and D6 work
    in blocks of rows of at most ``chunk`` numbers, so nothing else of size N H is made.
    """
    from scipy import sparse

    N, d = x.shape
    H = WT.shape[0]
    WT = np.ascontiguousarray(WT)
    z = x @ WT.T
    z += b
    Gamma = np.empty((N, k), dtype=np.intp)  # D2, in row blocks: argpartition returns (rows, H)
    rows = max(1, chunk // (4 * H))
    for lo in range(0, N, rows):
        Gamma[lo:lo + rows] = layers.supp_k(z[lo:lo + rows], k)
    structure = (Gamma.ravel(), np.arange(0, N * k + 1, k))
    z_k = sparse.csr_array((np.take_along_axis(z, Gamma, axis=1).ravel(), *structure), shape=(N, H))
    residual = z_k @ WT  # D3
    residual += b_prime
    residual -= x
    E = x.dtype.type((residual * residual).sum() / N)  # D4
    dx_hat = residual
    dx_hat *= x.dtype.type(2.0 / N)  # D5
    dz = np.empty((N, k), dtype=x.dtype)  # D6 on Gamma
    rows = max(1, chunk // (k * d))
    for lo in range(0, N, rows):
        sl = slice(lo, lo + rows)
        dz[sl] = np.matmul(WT[Gamma[sl]], dx_hat[sl, :, None])[..., 0]
    dz_sparse = sparse.csr_array((dz.ravel(), *structure), shape=(N, H))
    dWT = z_k.T @ dx_hat  # D8, decoder part, (H, d)
    dWT += dz_sparse.T @ x  # D8, encoder part
    db = np.bincount(Gamma.ravel(), weights=dz.ravel(), minlength=H).astype(x.dtype)  # D7
    grads = {"W": dWT.T, "b": db, "b_prime": dx_hat.sum(axis=0)}
    return E, grads, Gamma
