"""NumPy/CuPy switch: the only module that imports cupy.

Every array function in ksparse starts with ``xp = get_array_module(x, W)`` and uses
``xp.*``, so that one code path serves both backends. Data crosses between host and
device only through :func:`to_device` and :func:`to_numpy`.
"""

import os

import numpy as np

DEVICES = ("cpu", "gpu")


def _import_cupy():
    """Return the cupy module, or None when it is not installed or has no GPU."""
    try:
        import cupy
    except Exception:  # ImportError, or a CUDA library that fails to load
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:
        return None
    return cupy


def gpu_available():
    """Return True when CuPy is installed and sees at least one CUDA device."""
    return _import_cupy() is not None


def check_device(device):
    """Validate a device name and return it.

    Parameters
    ----------
    device : {"cpu", "gpu"}

    Raises
    ------
    ValueError
        If the name is unknown, or "gpu" is asked for where CuPy or a GPU is missing.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "gpu" and not gpu_available():
        try:
            import cupy  # noqa: F401
        except Exception:
            raise ValueError("device 'gpu' needs CuPy, which is not installed here; install it with "
                             "`pip install -e \".[gpu]\"`") from None
        raise ValueError("device 'gpu' needs a CUDA GPU and this machine shows none; use device 'cpu'")
    return device


def _cgroup_free():
    """Bytes left under this process's cgroup (v2) memory limit, or None when there is none."""
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - used, 0)


def available_memory(device="cpu"):
    """Bytes that can be allocated now on ``device``, or None when that cannot be told.

    CPU: ``MemAvailable`` of /proc/meminfo (else free physical pages), capped by a cgroup
    limit. GPU: the free memory CuPy reports for the current device.
    """
    check_device(device)
    if device == "gpu":
        import cupy

        return int(cupy.cuda.runtime.memGetInfo()[0])
    free = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    cgroup = _cgroup_free()
    return free if cgroup is None else min(free, cgroup)


def get_array_module(*arrays):
    """Return numpy or cupy, whichever owns the arrays (numpy when none is a cupy array)."""
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            import cupy

            return cupy
    return np


def to_device(x, device="cpu", dtype=None):
    """Copy a host array to ``device`` ("cpu" keeps NumPy, "gpu" gives CuPy)."""
    check_device(device)
    if device == "gpu":
        import cupy

        return cupy.asarray(x, dtype=dtype)
    return np.asarray(to_numpy(x), dtype=dtype)


def to_numpy(x):
    """Return a NumPy array for a NumPy or CuPy array (a no-op on NumPy)."""
    if type(x).__module__.startswith("cupy"):
        return x.get()
    return np.asarray(x)


def device_of(x):
    """Return "gpu" for a CuPy array, else "cpu"."""
    return "gpu" if get_array_module(x) is not np else "cpu"
