"""The compiled step on the CPU, split over threads (one pool for every phase).

:mod:`ksparse.kernels.fast` calls :func:`step` and :func:`train_step_` with the numba
kernels of :mod:`ksparse.kernels._numba`. A step has two phases, each split into one
range per thread and run on the same threads:

1. rows (samples): the BLAS product of the range's rows, ``z[lo:hi] = x[lo:hi] W``
   (D1), then the bias, top-k, decode and dz of those rows (D2-D6);
2. units, after a counting sort of the support by unit: the weight gradient of each unit
   of the range and, in the fused step, its update (D7, D8, Eq. (11)). Ranges are cut
   so that each holds about the same work (one pass over its rows of W and its velocity
   plus two passes per support entry).

While a step runs on several threads, BLAS runs on one thread in each of them: the BLAS
thread pool is never woken, so it does not spin on the cores that the other phases need
(a pool that has just finished a product keeps polling for new work for a while).
Below :data:`PARALLEL_WORK` multiply-adds a step runs in the calling thread, with BLAS on
one thread too (:func:`blas_threads`). The thread count is numba's
(``numba.set_num_threads``, per calling thread).

In float32 on two or more threads, :func:`train_step_` can run each phase as one OpenMP
parallel region instead (:mod:`ksparse.kernels._gomp`: no Python thread, no GIL hand-off),
and on any dtype it can run the ranges one after the other in the calling thread; the
same kernels on the same ranges, so the results are the same bit for bit. Which of the
three runs a step is the fastest lately for that shape (:mod:`ksparse.kernels._choice`).
"""

import concurrent.futures
import contextlib
import functools
import os
import time

import numba
import numpy as np

from ksparse.kernels import _choice, _gomp
from ksparse.kernels import _encode_numba as ek
from ksparse.kernels import _numba as nk
from ksparse.nn.optim import sgd_momentum_

# Below this many multiply-adds in the product x W a step runs in the calling thread:
# handing a range to another thread and waiting for it costs tens of microseconds, and
# each thread's product reads all of W. Measured with the fused D9 step on MNIST batches
# (2 cores), two threads were slower than one below about 2^24 (batch 4 at H = 2000,
# batch 8-12 at H = 1000) and faster above it (batch 8 at H = 4000, batch 32 at H = 1000).
PARALLEL_WORK = 1 << 24
# float32 steps on two or more threads run each phase as one OpenMP region
# (ksparse.kernels._gomp) where libgomp and numpy's BLAS product can be called from compiled
# code; False: always on the thread pool below (the same results, bit for bit).
OPENMP = True


@functools.lru_cache(maxsize=None)
def _pool(n_workers):
    """A process-wide pool of ``n_workers`` threads (created once per size, like BLAS's own).

    A process forked from this one has none of its threads, so the child starts with no pools
    (:func:`_forget_pools`): a pool copied into it would take work and never run it.
    """
    return concurrent.futures.ThreadPoolExecutor(n_workers, thread_name_prefix="ksparse")


def _forget_pools():
    """In a forked child: drop the parent's pools (their threads did not survive the fork)."""
    _pool.cache_clear()


os.register_at_fork(after_in_child=_forget_pools)


@functools.lru_cache(maxsize=1)
def _blas_libraries():
    """threadpoolctl's controllers of the BLAS libraries loaded now (numpy's, scipy's)."""
    from threadpoolctl import ThreadpoolController

    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)


@contextlib.contextmanager
def _one_blas_thread():
    """Run the enclosed code with one BLAS thread per call; restore the counts afterwards."""
    libraries = _blas_libraries()
    before = [lib.get_num_threads() for lib in libraries]
    for lib, n in zip(libraries, before, strict=True):
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libraries, before, strict=True):
            if n != 1:
                lib.set_num_threads(n)


def blas_threads(n, N, d, H):
    """The BLAS thread count for a step or block on ``n`` threads with an (N, d) x (d, H) product.

    One BLAS thread per call when the step runs on several threads of its own (each calls
    BLAS) or when the product is below :data:`PARALLEL_WORK` (too small for several threads:
    a BLAS pool woken for it costs more than it saves, and where other processes want the
    cores it can wait a whole time slice for each product); otherwise BLAS is left alone.
    """
    return _one_blas_thread() if n > 1 or N * d * H < PARALLEL_WORK else contextlib.nullcontext()


def threads_for(N, d, H):
    """How many threads a step of batch N, d inputs and H units runs on (1 below PARALLEL_WORK)."""
    if N * d * H < PARALLEL_WORK:
        return 1
    return max(1, min(numba.get_num_threads(), N))


def run_ranges(fn, bounds, serial=False):
    """Call ``fn(c, lo, hi)`` for each consecutive pair ``lo, hi`` of ``bounds`` (the c-th), one per thread.

    The first range runs in the calling thread; with ``serial``, every range does, in order.
    Exceptions are re-raised here.
    """
    ranges = [(c, lo, hi) for c, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))]
    if len(ranges) == 1 or serial:
        for r in ranges:
            fn(*r)
        return
    futures = [_pool(len(ranges) - 1).submit(fn, *r) for r in ranges[1:]]
    try:
        fn(*ranges[0])
    finally:
        for f in futures:
            f.result()


def topk(z, k, n_threads):
    """D2 on every row of z (no bias), split over rows: Gamma (N, k)."""
    N, H = z.shape
    n = max(1, min(n_threads, N))
    Gamma = np.empty((N, k), dtype=np.int64)
    values = np.empty((N, k), dtype=z.dtype)
    select = selector(z.copy(), np.zeros(H, dtype=z.dtype), n)  # the selection adds b in place
    run_ranges(lambda c, lo, hi: select(c, lo, hi, Gamma, values), [N * c // n for c in range(n + 1)])
    return Gamma


def selector(z, b, n):
    """``select(c, lo, hi, index, value, out=None)``: D1's bias and the top-m of the rows lo:hi of
    z (N, H) in place, by :func:`ksparse.kernels._encode_numba.select_rows` with the c-th of
    ``n`` threads' scratch; ``index`` (N, m) int64 and ``value`` (N, m) receive the support
    and ``out`` (N, H, zero), when given, the dense code."""
    bits, shift, mask = ek.int_view(z)
    keys, cols = ek.scratch(z, n)
    none = np.empty((0, z.shape[1]), dtype=z.dtype)
    # a writable copy where b is read-only (a model loaded from a file): numba types read-only
    # arrays apart, and would compile the whole selection again for them
    b = np.require(b, dtype=z.dtype, requirements=["C", "W"])

    def select(c, lo, hi, index, value, out=None):
        ek.select_rows(z, bits, shift, mask, b, index, value, none if out is None else out, keys[c], cols[c],
                       lo, hi)

    return select


def _forward(x, WT, b, b_prime, k, n, serial=False):
    """Phase 1 on ``n`` ranges (threads, or one after the other with ``serial``): z (N, H), Gamma,
    dx_hat (D5), dz on Gamma, per-sample errors and squared norms ||x_i||^2, db'."""
    N, d = x.shape
    z = np.empty((N, WT.shape[0]), dtype=x.dtype)
    Gamma = np.empty((N, k), dtype=np.int64)
    dx_hat = np.empty_like(x)
    dz = np.empty((N, k), dtype=x.dtype)
    err, sq = np.empty(N, dtype=np.float64), np.empty(N, dtype=np.float64)
    db_prime = np.zeros((n, d), dtype=x.dtype)
    select, values = selector(z, b, n), np.empty((N, k), dtype=x.dtype)
    scale = x.dtype.type(2.0 / N)

    def product(c, lo, hi):  # D1 without b, for the units lo:hi and every row (W read once)
        if hi > lo:
            np.matmul(x, WT[lo:hi].T, out=z[:, lo:hi])

    def rows(c, lo, hi):
        select(c, lo, hi, Gamma, values)  # b, then D2
        nk.sample_rows(x, z, WT, b_prime, Gamma, scale, dx_hat, dz, err, sq, db_prime[c], lo, hi)  # D3-D6

    run_ranges(product, _gomp.product_bounds(WT.shape[0], n), serial)  # the OpenMP path's ranges
    run_ranges(rows, [N * c // n for c in range(n + 1)], serial)
    return z, Gamma, dx_hat, dz, err, sq, db_prime.sum(axis=0)


def by_unit(Gamma, H):
    """:func:`ksparse.kernels._numba.by_unit` on new arrays: (start (H + 1,), entries (N k,))."""
    start = np.zeros(H + 1, dtype=np.int64)
    entries = np.empty(Gamma.size, dtype=np.int64)
    nk.by_unit(Gamma, start, entries)
    return start, entries


def _unit_bounds(start, d, n):
    """Cut the units into ``n`` ranges of about equal work: d per unit plus 2 d per entry."""
    H = start.shape[0] - 1
    if n == 1:
        return [0, H]
    cost = np.arange(H + 1) + 2 * start  # cumulative work up to each unit, in units of d
    cuts = np.searchsorted(cost, cost[-1] * np.arange(1, n) / n)
    return [0, *np.clip(cuts, 0, H).tolist(), H]


def step(x, WT, b, b_prime, k):
    """The support-only step on the compiled kernels: (E, grads, Gamma); ``grads["W"]`` column-major."""
    N, d = x.shape
    n = threads_for(N, d, WT.shape[0])
    with blas_threads(n, N, d, WT.shape[0]):
        z, Gamma, dx_hat, dz, err, _, db_prime = _forward(x, WT, b, b_prime, k, n)
        start, entries = by_unit(Gamma, WT.shape[0])
        dWT = np.empty_like(WT)
        db = np.empty_like(b)
        run_ranges(lambda c, lo, hi: nk.weight_grads(start, entries, x, z, dx_hat, dz, dWT, db, lo, hi),
                   _unit_bounds(start, d, n))
    grads = {"W": dWT.T, "b": db, "b_prime": db_prime}
    return x.dtype.type(err.sum() / N), grads, Gamma


def train_step_(x, params, velocity, k, lr, momentum, profile=None, pre_bias=False, lr_bound=None):
    """:func:`step` fused with Eq. (11) in place; W and its velocity must be column-major.

    With ``pre_bias`` the model is D9's: the step runs on u = x - b' with no output bias,
    and b' gets sum_rows dX_hat - W db, W before the update (accumulated by the units
    phase while each column is at hand).

    ``lr_bound``, when given, is D11 (:class:`ksparse.training.bound.LrCap`): called with
    max_i ||u_i||^2 (u = x, or x - b' under D9), which the rows phase measures while each
    row is in cache, it returns the learning rate of this step's update.

    Returns
    -------
    E : scalar
        The loss D4 before the update.
    Gamma : int64 array, shape (N, k)
    dx_hat : array, shape (N, d)
        D5, (2 / N)(x_hat - x), of this step (for resampling dead units).
    norms2 : array, shape (H,)
        The squared norm of every column of W after the update.

    ``profile``, when given, is a float array of 3 to which the seconds of the rows phase,
    the grouping by unit and the units phase are added (see the module's notes).
    """
    N, d = x.shape
    W, b, b_prime = params["W"], params["b"], params["b_prime"]
    WT, VT = W.T, velocity["W"].T
    H = WT.shape[0]
    n = threads_for(N, d, H)
    clock = [time.perf_counter()]
    if pre_bias:  # D9: u = x - b', decoded without b'
        x, b_dec = x - b_prime, np.zeros_like(b_prime)
    else:
        b_dec = b_prime
    team = _team_for(n, x, k, WT, VT, b, velocity["b"], None if pre_bias else b_prime)
    choice = _choice.choice_for((n, N, d, H, k, x.dtype.str, pre_bias)) if n > 1 else None
    path = choice.pick(("openmp", "pool", "serial") if team else ("pool", "serial")) if choice else "pool"
    if path == "openmp":
        try:
            with _one_blas_thread():
                err, Gamma, dx_hat, db_prime, wdb_sum, norms2, lr = _gomp.train_step_(
                    team, x, lr, momentum, lr_bound, clock, _unit_bounds)
        finally:
            team.lock.release()
        choice.record(path, time.perf_counter() - clock[0], N)
        return _finish(params, velocity, profile, clock, pre_bias, db_prime, wdb_sum, lr, momentum, err, N,
                       Gamma, dx_hat, norms2)
    if team is not None:
        team.lock.release()
    serial = path == "serial"
    wdb, acc = np.zeros((n, d), dtype=x.dtype), np.empty((n, d), dtype=x.dtype)
    stats = np.empty((H, 3), dtype=x.dtype)
    with blas_threads(n, N, d, H):
        z, Gamma, dx_hat, dz, err, sq, db_prime = _forward(x, WT, b, b_dec, k, n, serial)
        if lr_bound is not None:  # D11, from the rows phase's squared norms
            lr = x.dtype.type(lr_bound(float(sq.max())))
        clock.append(time.perf_counter())
        start, entries = by_unit(Gamma, H)
        clock.append(time.perf_counter())
        run_ranges(lambda c, lo, hi: nk.weight_grads_update(start, entries, x, z, dx_hat, dz, WT, b, VT,
                                                            velocity["b"], lr, momentum, wdb[c], stats,
                                                            False, acc[c], lo, hi),
                   _unit_bounds(start, d, n), serial)
    clock.append(time.perf_counter())
    if choice is not None:
        choice.record(path, clock[-1] - clock[0], N)
    return _finish(params, velocity, profile, clock, pre_bias, db_prime, wdb.sum(axis=0), lr, momentum, err,
                   N, Gamma, dx_hat, stats[:, 0])


def _finish(params, velocity, profile, clock, pre_bias, db_prime, wdb_sum, lr, momentum, err, N, Gamma,
            dx_hat, norms2):
    """The end of :func:`train_step_`: the profile, D9's share of db', Eq. (11) for b', the returns."""
    if profile is not None:
        profile += np.diff(clock)
    if pre_bias:  # D9: the encoder's share of db'
        db_prime -= wdb_sum
    sgd_momentum_(params, {"b_prime": db_prime}, velocity, lr, momentum)  # Eq. (11) for b'
    return dx_hat.dtype.type(err.sum() / N), Gamma, dx_hat, norms2


def _team_for(n, x, k, WT, VT, b, vb, b_dec):
    """The OpenMP team of :mod:`ksparse.kernels._gomp` for this step, or None (the pool then runs it).

    Only where every range holds at least two rows: numpy multiplies a single row with gemv,
    the OpenMP path with gemm, and the two paths must give the same numbers.
    """
    if (n < 2 or x.shape[0] < 2 * n or not OPENMP
            or not (x.flags.c_contiguous and x.dtype == WT.dtype and WT.flags.c_contiguous)):
        return None
    return _gomp.team_for(n, x.shape[0], k, WT, VT, b, vb, b_dec)


def momentum_pass_(W, V, momentum):
    """Eq. (11) with a zero gradient over every unit, v <- m v; W += v, split over threads.

    The memory traffic every step pays for the update (one read and write of W and of its
    velocity): the floor that the benchmarks add to one product. W and V column-major.
    """
    WT, VT = W.T, V.T
    H, d = WT.shape
    start = np.zeros(H + 1, dtype=np.int64)
    empty = np.empty((1, 1), dtype=W.dtype)
    none = np.empty(0, dtype=np.int64)
    zero = W.dtype.type(0)
    b = np.zeros(H, dtype=W.dtype)
    n = max(1, min(numba.get_num_threads(), H))
    wdb, stats = np.zeros((n, d), dtype=W.dtype), np.empty((H, 3), dtype=W.dtype)
    acc = np.empty((n, d), dtype=W.dtype)
    run_ranges(lambda c, lo, hi: nk.weight_grads_update(start, none, empty, empty, empty, empty, WT, b, VT,
                                                        b.copy(), zero, W.dtype.type(momentum), wdb[c],
                                                        stats, False, acc[c], lo, hi),
               [H * c // n for c in range(n + 1)])
