"""Compiled CPU kernels for :mod:`ksparse.kernels.fast` (optional; needs numba).

Every kernel works on the transposed weights ``WT = W.T``, shape (H, d), C-contiguous,
so that the column ``W[:, j]`` of an active unit is one contiguous row ``WT[j]``. The
math is that of ``docs/equations.md`` D2-D8 restricted to the support Gamma; see
:mod:`ksparse.kernels.fast` for the public functions and the equations.

The kernels are serial, release the GIL, and work on a range of rows (samples) or of
units, so that :mod:`ksparse.kernels._cpu` runs them on its own threads, one range each,
together with the BLAS product of the same rows: one pool of threads for every phase.
Importing this module compiles nothing: numba compiles each kernel on its first call,
for the types of that call only, and caches it on disk (``cache=True``).
"""

import numba
import numpy as np

# Every fast-math flag except 'nnan' and 'ninf': NaN and inf must still propagate, so that
# training can detect divergence.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp", "afn"}
_JIT = {"nogil": True, "cache": True, "fastmath": _FASTMATH}


@numba.njit(**_JIT)
def _sift_down(keys, index, pos, k):
    """Restore the min-heap property of ``keys[:k]`` below ``pos``, moving ``index`` along."""
    v = keys[pos]
    j = index[pos]
    while True:
        child = 2 * pos + 1
        if child >= k:
            break
        if child + 1 < k and keys[child + 1] < keys[child]:
            child += 1
        if keys[child] < v:
            keys[pos] = keys[child]
            index[pos] = index[child]
            pos = child
        else:
            break
    keys[pos] = v
    index[pos] = j


@numba.njit(**_JIT)
def _heap_topk(keys, index, n, k, top_keys, top_index):
    """The k largest of ``keys[:n]`` (labels ``index[:n]``), by a min-heap of size k.

    An entry replaces the root only when strictly larger, so ties keep the earlier entry.
    O(n log k). Leaves the k-th largest key in ``top_keys[0]``.
    """
    for j in range(k):
        top_keys[j] = keys[j]
        top_index[j] = index[j]
    for pos in range(k // 2 - 1, -1, -1):
        _sift_down(top_keys, top_index, pos, k)
    for j in range(k, n):
        if keys[j] > top_keys[0]:
            top_keys[0] = keys[j]
            top_index[0] = index[j]
            _sift_down(top_keys, top_index, 0, k)


@numba.njit(**_JIT)
def _key(bits, shift, mask):
    """Order-preserving integer key of a float's bits: negative floats get their magnitude
    bits flipped, so integer order is float order (-0 just below +0; NaN at the ends)."""
    return bits ^ ((bits >> shift) & mask)


@numba.njit(**_JIT)
def topk_row(bits, k, shift, mask, Gamma_row, scratch):
    """D2 on one row: the indices of the k largest entries, exactly, in O(H) plus a small heap.

    ``bits`` is the row's float bits viewed as integers (int32 for float32, int64 for
    float64) and is compared through :func:`_key`, because integer max-reductions
    vectorise where float ones do not. Pass 1 takes the maximum of each block of B
    entries; the k-th largest of those block maxima, t0, is a lower bound of the k-th
    largest entry (k distinct entries reach it). Pass 2 scans only the blocks whose
    maximum reaches t0 and keeps their entries >= t0; a heap of size k picks the result.
    ``scratch`` is a tuple of integer buffers (keys, indices, block maxima) of length H.
    """
    cand_key, cand_index, block_max = scratch
    H = bits.shape[0]
    if k == H:
        for j in range(H):
            Gamma_row[j] = j
        return
    B = max(16, H // (4 * k))
    n_blocks = (H + B - 1) // B
    for c in range(n_blocks):
        m = _key(bits[c * B], shift, mask)
        for j in range(c * B + 1, min(H, c * B + B)):
            m = max(m, _key(bits[j], shift, mask))
        block_max[c] = m
    if n_blocks < k:  # too few blocks for a bound: every entry is a candidate
        for j in range(H):
            cand_key[j] = _key(bits[j], shift, mask)
            cand_index[j] = j
        _heap_topk(cand_key, cand_index, H, k, block_max, Gamma_row)
        return
    for c in range(n_blocks):
        cand_index[c] = c
    _heap_topk(block_max, cand_index, n_blocks, k, cand_key, Gamma_row)
    t0 = cand_key[0]
    n = 0
    for c in range(n_blocks):
        if block_max[c] >= t0:
            for j in range(c * B, min(H, c * B + B)):
                v = _key(bits[j], shift, mask)
                if v >= t0:
                    cand_key[n] = v
                    cand_index[n] = j
                    n += 1
    _heap_topk(cand_key, cand_index, n, k, block_max, Gamma_row)


@numba.njit(**_JIT)
def topk_rows(bits, shift, mask, Gamma, lo, hi):
    """D2 for rows ``lo:hi`` of ``bits`` (z viewed as integers, see :func:`topk_row`) into Gamma."""
    H = bits.shape[1]
    k = Gamma.shape[1]
    scratch = (np.empty(H, bits.dtype), np.empty(H, Gamma.dtype), np.empty(H, bits.dtype))
    for i in range(lo, hi):
        topk_row(bits[i], k, shift, mask, Gamma[i], scratch)


@numba.njit(**_JIT)
def forward_rows(x, z, b, bits, shift, mask, WT, b_prime, k, scale, Gamma, dx_hat, dz, err, db_prime,
                 lo, hi):
    """D1's bias, then D2-D6 per sample on the support, for the rows ``lo:hi``.

    ``z`` holds ``x W`` on entry; each row gets ``b`` added (D1) while it is in cache.
    ``bits`` is ``z`` viewed as integers of its width, ``shift`` their width - 1 and
    ``mask`` their largest value (see :func:`topk_row`); ``scale`` is 2 / N for the whole
    batch. Writes ``Gamma`` (N, k), ``dx_hat`` (N, d), ``dz`` (N, k) and
    ``err[i] = ||x_hat_i - x_i||^2`` (N,) on those rows, and adds their dx_hat to
    ``db_prime`` (d,). Reads only the k rows ``WT[Gamma_i]`` of the weights per sample,
    twice, while they are in cache.
    """
    H = z.shape[1]
    scratch = (np.empty(H, bits.dtype), np.empty(H, Gamma.dtype), np.empty(H, bits.dtype))
    for i in range(lo, hi):
        z_row = z[i]
        for j in range(H):
            z_row[j] += b[j]
        topk_row(bits[i], k, shift, mask, Gamma[i], scratch)
        err[i] = _sample(x[i], z_row, WT, b_prime, Gamma[i], scale, dx_hat[i], dz[i])
        r = dx_hat[i]
        for t in range(db_prime.shape[0]):
            db_prime[t] += r[t]


@numba.njit(**_JIT)
def _sample(x_row, z_row, WT, b_prime, Gamma_row, scale, r, dz_row):
    """D3-D6 for one sample; returns ||x_hat - x||^2 and leaves dx_hat in ``r``."""
    d = x_row.shape[0]
    k = Gamma_row.shape[0]
    for t in range(d):
        r[t] = b_prime[t] - x_row[t]
    for j in range(k):  # D3: x_hat_i = b' + sum_{j in Gamma_i} z_ij W[:, j]
        w = WT[Gamma_row[j]]
        a = z_row[Gamma_row[j]]
        for t in range(d):
            r[t] += a * w[t]
    e = 0.0
    for t in range(d):  # D4 and D5: residual -> (2/N) residual
        e += r[t] * r[t]
        r[t] = r[t] * scale
    for j in range(k):  # D6: dz_ij = dx_hat_i . W[:, j], j in Gamma_i
        w = WT[Gamma_row[j]]
        s = scale - scale
        for t in range(d):
            s += r[t] * w[t]
        dz_row[j] = s
    return e


@numba.njit(**_JIT)
def by_unit(Gamma, H):
    """Group the support by hidden unit: entries (i, j) with Gamma[i, j] = h, for each h.

    Returns ``start`` (H + 1,) and ``entries`` (N k,) holding ``i * k + j``, so that the
    entries of unit h are ``entries[start[h]:start[h + 1]]`` (a counting sort, O(N k + H)).
    """
    N, k = Gamma.shape
    start = np.zeros(H + 1, dtype=np.int64)
    for i in range(N):
        for j in range(k):
            start[Gamma[i, j] + 1] += 1
    for h in range(H):
        start[h + 1] += start[h]
    fill = start[:-1].copy()
    entries = np.empty(N * k, dtype=np.int64)
    for i in range(N):
        for j in range(k):
            h = Gamma[i, j]
            entries[fill[h]] = i * k + j
            fill[h] += 1
    return start, entries


@numba.njit(**_JIT)
def _unit_grad(h, start, entries, x, z, dx_hat, dz, acc):
    """D7 and D8 for one unit h: acc = dW[:, h] = sum over its entries, returns db[h]."""
    k = dz.shape[1]
    d = x.shape[1]
    for t in range(d):
        acc[t] = 0
    db = 0.0
    for e in range(start[h], start[h + 1]):
        i = entries[e] // k
        j = entries[e] - i * k
        a = z[i, h]
        g = dz[i, j]
        db += g
        for t in range(d):  # D8: decoder part dx_hat_i z_ij plus encoder part x_i dz_ij
            acc[t] += a * dx_hat[i, t] + g * x[i, t]
    return db


@numba.njit(**_JIT)
def weight_grads(start, entries, x, z, dx_hat, dz, dWT, db, lo, hi):
    """D7 and D8 on the support for the units ``lo:hi``: rows of ``dWT`` (H, d) = dW.T and of ``db``."""
    for h in range(lo, hi):
        db[h] = _unit_grad(h, start, entries, x, z, dx_hat, dz, dWT[h])


@numba.njit(**_JIT)
def weight_grads_update(start, entries, x, z, dx_hat, dz, WT, b, VT, vb, lr, momentum, lo, hi):
    """D7, D8 and Eq. (11) fused for the units ``lo:hi``: v <- m v - lr dW[:, h]; W[:, h] += v; same for b.

    The gradient row lives only in a buffer of d numbers, so W and its velocity are each
    read and written once.
    """
    acc = np.empty(WT.shape[1], dtype=WT.dtype)
    for h in range(lo, hi):
        g = _unit_grad(h, start, entries, x, z, dx_hat, dz, acc)
        w = WT[h]
        v = VT[h]
        for t in range(w.shape[0]):
            vt = momentum * v[t] - lr * acc[t]
            v[t] = vt
            w[t] += vt
        vb[h] = momentum * vb[h] - lr * g
        b[h] += vb[h]
