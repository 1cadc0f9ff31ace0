"""Schedules over epochs: the sparsity level of Sec. 4.2.1 and a linear learning-rate decay."""


def k_schedule(epoch, n_epochs, k, k_start=100, n_hidden=None, fraction=0.5):
    """Sec. 4.2.1: sparsity level at ``epoch`` (0-based).

    k starts at ``k_start`` (capped at ``n_hidden``, and never below ``k``), falls
    linearly to ``k`` over the first ``fraction`` of the epochs, then holds at ``k``.

    Parameters
    ----------
    epoch : int
        0-based epoch index.
    n_epochs : int
        Total number of epochs of the run.
    k : int
        Target sparsity level.
    k_start : int, default 100
        Sparsity level of the first epoch (the paper's example: 100 falling to 15).
    n_hidden : int or None
        Cap for ``k_start``.
    fraction : float in [0, 1], default 0.5
        Fraction of the epochs over which k falls ("the first half" in the paper).

    Returns
    -------
    int

    Examples
    --------
    >>> [k_schedule(e, 10, 15, k_start=100) for e in range(10)]
    [100, 83, 66, 49, 32, 15, 15, 15, 15, 15]
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    start = k_start if n_hidden is None else min(k_start, n_hidden)
    start = max(start, k)
    n_fall = int(round(fraction * n_epochs))
    if epoch >= n_fall or n_fall == 0:
        return int(k)
    return int(round(start + (k - start) * epoch / n_fall))


def linear_lr(epoch, n_epochs, lr, lr_final=None):
    """Learning rate at ``epoch``: falls linearly from ``lr`` to ``lr_final`` at the last epoch.

    With ``lr_final=None`` the rate is constant. The supervised MNIST schedule of
    Sec. 4.2.2 is ``lr=1, lr_final=0.001`` over 200 epochs.
    """
    if lr_final is None or n_epochs <= 1:
        return float(lr)
    t = min(epoch, n_epochs - 1) / (n_epochs - 1)
    return float(lr + (lr_final - lr) * t)
