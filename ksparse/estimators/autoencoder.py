"""KSparseAutoencoder: the k-sparse autoencoder as a scikit-learn transformer.

A thin layer over :mod:`ksparse.training.loop` (the training loop), :mod:`ksparse.kernels.encode`
(the alpha k features of Sec. 2.2) and :mod:`ksparse.nn.layers` (the decoder, D3). It adds
scikit-learn's input validation, ``get_params``/``set_params``, and the fitted
attributes ``W_``, ``components_``, ``b_``, ``b_prime_``, ``n_iter_``, ``history_`` and ``state_``.
Its parameters are generated from :class:`ksparse.config.AutoencoderConfig`.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ksparse.backend import check_device, device_of, to_numpy
from ksparse.config import AutoencoderConfig, ConfigError, ConfigTypeError, config_doc, init_from
from ksparse.errors import reject_complex, reject_nonfinite
from ksparse.estimators import codes as _codes
from ksparse.estimators.params import (
    KnownParams,
    check_2d,
    check_callable,
    check_path,
    check_progress,
    progress_bar,
)
from ksparse.io import check_model_file
from ksparse.training import loop as train

_FLOATS = (np.float64, np.float32)


def _is_int(random_state):
    return isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool)


def seed_from(random_state):
    """scikit-learn's convention: an int is the seed itself; None or a RandomState gives one drawn from it."""
    if _is_int(random_state):
        return random_state
    if random_state is not None and not isinstance(random_state, np.random.RandomState):
        # check_random_state's own message ('... cannot be used to seed a RandomState') gives no fix
        raise ConfigTypeError("random_state", "must be an integer >= 0, a numpy.random.RandomState or None",
                              random_state, fix="pass an integer seed, e.g. random_state=0 (from a "
                              "numpy Generator rng: random_state=int(rng.integers(2**31)))")
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


_RUN_PARAMS = {"device": "cpu", "checkpoint_path": None, "checkpoint_every": 0, "callback": None,
               "progress": None}

_DOC = """k-sparse autoencoder (Makhzani & Frey, 2014): Sec. 2.2 training, alpha k features.

    The parameters are the fields of :class:`ksparse.config.AutoencoderConfig` (the same
    names, defaults and ranges as the options of ``ksparse train``), then five that say
    how a run is carried out and not what is learned.

    Parameters
    ----------
{config}
    device : {{"cpu", "gpu"}}, default "cpu"
        "gpu" needs CuPy; the fitted attributes are NumPy arrays either way.
    checkpoint_path : path or None, default None
        Where :meth:`fit` writes its state (see :meth:`save`) at the end of training,
        and every ``checkpoint_every`` epochs: a name ending in ``.npz``, in a folder that exists
        (checked before the first epoch).
    checkpoint_every : int, default 0
        0 writes only at the end.
    callback : callable or None, default None
        Called as ``callback(record)`` after each epoch with that epoch's metrics.
    progress : bool, callable or None, default None
        True shows a tqdm bar over the samples to train; False or None, none; a callable is
        called as ``progress(rows)`` after each minibatch (training's progress in samples).

    ``random_state`` may also be None or a ``numpy.random.RandomState``, as in scikit-learn:
    the seed is then drawn from it (from NumPy's global RNG for None) on each :meth:`fit`.

    Attributes
    ----------
    W_ : ndarray, shape (n_features_in_, n_hidden)
        Tied weights; the encoder uses ``W_.T``, the decoder ``W_``.
    components_ : ndarray, shape (n_hidden, n_features_in_)
        The dictionary atoms as rows, ``W_.T`` (scikit-learn's name, as in
        ``MiniBatchDictionaryLearning``).
    b_ : ndarray, shape (n_hidden,)
        Hidden bias b.
    b_prime_ : ndarray, shape (n_features_in_,)
        Output bias b' (also subtracted before encoding under ``pre_bias``, D9).
    scale_ : float
        The data scale s (1.0 with ``scale=False`` or ``paper=True``). ``W_``, ``b_`` and
        ``b_prime_`` act on u = x / s: z = (x / s - b') W + b and x_hat = (z_k W^T + b') s.
    n_iter_ : int
        Number of epochs run (including those of a resumed checkpoint).
    history_ : list of dict
        One record per epoch: ``loss`` (D4), ``mse`` (D4 / d), ``fvu``, in the data's units;
        ``dead_fraction`` (units in no support during the epoch), ``dead_window`` (in none during
        the last T samples), ``resampled`` (units resampled so far), ``k``, ``lr``, ``epoch``.
    state_ : ksparse.training.loop.TrainState
        The full training state (parameters on ``device``, velocities, RNG, epoch).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Notes
    -----
    Loss convention (D4): E = (1/N) sum_i ||x_hat_i - x_i||^2. :meth:`score` and
    ``history_[i]["mse"]`` give the error per element, E / d.

    Resume (:meth:`fit` with ``resume_from``) keeps every setting of the checkpoint; only
    ``max_iter`` may be larger, and the k and lr schedules continue where they were (see
    :mod:`ksparse.training.loop`).

    On CPU, ``W_``, ``b_`` and ``b_prime_`` are the training arrays themselves, so a later
    :meth:`partial_fit` updates them in place; copy them to keep a snapshot.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X = load_digits().data / 16.0
    >>> ae = KSparseAutoencoder(n_hidden=64, k=8, max_iter=2).fit(X)
    >>> ae.transform(X).shape
    (1797, 64)
    """


# parameters that shape the built model: partial_fit refuses a change after the first call
FIXED_AFTER_FIT = ("n_hidden", "dtype", "center", "device")


class KSparseAutoencoder(KnownParams, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    __doc__ = _DOC.format(config=config_doc(AutoencoderConfig))
    __init__ = init_from(AutoencoderConfig, **_RUN_PARAMS)

    # -- configuration ---------------------------------------------------------------
    def _config(self, random_state=None):
        """The parameters as a validated AutoencoderConfig; ``random_state`` replaces the parameter."""
        rs = self.random_state if random_state is None else random_state
        values = {n: getattr(self, n) for n in AutoencoderConfig.names()}
        cfg = AutoencoderConfig(**dict(values, random_state=seed_from(rs)))
        check_device(self.device)
        every = self.checkpoint_every
        if not _is_int(every) or every < 0:
            raise ConfigError("checkpoint_every", "must be an integer >= 0", every)
        check_callable("callback", self.callback)
        check_progress(self.progress)
        check_path("checkpoint_path", self.checkpoint_path)
        return cfg

    def _run(self, X, state, config=None, epochs=None):
        """Continue ``state`` on validated ``X``; keep the last good state on divergence."""
        left = epochs if epochs is not None else (config or state.config).max_iter - state.epoch
        if self.checkpoint_path is not None:  # found now, not at the first checkpoint after an epoch's work
            check_model_file(self.checkpoint_path, "checkpoint_path")
        try:
            with progress_bar(self.progress, max(left, 0) * X.shape[0]) as progress:
                state = train.fit(X, config, state=state, device=self.device, callback=self.callback,
                                  checkpoint_path=self.checkpoint_path,
                                  checkpoint_every=self.checkpoint_every, epochs=epochs, progress=progress)
        except (train.TrainingDiverged, train.TrainingInterrupted) as e:
            if e.state is not None:
                self.state_ = e.state
            raise
        self.state_ = state
        return self

    def _new_state(self, d):
        """A fresh TrainState from the parameters; the seed comes from ``random_state``."""
        return train.new_state(d, self._config(), self.device)

    # -- training ----------------------------------------------------------------------
    def fit(self, X, y=None, resume_from=None):
        """Sec. 2.2: train on ``X`` for ``max_iter`` epochs with the Sec. 4.2.1 schedule.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            In memory, or read one block of rows at a time without being loaded whole: a
            ``numpy.memmap``, an h5py dataset, a zarr array, a Dask array (see
            :mod:`ksparse.training.stream`; the model equals the in-memory fit bit for bit).
        y : ignored
        resume_from : path, optional
            A checkpoint (from :meth:`save` or ``checkpoint_path``) to continue until
            ``max_iter`` epochs. Every other parameter must equal the checkpoint's; on
            CPU the result equals an uninterrupted run bit for bit.

        Returns
        -------
        self

        Raises
        ------
        ksparse.config.ConfigError
            For a parameter out of its range, or one that differs from the checkpoint's.
        ValueError
            For data with nothing to learn: fewer than 2 rows, or zero variance (every row
            the same; :func:`ksparse.training.loop.check_learnable`).
        ValueError
            For data too large for ``dtype``: a scale (mean distance of a row to the mean) or
            column mean within a factor 10 of its largest number, e.g. float32 data near 3.4e38
            (:func:`ksparse.training.datacheck.check_representable`); rescale the data.
        ValueError
            With ``resume_from``, for data whose spread (mean distance of a row to the mean)
            differs from the training data's by more than a factor 10
            (:func:`ksparse.training.datacheck.check_same_data`).
        ksparse.training.loop.TrainingDiverged
            When the loss turns NaN or inf. ``state_`` and the checkpoint file (if any)
            hold the last good epoch; lower ``lr`` or ``sigma``.
        ksparse.training.loop.TrainingInterrupted
            On Ctrl-C (a KeyboardInterrupt); ``state_`` holds the last finished epoch.
        """
        X = self._validate(X, reset=True)
        self._config()
        if resume_from is None:
            return self._run(X, self._new_state(X.shape[1]))
        state = train.load_state(resume_from, self.device)
        rs = self.random_state  # None or a RandomState: the run goes on from the checkpoint's RNG
        return self._run(X, state, self._config(rs if _is_int(rs) else state.config.random_state))

    def partial_fit(self, X, y=None):
        """Run one more epoch on ``X``, continuing the current state (or a fresh one).

        Epoch e follows the k and lr schedules of the model's first ``max_iter`` epochs,
        and holds their final values past it: ``max_iter`` calls of ``partial_fit`` on the
        same data equal one :meth:`fit`. The current parameters apply
        (``set_params(lr=...)`` between calls takes effect), except ``n_hidden``,
        ``dtype``, ``center`` and ``device`` (:data:`FIXED_AFTER_FIT`), which are fixed once
        the model is built: changing one raises ValueError.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Before any update, the model left as it was: for data whose spread (mean distance
            of a row to the mean) differs from that of the data the model has trained on by more
            than a factor 10, such as raw 0-255 pixels after pixels in [0, 1]
            (:func:`ksparse.training.datacheck.check_same_data`); for data too large for
            ``dtype`` (:func:`ksparse.training.datacheck.check_representable`).
        ksparse.training.loop.TrainingDiverged
            As :meth:`fit`.
        """
        first = not hasattr(self, "state_")
        X = self._validate(X, reset=first)
        state = self._new_state(X.shape[1]) if first else self.state_
        cfg = self._config(random_state=state.config.random_state)
        built = {name: getattr(state.config, name) for name in FIXED_AFTER_FIT if name != "device"}
        built["device"] = device_of(state.params["W"])
        for name in FIXED_AFTER_FIT:
            now = self.device if name == "device" else getattr(cfg, name)
            if now != built[name]:
                raise ValueError(f"{name} changed from {built[name]!r} to {now!r} since the model "
                                 "was built; call fit to start a new one")
        kept, epoch = state.config, state.epoch
        state.config = cfg.replace(max_iter=max(cfg.max_iter, state.epoch + 1))
        try:
            return self._run(X, state, epochs=1)
        except ValueError:
            if state.epoch == epoch:  # refused before any update (e.g. data of another scale): as it was
                state.config = kept
            raise

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
    def scale_(self):
        check_is_fitted(self, "state_")
        return self.state_.scale

    @property
    def components_(self):
        return self.W_.T

    @property
    def n_iter_(self):
        check_is_fitted(self, "state_")
        return self.state_.epoch

    @property
    def history_(self):
        check_is_fitted(self, "state_")
        return self.state_.history

    @property
    def _n_features_out(self):
        return self.state_.config.n_hidden

    # -- using the model ---------------------------------------------------------------
    def transform(self, X, output="dense"):
        """Sec. 2.2, sparse encoding: h = supp_{alpha k}(W^T x + b), alpha k units per row.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            In memory, streamed by rows (memmap, h5py, zarr) or a Dask array. With
            ``center=True``, x is the input minus the training mean.
        output : {"dense", "sparse", "topk"}, default "dense"
            ``"dense"``: an (n_samples, n_hidden) array; ``"sparse"``: a
            ``scipy.sparse.csr_array`` with exactly alpha k stored entries per row;
            ``"topk"``: ``(index, value)``, two (n_samples, alpha k) arrays, columns
            ascending. A Dask ``X`` gives a lazy Dask array (or pair), ``"dense"`` or ``"topk"``.

        Rows are encoded in blocks (:mod:`ksparse.kernels.encode`): beyond the codes, only
        one block's x and z are held at a time.
        """
        check_is_fitted(self, "state_")
        return self._encode(self._validate(X), output)

    def _encode(self, X, output="dense"):
        """transform on an already validated X."""
        self.state_.config.replace(alpha=self.alpha)  # a bad alpha fails before any work, as a ConfigError
        return _codes.encode_rows(self.state_, X, self.alpha, output)

    def inverse_transform(self, X):
        """D3 in the data's units: x_hat = (W h + b') s (+ the mean if ``center``), from codes in any form.

        ``X`` is what :meth:`transform` returns: an (n_samples, n_hidden) array, a
        ``scipy.sparse`` matrix or array, or an ``(index, value)`` pair.
        """
        check_is_fitted(self, "state_")
        return _codes.decode_codes(self.state_, self._validate(X, codes=True))

    def score(self, X, y=None):
        """Negative reconstruction error per element, -mean((x_hat - x)^2) = -D4 / d.

        ``x_hat`` is ``inverse_transform(transform(X))``, so it uses alpha k units (rounded half up);
        with alpha = 1 this is the training loss in the units of ``history_[i]["mse"]``. An ``X``
        read by rows is scored block by block.
        """
        check_is_fitted(self, "state_")
        X = self._validate(X)
        if _codes.is_large(X):
            total, n = _codes.squared_error_rows(self.state_, X, self.alpha)
            return -total / (n * X.shape[1])
        x_hat = _codes.decode_codes(self.state_, self._encode(X))
        return -float(np.mean((x_hat.astype(np.float64) - X) ** 2))

    # -- input -------------------------------------------------------------------------
    def _validate(self, X, reset=False, codes=False):
        """The one input check of every method: real numbers (complex refused), 2-D, finite (the first
        NaN or inf named by row and column, as from the command line).

        Data (``codes=False``) goes through scikit-learn's ``validate_data``, which records
        (``reset=True``) or checks ``n_features_in_`` and pandas column names; codes for
        :meth:`inverse_transform` must have ``n_hidden`` columns.
        """
        if hasattr(X, "dtypes") and any(getattr(t, "kind", "") == "c" for t in np.atleast_1d(X.dtypes)):
            reject_complex(np.zeros(1, complex), "X")  # a DataFrame with a complex column
        name = "codes" if codes else "X"
        reject_complex(X, name)
        check_2d(X, name, "n_hidden" if codes else "n_features")  # scikit-learn prints the whole row
        if not codes:
            if _codes.is_large(X):  # read by rows: shape and dtype here, finiteness block by block
                return _codes.check_rows_of(self, X, reset)
            X = validate_data(self, X, dtype=_FLOATS, reset=reset, ensure_all_finite=False)
            return reject_nonfinite(X)
        if isinstance(X, tuple) or hasattr(X, "tocsr"):
            return X  # top-k pairs and scipy.sparse codes: checked by ksparse.estimators.codes.decode_codes
        h = reject_nonfinite(check_array(X, dtype=_FLOATS, ensure_all_finite=False), "codes")
        if h.shape[1] != self.state_.config.n_hidden:
            raise ValueError(f"codes must have n_hidden = {self.state_.config.n_hidden} columns, "
                             f"got {h.shape[1]}")
        return h

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = [self.dtype]
        return tags

    # -- persistence -------------------------------------------------------------------
    def save(self, path):
        """Write the model and its full training state to one ``.npz``, atomically.

        Parameters
        ----------
        path : str or path-like
            Ending in ``.npz``, written under exactly this name, in a folder that exists (the
            rule of ``checkpoint_path`` and of ``ksparse train``'s and ``encode``'s files too).

        Raises
        ------
        ValueError
            For a name not ending in ``.npz`` (``'X.npy'``): the message names the one to use.
        OSError
            For an empty path, a folder, or a folder that is missing or cannot be written.
        """
        check_is_fitted(self, "state_")
        check_model_file(path, "path")
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
        est = cls(**state.config.to_dict(), device=device)
        est.state_ = state
        est.n_features_in_ = int(state.params["W"].shape[0])
        return est
