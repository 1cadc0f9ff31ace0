"""NumPy/CuPy switch: the only module that imports cupy.

Every array function in ksparse starts with ``xp = get_array_module(x, W)`` and uses
``xp.*``, so that one code path serves both backends. Data crosses between host and
device only through :func:`to_device` and :func:`to_numpy`.
"""

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
        raise ValueError(
            "device='gpu' needs CuPy and a CUDA GPU; install the extra with "
            "`pip install -e \".[gpu]\"` on a machine with an NVIDIA GPU, or use device='cpu'"
        )
    return device


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
