"""Sec. 2.2 encoding of a Dask array: lazy, block-wise on the workers, equal to the in-memory codes.

Each block of rows of ``X`` becomes one task that runs :func:`ksparse.kernels.encode.encode`
on it; the weights enter the graph once, as one key every task reads.
"""

import numpy as np

from ksparse.kernels.encode import alpha_k, encode

DASK_OUTPUTS = ("dense", "topk")


def is_dask_array(x):
    """True when ``x`` is a ``dask.array.Array`` (checked without importing dask)."""
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "to_delayed")


def _encode_block(xb, params, k, alpha, output, codes_of):
    if codes_of is not None:
        return codes_of(np.asarray(xb), output)
    W, b = params
    return encode(np.asarray(xb), W, b, k, alpha, output=output)


def encode_dask(X, W, b, k, alpha=1.0, output="dense", codes_of=None):
    """Sec. 2.2 on a Dask array: h = supp_{alpha k}(W^T x + b), lazily, one task per block of rows.

    Parameters
    ----------
    X : dask.array.Array, shape (N, d)
        Chunked along rows (any chunking of the columns is merged into one).
    W : array, shape (d, H)
    b : array, shape (H,)
    k : int
    alpha : float >= 1, default 1
    output : {"dense", "topk"}, default "dense"
    codes_of : callable, optional
        ``codes_of(block, output)`` gives a NumPy block's codes in place of ``encode`` with
        ``W`` and ``b`` (which still give the shapes), e.g. the estimator's least-squares codes;
        it enters the graph once, as the weights do.

    Returns
    -------
    dask.array.Array (N, H), or a pair ``(index, value)`` of dask arrays (N, alpha k)
        Nothing is computed. The two arrays of ``"topk"`` share their tasks: compute them
        together (``dask.compute(index, value)``) to encode each block once.

    Raises
    ------
    ValueError
        On a 1-D array, a wrong number of features, or an unknown ``output``.
    """
    import dask
    import dask.array as da

    if output not in DASK_OUTPUTS:
        raise ValueError(f"output must be one of {DASK_OUTPUTS} for a Dask array, got {output!r}")
    if X.ndim != 2 or X.shape[1] != W.shape[0]:
        raise ValueError(f"X must be (N, d = {W.shape[0]}), got shape {X.shape}")
    H = W.shape[1]
    ak = alpha_k(k, alpha, H)
    X = X.rechunk({1: -1})
    params = dask.delayed((np.asarray(W), np.asarray(b)), pure=True)
    codes_of = None if codes_of is None else dask.delayed(codes_of, pure=True)
    tasks = [dask.delayed(_encode_block, pure=True)(block, params, k, alpha, output, codes_of)
             for block in X.to_delayed().ravel()]
    blocks = list(zip(tasks, X.chunks[0], strict=True))

    def stacked(part, width, dtype):
        return da.concatenate([da.from_delayed(t if part is None else t[part], (n, width), dtype=dtype)
                               for t, n in blocks])

    if output == "dense":
        return stacked(None, H, W.dtype)
    return stacked(0, ak, np.int32 if H < 2**31 else np.int64), stacked(1, ak, W.dtype)
