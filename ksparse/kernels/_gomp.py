"""The fused step's two phases as OpenMP parallel regions (GNU libgomp), float32, CPU.

:mod:`ksparse.kernels._cpu` runs each phase of a step (rows, then units) as one range
per thread. On its Python thread pool, handing a range to a thread costs a wake-up and,
because that thread runs Python to reach the kernel, a wait for the GIL, twice a step;
``GOMP_parallel``'s threads wait by spinning, then sleeping, and never take the GIL. Here
each phase is one call to ``GOMP_parallel`` (through ctypes, which releases the GIL) with
one compiled C callback (:mod:`ksparse.kernels._gomp_region`), in which thread i runs range i of the phase:
the rows phase with numpy's own BLAS product called from compiled code
(:mod:`ksparse.kernels._blas`), then the same kernels as the pool
(:func:`ksparse.kernels._encode_numba.select_rows`, :func:`ksparse.kernels._numba.sample_rows`,
:func:`ksparse.kernels._numba.weight_grads_update`) on the same ranges, so the results equal
the pool's bit for bit (tests/test_gomp.py).

A callback takes one pointer, so a :class:`Team` keeps every array of the step (the
weights, their velocity, the biases, and buffers for batches of up to N rows) in one
int64 table of addresses and shapes, built once; a step writes only the batch's address,
its size and the ranges. Used where libgomp and numpy's BLAS product can both be found,
for float32 (the training dtype; float64 keeps the pool), one thread at a time per team
(another thread meanwhile steps on the pool), and never in a process forked from this one
(GNU OpenMP is not fork-safe: the child keeps to the pool). Where other processes want the
cores, OpenMP's waiting threads can make a phase wait a whole time slice, so libgomp is
loaded with a short spin (:func:`_load`), and :mod:`ksparse.kernels._choice` runs a step on
OpenMP only while it has been the fastest way lately. The callback is compiled on
the first step that uses it and cached on disk like every kernel. ``KSPARSE_NO_OPENMP=1``
turns the path off.
"""

import ctypes
import ctypes.util
import functools
import os
import threading
import time
import weakref

import numpy as np

from ksparse.kernels import _blas
from ksparse.kernels import _encode_numba as ek
from ksparse.kernels import _numba as nk
from ksparse.kernels._gomp_region import (
    ARRAYS,
    GEMM,
    HEADER,
    ILP64,
    JOB,
    MASK,
    NARRAYS,
    NRANGES,
    NROWS,
    NUM_THREADS,
    PRODUCT,
    ROWS,
    SHIFT,
    THREAD_NUM,
    UNITS,
    X,
    _callback,
)

SPIN_COUNT = 1000  # GOMP_SPINCOUNT when this module loads libgomp (see _load)


@functools.lru_cache(maxsize=1)
def _libgomp():
    """(GOMP_parallel as a ctypes function, the addresses of omp_get_thread_num and
    omp_get_num_threads), or None where libgomp cannot be loaded."""
    if os.environ.get("KSPARSE_NO_OPENMP"):
        return None
    for name in (ctypes.util.find_library("gomp"), "libgomp.so.1"):
        if not name:
            continue
        try:
            lib = _load(name)
            parallel = lib.GOMP_parallel
            thread_num, num_threads = lib.omp_get_thread_num, lib.omp_get_num_threads
        except (OSError, AttributeError):
            continue
        parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        parallel.restype = None
        address = functools.partial(ctypes.cast, typ=ctypes.c_void_p)
        return parallel, address(thread_num).value, address(num_threads).value
    return None


def _load(name):
    """libgomp as loaded in this process, or loaded now with a short spin (:data:`SPIN_COUNT`).

    A thread that waits for work in GNU OpenMP polls for GOMP_SPINCOUNT iterations (300,000
    by default, about a millisecond) before it sleeps. On a machine whose cores other work
    also wants, a polling thread takes a core from the thread it waits for, and each phase
    can wait for a whole time slice: with one busy process beside a 2-core step, the step
    took about twice as long as on the thread pool. So, unless libgomp is loaded already
    (then its settings stand) or the user set GOMP_SPINCOUNT or OMP_WAIT_POLICY, libgomp is
    loaded with GOMP_SPINCOUNT = SPIN_COUNT, the count libgomp itself uses when it knows its
    threads outnumber the cores; the environment is restored right after loading.
    """
    try:
        return ctypes.CDLL(name, mode=os.RTLD_NOLOAD | ctypes.RTLD_GLOBAL)
    except (OSError, AttributeError):
        pass
    ours = not any(v in os.environ for v in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY"))
    if ours:
        os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    try:
        return ctypes.CDLL(name)
    finally:
        if ours:
            del os.environ["GOMP_SPINCOUNT"]


_FORKED = False  # True in a process forked from this one (it must not call libgomp)


def _after_fork_in_child():
    global _FORKED
    _FORKED = True
    _TEAMS.clear()


class Team:
    """A step's arrays for ``n`` threads: the model's (updated in place) and buffers for up to N rows.

    ``WT``, ``VT`` (H, d), ``b``, ``vb`` (H,) and ``b_dec`` (d,; None: zeros, D9) are the
    arrays the step reads or updates in place, float32, C-contiguous; ``gemm`` is
    :func:`ksparse.kernels._blas.gemm`'s product.
    """

    def __init__(self, n, N, k, WT, VT, b, vb, b_dec, gemm, omp):
        H, d = WT.shape
        self.n, self.N, self.k, self.gemm = n, N, k, gemm
        # the model's arrays are not held (a team must not keep a dropped model in memory): weak
        # references to their owners tell whether they are alive, and the team is dropped with W
        self.owners = [None if a is None else _weak_owner(a) for a in (WT, VT, b, vb, b_dec)]
        self.where = _where((WT, VT, b, vb, b_dec))
        if isinstance(self.owners[0], weakref.ref):
            weakref.finalize(self.owners[0](), _drop_team, n, id(self))
        self.parallel = omp[0]
        if b_dec is None:  # D9: decoded without b'
            b_dec = np.zeros(d, dtype=np.float32)
        z = np.empty((N, H), dtype=np.float32)
        bits, shift, mask = ek.int_view(z)
        keys, cols = ek.scratch(z, n)
        f32 = functools.partial(np.zeros, dtype=np.float32)
        model = {"WT": WT, "VT": VT, "b": b, "vb": vb, "b_dec": b_dec}
        self.arrays = {**model, "z": z, "bits": bits,
                       "Gamma": np.zeros((N, k), dtype=np.int64), "values": f32((N, k)), "keys": keys,
                       "cols": cols,
                       "dx_hat": f32((N, d)), "dz": f32((N, k)), "err": np.zeros(N), "sq": np.zeros(N),
                       "dbp": f32((n, d)), "start": np.zeros(H + 1, dtype=np.int64),
                       "entries": np.zeros(N * k, dtype=np.int64), "wdb": f32((n, d)), "stats": f32((H, 3)),
                       "acc": f32((n, d)), "reals": f32(3)}
        table = np.zeros(HEADER + 2 * (n + 1) + 3 * NARRAYS, dtype=np.int64)
        ilp64 = type(gemm)._argtypes_[3] is ctypes.c_int64
        table[[NRANGES, GEMM, ILP64, THREAD_NUM, NUM_THREADS, SHIFT, MASK]] = (
            n, ctypes.cast(gemm, ctypes.c_void_p).value, ilp64, omp[1], omp[2], shift, mask)
        for a, name in enumerate(ARRAYS):
            array = self.arrays[name]
            shape = array.shape if array.ndim == 2 else (1, array.shape[0])
            o = HEADER + 2 * (n + 1) + 3 * a
            table[o:o + 3] = array.ctypes.data, *shape
        self.table = table
        for name in ("WT", "VT", "b", "vb") + (("b_dec",) if self.owners[4] is not None else ()):
            del self.arrays[name]  # only the team's own buffers are held
        self.lock = threading.Lock()  # held by the one thread stepping with the team

    def fits(self, n, N, k, arrays, gemm):
        """Whether the team is for these sizes and arrays (their memory: ``W.T`` is a new view each call)."""
        return (n == self.n and N <= self.N and k == self.k and gemm is self.gemm
                and all(o is None or o() is not None for o in self.owners) and _where(arrays) == self.where)

    def phase(self, job):
        """Run ``job`` (PRODUCT, ROWS or UNITS) on every range, one OpenMP thread each."""
        self.table[JOB] = job
        self.parallel(_callback(), self.table.ctypes.data, self.n, 0)


def _drop_team(n, team_id):
    """Forget the team of ``n`` threads if it is still the one with this id (its W is gone)."""
    if id(_TEAMS.get(n)) == team_id:
        del _TEAMS[n]


def _weak_owner(a):
    """A weak reference to the object that owns ``a``'s memory (``W.T``'s is W), or a strong one
    (a callable returning it) for an owner that takes no weak reference."""
    owner = a if a.base is None else a.base
    try:
        return weakref.ref(owner)
    except TypeError:
        return lambda: owner


def _where(arrays):
    """The memory of each array (None stays None): address, shape, strides."""
    return [None if a is None else (a.ctypes.data, a.shape, a.strides) for a in arrays]


_TEAMS = {}  # the team of each thread count (one model at a time)
os.register_at_fork(after_in_child=_after_fork_in_child)


def team_for(n, N, k, WT, VT, b, vb, b_dec):
    """The team of ``n`` threads bound to these arrays (a new one if needed), locked; or None.

    None in a forked child, for arrays that are not float32 and C-contiguous, where libgomp or numpy's BLAS
    product cannot be called (:func:`ksparse.kernels._blas.gemm`), or where another thread is
    using the team. The caller releases ``team.lock``.
    """
    if _FORKED or not all(a is None or (a.dtype == np.float32 and a.flags.c_contiguous)
                          for a in (WT, VT, b, vb, b_dec)):
        return None
    omp, gemm = _libgomp(), _blas.gemm(np.float32)
    if omp is None or gemm is None:
        return None
    team = _TEAMS.get(n)
    if team is not None:
        if not team.lock.acquire(blocking=False):
            return None
        if team.fits(n, N, k, (WT, VT, b, vb, b_dec), gemm):
            return team
        team.lock.release()
    team = _TEAMS[n] = Team(n, N, k, WT, VT, b, vb, b_dec, gemm, omp)
    team.lock.acquire()
    return team


def product_bounds(H, n):
    """The units of D1's product on each of ``n`` threads: ``n`` ranges of about H / n units.

    Each thread multiplies every row of the batch by its share of W, so W is read once a step
    (cut by rows, each thread read all of W: on a 2-core Xeon two such halves together took as
    long as the whole product on one thread). :mod:`ksparse.kernels._cpu`'s pool cuts the same
    ranges, so the two paths compute the same numbers.
    """
    return [H * c // n for c in range(n + 1)]


def train_step_(team, x, lr, momentum, lr_bound, clock, unit_bounds):
    """:func:`ksparse.kernels._cpu.train_step_`'s two phases on ``team`` for the batch ``x``
    (N, d), float32, C-contiguous (D9's x - b' already formed; the team's ``b_dec`` is then zero).

    Returns (err (N,), Gamma (N, k), dx_hat (N, d), db' (d,), W db (d,), norms2 (H,), lr):
    new arrays, as the pool's step returns. ``clock`` receives the phases' end times and
    ``unit_bounds(start, d, n)`` cuts the units.
    """
    a, t, n = team.arrays, team.table, team.n
    N, d = x.shape
    t[NROWS], t[X] = N, x.ctypes.data
    t[HEADER:HEADER + n + 1] = [N * c // n for c in range(n + 1)]
    a["reals"][:] = (2.0 / N, lr, momentum)
    a["dbp"][:] = 0
    a["wdb"][:] = 0
    a["start"][:] = 0
    H = a["stats"].shape[0]
    t[HEADER + n + 1:HEADER + 2 * n + 2] = product_bounds(H, n)  # the units' slots, until the units phase
    team.phase(PRODUCT)
    team.phase(ROWS)
    if lr_bound is not None:  # D11, from the rows phase's squared norms
        lr = x.dtype.type(lr_bound(float(a["sq"][:N].max())))
        a["reals"][1] = lr
    clock.append(time.perf_counter())
    nk.by_unit(a["Gamma"][:N], a["start"], a["entries"][:N * team.k])
    clock.append(time.perf_counter())
    t[HEADER + n + 1:HEADER + 2 * n + 2] = unit_bounds(a["start"], d, n)
    team.phase(UNITS)
    clock.append(time.perf_counter())
    return (a["err"][:N].copy(), a["Gamma"][:N].copy(), a["dx_hat"][:N].copy(), a["dbp"].sum(axis=0),
            a["wdb"].sum(axis=0), a["stats"][:, 0].copy(), lr)
