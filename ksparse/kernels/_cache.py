"""One source stamp for the disk cache of every compiled kernel.

numba caches each compiled function on disk (``cache=True``) under a stamp of the source
file that defines it, and loads it again while that file is unchanged. A kernel that
calls or inlines a kernel of another file (:mod:`ksparse.kernels._gomp_region` calls
:mod:`ksparse.kernels._numba`, which inlines :mod:`ksparse.kernels._encode_numba`) would
then keep its old compiled code after the other file changed: a ``git pull`` into an
editable install could run yesterday's update rule without a word. Importing this module
gives the functions of the files in :data:`FILES` one stamp, the SHA-256 of all of them, so
that a change to any of them recompiles all of them.

It hooks into numba's list of cache locators (``numba.core.caching.CacheImpl``, a private
name); where a numba version lacks it, nothing is registered, :func:`registered` says so
and the caches keep numba's own per-file stamps (``tests/test_kernel_cache.py`` fails
then, so that an upgrade does not lose this silently).
"""

import functools
import hashlib
import os

from numba.core import caching

#: the files whose compiled functions share one stamp: every file of ksparse with cached kernels
FILES = ("_encode_numba.py", "_numba.py", "_gomp_region.py")
_DIR = os.path.dirname(os.path.abspath(__file__))


def _files_state():
    return tuple((name, *((st.st_mtime_ns, st.st_size) if (st := _stat(name)) else (None, None)))
                 for name in FILES)


def _stat(name):
    try:
        return os.stat(os.path.join(_DIR, name))
    except OSError:
        return None


@functools.lru_cache(maxsize=8)
def _hash(state):
    h = hashlib.sha256()
    for name, *_ in state:
        path = os.path.join(_DIR, name)
        h.update(name.encode())
        if os.path.exists(path):
            with open(path, "rb") as f:
                h.update(f.read())
    return h.digest()


def source_stamp():
    """SHA-256 of the files in :data:`FILES` (re-read when one of them changes on disk)."""
    return _hash(_files_state())


class _Stamped:
    def get_source_stamp(self):
        return source_stamp()


class _InTree(_Stamped, caching.InTreeCacheLocator):
    pass


class _UserDir(_Stamped, caching.UserProvidedCacheLocator):
    pass


class _UserWide(_Stamped, caching.UserWideCacheLocator):
    pass


class KernelCacheLocator(caching._CacheLocator):
    """numba's locators (NUMBA_CACHE_DIR, the package's ``__pycache__``, the user's cache
    directory, in numba's order) with :func:`source_stamp` as the stamp, for the files in
    :data:`FILES`; None for any other function, which numba's own locators then take."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.abspath(py_file)) != _DIR or os.path.basename(py_file) not in FILES:
            return None
        for locator in (_UserDir, _InTree, _UserWide):
            found = locator.from_function(py_func, py_file)
            if found is not None:
                return found
        return None


def _register():
    impl = getattr(caching, "CacheImpl", None)
    classes = getattr(impl, "_locator_classes", None)
    if not isinstance(classes, list):
        return False
    if KernelCacheLocator not in classes:
        classes.insert(0, KernelCacheLocator)
    return True


_REGISTERED = _register()


def registered():
    """Whether the kernels' functions use :func:`source_stamp` (numba's internals allowed it)."""
    return _REGISTERED
