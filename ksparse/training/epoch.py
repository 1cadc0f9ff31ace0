"""The one epoch loop: shuffled minibatches through a step (:mod:`ksparse.training.steps`).

The loop meets the data through one seam, :func:`minibatches`: it turns blocks of row
indices (:func:`index_blocks`) into tuples of rows with :func:`take_rows`. Everything
that decides where rows come from (an in-memory array, a device array, a file read in
row blocks) lives there; :func:`run_epoch` only sees minibatches.

The epoch's order, :func:`windows`, is one for every source, so that a source read in
row blocks (:mod:`ksparse.training.stream`) gives the same minibatches as the same rows
in memory:

- data of at most :data:`SHUFFLE_ROWS` rows: one permutation of all rows,
  ``rng.permutation(n_rows)``, cut into minibatches;
- larger data: the blocks of :data:`BLOCK_ROWS` consecutive rows are permuted
  (``rng.permutation(n_blocks)``) and taken ``SHUFFLE_ROWS // BLOCK_ROWS`` at a time as
  one window, whose rows are permuted (``rng.permutation``): a minibatch mixes rows of
  several blocks from anywhere in the data, and a streamed source is read in contiguous
  blocks. Minibatches run on across windows.
"""

import math

import numpy as np

from ksparse.backend import get_array_module

BLOCK_ROWS = 4096          # rows read at a time from a streamed source
SHUFFLE_ROWS = 1 << 16     # rows shuffled together (one window); smaller data: one permutation


def windows(n_rows, rng, block_rows=None, shuffle_rows=None):
    """One epoch's order as windows: yield ``(ranges, perm)``, see the module docstring.

    ``block_rows`` and ``shuffle_rows`` default to :data:`BLOCK_ROWS` and :data:`SHUFFLE_ROWS`.

    ``ranges`` lists the (lo, hi) row blocks of the window, in reading order; ``perm``
    permutes the window's rows (their concatenation). The epoch's order is the
    concatenation over windows of ``rows[perm]``.
    """
    block_rows, shuffle_rows = block_rows or BLOCK_ROWS, shuffle_rows or SHUFFLE_ROWS
    if n_rows <= shuffle_rows:
        yield [(0, n_rows)], rng.permutation(n_rows)
        return
    n_blocks = math.ceil(n_rows / block_rows)
    per_window = max(1, shuffle_rows // block_rows)
    order = rng.permutation(n_blocks)
    for g in range(0, n_blocks, per_window):
        ranges = [(int(b) * block_rows, min(n_rows, (int(b) + 1) * block_rows))
                  for b in order[g:g + per_window]]
        yield ranges, rng.permutation(sum(hi - lo for lo, hi in ranges))


def index_blocks(n_rows, batch_size, rng, block_rows=None, shuffle_rows=None):
    """Row indices of one epoch's minibatches, in the order of :func:`windows`, cut in blocks.

    Parameters
    ----------
    n_rows : int
    batch_size : int
        The last block holds the remainder (fewer rows) when ``batch_size`` does not divide
        ``n_rows``; minibatches run on across windows.
    rng : numpy.random.Generator
        Advanced by :func:`windows`' draws: one ``permutation(n_rows)`` for data of at most
        ``shuffle_rows`` rows.
    block_rows, shuffle_rows : int, optional
        Default :data:`BLOCK_ROWS` and :data:`SHUFFLE_ROWS`.

    Yields
    ------
    idx : int64 NumPy array, shape (<= batch_size,)
    """
    carry = np.zeros(0, dtype=np.int64)
    for ranges, perm in windows(n_rows, rng, block_rows, shuffle_rows):
        rows = np.concatenate([np.arange(lo, hi) for lo, hi in ranges])[perm]
        if carry.size:
            rows = np.concatenate([carry, rows])
        cut = rows.size - rows.size % batch_size
        for start in range(0, cut, batch_size):
            yield rows[start:start + batch_size]
        carry = rows[cut:]
    if carry.size:
        yield carry


def take_rows(a, idx):
    """Rows ``idx`` (host indices) of ``a``, on the device of ``a``."""
    xp = get_array_module(a)
    return a[idx if xp is np else xp.asarray(idx)]


def minibatches(arrays, blocks):
    """The seam between the data and the loop: ``tuple(take_rows(a, idx) for a in arrays)`` per block.

    Parameters
    ----------
    arrays : tuple of arrays
        Aligned by rows, e.g. ``(x,)`` or ``(x, y)``.
    blocks : iterable of index arrays
        Usually :func:`index_blocks`.
    """
    for idx in blocks:
        yield tuple(take_rows(a, idx) for a in arrays)


def run_epoch(step, batches, params, velocity, settings, n_hidden=None):
    """One pass of ``step`` over ``batches``, updating ``params`` and ``velocity`` in place.

    Parameters
    ----------
    step : ksparse.training.steps.Step
    batches : iterable of tuples of arrays
        From :func:`minibatches`; the first array's rows count the samples.
    params, velocity : dict of arrays
    settings : ksparse.training.steps.StepSettings
    n_hidden : int, optional
        When given, the record holds ``dead_fraction``: the fraction of the ``n_hidden``
        units never in a step's ``active`` set during the epoch.

    Returns
    -------
    record : dict
        ``loss`` (the mean over rows of the steps' losses), each of the steps' ``metrics``
        averaged the same way, and ``dead_fraction`` when asked.
        The losses stay on the device until the end of the epoch.
    """
    totals, n, used = {}, 0, None
    for batch in batches:
        # a diverging run overflows before its loss turns NaN, which the caller reports in
        # one message (TrainingDiverged); numpy's own warnings on the way say nothing more
        with np.errstate(over="ignore", invalid="ignore"):
            out = step(batch, params, velocity, settings)
        rows = batch[0].shape[0]
        for name, value in {"loss": out.loss, **out.metrics}.items():  # summed in float64, on the device
            totals[name] = totals.get(name, 0) + get_array_module(value).asarray(value, "float64") * rows
        n += rows
        if n_hidden is not None and out.active is not None:
            if used is None:
                used = get_array_module(out.active).zeros(n_hidden, dtype=bool)
            used[out.active.ravel()] = True
    end = getattr(step, "end_epoch_", None)  # e.g. lazy momentum brings every unit up to date
    if end is not None:
        end(params, velocity)
    if n == 0:
        raise ValueError("the epoch had no minibatches: the data has no rows")
    record = {name: float(total) / n for name, total in totals.items()}
    if n_hidden is not None:
        record["dead_fraction"] = 1.0 - (0.0 if used is None else float(used.sum()) / n_hidden)
    return record
