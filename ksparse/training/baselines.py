"""Training the comparison autoencoders of :mod:`ksparse.nn.baselines` with the shared loop.

Their step is :class:`ksparse.training.steps.BaselineStep`; :func:`fit_baseline` runs it
through :func:`ksparse.training.loop.fit`.
"""

from ksparse.training.loop import DEFAULTS, fit
from ksparse.training.steps import BaselineStep


def fit_baseline(x, kind, config=None, activation="relu", device="cpu", callback=None, random_state=0):
    """Train a baseline autoencoder of ``kind`` on ``x`` with :func:`ksparse.training.loop.fit`.

    Parameters
    ----------
    x : array, shape (N, d)
    kind : one of :data:`ksparse.nn.baselines.KINDS`
    config : dict, optional
        Fields of :class:`ksparse.config.AutoencoderConfig` (n_hidden, max_iter, lr, momentum, sigma,
        batch_size, dtype, random_state); the sparsity options are set to "no sparsity".
    activation : {"relu", "sigmoid"}
    random_state : int
        Seed of the dropout masks (the minibatch order follows ``config["random_state"]``).

    Returns
    -------
    TrainState
        Resuming it draws new masks: the mask generator is not checkpointed.
    """
    cfg = dict(config or {})
    H = cfg.get("n_hidden", DEFAULTS.n_hidden)
    cfg.update(k=H, k_start=H, alpha=1.0)
    step = BaselineStep(kind, activation, random_state)
    return fit(x, cfg, device=device, callback=callback, step=step)
