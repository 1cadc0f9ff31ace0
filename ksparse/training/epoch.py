"""The one epoch loop: shuffled minibatches through a step (:mod:`ksparse.training.steps`).

The loop meets the data through one seam, :func:`minibatches`: it turns blocks of row
indices (:func:`index_blocks`) into tuples of rows with :func:`take_rows`. Everything
that decides where rows come from (an in-memory array, a device array, a file read in
row blocks) lives there; :func:`run_epoch` only sees minibatches.
"""

import numpy as np

from ksparse.backend import get_array_module


def index_blocks(n_rows, batch_size, rng):
    """Row indices of one epoch's minibatches: a permutation drawn from ``rng``, cut in blocks.

    Parameters
    ----------
    n_rows : int
    batch_size : int
        The last block holds the remainder (fewer rows) when ``batch_size`` does not divide
        ``n_rows``.
    rng : numpy.random.Generator
        Advanced by one ``permutation(n_rows)``.

    Yields
    ------
    idx : int64 NumPy array, shape (<= batch_size,)
    """
    order = rng.permutation(n_rows)
    for start in range(0, n_rows, batch_size):
        yield order[start:start + batch_size]


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
        out = step(batch, params, velocity, settings)
        rows = batch[0].shape[0]
        for name, value in {"loss": out.loss, **out.metrics}.items():  # summed in float64, on the device
            totals[name] = totals.get(name, 0) + get_array_module(value).asarray(value, "float64") * rows
        n += rows
        if n_hidden is not None and out.active is not None:
            if used is None:
                used = get_array_module(out.active).zeros(n_hidden, dtype=bool)
            used[out.active.ravel()] = True
    if n == 0:
        raise ValueError("the epoch had no minibatches: the data has no rows")
    record = {name: float(total) / n for name, total in totals.items()}
    if n_hidden is not None:
        record["dead_fraction"] = 1.0 - (0.0 if used is None else float(used.sum()) / n_hidden)
    return record
