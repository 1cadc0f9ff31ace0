"""Compiled exact top-k selection (optional; needs numba): the encoder's alpha k and the training's k.

One kernel, :func:`select_rows`, compiled once per dtype, for :mod:`ksparse.kernels.encode`,
for D2 in the training step (:mod:`ksparse.kernels._cpu`) and for
:func:`ksparse.kernels.fast.supp_k`: a first run compiles the selection once, not once per
caller (numba re-optimises a callee inside each compiled caller).

The caller computes one block of z = x W with a BLAS product, then calls
:func:`select_rows` on those rows while they are in cache. Each row's selection is exact
and O(H): a strided sample of the row's keys gives a threshold that about 1.25 alpha k
entries pass; one branch-free pass keeps the entries above it; bisection on counts among
those few finds the exact (alpha k)-th largest key t (branch-free passes, where a
quickselect mispredicts a branch per entry); the entries above t, then those equal to t
in column order, make the support (so the kept columns come out in ascending order, and
ties keep the earlier column). When the sampled threshold lets fewer than alpha k
entries through, the row is selected among all H.

Keys are the floats' bits as integers, flipped for negative numbers so that integer
order is float order (as in :mod:`ksparse.kernels._numba`). The kernels are serial, release
the GIL and work on a range of rows, so that :mod:`ksparse.kernels.encode` runs them with the
BLAS product of the same rows on the threads of :mod:`ksparse.kernels._cpu` (one pool, as the
training step). Importing this module compiles nothing: numba compiles each kernel on its
first call and caches it on disk.
"""

import numba
import numpy as np

from ksparse.kernels import _cache  # noqa: F401  (one cache stamp for every kernel file)

_JIT = {"nogil": True, "cache": True, "error_model": "numpy"}
# Helpers inlined into their caller by numba, so that none is a compile unit of its own
# (each unit is optimised and turned into machine code on its own, then again inside its
# caller); _kth_largest_by_count, called twice, stays one unit (inlining it twice costs more).
_INLINE = dict(_JIT, inline="always")
SAMPLE = 128  # entries of a row sampled for the threshold estimate


@numba.njit(**_INLINE)
def _key(bits, shift, mask):
    """Order-preserving integer key of a float's bits (negative floats: magnitude flipped)."""
    return bits ^ ((bits >> shift) & mask)


@numba.njit(**_INLINE)
def _count_at_least(keys, n, t):
    """How many of ``keys[:n]`` are >= t (a branch-free pass that vectorises)."""
    count = 0
    for c in range(n):
        count += np.int64(keys[c]) >= t
    return count


@numba.njit(**_JIT)
def _kth_largest_by_count(keys, n, r):
    """The r-th largest of ``keys[:n]`` (1 <= r <= n), by bisection on counts.

    Keeps count(keys >= lo) >= r > count(keys >= hi); each count is a branch-free pass
    that vectorises, so the passes over a few hundred candidates cost less than the
    mispredicted branches of a quickselect. A threshold that exactly r keys reach ends the
    search early: the r-th largest is then the least of those r (one more pass). Without
    ties that happens once the interval is narrower than the gap below the r-th largest,
    after about log2(n) + 3 passes instead of up to 32 (the width of the keys).
    """
    lo = np.int64(keys[0])
    hi = np.int64(keys[0])
    for c in range(n):
        lo = min(lo, np.int64(keys[c]))
        hi = max(hi, np.int64(keys[c]))
    if _count_at_least(keys, n, hi) >= r:
        return hi
    top = hi
    while lo < hi - 1:
        mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # floor((lo + hi) / 2) without overflow
        count = _count_at_least(keys, n, mid)
        if count == r:  # exactly r keys reach mid: the r-th largest is the least of them
            t = top
            for c in range(n):
                v = np.int64(keys[c])
                t = min(t, v if v >= mid else top)
            return t
        if count > r:
            lo = mid
        else:
            hi = mid
    return lo


@numba.njit(**_INLINE)
def _candidates(bits, shift, mask, ak, cand_key, cand_index):
    """Entries of the row whose key reaches a sampled threshold; returns how many (>= ak).

    The sample's keys go to the first entries of ``cand_key`` before the candidates do.
    """
    H = bits.shape[0]
    m = min(H, SAMPLE)
    stride = H // m
    r = min(m, (5 * ak * m) // (4 * H) + 4)
    n = 0
    if r < m:
        for t in range(m):
            cand_key[t] = _key(bits[t * stride], shift, mask)
        t_est = _kth_largest_by_count(cand_key, m, r)
        for j in range(H):  # branch-free compaction: always store, advance when kept
            v = _key(bits[j], shift, mask)
            cand_key[n] = v
            cand_index[n] = j
            n += v >= t_est
    if n < ak:  # the estimate was too high (or H is small): every entry is a candidate
        for j in range(H):
            cand_key[j] = _key(bits[j], shift, mask)
            cand_index[j] = j
        n = H
    return n


@numba.njit(**_INLINE)
def _select_row(z, bits, shift, mask, index_row, value_row, cand_key, cand_index):
    """Sec. 2.2 on one row: the alpha k largest entries of ``z`` (their columns ascending)."""
    ak = index_row.shape[0]
    n = _candidates(bits, shift, mask, ak, cand_key, cand_index)
    t = _kth_largest_by_count(cand_key, n, ak)
    ties = ak
    for c in range(n):
        ties -= np.int64(cand_key[c]) > t
    o = 0
    for c in range(n):
        v = np.int64(cand_key[c])
        if v > t or (v == t and ties > 0):
            if v == t:
                ties -= 1
            index_row[o] = cand_index[c]
            value_row[o] = z[cand_index[c]]
            o += 1


@numba.njit(**_JIT)
def select_rows(z, bits, shift, mask, b, index, value, out, cand_key, cand_index, lo, hi):
    """D1's bias, then D2 (or Sec. 2.2's alpha k) on the rows ``lo:hi`` of ``z`` (N, H).

    Adds ``b`` (H,) to each row, then writes the m = ``index.shape[1]`` largest entries'
    columns (ascending) and values into ``index`` (N, m, int64) and ``value`` (N, m).
    When ``out`` has rows it is the dense code (N, H), zero on entry: the values are
    written into it (pass an array with no rows otherwise). ``bits`` is ``z`` viewed as
    integers of its width, ``shift`` their width - 1, ``mask`` their largest value;
    ``cand_key`` (H,) of bits' type and ``cand_index`` (H,) int32 are scratch, one pair
    per thread. The training step, the encoder and :func:`ksparse.kernels.fast.supp_k`
    all call this one kernel, so it is compiled once per dtype.
    """
    H = z.shape[1]
    m = index.shape[1]
    dense = out.shape[0] > 0
    for i in range(lo, hi):
        z_row = z[i]
        for j in range(H):
            z_row[j] += b[j]
        _select_row(z_row, bits[i], shift, mask, index[i], value[i], cand_key, cand_index)
        if dense:
            out_row = out[i]
            for o in range(m):
                out_row[index[i, o]] = value[i, o]


def scratch(z, n):
    """``cand_key`` (n, H) and ``cand_index`` (n, H) for :func:`select_rows`, one row per thread."""
    H = z.shape[1]
    return np.empty((n, H), dtype=np.int32 if z.itemsize == 4 else np.int64), np.empty((n, H), np.int32)


def int_view(z):
    """z viewed as integers of its width, that width - 1, and the largest such integer."""
    int_type = np.int32 if z.dtype == np.float32 else np.int64
    return z.view(int_type), int_type(8 * z.itemsize - 1), int_type(np.iinfo(int_type).max)
