"""The autoencoder's codes for inputs of any size: in memory, streamed by rows, or Dask.

:func:`encode_rows` is :meth:`KSparseAutoencoder.transform` for every input: it reads
``X`` one block of rows at a time, centres it and moves it to the device as training
does, and assembles the codes in one of the three forms of
:mod:`ksparse.kernels.encode` (``"dense"``, ``"sparse"``, ``"topk"``); :func:`iter_codes`
yields them block by block for writers that never hold them whole. :func:`decode_codes`
is :meth:`KSparseAutoencoder.inverse_transform` for the three forms.
"""

import functools
import os

import numpy as np
from scipy import sparse

from ksparse.backend import device_of, get_array_module, to_device, to_numpy
from ksparse.blockio import write_npy_blocks, write_npz_blocks
from ksparse.errors import reject_nonfinite
from ksparse.io import check_codes_file, same_file
from ksparse.kernels.encode import (
    OUTPUTS,
    alpha_k,
    decode,
    default_block_rows,
    encode,
    gram,
    least_squares_values,
)
from ksparse.parallel.dask_encode import encode_dask, is_dask_array
from ksparse.training.datacheck import warn_other_scale
from ksparse.training.loop import encoder_input, encoder_params, remedies_in_force, uncentered
from ksparse.training.stream import check_rows, is_streamed, read_block

COEFFICIENTS = ("encoder", "least_squares")


def check_rows_of(est, X, reset):
    """Shape and dtype checks of a streamed ``X`` (nothing read); sets or checks ``n_features_in_``."""
    check_rows(X)
    d = int(X.shape[1])
    if reset:
        est.n_features_in_ = d
    elif d != est.n_features_in_:
        raise ValueError(f"X has {d} features, but {type(est).__name__} is expecting "
                         f"{est.n_features_in_} features as input")
    return X


def iter_codes(state, X, alpha, output="dense", block_rows=None, coefficients="encoder", out=None):
    """Yield ``(lo, codes of rows lo:lo+n)`` over ``X`` in order, each block as ``output`` gives it.

    ``out``: the whole (N, H) dense output (or the (N, alpha k) pair of ``"topk"``) on the host,
    written block by block in place (the blocks yielded are its views), so that the codes are
    written once (CPU).

    ``coefficients``: ``"encoder"`` (the values of W^T x + b on the support, Sec. 2.2) or
    ``"least_squares"`` (Eq. 3 on that support, :func:`least_squares_codes`).

    For ``"sparse"`` a block is its ``(index, value)`` pair (the CSR arrays of those rows).
    """
    p, cfg = state.params, state.config
    rows = block_rows or max(default_block_rows(cfg.n_hidden), 4096)
    device = device_of(p["W"])
    form = "topk" if output == "sparse" else output
    if coefficients not in COEFFICIENTS:
        raise ValueError(f"coefficients must be one of {COEFFICIENTS}, got {coefficients!r}")
    G = gram(p["W"]) if coefficients == "least_squares" else None
    for lo in range(0, X.shape[0], rows):
        xb = read_block(X, lo, min(X.shape[0], lo + rows))
        reject_nonfinite(xb, getattr(X, "path", None) or "X", lo)  # a file read by rows is named
        if lo == 0:  # data of another preprocessing: say so once (the first block)
            warn_other_scale(state, xb)
        hi = lo + xb.shape[0]
        xb = to_device(encoder_input(xb, state, cfg.dtype), device)  # (x - mean) / s - b' (D9)
        if coefficients == "least_squares":
            codes = least_squares_codes(state, xb, alpha, form, G)
        else:
            into = None if out is None or device != "cpu" else (
                out[lo:hi] if form == "dense" else (out[0][lo:hi], out[1][lo:hi]))
            codes = encode(xb, p["W"], p["b"], cfg.k, alpha, output=form, out=into)
        yield lo, (tuple(to_numpy(c) for c in codes) if form == "topk" else to_numpy(codes))


def least_squares_codes(state, u, alpha, form, G):
    """The encoder's support of each row of ``u`` (:func:`ksparse.training.loop.encoder_input`'s
    rows, on the device) with the values of Eq. 3
    (:func:`ksparse.kernels.encode.least_squares_values`), in ``form``."""
    p, cfg = state.params, state.config
    index, _ = encode(u, p["W"], p["b"], cfg.k, alpha, output="topk")
    t = u if remedies_in_force(cfg, u.shape[1])["pre_bias"] else u - p["b_prime"]  # x s^-1 - b'
    value = least_squares_values(t, p["W"], index, G)
    if form == "topk":
        return index, value
    xp = get_array_module(p["W"])
    h = xp.zeros((u.shape[0], cfg.n_hidden), dtype=value.dtype)
    h[xp.arange(u.shape[0])[:, None], xp.asarray(index)] = value
    return h


def encode_rows(state, X, alpha, output="dense", coefficients="encoder"):
    """Sec. 2.2's codes of every row of ``X`` (in memory, streamed or Dask), in ``output``'s form.

    Returns
    -------
    ndarray (N, H), ``scipy.sparse.csr_array`` (N, H) or ``(index, value)`` (N, alpha k);
    for a Dask ``X``, a lazy Dask array or pair (``"dense"`` or ``"topk"``).
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    cfg = state.config
    ak = alpha_k(cfg.k, alpha, cfg.n_hidden)
    if is_dask_array(X):
        W_enc, b_enc = encoder_params(state)  # the centring, the scale and D9 folded in
        codes_of = None
        if coefficients == "least_squares":  # each block through the in-memory path, the state sent once
            codes_of = functools.partial(_block_codes, state, alpha, coefficients)
        return encode_dask(X.astype(cfg.dtype), W_enc, b_enc, cfg.k, alpha, output, codes_of)
    N, H = X.shape[0], cfg.n_hidden
    if output == "dense":
        h = np.empty((N, H), dtype=cfg.dtype)
    else:
        index, value = np.empty((N, ak), np.int32 if H < 2**31 else np.int64), np.empty((N, ak), cfg.dtype)
    whole = h if output == "dense" else (index, value)
    for lo, codes in iter_codes(state, X, alpha, output, coefficients=coefficients, out=whole):
        if output == "dense":
            if not np.may_share_memory(codes, h):  # not written in place (GPU, least squares)
                h[lo:lo + codes.shape[0]] = codes
        elif not np.may_share_memory(codes[1], value):
            index[lo:lo + codes[0].shape[0]], value[lo:lo + codes[0].shape[0]] = codes
    if output == "dense":
        return h
    if output == "topk":
        return index, value
    indptr = np.arange(0, N * ak + 1, ak, dtype=np.int64 if N * ak >= 2**31 else index.dtype)
    return sparse.csr_array((value.ravel(), index.ravel(), indptr), shape=(N, H))


def _block_codes(state, alpha, coefficients, xb, output):
    """:func:`encode_rows` of one NumPy block (a Dask task)."""
    return encode_rows(state, xb, alpha, output, coefficients)


def decode_codes(state, codes):
    """D3 for codes in any of the three forms, in the data's units: times s, plus the training mean
    when the model centres.

    Raises
    ------
    ValueError
        When the codes do not have ``n_hidden`` columns (or indices outside [0, n_hidden)).
    """
    p, cfg = state.params, state.config
    if isinstance(codes, tuple) and len(codes) == 2:
        codes = tuple(np.asarray(c) for c in codes)
        codes = (codes[0], codes[1].astype(cfg.dtype, copy=False))
    elif not sparse.issparse(codes):
        codes = to_device(np.asarray(codes), device_of(p["W"]), dtype=cfg.dtype)
    if not isinstance(codes, tuple) and (codes.ndim != 2 or codes.shape[1] != cfg.n_hidden):
        raise ValueError(f"codes must have n_hidden = {cfg.n_hidden} columns, got shape {codes.shape}")
    return uncentered(to_numpy(decode(codes, p["W"], p["b_prime"])), state)  # (W h + b') s + x_mean


def squared_error_rows(state, X, alpha, coefficients="encoder"):
    """Sum over the rows of ``X`` of ||x_hat - x||^2 in float64, block by block, and the row count."""
    total = 0.0
    for lo, codes in iter_codes(state, X, alpha, "topk", coefficients=coefficients):
        xb = read_block(X, lo, lo + codes[0].shape[0]).astype(np.float64)
        total += float(((decode_codes(state, codes).astype(np.float64) - xb) ** 2).sum())
    return total, X.shape[0]


def is_large(X):
    """True for inputs read by rows (memmap, h5py, zarr, Dask): the estimator never loads them whole."""
    return is_streamed(X) or is_dask_array(X)


def save_codes(path, state, X, alpha, output="dense", coefficients="encoder"):
    """Encode ``X`` block by block and write the codes as they come; memory: one block.

    ``"dense"`` writes an (N, H) ``.npy``; ``"sparse"`` an ``.npz`` in the layout of
    ``scipy.sparse.save_npz`` (``scipy.sparse.load_npz`` reads it back as a ``csr_array``);
    ``"topk"`` an ``.npz`` with ``index`` and ``value`` (N, alpha k) and ``n_hidden``.

    Raises
    ------
    ValueError
        Before any work: for an unknown ``output``, a ``path`` without that form's suffix (the
        message lists the accepted ones: ``.npy`` for dense, ``.npz`` for sparse and topk), or
        ``path`` the file ``X`` is read from.
    ksparse.errors.OutputNotWritableError
        (an ``OSError``) Before any work: for a folder, or a folder that is missing or not writable.
    """
    check_codes_file(path, output)  # every check before the first block is encoded
    source = getattr(X, "path", None) or getattr(X, "filename", None)  # NpyRows, numpy.memmap
    if source is not None and same_file(source, path):
        raise ValueError(f"path {os.fspath(path)!r} is the file X is read from; write the codes to another "
                         "file")
    cfg = state.config
    N, H, ak = X.shape[0], cfg.n_hidden, alpha_k(cfg.k, alpha, cfg.n_hidden)
    blocks = (codes for _, codes in iter_codes(state, X, alpha, output, coefficients=coefficients))
    if output == "dense":
        return write_npy_blocks(path, cfg.dtype, (N, H), blocks)
    index_type = np.int32 if H < 2**31 else np.int64
    if output == "topk":
        specs = {"index": (index_type, (N, ak)), "value": (cfg.dtype, (N, ak))}
        return write_npz_blocks(path, specs, ({"index": i, "value": v} for i, v in blocks),
                                extra={"n_hidden": np.array(H)})
    specs = {"indices": (index_type, (N * ak,)), "data": (cfg.dtype, (N * ak,))}
    indptr = np.arange(0, N * ak + 1, ak, dtype=np.int64 if N * ak >= 2**31 else index_type)
    return write_npz_blocks(path, specs, ({"indices": i.ravel(), "data": v.ravel()} for i, v in blocks),
                            extra={"indptr": indptr, "format": np.array("csr"), "shape": np.array([N, H]),
                                   "_is_array": np.array(True)})
