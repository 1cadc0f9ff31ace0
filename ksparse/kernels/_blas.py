"""numpy's own BLAS matrix product as a C function pointer, for compiled kernels (optional).

A compiled kernel that calls the product itself, ``z[lo:hi] = x[lo:hi] W`` (D1), can run a
thread's whole rows phase without returning to Python (:mod:`ksparse.kernels._gomp`).
numba's own ``np.dot`` calls SciPy's BLAS, a separate copy of OpenBLAS, which was slower
than numpy's on a step's products on this project's machine, so
this module looks up ``cblas_?gemm`` in the BLAS library that numpy itself loaded (found
by threadpoolctl) under the names the common builds give it.

:func:`gemm` returns None where no such symbol exists (numpy on Accelerate, a BLAS that
threadpoolctl does not find...) and where the function found does not give the same
product as ``np.matmul`` on a test problem, bit for bit, on one thread; callers then keep
to ``np.matmul``. Its address reaches the compiled code at run time, in the table of
:mod:`ksparse.kernels._gomp` (not as a global), so that numba can cache that code on disk.
``KSPARSE_NO_BLAS_POINTER=1`` turns the lookup off.
"""

import ctypes
import functools
import os

import numpy as np

# (symbol, integer type) in the order tried: numpy >= 2's wheels (scipy-openblas64),
# numpy 1.x's wheels (openblas64_), then the plain LP64 name (OpenBLAS, MKL, BLIS).
_NAMES = (("scipy_cblas_{}gemm64_", ctypes.c_int64), ("cblas_{}gemm64_", ctypes.c_int64),
          ("cblas_{}gemm", ctypes.c_int))
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS's enums


def _blas_paths():
    """Paths of the BLAS libraries loaded in this process, numpy's first."""
    from threadpoolctl import ThreadpoolController

    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    site = os.path.dirname(os.path.dirname(np.__file__))
    paths = [lib.filepath for lib in libs if lib.filepath]
    return sorted(paths, key=lambda p: not os.path.relpath(p, site).startswith("numpy"))


def _lookup(char):
    """The first ``cblas_?gemm`` found in the loaded BLAS libraries, as a ctypes function, or None."""
    real = ctypes.c_float if char == "s" else ctypes.c_double
    for path in _blas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name, integer in _NAMES:
            if hasattr(lib, name.format(char)):
                proto = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer,
                                         integer, real, ctypes.c_void_p, integer, ctypes.c_void_p, integer,
                                         real, ctypes.c_void_p, integer)
                return proto((name.format(char), lib))
    return None


@functools.lru_cache(maxsize=None)
def gemm(dtype):
    """cblas ``sgemm`` (float32) or ``dgemm`` (float64) of numpy's BLAS, checked; or None.

    The check is the call the kernels make, row-major ``z = x WT^T`` on a few rows of
    larger arrays, compared with ``np.matmul`` on one BLAS thread (and nothing written
    outside those rows).
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64) or os.environ.get("KSPARSE_NO_BLAS_POINTER"):
        return None
    try:
        fn = _lookup("s" if dtype == np.float32 else "d")
        return fn if fn is not None and _agrees(fn, dtype) else None
    except Exception:  # noqa: BLE001 -- any failure to find, load or call it: keep to np.matmul
        return None


def _agrees(fn, dtype):
    """Whether ``fn`` gives np.matmul's product, bit for bit, on a test problem."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 33)).astype(dtype)
    WT = rng.standard_normal((19, 33)).astype(dtype)
    z = np.full((7, 19), np.nan, dtype=dtype)
    with threadpool_limits(1, user_api="blas"):
        fn(ROW_MAJOR, NO_TRANS, TRANS, 5, 19, 33, dtype.type(1), x[1:].ctypes.data, 33, WT.ctypes.data, 33,
           dtype.type(0), z[1:].ctypes.data, 19)
        expected = np.matmul(x[1:6], WT.T)
    return bool(np.array_equal(z[1:6], expected) and np.isnan(z[[0, 6]]).all())
