"""Training on data that need not fit in memory: one shuffle for every source, read in row blocks.

A *streamed* source is any 2-D array-like sliced by rows that is not an in-memory array:
a ``numpy.memmap``, an h5py dataset, a zarr array, a Dask array, or :class:`ksparse.blockio.NpyRows`.
Training never loads it whole: a memory-mapped file (``numpy.memmap``, ``NpyRows``) is read
one minibatch of rows at a time; a chunked store (h5py, zarr, Dask) one window of row
blocks at a time (``epoch.SHUFFLE_ROWS`` rows in the training dtype, plus one block).

The epoch order is :func:`ksparse.training.epoch.windows`, the same for every source,
in memory or streamed. Since the rows of each minibatch, their order and the RNG's draws
do not depend on the source, training on a streamed source equals training on the same rows in memory, bit
for bit on CPU (the statistics, :func:`column_stats`, are summed in NumPy's own order).
"""

import math

import numpy as np

from ksparse.backend import get_array_module
from ksparse.blockio import NpyRows
from ksparse.errors import not_2d, reject_nonfinite
from ksparse.training import epoch

__all__ = ["NpyRows", "StreamedData", "check_rows", "column_stats", "is_streamed", "read_block",
           "stream_batches"]


def is_streamed(x):
    """True for a 2-D array-like read by rows (memmap, h5py, zarr, Dask, :class:`NpyRows`),
    False for in-memory arrays (NumPy, CuPy, scipy.sparse), lists and data frames."""
    if isinstance(x, np.memmap) or isinstance(x, NpyRows):
        return True
    if isinstance(x, (np.ndarray, list, tuple)) or hasattr(x, "iloc") or hasattr(x, "tocsr") \
            or get_array_module(x) is not np:
        return False  # in memory: NumPy, CuPy, lists, data frames, scipy.sparse (refused later)
    return hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__getitem__")


def check_rows(x, name="X"):
    """Validate a streamed source's shape and dtype without reading it; returns ``x``.

    Finiteness is checked block by block in :func:`column_stats`.
    """
    shape, dtype = tuple(x.shape), np.dtype(x.dtype)
    if len(shape) != 2:
        raise not_2d(name, shape)
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {shape}; need at least one sample and one feature")
    if dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {dtype}")
    return x


def read_block(x, lo, hi):
    """Rows lo:hi of ``x`` as a NumPy array (one read), in its own dtype."""
    block = x[lo:hi]
    if hasattr(block, "compute"):  # a Dask array
        block = block.compute()
    return np.asarray(block)


def read_dtype(dtype):
    """The dtype the model computes on for rows of ``dtype`` read from a source: float16 becomes
    float64, as scikit-learn's validation converts an array in memory, so that the arithmetic on
    a file read by rows is that on the same array in memory (in float16 it rounded x / s)."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


def blocks(x, block_rows=None):
    """Yield ``(lo, rows lo:lo+block_rows)`` over ``x`` in order."""
    block_rows = block_rows or epoch.BLOCK_ROWS
    for lo in range(0, x.shape[0], block_rows):
        yield lo, read_block(x, lo, min(x.shape[0], lo + block_rows))


def column_stats(x, name=None, block_rows=None):
    """Mean (float64) and the mean squared distance of the rows to the mean, in two passes.

    Equal bit for bit to the in-memory ``x.mean(axis=0, dtype=np.float64)`` and
    ``((x - x.mean(axis=0)) ** 2).sum(axis=1).mean()`` of :func:`ksparse.training.loop.fit`:
    the column sums run row after row, as NumPy's do, and the N row distances are averaged
    at once (N float64 numbers are kept).

    Raises
    ------
    ValueError
        When a block holds NaN or inf (naming the rows, and the file of a source read from
        one, such as :class:`ksparse.blockio.NpyRows`).
    """
    name = name or getattr(x, "path", None) or "X"  # a file read by rows (NpyRows) is named
    n, d = x.shape
    own = read_dtype(x.dtype) if np.dtype(x.dtype).kind == "f" else np.dtype(np.float64)
    sums = {np.dtype(np.float64): np.zeros(d), own: np.zeros(d, own)}
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is redone in float64 below
        for lo, block in blocks(x, block_rows):
            reject_nonfinite(block, name, lo)
            for dt in sums:  # ((s + x_lo) + x_lo+1) + ...: NumPy's order for an axis-0 sum
                sums[dt] = np.add.reduce(np.concatenate([sums[dt][None], block.astype(dt)]), axis=0)
        mean64 = np.true_divide(sums[np.dtype(np.float64)], n)
        mean_own = np.true_divide(sums[own], n).astype(own)
    return mean64, row_energy(lambda: (block for _, block in blocks(x, block_rows)), mean_own, mean64, name)


def row_energy(row_blocks, mean, mean64, name="X"):
    """The mean over rows of ||x_i - mean||^2, from the blocks ``row_blocks()`` yields.

    Computed in the data's dtype against ``mean`` (its own rounding, which training on the same
    data in memory or streamed shares); when the squares overflow that dtype (float32 above
    ~1e19), again in float64 against ``mean64``.

    Raises
    ------
    ValueError
        When it overflows even in float64 (values beyond about 1e150): no data scale s can be
        formed; the message says to divide the data by a constant first.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is redone in float64 below
        energy = float(np.concatenate([((b - mean) ** 2).sum(axis=1) for b in row_blocks()]).mean())
        if not math.isfinite(energy):
            energy = float(np.concatenate([((b.astype(np.float64) - mean64) ** 2).sum(axis=1)
                                           for b in row_blocks()]).mean())
    if not math.isfinite(energy):
        raise ValueError(f"{name} holds values too large to form the data scale s (the squares of its "
                         "distances to the mean overflow float64); divide it by a constant first, "
                         "e.g. its largest absolute value")
    return energy


def stream_batches(x, batch_size, rng, prepare, block_rows=None, shuffle_rows=None):
    """Minibatches ``(xb,)`` of a streamed source in the order of :func:`ksparse.training.epoch.windows`.

    Parameters
    ----------
    x : array-like, shape (N, d)
        Read one block of rows at a time (:func:`read_block`).
    batch_size : int
    rng : numpy.random.Generator
    prepare : callable
        ``prepare(block) -> array``: a block as training sees it (centred, on the device,
        in the training dtype); the window is kept only in that form.

    Yields
    ------
    tuple
        ``(xb,)`` with xb (<= batch_size, d) on ``prepare``'s device.
    """
    carry, window = None, None
    for ranges, perm in epoch.windows(x.shape[0], rng, block_rows, shuffle_rows):
        window = _read_window(x, ranges, prepare, window)
        xp = get_array_module(window)
        perm = xp.asarray(perm)
        start = 0
        if carry is not None:
            start = min(perm.size, batch_size - carry.shape[0])
            carry = xp.concatenate([carry, window[perm[:start]]])
            if carry.shape[0] < batch_size:
                continue
            yield (carry,)
        cut = start + (perm.size - start) // batch_size * batch_size
        for s in range(start, cut, batch_size):
            yield (window[perm[s:s + batch_size]],)
        carry = window[perm[cut:]] if cut < perm.size else None
    if carry is not None and carry.shape[0]:
        yield (carry,)


def random_access(x):
    """True for sources that read any rows cheaply (a memory-mapped file): ``numpy.memmap`` and
    :class:`ksparse.blockio.NpyRows`. Chunked stores (h5py, zarr, Dask) read whole blocks."""
    return isinstance(x, (np.memmap, NpyRows))


class StreamedData:
    """A streamed source and how training sees its rows (``prepare``).

    :meth:`batches` gives the minibatches of :func:`ksparse.training.epoch.index_blocks`:
    a memory-mapped source (:func:`random_access`) reads each minibatch's rows directly, so
    nothing but the minibatch is held; a chunked store goes through :func:`stream_batches`,
    which holds one window of row blocks. Both give the rows of the in-memory order.
    """

    def __init__(self, source, prepare):
        self.source, self.prepare = source, prepare
        self.shape = tuple(source.shape)

    def batches(self, batch_size, rng):
        if not random_access(self.source):
            return stream_batches(self.source, batch_size, rng, self.prepare)
        return (((self.prepare(np.asarray(self.source[idx])),))
                for idx in epoch.index_blocks(self.shape[0], batch_size, rng))


def counted(batches, progress):
    """Pass ``batches`` through, calling ``progress(rows)`` after each (progress in samples)."""
    for batch in batches:
        yield batch
        progress(batch[0].shape[0])


def _read_window(x, ranges, prepare, previous=None):
    """The window's blocks, read in order and prepared, in one array (``previous`` reused:
    never two windows in memory)."""
    n, total, window = 0, sum(b - a for a, b in ranges), None
    for lo, hi in ranges:
        part = prepare(read_block(x, lo, hi))
        if window is None:
            if previous is not None and previous.shape[0] >= total and previous.dtype == part.dtype:
                window = previous[:total]
            else:
                del previous
                window = get_array_module(part).empty((total, part.shape[1]), dtype=part.dtype)
        window[n:n + part.shape[0]] = part
        n += part.shape[0]
        del part
    return window
