"""Training the comparison autoencoders of :mod:`ksparse.nn.baselines` with the shared loop."""

from ksparse.backend import get_array_module
from ksparse.nn.baselines import ACTIVATIONS, KINDS, ae_step, dropout_mask
from ksparse.training.loop import DEFAULTS, fit


def make_step(kind, activation="relu", random_state=0):
    """A ``step(x, W, b, b_prime, k)`` for :func:`ksparse.training.loop.fit` that draws fresh masks.

    ``k`` is ignored. The third return value lists the units active on some sample of the
    batch, so fit's dead-unit count keeps its meaning.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown baseline kind {kind!r}; choose one of {sorted(KINDS)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    p_input, p_hidden = KINDS[kind]["p_input"], KINDS[kind]["p_hidden"]
    rngs = {}

    def step(x, W, b, b_prime, k):
        xp = get_array_module(x, W)
        rng = rngs.setdefault("rng", xp.random.default_rng(random_state))
        in_mask = dropout_mask(x.shape, p_input, rng, x.dtype) if p_input > 0 else None
        hid_mask = dropout_mask((x.shape[0], W.shape[1]), p_hidden, rng, x.dtype) if p_hidden > 0 else None
        E, grads, h = ae_step(x, W, b, b_prime, in_mask, hid_mask, activation)
        return E, grads, xp.nonzero((h > 0).any(axis=0))[0]

    return step


def fit_baseline(x, kind, config=None, activation="relu", device="cpu", callback=None, random_state=0):
    """Train a baseline autoencoder of ``kind`` on ``x`` with :func:`ksparse.training.loop.fit`.

    Parameters
    ----------
    x : array, shape (N, d)
    kind : one of :data:`KINDS`
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
    step = make_step(kind, activation, random_state)
    return fit(x, cfg, device=device, callback=callback, step=step)
