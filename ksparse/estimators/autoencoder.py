"""KSparseAutoencoder: the k-sparse autoencoder as a scikit-learn transformer.

A thin layer over :mod:`ksparse.training.loop` (the training loop), :mod:`ksparse.kernels.encode`
(the alpha k features of Sec. 2.2) and :mod:`ksparse.nn.layers` (the decoder, D3). It adds
scikit-learn's input validation, ``get_params``/``set_params``, and the fitted
attributes ``W_``, ``b_``, ``b_prime_``, ``history_`` and ``state_``.
"""

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ksparse.backend import check_device, device_of, to_device, to_numpy
from ksparse.kernels.encode import encode
from ksparse.nn.layers import decode_forward
from ksparse.training import loop as train

_FLOATS = (np.float64, np.float32)


class KSparseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """k-sparse autoencoder (Makhzani & Frey, 2014): Sec. 2.2 training, alpha k features.

    Parameters
    ----------
    n_hidden : int, default 1000
        Number of hidden units H.
    k : int, default 25
        Sparsity level: units kept per sample during training, 1 <= k <= n_hidden.
    alpha : float >= 1, default 1.0
        :meth:`transform` keeps alpha k units, rounded half up (Sec. 2.2; see
        :func:`ksparse.kernels.encode.alpha_k`).
    n_epochs : int, default 10
        Epochs run by :meth:`fit`; the length over which the schedules run.
    batch_size : int, default 128
    lr : float, default 0.01
        Learning rate of Eq. (11).
    lr_final : float or None, default None
        With a value, the rate falls linearly from ``lr`` to it over ``n_epochs``.
    momentum : float in [0, 1), default 0.9
        Momentum of Eq. (11).
    sigma : float, default 0.01
        Standard deviation of the Gaussian initial weights.
    k_start : int, default 100
        Sec. 4.2.1: k of the first epoch (capped at n_hidden), falling linearly to ``k``.
    k_fraction : float in [0, 1], default 0.5
        Fraction of ``n_epochs`` over which k falls.
    dtype : {"float32", "float64"}, default "float32"
        Precision of training, :meth:`transform` and :meth:`inverse_transform`.
    device : {"cpu", "gpu"}, default "cpu"
        "gpu" needs CuPy; the fitted attributes are NumPy arrays either way.
    random_state : int, RandomState instance or None, default None
        Seeds the initial weights and the minibatch shuffle. An int gives the same model
        on every fit; None draws the seed from NumPy's global RNG.
    checkpoint_path : path or None, default None
        Where :meth:`fit` writes its state (see :meth:`save`) at the end of training,
        and every ``checkpoint_every`` epochs.
    checkpoint_every : int, default 0
        0 writes only at the end.
    callback : callable or None, default None
        Called as ``callback(record)`` after each epoch with that epoch's metrics.
    center : bool, default False
        Subtract the training mean from every input (fit, transform, score) and add it
        back in :meth:`inverse_transform`. Not in the paper; on non-negative data such as
        MNIST pixels it keeps many more hidden units alive (see ``ksparse.training.loop.fit``).

    Attributes
    ----------
    W_ : ndarray, shape (n_features_in_, n_hidden)
        Tied weights; the encoder uses ``W_.T``, the decoder ``W_``.
    b_ : ndarray, shape (n_hidden,)
        Hidden bias b.
    b_prime_ : ndarray, shape (n_features_in_,)
        Output bias b'.
    history_ : list of dict
        One record per epoch: ``loss`` (D4), ``mse`` (D4 / d), ``fvu``, ``dead_fraction``,
        ``k``, ``lr``, ``epoch``.
    state_ : ksparse.training.loop.TrainState
        The full training state (parameters on ``device``, velocities, RNG, epoch).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Notes
    -----
    Loss convention (D4): E = (1/N) sum_i ||x_hat_i - x_i||^2. :meth:`score` and
    ``history_[i]["mse"]`` give the error per element, E / d.

    On CPU, ``W_``, ``b_`` and ``b_prime_`` are the training arrays themselves, so a later
    :meth:`partial_fit` updates them in place; copy them to keep a snapshot.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X = load_digits().data / 16.0
    >>> ae = KSparseAutoencoder(n_hidden=64, k=8, n_epochs=2, random_state=0).fit(X)
    >>> ae.transform(X).shape
    (1797, 64)
    """

    def __init__(self, n_hidden=1000, k=25, alpha=1.0, n_epochs=10, batch_size=128, lr=0.01,
                 lr_final=None, momentum=0.9, sigma=0.01, k_start=100, k_fraction=0.5,
                 dtype="float32", device="cpu", random_state=None, checkpoint_path=None,
                 checkpoint_every=0, callback=None, center=False):
        self.n_hidden = n_hidden
        self.k = k
        self.alpha = alpha
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_final = lr_final
        self.momentum = momentum
        self.sigma = sigma
        self.k_start = k_start
        self.k_fraction = k_fraction
        self.dtype = dtype
        self.device = device
        self.random_state = random_state
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.callback = callback
        self.center = center

    # -- configuration ---------------------------------------------------------------
    def _config(self, seed=0):
        """The hyperparameters as a validated :data:`ksparse.training.loop.DEFAULTS`-style dict."""
        names = [n for n in train.DEFAULTS if n != "seed"]
        cfg = train.check_config(dict({n: getattr(self, n) for n in names}, seed=seed))
        check_device(self.device)
        return cfg

    def _check_resume(self, state):
        """Raise ValueError when a loaded state was trained with other hyperparameters."""
        cfg = self._config()
        differ = [n for n in cfg if n not in ("seed", "n_epochs") and cfg[n] != state.config[n]]
        if differ:
            pairs = ", ".join(f"{n}={state.config[n]!r} (estimator: {cfg[n]!r})" for n in differ)
            raise ValueError(f"the checkpoint was trained with {pairs}; set the estimator's "
                             "parameters to match, or use KSparseAutoencoder.load(path)")

    def _run(self, X, state, epochs=None):
        """Continue ``state`` on validated ``X``; keep the last good state on divergence."""
        try:
            state = train.fit(X, config={"n_epochs": self.n_epochs}, state=state, device=self.device,
                              callback=self.callback, checkpoint_path=self.checkpoint_path,
                              checkpoint_every=self.checkpoint_every, epochs=epochs)
        except train.TrainingDiverged as e:
            self.state_ = e.state
            raise
        self.state_ = state
        return self

    def _new_state(self, d):
        """A fresh TrainState; its seed is drawn from ``random_state`` (sklearn's convention)."""
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return train.new_state(d, self._config(seed), self.device)

    # -- training ----------------------------------------------------------------------
    def fit(self, X, y=None, resume_from=None):
        """Sec. 2.2: train on ``X`` for ``n_epochs`` epochs with the Sec. 4.2.1 schedule.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : ignored
        resume_from : path, optional
            A checkpoint (from :meth:`save` or ``checkpoint_path``) to continue until
            ``n_epochs``. Its hyperparameters must match the estimator's, except
            ``n_epochs``; on CPU the result equals an uninterrupted run bit for bit.

        Returns
        -------
        self

        Raises
        ------
        ksparse.training.loop.TrainingDiverged
            When the loss turns NaN or inf. ``state_`` and the checkpoint file (if any)
            hold the last good epoch; lower ``lr`` or ``sigma``.
        """
        X = validate_data(self, X, dtype=_FLOATS)
        self._config()
        if resume_from is None:
            state = self._new_state(X.shape[1])
        else:
            state = train.load_state(resume_from, self.device)
            self._check_resume(state)
        return self._run(X, state)

    def partial_fit(self, X, y=None):
        """Run one more epoch on ``X``, continuing the current state (or a fresh one).

        Epoch e follows the same k and lr schedules as :meth:`fit` over ``n_epochs``
        epochs, and holds their final values past it: ``n_epochs`` calls of
        ``partial_fit`` on the same data equal one :meth:`fit`. The current
        hyperparameters apply (``set_params(lr=...)`` between calls takes effect), except
        ``n_hidden``, ``dtype`` and ``device``, which are fixed once the model is built.

        Returns
        -------
        self
        """
        first = not hasattr(self, "state_")
        X = validate_data(self, X, dtype=_FLOATS, reset=first)
        if first:
            return self._run(X, self._new_state(X.shape[1]), epochs=1)
        cfg = self._config(seed=self.state_.config["seed"])
        built = dict(self.state_.config, device=device_of(self.state_.params["W"]))
        for name, now in (("n_hidden", cfg["n_hidden"]), ("dtype", cfg["dtype"]), ("device", self.device)):
            if now != built[name]:
                raise ValueError(f"{name} changed from {built[name]!r} to {now!r} since the model "
                                 "was built; call fit to start a new one")
        self.state_.config.update(cfg)
        return self._run(X, self.state_, epochs=1)

    # -- fitted attributes -----------------------------------------------------------
    @property
    def W_(self):
        check_is_fitted(self, "state_")
        return to_numpy(self.state_.params["W"])

    @property
    def b_(self):
        check_is_fitted(self, "state_")
        return to_numpy(self.state_.params["b"])

    @property
    def b_prime_(self):
        check_is_fitted(self, "state_")
        return to_numpy(self.state_.params["b_prime"])

    @property
    def history_(self):
        check_is_fitted(self, "state_")
        return self.state_.history

    @property
    def _n_features_out(self):
        return self.state_.config["n_hidden"]

    # -- using the model ---------------------------------------------------------------
    def transform(self, X):
        """Sec. 2.2, sparse encoding: h = supp_{alpha k}(W^T x + b), shape (n_samples, n_hidden).

        With ``center=True``, x is the input minus the training mean.
        """
        check_is_fitted(self, "state_")
        X = validate_data(self, X, dtype=_FLOATS, reset=False)
        p, cfg = self.state_.params, self.state_.config
        x = to_device(train.centered(X, self.state_), device_of(p["W"]), dtype=cfg["dtype"])
        return to_numpy(encode(x, p["W"], p["b"], cfg["k"], self.alpha))

    def inverse_transform(self, X):
        """D3: reconstruct x_hat = W h + b' from codes (n_samples, n_hidden); + the mean if ``center``."""
        check_is_fitted(self, "state_")
        h = check_array(X, dtype=_FLOATS)
        p, cfg = self.state_.params, self.state_.config
        if h.shape[1] != cfg["n_hidden"]:
            raise ValueError(f"codes must have n_hidden = {cfg['n_hidden']} columns, got {h.shape[1]}")
        h = to_device(h, device_of(p["W"]), dtype=cfg["dtype"])
        x_hat = to_numpy(decode_forward(h, p["W"], p["b_prime"])[0])
        if self.state_.x_mean is not None:
            x_hat += self.state_.x_mean.astype(x_hat.dtype)
        return x_hat

    def score(self, X, y=None):
        """Negative reconstruction error per element, -mean((x_hat - x)^2) = -D4 / d.

        ``x_hat`` is ``inverse_transform(transform(X))``, so it uses alpha k units (rounded half up);
        with alpha = 1 this is the training loss in the units of ``history_[i]["mse"]``.
        """
        X = check_array(X, dtype=_FLOATS)
        x_hat = self.inverse_transform(self.transform(X))
        return -float(np.mean((x_hat.astype(np.float64) - X) ** 2))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = [self.dtype]
        return tags

    # -- persistence -------------------------------------------------------------------
    def save(self, path):
        """Write the model and its full training state to one ``.npz``, atomically."""
        check_is_fitted(self, "state_")
        train.save_state(path, self.state_)

    @classmethod
    def load(cls, path, device="cpu"):
        """Read a file written by :meth:`save` (or a ``checkpoint_path``) into a fitted estimator.

        Raises
        ------
        ValueError
            If the file is missing, truncated, corrupt or not a ksparse model.
        """
        state = train.load_state(path, device)
        params = {n: v for n, v in state.config.items() if n != "seed"}
        est = cls(**params, random_state=state.config["seed"], device=device)
        est.state_ = state
        est.n_features_in_ = int(state.params["W"].shape[0])
        return est
