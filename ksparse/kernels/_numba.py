"""Compiled CPU kernels for :mod:`ksparse.kernels.fast` (optional; needs numba).

Every kernel works on the transposed weights ``WT = W.T``, shape (H, d), C-contiguous,
so that the column ``W[:, j]`` of an active unit is one contiguous row ``WT[j]``. The
math is that of ``docs/equations.md`` D3-D8 restricted to the support Gamma; see
:mod:`ksparse.kernels.fast` for the public functions and the equations.

The kernels are serial, release the GIL, and work on a range of rows (samples) or of
units, so that :mod:`ksparse.kernels._cpu` runs them on its own threads, one range each,
together with the BLAS product of the same rows: one pool of threads for every phase.
Importing this module compiles nothing: numba compiles each kernel on its first call,
for the types of that call only, and caches it on disk (``cache=True``).
"""

import numba
import numpy as np
from numba.extending import overload
from numba.np.numpy_support import as_dtype

from ksparse.kernels import _cache  # noqa: F401  (one cache stamp for every kernel file)
from ksparse.kernels._encode_numba import _select_row

# Every fast-math flag except 'nnan' and 'ninf': NaN and inf must still propagate, so that
# training can detect divergence.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp", "afn"}
_JIT = {"nogil": True, "cache": True, "fastmath": _FASTMATH, "error_model": "numpy"}
_INLINE = dict(_JIT, inline="always")  # small helpers: no compile unit of their own


def _flush(a, v):
    """``v`` in the dtype of the array ``a``, or 0 where its magnitude is below the smallest
    normal number of that dtype (compiled only)."""
    return v


@overload(_flush)
def _flush_impl(a, v):
    # A velocity that momentum has shrunk below the smallest normal float (after about 800
    # steps idle at m = 0.9 in float32) becomes subnormal, and subnormal arithmetic costs
    # some CPUs 20 times normal arithmetic: a model whose dead units keep such velocities
    # (the paper's setting) pays that in every pass over W and V. ``ksparse.nn.optim``
    # flushes them to 0 in the same way. The value is cast to the array's dtype first, so
    # that a float64 expression is judged as the float32 it will be stored as.
    dtype = as_dtype(a.dtype)
    tiny, zero = dtype.type(np.finfo(dtype).tiny), dtype.type(0)
    cast = dtype.type

    def impl(a, v):
        x = cast(v)
        return zero if abs(x) < tiny else x
    return impl


@numba.njit(**_INLINE)
def _sample(x_row, z_row, WT, b_prime, Gamma_row, scale, r, dz_row):
    """D3-D6 for one sample; returns ||x_hat - x||^2 and ||x||^2 and leaves dx_hat in ``r``."""
    d = x_row.shape[0]
    k = Gamma_row.shape[0]
    q = 0.0
    for t in range(d):
        v = x_row[t]
        r[t] = b_prime[t] - v
        q += v * v
    G = Gamma_row
    j = 0
    while j + 4 <= k:  # D3: x_hat_i = b' + sum_{j in Gamma_i} z_ij W[:, j], four atoms per pass over r
        w0, w1, w2, w3 = WT[G[j]], WT[G[j + 1]], WT[G[j + 2]], WT[G[j + 3]]
        a0, a1, a2, a3 = z_row[G[j]], z_row[G[j + 1]], z_row[G[j + 2]], z_row[G[j + 3]]
        for t in range(d):
            r[t] += (a0 * w0[t] + a1 * w1[t]) + (a2 * w2[t] + a3 * w3[t])
        j += 4
    for jj in range(j, k):
        w = WT[G[jj]]
        a = z_row[G[jj]]
        for t in range(d):
            r[t] += a * w[t]
    e = 0.0
    for t in range(d):  # D4 and D5: residual -> (2/N) residual
        e += r[t] * r[t]
        r[t] = r[t] * scale
    j = 0
    while j + 4 <= k:  # D6: dz_ij = dx_hat_i . W[:, j], j in Gamma_i, four atoms per pass over r
        w0, w1, w2, w3 = WT[G[j]], WT[G[j + 1]], WT[G[j + 2]], WT[G[j + 3]]
        s0 = s1 = s2 = s3 = scale - scale
        for t in range(d):
            rt = r[t]
            s0 += rt * w0[t]
            s1 += rt * w1[t]
            s2 += rt * w2[t]
            s3 += rt * w3[t]
        dz_row[j], dz_row[j + 1], dz_row[j + 2], dz_row[j + 3] = s0, s1, s2, s3
        j += 4
    for jj in range(j, k):
        w = WT[G[jj]]
        s = scale - scale
        for t in range(d):
            s += r[t] * w[t]
        dz_row[jj] = s
    return e, q


@numba.njit(**_JIT)
def by_unit(Gamma, start, entries):
    """Group the support by hidden unit: entries (i, j) with Gamma[i, j] = h, for each h.

    Fills ``start`` (H + 1,), zero on entry, and ``entries`` (N k,) with ``i * k + j``, so
    that the entries of unit h are ``entries[start[h]:start[h + 1]]`` (a counting sort,
    O(N k + H); the caller allocates, so that the kernel compiles no allocation).
    """
    N, k = Gamma.shape
    H = start.shape[0] - 1
    for i in range(N):
        for j in range(k):
            start[Gamma[i, j] + 1] += 1
    for h in range(H):
        start[h + 1] += start[h]
    for i in range(N):  # start[h] advances to the end of unit h's entries ...
        for j in range(k):
            h = Gamma[i, j]
            entries[start[h]] = i * k + j
            start[h] += 1
    for h in range(H, 0, -1):  # ... which is where unit h + 1's begin
        start[h] = start[h - 1]
    start[0] = 0


@numba.njit(**_INLINE)
def _unit_grad(h, start, entries, x, z, dx_hat, dz, acc):
    """D7 and D8 for one unit h: acc = dW[:, h] = sum over its entries, returns db[h]."""
    k = dz.shape[1]
    d = x.shape[1]
    for t in range(d):
        acc[t] = 0
    db = 0.0
    e, end = start[h], start[h + 1]
    while e + 2 <= end:  # two entries per pass over acc
        i0 = entries[e] // k
        i1 = entries[e + 1] // k
        a0, a1 = z[i0, h], z[i1, h]
        g0, g1 = dz[i0, entries[e] - i0 * k], dz[i1, entries[e + 1] - i1 * k]
        db += g0
        db += g1
        r0, r1, x0, x1 = dx_hat[i0], dx_hat[i1], x[i0], x[i1]
        for t in range(d):  # D8: decoder part dx_hat_i z_ij plus encoder part x_i dz_ij
            acc[t] += (a0 * r0[t] + g0 * x0[t]) + (a1 * r1[t] + g1 * x1[t])
        e += 2
    if e < end:
        i = entries[e] // k
        a = z[i, h]
        g = dz[i, entries[e] - i * k]
        db += g
        r0, x0 = dx_hat[i], x[i]
        for t in range(d):
            acc[t] += a * r0[t] + g * x0[t]
    return db


@numba.njit(**_JIT)
def weight_grads(start, entries, x, z, dx_hat, dz, dWT, db, lo, hi):
    """D7 and D8 on the support for the units ``lo:hi``: rows of ``dWT`` (H, d) = dW.T and of ``db``."""
    for h in range(lo, hi):
        db[h] = _unit_grad(h, start, entries, x, z, dx_hat, dz, dWT[h])


@numba.njit(**_JIT)
def weight_grads_update(start, entries, x, z, dx_hat, dz, WT, b, VT, vb, lr, momentum, wdb, stats, lazy,
                        acc, lo, hi):
    """D7, D8 and Eq. (11) fused for the units ``lo:hi``: v <- m v - lr dW[:, h]; W[:, h] += v; same for b.

    The gradient row lives only in a buffer of d numbers, so W and its velocity are each
    read and written once. While a column is at hand the kernel also adds
    ``db[h] W[:, h]`` (before the update) to ``wdb`` (d,), the encoder's share of db' under
    D9, and writes ``stats[h] = (||w||^2, w . v, ||v||^2)`` of the updated column and
    velocity (the squared norm for resampling; the other two, which lazy momentum needs,
    only with ``lazy``, else 0). With ``lazy`` the columns of units outside the support are
    left as they are (b is always updated). ``acc`` (d,) is scratch for the gradient row, one
    per thread. Velocities below the smallest normal number are stored as 0, as
    :mod:`ksparse.nn.optim` does. A unit off the support has a zero gradient: its update is
    v <- m v, the same numbers without reading a gradient row.
    """
    d = WT.shape[1]
    for h in range(lo, hi):
        w = WT[h]
        v = VT[h]
        ww = wv = vv = lr - lr
        if start[h + 1] == start[h]:  # off the support
            vb[h] = _flush(vb, momentum * vb[h])
            b[h] += vb[h]
            if lazy:
                continue
            for t in range(d):
                vt = _flush(v, momentum * v[t])
                v[t] = vt
                wt = w[t] + vt
                w[t] = wt
                ww += wt * wt
        else:
            g = _unit_grad(h, start, entries, x, z, dx_hat, dz, acc)
            vb[h] = _flush(vb, momentum * vb[h] - lr * g)
            b[h] += vb[h]
            if lazy:
                for t in range(d):
                    w0 = w[t]
                    wdb[t] += g * w0  # D9: W db over the units on the support (db is 0 elsewhere)
                    vt = _flush(v, momentum * v[t] - lr * acc[t])
                    v[t] = vt
                    wt = w0 + vt
                    w[t] = wt
                    ww += wt * wt
                    wv += wt * vt
                    vv += vt * vt
            else:
                for t in range(d):
                    w0 = w[t]
                    wdb[t] += g * w0
                    vt = _flush(v, momentum * v[t] - lr * acc[t])
                    v[t] = vt
                    wt = w0 + vt
                    w[t] = wt
                    ww += wt * wt
        stats[h, 0] = ww
        stats[h, 1] = wv
        stats[h, 2] = vv


@numba.njit(**_JIT)
def lazy_topk_rows(z, y, S, b, bits, shift, mask, Gamma, lo, hi):
    """D1 with idle units brought up to date, then D2, for rows ``lo:hi``.

    On entry ``z = x W`` and ``y = x V`` with W and V as last written; a unit idle for s
    steps has W + S V with S = m + ... + m^s, so ``z[i] += S y[i] + b`` (S = 0 for a unit
    that is up to date), then the top-k of the row into ``Gamma``.
    """
    H = z.shape[1]
    cand_key, cand_index = np.empty(H, bits.dtype), np.empty(H, np.int32)
    value_row = np.empty(Gamma.shape[1], z.dtype)
    for i in range(lo, hi):
        z_row = z[i]
        y_row = y[i]
        for j in range(H):
            z_row[j] += S[j] * y_row[j] + b[j]
        _select_row(z_row, bits[i], shift, mask, Gamma[i], value_row, cand_key, cand_index)


@numba.njit(**_JIT)
def sample_rows(x, z, WT, b_prime, Gamma, scale, dx_hat, dz, err, sq, db_prime, lo, hi):
    """D3-D6 per sample on the support, for the rows ``lo:hi`` whose support Gamma (N, k) is known.

    ``z`` holds D1's z (bias included) and ``scale`` is 2 / N for the whole batch. Writes
    ``dx_hat`` (N, d), ``dz`` (N, k), ``err[i] = ||x_hat_i - x_i||^2`` (N,) and
    ``sq[i] = ||x_i||^2`` (N,; the rows of D11's bound) on those rows, and adds their dx_hat to
    ``db_prime`` (d,). Reads only the k rows
    ``WT[Gamma_i]`` of the weights per sample, twice, while they are in cache. The
    selection before it is :func:`ksparse.kernels._encode_numba.select_rows`, the one
    the encoder compiles too.
    """
    for i in range(lo, hi):
        err[i], sq[i] = _sample(x[i], z[i], WT, b_prime, Gamma[i], scale, dx_hat[i], dz[i])
        r = dx_hat[i]
        for t in range(db_prime.shape[0]):
            db_prime[t] += r[t]


@numba.njit(**_JIT)
def materialize_units(start, WT, VT, S, P, stats, every, lo, hi):
    """Lazy momentum's closed form for the units ``lo:hi`` on the support (``every``: all of them).

    A unit idle for s steps: W[:, h] += S[h] V[:, h] and V[:, h] *= P[h], with
    S = m + ... + m^s and P = m^s (a velocity below the smallest normal number stored as
    0, as :mod:`ksparse.nn.optim` does); with ``every`` also ``stats[h]`` as in
    :func:`weight_grads_update`.
    """
    for h in range(lo, hi):
        if not every and start[h + 1] == start[h]:
            continue
        w = WT[h]
        v = VT[h]
        a = S[h]
        p = P[h]
        ww = wv = vv = a - a
        for t in range(w.shape[0]):
            wt = w[t] + a * v[t]
            vt = _flush(v, v[t] * p)
            w[t] = wt
            v[t] = vt
            ww += wt * wt
            wv += wt * vt
            vv += vt * vt
        if every:
            stats[h, 0] = ww
            stats[h, 1] = wv
            stats[h, 2] = vv
