"""KSparseClassifier: a scikit-learn classifier built from k-sparse autoencoders, Sec. 4.5-4.6.

The network stacks k-sparse hidden layers (S1 in :mod:`ksparse.nn.supervised`) under a softmax
(S3). ``fit`` pre-trains one k-sparse autoencoder per hidden layer (greedy, Sec. 4.6), or
starts at random with ``pretrain=False`` (Table 3, "without pre-training"), then fine-tunes
layer by layer (Sec. 4.6) with the supervised schedule of Sec. 4.2.2. The math lives in
:mod:`ksparse.nn.supervised`, the loops in :mod:`ksparse.training.finetune`.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ksparse.backend import check_device, to_device, to_numpy
from ksparse.config import AutoencoderConfig, ConfigError, FinetuneConfig
from ksparse.errors import reject_complex, reject_nonfinite
from ksparse.estimators.autoencoder import seed_from
from ksparse.estimators.params import KnownParams, check_2d, check_bool, check_callable, check_labels
from ksparse.nn.supervised import softmax
from ksparse.training.finetune import (
    finetune,
    init_network,
    keep_counts,
    pretrain_stack,
    scores,
    stage_firsts,
)
from ksparse.training.loop import encoder_params
from ksparse.training.remedies import data_scale

_AE, _FT = AutoencoderConfig(), FinetuneConfig()
# the classifier's name of an AutoencoderConfig field in pre-training
_PRETRAIN_NAMES = {"max_iter": "pretrain_max_iter", "lr": "pretrain_lr", "momentum": "pretrain_momentum",
                   "n_hidden": "n_hidden", "random_state": "random_state"}


def _per_layer(value, n_layers, name):
    """One value per hidden layer from a scalar or a sequence of length ``n_layers``."""
    values = list(value) if isinstance(value, (list, tuple)) else [value] * n_layers
    if len(values) != n_layers:
        raise ValueError(f"{name} must be one value or {n_layers} values (one per hidden layer)")
    return values


def _renamed(error, names):
    """``error`` (a ConfigError) with its field given the classifier's parameter name."""
    field = names.get(error.field, error.field)
    keep = _Keep({k: "{" + v + "}" for k, v in names.items()})
    fix = error.fix and error.fix.format_map(keep)
    if error.among is None:
        return type(error)(field, error.rule, error.value, fix=fix)
    among = {names.get(k, k): v for k, v in error.among.items()}  # a rule between options: its template too
    return type(error)(field, error.rule.format_map(keep), error.value, fix=fix, among=among)


class _Keep(dict):
    def __missing__(self, name):
        return "{" + name + "}"


class KSparseClassifier(KnownParams, ClassifierMixin, BaseEstimator):
    """Shallow or deep k-sparse network with a softmax, pre-trained and fine-tuned (Sec. 4.5-4.6).

    The pre-training options are fields of :class:`ksparse.config.AutoencoderConfig` and the
    fine-tuning options those of :class:`ksparse.config.FinetuneConfig` (Sec. 4.2.2); their
    ranges are checked there.

    Parameters
    ----------
    n_hidden : int or tuple of int, default 1000
        Hidden units (the same name as :class:`~ksparse.estimators.autoencoder.KSparseAutoencoder`'s);
        a tuple gives one count per hidden layer, and two layers the deep network of Sec. 4.6.
    k : int, default 25
        Sparsity of the autoencoders' training (Sec. 2.2; the paper's MNIST value).
    alpha : float, default 3.0
        Every hidden layer keeps its alpha k largest units during fine-tuning and prediction
        (Sec. 4.5; the paper's MNIST value is 3, NORB 2).
    pretrain : bool, default True
        False starts from N(0, sigma^2) weights ("without pre-training").
    encoders : sequence of (W, b), optional
        Encoders of already trained autoencoders; they replace the pre-training.
    pretrain_max_iter, pretrain_lr, pretrain_momentum : default 50, None, 0.9
        Epochs, learning rate and momentum of each autoencoder's training (Sec. 4.2.2 uses
        5000 epochs on MNIST); a value or one per layer. ``pretrain_lr=None`` is the
        autoencoder's default rate (``ksparse.training.loop.effective_lr``).
    k_start : int, default 100
        Sparsity at the first pre-training epoch (Sec. 4.2.1).
    max_iter : int or sequence of int, default 200
        Fine-tuning epochs per stage (or one count per stage).
    lr, lr_final, momentum : default 1.0, 0.001, 0.25
        Supervised schedule of Sec. 4.2.2: lr falls linearly from ``lr`` to ``lr_final``. A
        fine-tuning stage whose loss becomes NaN or inf restarts from its start at half of both
        rates (at most three times, each with a RuntimeWarning; ``history_`` holds every
        epoch's rate), then raises ``TrainingDiverged``.
    batch_size : int, default 128
    sigma : float, default 0.01
    layerwise : bool, default True
        Fine-tune layer by layer (Sec. 4.6); False trains all layers at once. Without
        pre-training (random weights) all layers always train at once.
    validation_fraction : float, default 0.0
        Part of the training data held out (stratified) to select the epoch of each stage,
        when ``fit`` gets no ``X_val``.
    dtype : {"float32", "float64"}
    device : {"cpu", "gpu"}
    random_state : int, RandomState or None, default 0
        As for :class:`~ksparse.estimators.autoencoder.KSparseAutoencoder`: an int is the seed,
        None or a RandomState gives a seed drawn from it.
    callback : callable, optional
        Called with each epoch's record, for progress display.
    hidden : {"ksparse", "relu"}, default "ksparse"
        "ksparse": every hidden layer keeps its alpha k largest units (S1). "relu": every
        positive unit (S5), the comparison networks of Table 3; it pre-trains nothing, so give
        ``encoders`` (e.g. of :func:`ksparse.training.baselines.fit_baseline`) or ``pretrain=False``.
    p_input, p_hidden : float in [0, 1), default 0.0
        Drop rates of the input pixels and of the hidden units during fine-tuning (S6): the
        paper fine-tunes the denoising network with input noise (0.2) and the dropout network
        with dropout (0.5). Prediction uses no noise.
    paper : bool, default False
        False standardizes the inputs, x' = (x - mean) / s with one scalar s that makes the
        variance per feature 1 on average (``input_mean_``, ``input_scale_``; the fine-tuning
        rates were measured on such inputs), and pre-trains with the autoencoder's defaults
        (data scale, pre-encoder bias, resampling). True is the paper's setting: raw inputs,
        plain k-sparse autoencoders (``pretrain_lr`` None then means 0.01).

    Attributes
    ----------
    classes_ : array, shape (C,)
    params_ : dict of NumPy arrays
        ``W1, b1, ..., W_out, b_out``.
    n_keep_ : list of int or None
        alpha k per hidden layer (None for ReLU layers).
    n_iter_ : int
        Fine-tuning epochs run, over all stages.
    history_ : list of dict
        Fine-tuning records; ``pretrain_history_`` holds the autoencoders' records.
    """

    def __init__(self, n_hidden=_AE.n_hidden, k=25, alpha=3.0, pretrain=True, encoders=None,
                 pretrain_max_iter=50, pretrain_lr=_AE.lr, pretrain_momentum=_AE.momentum,
                 k_start=_AE.k_start, max_iter=_FT.max_iter, lr=_FT.lr, lr_final=_FT.lr_final,
                 momentum=_FT.momentum, batch_size=_FT.batch_size, sigma=_AE.sigma, layerwise=True,
                 validation_fraction=0.0, dtype=_AE.dtype, device="cpu", random_state=_AE.random_state,
                 callback=None, paper=False, hidden="ksparse", p_input=0.0, p_hidden=0.0):
        self.n_hidden = n_hidden
        self.k = k
        self.alpha = alpha
        self.pretrain = pretrain
        self.encoders = encoders
        self.pretrain_max_iter = pretrain_max_iter
        self.pretrain_lr = pretrain_lr
        self.pretrain_momentum = pretrain_momentum
        self.k_start = k_start
        self.max_iter = max_iter
        self.lr = lr
        self.lr_final = lr_final
        self.momentum = momentum
        self.batch_size = batch_size
        self.sigma = sigma
        self.layerwise = layerwise
        self.validation_fraction = validation_fraction
        self.dtype = dtype
        self.device = device
        self.random_state = random_state
        self.callback = callback
        self.paper = paper
        self.hidden = hidden
        self.p_input = p_input
        self.p_hidden = p_hidden

    def _sizes(self):
        sizes = list(self.n_hidden) if isinstance(self.n_hidden, (list, tuple)) else [self.n_hidden]
        if not sizes or any(isinstance(H, bool) or not isinstance(H, numbers.Integral) or H < 1
                            for H in sizes):
            raise ValueError(f"n_hidden must be a positive integer or a tuple of them, got {self.n_hidden!r}")
        return [int(H) for H in sizes]

    def _finetune_config(self, seed):
        """The fine-tuning schedule as a FinetuneConfig, and the epochs per stage (or None)."""
        per_stage = isinstance(self.max_iter, (list, tuple))
        try:
            cfg = FinetuneConfig(max_iter=0 if per_stage else self.max_iter, lr=self.lr,
                                 lr_final=self.lr_final, momentum=self.momentum,
                                 batch_size=self.batch_size, random_state=seed, p_input=self.p_input,
                                 p_hidden=self.p_hidden)
            stages = [cfg.replace(max_iter=n).max_iter for n in self.max_iter] if per_stage else None
        except ConfigError as e:
            raise _renamed(e, {}) from None
        return cfg, stages

    def _pretrain_configs(self, sizes, seed, sparse=True):
        """One AutoencoderConfig per hidden layer (seeds seed, seed + 1, ...); ``sparse=False``
        leaves k and alpha out (k = 1, alpha = 1: a ReLU network has no alpha k)."""
        L = len(sizes)
        rows = zip(sizes, _per_layer(self.pretrain_max_iter, L, "pretrain_max_iter"),
                   _per_layer(self.pretrain_lr, L, "pretrain_lr"),
                   _per_layer(self.pretrain_momentum, L, "pretrain_momentum"), strict=True)
        try:
            k, alpha = (self.k, self.alpha) if sparse else (1, 1.0)
            return [AutoencoderConfig(n_hidden=H, k=k, alpha=alpha, k_start=self.k_start,
                                      max_iter=e, lr=lr, momentum=m, sigma=self.sigma,
                                      batch_size=self.batch_size, dtype=self.dtype, random_state=seed + l,
                                      paper=bool(self.paper))
                    for l, (H, e, lr, m) in enumerate(rows)]
        except ConfigError as e:
            raise _renamed(e, _PRETRAIN_NAMES) from None

    def _check_params(self, seed):
        sizes = self._sizes()
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        check_device(self.device)
        check_callable("callback", self.callback)
        for name in ("pretrain", "layerwise", "paper"):
            check_bool(name, getattr(self, name))
        if self.hidden not in ("ksparse", "relu"):
            raise ValueError(f"hidden must be 'ksparse' or 'relu', got {self.hidden!r}")
        # validates k, alpha (k-sparse layers only), sigma, dtype, ... for every layer
        self._pretrain_configs(sizes, seed, sparse=self.hidden == "ksparse")
        if self.hidden == "relu" and self.pretrain and self.encoders is None:
            raise ValueError("hidden='relu' pre-trains nothing: give encoders=[(W, b), ...] "
                             "(e.g. from ksparse.training.baselines.fit_baseline) or pretrain=False")
        relu = self.hidden == "relu"
        n_keep = [None] * len(sizes) if relu else keep_counts(sizes, int(self.k), self.alpha)
        return sizes, n_keep, self._finetune_config(seed)

    def _standardize(self, X):
        """x' = (x - input_mean_) / input_scale_ (the identity under ``paper=True``)."""
        if self.paper:
            return X
        return ((X - self.input_mean_) / self.input_scale_).astype(X.dtype, copy=False)

    def _split(self, X, y, X_val, y_val, seed):
        if X_val is not None:
            check_labels(check_2d(X_val, "X_val"), y_val, "X_val", "y_val")
            X_val, y_val = validate_data(self, reject_complex(X_val, "X_val"), y_val, reset=False,
                                         dtype=[np.float64, np.float32], ensure_all_finite=False)
            X_val = self._standardize(reject_nonfinite(X_val, "X_val"))
            unknown = np.setdiff1d(y_val, self.classes_)
            if unknown.size:
                raise ValueError(f"y_val holds classes not in y: {unknown[:5]}")
            return X, y, X_val, np.searchsorted(self.classes_, y_val)
        if self.validation_fraction > 0:
            X, X_val, y, y_val = train_test_split(X, y, test_size=self.validation_fraction,
                                                  random_state=seed, stratify=y)
        return X, y, X_val, y_val

    def _encoders(self, X, sizes, seed):
        if self.encoders is not None:
            self.pretrain_history_ = []
            if len(self.encoders) != len(sizes):
                raise ValueError(f"encoders holds {len(self.encoders)} (W, b) pairs; give one per hidden "
                                 f"layer ({len(sizes)})")
            return list(self.encoders)
        if not self.pretrain:
            self.pretrain_history_ = []
            return None
        configs = self._pretrain_configs(sizes, seed)
        states = pretrain_stack(X, sizes, int(self.k), self.alpha, configs, self.device)
        self.pretrain_history_ = [s.history for s in states]
        return [encoder_params(s) for s in states]  # with the data scale and D9 folded in

    def fit(self, X, y, X_val=None, y_val=None):
        """Pre-train (unless ``pretrain=False`` or ``encoders`` is given), then fine-tune.

        Parameters
        ----------
        X : array-like, shape (N, d)
        y : array-like, shape (N,)
            Class labels, at least two distinct ones.
        X_val, y_val : array-like, optional
            Validation split for selecting the epoch of each fine-tuning stage.

        Returns
        -------
        self
        """
        seed = seed_from(self.random_state)
        sizes, n_keep, (config, stage_epochs) = self._check_params(seed)
        check_labels(check_2d(X), y)  # one line each, before scikit-learn's messages
        X, y = validate_data(self, reject_complex(X, "X"), y, dtype=[np.float64, np.float32],
                             ensure_all_finite=False)
        reject_nonfinite(X)  # the first NaN or inf by row and column, as KSparseAutoencoder says it
        self.input_mean_ = np.zeros(X.shape[1]) if self.paper else X.mean(axis=0, dtype=np.float64)
        # one scalar for all features, making the variance per feature 1 on average
        self.input_scale_ = 1.0 if self.paper else data_scale(X) / np.sqrt(X.shape[1])
        X = self._standardize(X)
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(f"y has 1 class ({self.classes_[0]!r}); a classifier needs at least 2 classes")
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        X, y_enc, X_val, y_val = self._split(X, y_enc, X_val, y_val, seed)
        encoders = self._encoders(X, sizes, seed)
        params = init_network(X.shape[1], self.classes_.size, sizes, encoders, self.sigma,
                              np.random.default_rng(seed), self.dtype)
        dev = self.device
        params = {n: to_device(a, dev) for n, a in params.items()}
        val = (None, None) if X_val is None else (to_device(X_val, dev, self.dtype), to_device(y_val, dev))
        self.history_ = finetune(params, to_device(X, dev, self.dtype), to_device(y_enc, dev), n_keep,
                                 config, self.layerwise and encoders is not None, *val,
                                 callback=self.callback, stage_epochs=stage_epochs)
        self.n_iter_ = len(self.history_)
        self.params_ = {n: to_numpy(a) for n, a in params.items()}
        self.n_keep_ = n_keep
        self.n_stages_ = len(stage_firsts(len(sizes), self.layerwise and encoders is not None))
        return self

    def predict_proba(self, X):
        """Class probabilities softmax(s) (S3), shape (N, C), columns in the order of ``classes_``."""
        check_is_fitted(self, "params_")
        X = validate_data(self, reject_complex(check_2d(X), "X"), reset=False, dtype=[np.float64, np.float32],
                          ensure_all_finite=False)
        X = self._standardize(reject_nonfinite(X))
        # float64 whatever the training dtype: float32 products of different row counts round
        # differently and can flip a unit at the alpha k threshold (scikit-learn's subset check)
        params = {n: a.astype(np.float64) for n, a in self.params_.items()}
        s = scores(X.astype(np.float64, copy=False), params, self.n_keep_)
        return softmax(s.astype(np.float64))

    def predict(self, X):
        """Labels of the highest-probability class, shape (N,)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
