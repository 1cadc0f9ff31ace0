"""Sparse encoding, Sec. 2.2: features h = supp_{alpha k}(W^T x + b), in row blocks, in three forms.

The encoder reads ``x`` one block of rows at a time (``x`` may be any array sliced by
rows: NumPy, a ``numpy.memmap``, an h5py dataset, a zarr array), computes that block's
z = x W + b with one BLAS product and selects each row's alpha k largest entries while
the block is in cache. Its memory beyond the output is one block of z (``block_rows``
rows of H numbers) and the block of x. With the compiled selection the dense output
starts as zeros and receives only the alpha k values of each row; without it (NumPy,
CuPy) each block of z is computed in the output itself and zeroed off the support. The
codes come in three forms (:data:`OUTPUTS`):

- ``"dense"``: h, shape (N, H), zero off the support (the default);
- ``"sparse"``: h as a ``scipy.sparse.csr_array`` with exactly alpha k stored entries per
  row, columns ascending;
- ``"topk"``: a pair ``(index, value)`` of (N, alpha k) arrays, columns ascending per row,
  the layout top-k autoencoder libraries hand to downstream code.

:func:`decode` (D3) accepts all three.
"""

import math
import time

import numpy as np

from ksparse.backend import device_of, get_array_module, to_device, to_numpy
from ksparse.kernels.fast import supp_k

OUTPUTS = ("dense", "sparse", "topk")
BLOCK_ENTRIES = 1 << 21  # numbers of z per block (8 MiB of float32); see default_block_rows


def alpha_k(k, alpha, n_hidden):
    """Sec. 2.2: the number of units kept at test time, alpha k rounded half up, checked against H.

    The one rounding rule for alpha k everywhere (training checks, encoding, the CLI, the
    reproductions): ``floor(alpha * k + 0.5)``, so a half rounds up (k = 5: alpha 1.5 keeps
    8 units and alpha 2.5 keeps 13), not to the even neighbour as Python's ``round`` does.

    Raises
    ------
    ValueError
        If alpha is not a finite number >= 1, or alpha k exceeds ``n_hidden``.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)) \
            or not math.isfinite(alpha) or alpha < 1:
        raise ValueError(f"alpha must be a finite number >= 1 (Sec. 2.2 keeps alpha*k units), got {alpha!r}")
    ak = math.floor(alpha * k + 0.5)
    if ak > n_hidden:
        raise ValueError(
            f"alpha*k = {alpha}*{k} = {ak} exceeds n_hidden = {n_hidden}; lower alpha or k"
        )
    return int(ak)


def default_block_rows(n_hidden):
    """Rows per block: BLOCK_ENTRIES // H, clipped to [64, 1024].

    Below a few hundred rows the BLAS product loses speed (measured in
    ``benchmarks/encode.py``: 64-row blocks cost 1.4x one product at H = 4000, 512-row
    blocks 1.1x); above 1024 rows nothing is gained and the block grows.
    """
    return min(1024, max(64, BLOCK_ENTRIES // max(1, n_hidden)))


def _numba_select():
    try:
        from ksparse.kernels import _encode_numba
    except ImportError:
        return None
    return _encode_numba


def _check(x, W, b, output, kernel):
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    if kernel not in ("auto", "numba", "numpy"):
        raise ValueError(f"kernel must be 'auto', 'numba' or 'numpy', got {kernel!r}")
    if len(x.shape) != 2 or W.ndim != 2 or x.shape[1] != W.shape[0] or b.shape != (W.shape[1],):
        raise ValueError(f"x must be (N, d), W (d, H) and b (H,) with matching d and H; got "
                         f"{tuple(x.shape)}, {W.shape} and {b.shape}")
    impl = _numba_select() if kernel != "numpy" and get_array_module(W) is np else None
    if impl is None and kernel == "numba" and get_array_module(W) is np:
        raise ValueError("kernel='numba' needs numba: `pip install -e \".[fast]\"`, or use kernel='numpy'")
    return impl


def encode(x, W, b, k, alpha=1.0, output="dense", block_rows=None, kernel="auto", out=None):
    """Sec. 2.2, sparse encoding: h = supp_{alpha k}(W^T x + b), zero off the support.

    Parameters
    ----------
    x : array-like, shape (N, d)
        Read by rows, one block at a time (NumPy, CuPy, memmap, h5py, zarr).
    W : array, shape (d, H)
    b : array, shape (H,)
    k : int
        Training sparsity level.
    alpha : float >= 1, default 1
        Multiplier of k at test time; alpha k units are kept, rounded half up (:func:`alpha_k`).
    output : {"dense", "sparse", "topk"}, default "dense"
        The form of the codes (see the module's docstring).
    block_rows : int, optional
        Rows per block; default :func:`default_block_rows`. Only memory and speed depend on it.
    kernel : {"auto", "numba", "numpy"}, default "auto"
        The selection on CPU: the compiled kernel of :mod:`ksparse.kernels._encode_numba`
        when numba is installed, else ``argpartition``. CuPy arrays use the CUDA top-k.
    out : array or pair of arrays, optional
        Where to write the codes, in place of new arrays: for ``"dense"`` an (N, H) C-contiguous
        array of W's dtype on W's device (its contents are replaced), for ``"topk"`` a pair
        ``(index, value)`` of (N, alpha k) arrays (``index`` int32 when H < 2^31, else int64).
        Not for ``"sparse"``.

    Returns
    -------
    h : array (N, H), or ``scipy.sparse.csr_array`` (N, H), or ``(index, value)``
        ``index`` is int32 (int64 when H >= 2^31), ``value`` has W's dtype, both (N, alpha k).
        The sparse form is built on the host even for CuPy weights.

    Raises
    ------
    ValueError
        On mismatched shapes, an unknown ``output`` or ``kernel``, alpha k outside [1, H], or an
        ``out`` of the wrong shape, dtype or layout.
    """
    impl = _check(x, W, b, output, kernel)
    H = W.shape[1]
    ak = alpha_k(k, alpha, H)
    rows = int(block_rows or default_block_rows(H))
    if rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    index_type = np.int32 if H < 2**31 else np.int64
    out = _check_out(out, output, x.shape[0], H, ak, W, index_type)
    if impl is not None:
        codes = _encode_compiled(x, W, b, ak, rows, output, index_type, out)
    else:
        codes = _encode_plain(x, W, b, ak, rows, output, index_type, out)
    if output == "sparse":
        return _csr(to_numpy(codes[0]), to_numpy(codes[1]), H)
    return codes


def _check_out(out, output, N, H, ak, W, index_type):
    """``out`` of :func:`encode` checked (None stays None); a ValueError says what is wrong."""
    if out is None:
        return None
    xp = get_array_module(W)
    if output == "dense":
        want = [((N, H), W.dtype)]
        arrays = [out]
    elif output == "topk":
        want = [((N, ak), np.dtype(index_type)), ((N, ak), W.dtype)]
        arrays = list(out) if isinstance(out, (tuple, list)) and len(out) == 2 else None
    else:
        raise ValueError("out is for the dense and topk forms only")
    def fits(a, shape, dtype):
        return get_array_module(a) is xp and a.shape == shape and a.dtype == dtype and a.flags.c_contiguous

    if arrays is None or not all(fits(a, *spec) for a, spec in zip(arrays, want, strict=True)):
        raise ValueError(f"out must be {' and '.join(f'a C-contiguous {s} array of {t}' for s, t in want)} "
                         "on W's device")
    return out


def _encode_plain(x, W, b, ak, rows, output, index_type, out=None):
    """:func:`encode` with NumPy's (or CuPy's) product and selection, block by block; the dense
    form computes each block of z in the output itself."""
    xp = get_array_module(W)
    N, H = x.shape[0], W.shape[1]
    if output == "dense":
        h = xp.empty((N, H), dtype=W.dtype) if out is None else out
    else:
        index, value = (xp.empty((N, ak), index_type), xp.empty((N, ak), W.dtype)) if out is None else out
        z = xp.empty((min(rows, N), H), dtype=W.dtype)
    for lo in range(0, N, rows):
        hi = min(N, lo + rows)
        zb = h[lo:hi] if output == "dense" else z[:hi - lo]
        xp.matmul(_block(x, lo, hi, W), W, out=zb)  # D1 for the block, (rows, H)
        zb += b
        _select(zb, ak, None if output == "dense" else (index[lo:hi], value[lo:hi]))
    return h if output == "dense" else (index, value)


def _block(x, lo, hi, W):
    """Rows lo:hi of ``x`` on W's device, in W's dtype (one read from a memmap, h5py or zarr)."""
    xp = get_array_module(W)
    if get_array_module(x) is xp:
        return xp.asarray(x[lo:hi], dtype=W.dtype)
    return to_device(to_numpy(x[lo:hi]), device_of(W), dtype=W.dtype)


def _encode_compiled(x, W, b, ak, rows, output, index_type, out=None):
    """:func:`encode` on the CPU with the compiled selection, block by block, each block split over rows.

    Each thread of :mod:`ksparse.kernels._cpu` computes the BLAS product of every row of the
    block with its share of the units (BLAS on one thread in each, as in the training step:
    W is read once a block) into a block of z reused for every block, then adds b and
    selects its rows (:func:`ksparse.kernels._encode_numba.select_rows`, the kernel the
    training step compiles too). A block's ranges run one after the other in the calling thread instead
    where that has been faster lately (:mod:`ksparse.kernels._choice`; the same codes). The
    dense output starts as zeros (pages the system zeroes when first
    written) and receives only the alpha k values of each row, so it is written once.
    """
    from ksparse.kernels import _choice, _cpu, _gomp

    N, d, H = x.shape[0], W.shape[0], W.shape[1]
    rows = min(rows, N)
    n = _cpu.threads_for(rows, d, H)
    z = np.empty((rows, H), dtype=W.dtype)
    select = _cpu.selector(z, np.ascontiguousarray(b, dtype=W.dtype), n)
    block_index, block_value = np.empty((rows, ak), np.int64), np.empty((rows, ak), W.dtype)
    if output == "dense":
        h = np.zeros((N, H), dtype=W.dtype) if out is None else out
        if out is not None:
            h[...] = 0
    else:
        index, value = (np.empty((N, ak), index_type), np.empty((N, ak), W.dtype)) if out is None else out
    choice = _choice.choice_for(("encode", n, rows, d, H, ak, W.dtype.str, output)) if n > 1 else None
    with _cpu.blas_threads(n, rows, d, H):
        for lo in range(0, N, rows):
            hi = min(N, lo + rows)
            xb = _block(x, lo, hi, W)
            idx = block_index[:hi - lo]
            val, out = (block_value[:hi - lo], h[lo:hi]) if output == "dense" else (value[lo:hi], None)

            def product(c, a, e, xb=xb, zb=z[:hi - lo]):  # D1 for the units a:e, every row of the block
                if e > a:
                    np.matmul(xb, W[:, a:e], out=zb[:, a:e])

            def part(c, a, e, idx=idx, val=val, out=out):
                select(c, a, e, idx, val, out)  # b, then alpha k

            path = choice.pick(("pool", "serial")) if choice else "pool"  # the faster lately (equal codes)
            t0 = time.perf_counter()
            _cpu.run_ranges(product, _gomp.product_bounds(H, n), path == "serial")  # W read once a block
            _cpu.run_ranges(part, [(hi - lo) * c // n for c in range(n + 1)], path == "serial")
            if choice:
                choice.record(path, time.perf_counter() - t0, hi - lo)
            if output != "dense":
                index[lo:hi] = idx
    return h if output == "dense" else (index, value)


def _select(z, ak, topk):
    """D2 with alpha k on one block (NumPy or CuPy): write (index, value) into ``topk``, or zero z
    off the support."""
    xp = get_array_module(z)
    Gamma = xp.sort(supp_k(z, ak, kernel="numpy"), axis=1)
    values = xp.take_along_axis(z, Gamma, axis=1)
    if topk is None:
        z[...] = 0
        z[xp.arange(z.shape[0])[:, None], Gamma] = values
    else:
        topk[0][...] = Gamma
        topk[1][...] = values


def _csr(index, value, n_hidden):
    """The (index, value) pair as an (N, H) ``scipy.sparse.csr_array``, alpha k entries per row."""
    from scipy import sparse

    N, ak = index.shape
    indptr = np.arange(0, N * ak + 1, ak, dtype=np.int64 if N * ak >= 2**31 else index.dtype)
    return sparse.csr_array((value.ravel(), index.ravel(), indptr), shape=(N, n_hidden))


def decode(codes, W, b_prime):
    """D3 for codes in any of the three forms: x_hat = h W^T + b', shape (N, d).

    Parameters
    ----------
    codes : array (N, H), ``scipy.sparse`` array or matrix (N, H), or ``(index, value)``
        As returned by :func:`encode`; ``index`` and ``value`` are (N, m) for any m <= H.
    W : array, shape (d, H)
    b_prime : array, shape (d,)

    Raises
    ------
    ValueError
        When the codes' shape does not match H, or an index lies outside [0, H).
    """
    H = W.shape[1]
    if isinstance(codes, tuple):
        index, value = codes
        if index.ndim != 2 or index.shape != value.shape:
            raise ValueError(f"top-k codes need index and value of one (N, m) shape, got "
                             f"{index.shape} and {value.shape}")
        if index.size and (int(index.min()) < 0 or int(index.max()) >= H):
            raise ValueError(f"top-k indices must lie in [0, {H}) (n_hidden), got "
                             f"[{int(index.min())}, {int(index.max())}]")
        if get_array_module(W) is np:
            codes = _csr(np.asarray(index), np.asarray(value), H)
        else:
            return _decode_topk_device(index, value, W, b_prime)
    if codes.shape[-1] != H or len(codes.shape) != 2:
        raise ValueError(f"codes must be (N, n_hidden = {H}), got shape {codes.shape}")
    if hasattr(codes, "tocsr"):  # scipy.sparse, computed on the host
        return to_device(codes.tocsr() @ to_numpy(W).T + to_numpy(b_prime), device_of(W))
    return codes @ W.T + b_prime


def _decode_topk_device(index, value, W, b_prime):
    """D3 from (index, value) on the device: x_hat_i = sum_j value_ij W[:, index_ij] + b'."""
    xp = get_array_module(W)
    index, value = xp.asarray(index), xp.asarray(value, dtype=W.dtype)
    WT = W.T
    rows = max(1, BLOCK_ENTRIES // max(1, index.shape[1] * W.shape[0]))
    x_hat = xp.empty((index.shape[0], W.shape[0]), W.dtype)
    for lo in range(0, index.shape[0], rows):
        sl = slice(lo, lo + rows)
        x_hat[sl] = xp.einsum("nm,nmd->nd", value[sl], WT[index[sl]]) + b_prime
    return x_hat


#: the ridge of :func:`least_squares_values`, relative to the mean squared norm of the atoms
LSTSQ_RIDGE = 1e-8


def gram(W):
    """W^T W in float64, shape (H, H): the atoms' inner products, for :func:`least_squares_values`."""
    W = get_array_module(W).asarray(W, dtype=np.float64)
    return W.T @ W


def least_squares_values(t, W, index, G=None):
    """Eq. 3 on each row's support: the values that reconstruct ``t`` best from the atoms ``index``.

    The pseudo-inverse step of ITI (Eqs. 2-3, Sec. 3): with the support Gamma_i = ``index[i]``
    that the encoder chose (:func:`encode`, ``output="topk"``), the values

        v_i = argmin_v ||t_i - W[:, Gamma_i] v||^2 = (W_Gamma^T W_Gamma + lambda I)^-1 W_Gamma^T t_i,

    solved from the normal equations in float64 with a ridge lambda = :data:`LSTSQ_RIDGE` times
    the mean squared norm of the support's atoms, so that a support whose atoms are linearly
    dependent still has one answer (the minimum-norm one, to about 1e-8 relative). The Gram
    matrices are gathered from ``G = W^T W`` (:func:`gram`) and W_Gamma^T t_i from one product
    t W, so a block costs one product, N (alpha k)^2 gathers and N small solves.

    Parameters
    ----------
    t : array, shape (N, d)
        The targets in the model's units: the input centred, divided by the scale, minus b'
        (what D3's ``W h`` must reconstruct).
    W : array, shape (d, H)
        The decoder's atoms as columns.
    index : int array, shape (N, m)
        Each row's support (m = alpha k distinct units).
    G : array, shape (H, H), optional
        ``gram(W)``, to reuse across blocks.

    Returns
    -------
    value : array, shape (N, m), W's dtype, on W's device (NumPy or CuPy)

    Raises
    ------
    ValueError
        On mismatched shapes.
    """
    xp = get_array_module(W)
    d, H = W.shape
    if t.ndim != 2 or t.shape[1] != d or index.ndim != 2 or index.shape[0] != t.shape[0]:
        raise ValueError(f"t must be (N, d), W (d, H) and index (N, m) with matching N and d; got "
                         f"{tuple(t.shape)}, {W.shape} and {tuple(index.shape)}")
    G = gram(W) if G is None else G
    idx = xp.asarray(index).astype(np.int64, copy=False)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= H):
        raise ValueError(f"index must lie in [0, {H}) (the units of W)")
    c = xp.take_along_axis(xp.asarray(t, dtype=np.float64) @ xp.asarray(W, dtype=np.float64), idx, axis=1)
    Gs = G[idx[:, :, None], idx[:, None, :]]  # (N, m, m): W_Gamma^T W_Gamma of every row
    m = idx.shape[1]
    diag = xp.arange(m)
    ridge = LSTSQ_RIDGE * xp.maximum(Gs[:, diag, diag].mean(axis=1), xp.finfo(np.float64).tiny)
    Gs[:, diag, diag] += ridge[:, None]
    return xp.linalg.solve(Gs, c[:, :, None])[:, :, 0].astype(W.dtype)
