"""The compiled kernels' disk cache: one source stamp for every kernel file (ksparse.kernels._cache)."""

import os
import shutil

import pytest

numba = pytest.importorskip("numba")

from ksparse.kernels import _cache  # noqa: E402


def _kernels():
    from ksparse.kernels import _encode_numba, _gomp_region, _numba

    for module in (_encode_numba, _numba, _gomp_region):
        for name in dir(module):
            f = getattr(module, name)
            if isinstance(f, numba.core.registry.CPUDispatcher) and f._cache is not None \
                    and f.py_func.__module__ == module.__name__:
                yield f


def test_every_cached_kernel_takes_the_shared_stamp():
    assert _cache.registered(), "numba's cache locators changed: the kernels' caches are stamped per file"
    kernels = list(_kernels())
    assert len(kernels) >= 5
    for f in kernels:
        locator = f._cache._impl._locator
        assert isinstance(locator, _cache._Stamped), f.__name__
        assert locator.get_source_stamp() == _cache.source_stamp()


def test_the_stamp_changes_with_any_kernel_file(tmp_path, monkeypatch):
    here = os.path.dirname(_cache.__file__)
    for name in _cache.FILES:
        shutil.copy(os.path.join(here, name), tmp_path / name)
    monkeypatch.setattr(_cache, "_DIR", str(tmp_path))
    stamps = {_cache.source_stamp()}
    for name in _cache.FILES:  # a caller's stamp moves when a file it calls into changes
        with open(tmp_path / name, "a") as f:
            f.write("\n# changed\n")
        stamps.add(_cache.source_stamp())
    assert len(stamps) == 1 + len(_cache.FILES)


def test_other_functions_keep_numbas_own_locator():
    def f(a):
        return a + 1

    assert _cache.KernelCacheLocator.from_function(f, __file__) is None
    fast = os.path.join(os.path.dirname(_cache.__file__), "fast.py")  # a kernel file without cached kernels
    assert _cache.KernelCacheLocator.from_function(f, fast) is None
