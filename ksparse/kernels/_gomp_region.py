"""The compiled side of :mod:`ksparse.kernels._gomp`: the OpenMP callback and its table.

:func:`_region` is compiled as a C callback (``void f(int64 *table)``) that
``GOMP_parallel`` runs on every thread of a team: thread i of T runs ranges i, i + T, ...
of the table's job, PRODUCT (numpy's BLAS product of every row with the range's units,
called through its address), ROWS (:func:`ksparse.kernels._encode_numba.select_rows` and
:func:`ksparse.kernels._numba.sample_rows` on the range's rows) or UNITS
(:func:`ksparse.kernels._numba.weight_grads_update`), on arrays the table gives by address
and shape. Intrinsics turn addresses into typed pointers and call C functions through
their addresses, so that nothing process-specific is baked into the compiled code and numba
can cache it on disk.
"""

import functools

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ksparse.kernels import _cache  # noqa: F401  (one cache stamp for every kernel file)
from ksparse.kernels import _encode_numba as ek
from ksparse.kernels import _numba as nk

ROWS, UNITS, PRODUCT = 0, 1, 2
# The table's header: job, ranges n, batch rows N, address of x, of the product (gemm),
# whether its integers are 64-bit, of omp_get_thread_num and omp_get_num_threads, shift, mask
JOB, NRANGES, NROWS, X, GEMM, ILP64, THREAD_NUM, NUM_THREADS, SHIFT, MASK = range(10)
HEADER = 16
# The arrays after the header and the 2 (n + 1) range bounds, 3 entries each (address and
# two lengths), in this order (their element types are those :func:`_region` reads them as)
ARRAYS = ("WT", "VT", "b", "vb", "b_dec", "z", "bits", "Gamma", "values", "keys", "cols", "dx_hat", "dz",
          "err", "sq", "dbp", "start", "entries", "wdb", "stats", "acc", "reals")
NARRAYS = len(ARRAYS)
_JIT = {"nogil": True, "cache": True, "error_model": "numpy"}


def _pointer_to(nbtype):
    """An intrinsic taking an int64 address to a pointer to ``nbtype``."""
    @intrinsic
    def pointer(typingctx, address):
        ptrty = types.CPointer(nbtype)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(ptrty))
        return ptrty(types.int64), codegen
    return pointer


_f32, _f64, _i32, _i64 = (_pointer_to(t) for t in (types.float32, types.float64, types.int32, types.int64))


@intrinsic
def _call_int(typingctx, address):
    """Call the C function ``int f(void)`` at ``address``."""
    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        return builder.call(builder.inttoptr(args[0], fnty.as_pointer()), [])
    return types.int32(types.int64), codegen


def _sgemm_intrinsic(width):
    """An intrinsic calling cblas_sgemm (row-major, z = x WT^T) at an address, ``width``-bit integers."""
    @intrinsic
    def sgemm(typingctx, address, m, n, kk, a, lda, b, ldb, c, ldc):
        def codegen(context, builder, signature, args):
            i32, iw, f32 = ir.IntType(32), ir.IntType(width), ir.FloatType()
            ptr = ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.VoidType(),
                                   [i32, i32, i32, iw, iw, iw, f32, ptr, iw, ptr, iw, f32, ptr, iw])
            fn = builder.inttoptr(args[0], fnty.as_pointer())
            ints = [builder.trunc(v, iw) if width < 64 else v for v in args[1:]]
            m_, n_, k_, a_, lda_, b_, ldb_, c_, ldc_ = ints
            a_, b_, c_ = (builder.inttoptr(v, ptr) for v in (a_, b_, c_))
            builder.call(fn, [i32(101), i32(111), i32(112), m_, n_, k_, f32(1.0), a_, lda_, b_, ldb_,
                              f32(0.0), c_, ldc_])
            return context.get_dummy_value()
        return types.void(*(types.int64,) * 10), codegen
    return sgemm


_sgemm64, _sgemm32 = _sgemm_intrinsic(64), _sgemm_intrinsic(32)


def _region(table):
    """The OpenMP callback: thread i of T runs ranges i, i + T, ... of the table's job (ROWS or
    UNITS) on the arrays the table points to."""
    t = numba.carray(table, (HEADER,))
    t = numba.carray(table, (HEADER + 2 * (t[NRANGES] + 1) + 3 * NARRAYS,))
    n = t[NRANGES]
    o = HEADER + 2 * (n + 1)  # the arrays, in the order of ARRAYS: address, rows, columns
    WT = numba.carray(_f32(t[o]), (t[o + 1], t[o + 2]))
    VT = numba.carray(_f32(t[o + 3]), (t[o + 4], t[o + 5]))
    b = numba.carray(_f32(t[o + 6]), t[o + 8])
    vb = numba.carray(_f32(t[o + 9]), t[o + 11])
    b_dec = numba.carray(_f32(t[o + 12]), t[o + 14])
    z = numba.carray(_f32(t[o + 15]), (t[o + 16], t[o + 17]))
    bits = numba.carray(_i32(t[o + 18]), (t[o + 19], t[o + 20]))
    Gamma = numba.carray(_i64(t[o + 21]), (t[o + 22], t[o + 23]))
    values = numba.carray(_f32(t[o + 24]), (t[o + 25], t[o + 26]))
    keys = numba.carray(_i32(t[o + 27]), (t[o + 28], t[o + 29]))
    cols = numba.carray(_i32(t[o + 30]), (t[o + 31], t[o + 32]))
    dx_hat = numba.carray(_f32(t[o + 33]), (t[o + 34], t[o + 35]))
    dz = numba.carray(_f32(t[o + 36]), (t[o + 37], t[o + 38]))
    err = numba.carray(_f64(t[o + 39]), t[o + 41])
    sq = numba.carray(_f64(t[o + 42]), t[o + 44])
    dbp = numba.carray(_f32(t[o + 45]), (t[o + 46], t[o + 47]))
    start = numba.carray(_i64(t[o + 48]), t[o + 50])
    entries = numba.carray(_i64(t[o + 51]), t[o + 53])
    wdb = numba.carray(_f32(t[o + 54]), (t[o + 55], t[o + 56]))
    stats = numba.carray(_f32(t[o + 57]), (t[o + 58], t[o + 59]))
    acc = numba.carray(_f32(t[o + 60]), (t[o + 61], t[o + 62]))
    reals = numba.carray(_f32(t[o + 63]), t[o + 65])
    H, d = WT.shape
    x = numba.carray(_f32(t[X]), (t[NROWS], d))
    none = numba.carray(_f32(t[o + 15]), (0, H))  # no dense output
    shift, mask = np.int32(t[SHIFT]), np.int32(t[MASK])
    lazy = t[JOB] < 0  # False: the plain update of every unit
    i = _call_int(t[THREAD_NUM])
    step = _call_int(t[NUM_THREADS])
    u = HEADER + n + 1
    N = t[NROWS]
    for c in range(i, n, step):
        if t[JOB] == PRODUCT:  # D1 without b for the units lo:hi (their rows of WT), every row
            lo, hi = t[u + c], t[u + c + 1]
            if hi > lo:
                if t[ILP64]:
                    _sgemm64(t[GEMM], N, hi - lo, d, t[X], d, t[o] + lo * d * 4, d, t[o + 15] + lo * 4, H)
                else:
                    _sgemm32(t[GEMM], N, hi - lo, d, t[X], d, t[o] + lo * d * 4, d, t[o + 15] + lo * 4, H)
        elif t[JOB] == ROWS:  # b, D2 and D3-D6 for these rows
            lo, hi = t[HEADER + c], t[HEADER + c + 1]
            ek.select_rows(z, bits, shift, mask, b, Gamma, values, none, keys[c], cols[c], lo, hi)
            nk.sample_rows(x, z, WT, b_dec, Gamma, reals[0], dx_hat, dz, err, sq, dbp[c], lo, hi)
        else:  # D7, D8 and Eq. (11) for these units
            nk.weight_grads_update(start, entries, x, z, dx_hat, dz, WT, b, VT, vb, reals[1], reals[2],
                                   wdb[c], stats, lazy, acc[c], t[u + c], t[u + c + 1])

@functools.lru_cache(maxsize=1)
def _callback():
    """:func:`_region` compiled as a C callback (on first use; cached on disk): its address."""
    return numba.cfunc(types.void(types.CPointer(types.int64)), **_JIT)(_region).address
