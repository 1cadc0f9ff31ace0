"""Arrays read and written one block of rows at a time.

:class:`NpyRows` reads a ``.npy`` file by rows through a memory map per read.

:func:`write_npy_blocks` writes the header, then each block's bytes. :func:`write_npz_blocks`
spools each array's blocks to a temporary file beside the output, then zips them (an
``.npz`` holds its arrays one after another, and the blocks of several arrays arrive
together). Memory: one block. Both files appear whole or not at all
(:func:`ksparse.io.atomic_write`), and Ctrl-C or SIGTERM stops either writer at once, between
two blocks (the blocks are computed as they are written), leaving no file behind.
"""

import os
import shutil
import tempfile
import zipfile

import numpy as np

from ksparse.errors import DataFileError
from ksparse.io import atomic_write, read_npy_header


class NpyRows:
    """A ``.npy`` file read by rows through a fresh memory map per read.

    Each ``rows[lo:hi]`` maps the file, copies those rows out and unmaps it, so the pages
    read do not stay in the process's resident memory (they would with one long-lived
    ``numpy.memmap``). The header is checked as :func:`ksparse.io.load_npy` checks it.

    Parameters
    ----------
    path : str or path-like

    Raises
    ------
    ksparse.errors.DataFileError
        When the file is missing, not a ``.npy``, holds Python objects, or is truncated.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            with open(self.path, "rb") as f:
                shape, fortran, self.dtype, _ = read_npy_header(f, os.fstat(f.fileno()).st_size,
                                                                repr(self.path))
                self._offset = f.tell()
        except OSError as e:
            raise DataFileError(f"cannot read {self.path!r} ({e.strerror or e})") from None
        self.shape, self._order = tuple(shape), "F" if fortran else "C"
        self.ndim = len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        if not all(self.shape):
            return np.zeros(self.shape, self.dtype)[key]
        m = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self._offset, shape=self.shape,
                      order=self._order)
        try:
            return np.array(m[key])
        finally:
            del m


def _header(f, dtype, shape):
    np.lib.format.write_array_header_2_0(
        f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape})


def _copy_blocks(f, blocks, dtype, n_rows, name):
    """Write the C-order bytes of ``blocks``; check that they hold ``n_rows`` rows in all."""
    rows = 0
    for block in blocks:
        block = np.ascontiguousarray(block, dtype=dtype)
        f.write(block.tobytes())
        rows += block.shape[0]
    if rows != n_rows:
        raise ValueError(f"{name}: the blocks held {rows} rows, the header says {n_rows}")


def write_npy_blocks(path, dtype, shape, blocks):
    """Write an ``.npy`` of ``shape`` from ``blocks`` (arrays of shape (rows, *shape[1:])), atomically."""
    atomic_write(path, lambda f: (_header(f, dtype, tuple(shape)),
                                  _copy_blocks(f, blocks, dtype, shape[0], path)), interruptible=True)


def write_npz_blocks(path, specs, blocks, extra=None):
    """Write an ``.npz`` whose arrays arrive in row blocks, atomically.

    Parameters
    ----------
    path : str
    specs : dict
        ``name -> (dtype, shape)`` of each array that arrives in blocks.
    blocks : iterable of dict
        Each ``name -> block`` for every name of ``specs``, in row order.
    extra : dict, optional
        ``name -> array`` of small arrays stored as they are.
    """
    folder = os.path.dirname(os.path.abspath(path))
    spools = {n: tempfile.TemporaryFile(dir=folder) for n in specs}
    try:
        rows = dict.fromkeys(specs, 0)
        for block in blocks:
            for name, (dtype, _) in specs.items():
                b = np.ascontiguousarray(block[name], dtype=dtype)
                spools[name].write(b.tobytes())
                rows[name] += b.shape[0]
        for name, (_, shape) in specs.items():
            if rows[name] != shape[0]:
                raise ValueError(f"{path}: {name} got {rows[name]} rows, expected {shape[0]}")
        atomic_write(path, lambda f: _zip(f, specs, spools, extra or {}), interruptible=True)
    finally:
        for s in spools.values():
            s.close()


def _zip(f, specs, spools, extra):
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, (dtype, shape) in specs.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as out:
                _header(out, dtype, tuple(shape))
                spools[name].seek(0)
                shutil.copyfileobj(spools[name], out, 1 << 20)
        for name, value in extra.items():
            with zf.open(name + ".npy", "w") as out:
                np.lib.format.write_array(out, np.asarray(value), allow_pickle=False)
