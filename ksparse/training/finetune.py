"""Discriminative k-sparse networks: greedy pre-training, layer-wise fine-tuning, Sec. 4.5-4.6.

- :func:`pretrain_stack` trains one k-sparse autoencoder per hidden layer with
  :func:`ksparse.training.loop.fit`, each on the codes h = supp_{alpha k}(W^T x + b) of the one
  below (greedy layer-wise pre-training, Sec. 4.6).
- :func:`init_network` builds the network's parameters from the autoencoders' encoder
  W and b, or at random ("without pre-training", Table 3).
- :func:`finetune` runs the fine-tuning stages of Sec. 4.6: the softmax on frozen features,
  then the top hidden layer and the softmax, and so on down to all layers together. Each
  stage uses SGD with momentum (Eq. 11) and the supervised schedule of Sec. 4.2.2 (momentum
  0.25, lr falling linearly from 1 to 0.001), and keeps the epoch with the lowest error
  on the validation split when one is given. A stage whose loss becomes NaN or inf restarts
  from its start at half the learning rate (at most :data:`RESTARTS` times, with a warning).

:class:`ksparse.estimators.classifier.KSparseClassifier` wraps it all as a scikit-learn classifier.
"""

import copy
import math
import warnings

import numpy as np

from ksparse.backend import get_array_module, to_numpy
from ksparse.config import AutoencoderConfig, FinetuneConfig
from ksparse.kernels.encode import alpha_k, encode
from ksparse.nn.schedule import linear_lr
from ksparse.nn.supervised import hidden_layer_forward, hidden_names, network_forward
from ksparse.training.epoch import index_blocks, minibatches, run_epoch
from ksparse.training.loop import TrainingDiverged, encoder_params, fit
from ksparse.training.steps import NetworkStep, StepSettings

FINETUNE_DEFAULTS = FinetuneConfig()
"""Sec. 4.2.2's supervised schedule: 200 epochs per stage, lr 1 falling to 0.001, momentum 0.25."""


def check_finetune_config(config=None):
    """The :class:`~ksparse.config.FinetuneConfig` of ``config``: an instance, a dict of some of
    its fields, or None (Sec. 4.2.2's defaults). Raises ConfigError naming a wrong field."""
    if isinstance(config, FinetuneConfig):
        return config
    return FinetuneConfig.from_dict(dict(config or {}))


def pretrain_stack(x, hidden_sizes, k, alpha, config=None, device="cpu", callback=None):
    """Sec. 4.6, greedy layer-wise pre-training: one k-sparse autoencoder per hidden layer.

    Layer 1 trains on ``x``; layer l > 1 trains on the codes h = supp_{alpha k}(W^T x + b)
    (Sec. 2.2) of layer l - 1.

    Parameters
    ----------
    x : array, shape (N, d)
    hidden_sizes : sequence of int
    k : int
    alpha : float >= 1
    config : AutoencoderConfig or dict, or a sequence of them, optional
        Options of :func:`ksparse.training.loop.fit` (one for all layers, or one per layer);
        ``n_hidden``, ``k`` and ``alpha`` are set here.
    device : {"cpu", "gpu"}
    callback : callable, optional
        Called as ``callback(layer, record)`` after each epoch.

    Returns
    -------
    states : list of TrainState
        One per layer; :func:`ksparse.training.loop.encoder_params` gives each encoder for its
        raw input.
    """
    configs = list(config) if isinstance(config, (list, tuple)) else [config or {}] * len(hidden_sizes)
    if len(configs) != len(hidden_sizes):
        raise ValueError(f"give one pre-training config per hidden layer ({len(hidden_sizes)})")
    states, h = [], x
    for l, (H, cfg) in enumerate(zip(hidden_sizes, configs, strict=True), 1):
        cb = None if callback is None else (lambda rec, l=l: callback(l, rec))
        values = cfg.to_dict() if isinstance(cfg, AutoencoderConfig) else dict(cfg)
        state = fit(h, dict(values, n_hidden=int(H), k=int(k), alpha=alpha), device=device, callback=cb)
        states.append(state)
        if l < len(hidden_sizes):
            W, b = encoder_params(state)  # D1 or D9, with the data scale folded in
            h = encode(np.asarray(h), W, b, k, alpha)  # block-wise (kernels.encode)
    return states


def init_network(d, n_classes, hidden_sizes, encoders=None, sigma=0.01, rng=None, dtype="float32"):
    """Parameters ``W1, b1, ..., W_out, b_out`` of the network, on the host.

    Parameters
    ----------
    d, n_classes : int
    hidden_sizes : sequence of int
    encoders : sequence of (W, b), optional
        Encoders of trained autoencoders, one per hidden layer, W (H_{l-1}, H_l) and b (H_l,).
        When None the hidden layers are drawn from N(0, sigma^2) with b = 0.
    sigma : float
        Standard deviation of the Gaussian initialisation (Sec. 4.2.2); the softmax
        weights always start from it.
    rng : numpy Generator, optional
    dtype : str

    Returns
    -------
    params : dict of NumPy arrays
    """
    rng = np.random.default_rng(0) if rng is None else rng
    sizes = [d] + [int(H) for H in hidden_sizes]
    params = {}
    for l in range(1, len(sizes)):
        if encoders is not None:
            W, b = (np.asarray(to_numpy(a), dtype=dtype) for a in encoders[l - 1])
            if W.shape != (sizes[l - 1], sizes[l]) or b.shape != (sizes[l],):
                raise ValueError(
                    f"encoder {l} has W {W.shape} and b {b.shape}; "
                    f"expected ({sizes[l - 1]}, {sizes[l]}) and ({sizes[l]},)")
            params[f"W{l}"], params[f"b{l}"] = W.copy(), b.copy()
        else:
            params[f"W{l}"] = rng.normal(0.0, sigma, (sizes[l - 1], sizes[l])).astype(dtype)
            params[f"b{l}"] = np.zeros(sizes[l], dtype)
    params["W_out"] = rng.normal(0.0, sigma, (sizes[-1], n_classes)).astype(dtype)
    params["b_out"] = np.zeros(n_classes, dtype)
    return params


def transform_batched(fn, x, batch=10000):
    """Apply a row-wise function to ``x`` in blocks of ``batch`` rows and stack the results.

    For the network's scores; the encoder batches itself (:func:`ksparse.kernels.encode.encode`).
    """
    xp = get_array_module(x)
    return xp.concatenate([fn(x[i:i + batch]) for i in range(0, x.shape[0], batch)], axis=0)


def features_below(x, params, n_keep, first):
    """The input of layer ``first``: x passed through the (frozen) layers 1 .. first-1, S1."""
    for l in range(1, first):
        W, b, n = params[f"W{l}"], params[f"b{l}"], n_keep[l - 1]
        if n is None:  # S5
            x = transform_batched(lambda xb, W=W, b=b: hidden_layer_forward(xb, W, b, None)[0], x)
        else:
            x = encode(x, W, b, n)  # block-wise (kernels.encode)
    return x


def scores(x, params, n_keep, first=1):
    """Scores s (N, C) of the network from the input of layer ``first``, in blocks."""
    return transform_batched(lambda xb: network_forward(xb, params, n_keep, first)[0], x)


def error_rate(x, y, params, n_keep, first=1):
    """Fraction of rows of ``x`` whose highest score is not the label ``y``."""
    xp = get_array_module(x)
    return float((xp.argmax(scores(x, params, n_keep, first), axis=1) != y).mean())


def stage_firsts(n_layers, layerwise=True):
    """Sec. 4.6: the lowest trainable layer of each stage, ``[L+1, L, ..., 1]`` or ``[1]``."""
    return list(range(n_layers + 1, 0, -1)) if layerwise else [1]


def finetune_stage(params, x, y, n_keep, first, cfg, x_val=None, y_val=None, rng=None,
                   callback=None, stage=1):
    """One stage of Sec. 4.6: train layers ``first .. L`` and the softmax, the rest frozen.

    ``x`` and ``x_val`` are the data (inputs of layer 1). ``params`` is updated in place;
    the parameters of layers below ``first`` are never written. With a validation split,
    the trainable parameters end at the epoch of lowest validation error.

    Returns
    -------
    history : list of dict
        Per epoch: stage, epoch, loss (S3), lr, and val_error when validation is given.
    """
    cfg = check_finetune_config(cfg)
    rng = np.random.default_rng(cfg.random_state) if rng is None else rng
    L = len(n_keep)
    names = hidden_names(L)[2 * (first - 1):] + ["W_out", "b_out"]
    trainable = {n: params[n] for n in names}
    velocity = {n: get_array_module(a).zeros_like(a) for n, a in trainable.items()}
    x_in = features_below(x, params, n_keep, first)  # frozen layers, computed once
    v_in = None if x_val is None else features_below(x_val, params, n_keep, first)
    n_epochs = cfg.max_iter
    # S6's masks: their own generator, seeded by the run's seed and the stage
    mask_seed = int(np.random.SeedSequence([cfg.random_state, stage]).generate_state(1)[0])
    step = NetworkStep(n_keep, first, cfg.p_input, cfg.p_hidden, random_state=mask_seed)
    best, best_err, history = None, math.inf, []
    for e in range(n_epochs):
        lr = linear_lr(e, n_epochs, cfg.lr, cfg.lr_final)
        batches = minibatches((x_in, y), index_blocks(x_in.shape[0], cfg.batch_size, rng))
        loss = run_epoch(step, batches, params, velocity, StepSettings(lr, cfg.momentum))["loss"]
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"fine-tuning diverged in stage {stage}, epoch {e + 1} (loss {loss}); "
                f"lower the learning rate (lr={cfg.lr})", None)
        record = {"stage": stage, "first_layer": first, "epoch": e + 1, "loss": loss, "lr": lr}
        if v_in is not None:
            record["val_error"] = error_rate(v_in, y_val, params, n_keep, first)
            if record["val_error"] <= best_err:
                best_err = record["val_error"]
                best = {n: a.copy() for n, a in trainable.items()}
        history.append(record)
        if callback is not None:
            callback(record)
    if best is not None:
        for n in names:
            params[n][...] = best[n]
    return history


def finetune(params, x, y, n_keep, config=None, layerwise=True, x_val=None, y_val=None,
             callback=None, stage_epochs=None):
    """Sec. 4.6, layer-wise fine-tuning: every stage of :func:`stage_firsts` in turn.

    Parameters
    ----------
    params : dict
        Network parameters on the device of ``x``; updated in place.
    x : array, shape (N, d)
    y : int array, shape (N,)
        Class indices.
    n_keep : sequence of int
        alpha k per hidden layer.
    config : FinetuneConfig or dict, optional
        The schedule of every stage (Sec. 4.2.2's by default).
    layerwise : bool, default True
        False fine-tunes all layers at once (one stage).
    x_val, y_val : arrays, optional
        Validation split for selecting the epoch in each stage.
    callback : callable, optional
        Called with each epoch's record.
    stage_epochs : sequence of int, optional
        One epoch count per stage, in place of ``config.max_iter`` for every stage.

    Returns
    -------
    history : list of dict
    """
    cfg = check_finetune_config(config)
    firsts = stage_firsts(len(n_keep), layerwise)
    epochs = [cfg.max_iter] * len(firsts) if stage_epochs is None else list(stage_epochs)
    if len(epochs) != len(firsts):
        raise ValueError(f"stage_epochs gives {len(epochs)} counts for {len(firsts)} fine-tuning stages")
    rng = np.random.default_rng(cfg.random_state)
    history = []
    for stage, (first, n) in enumerate(zip(firsts, epochs, strict=True), 1):
        history += _stage_or_restart(params, x, y, n_keep, first, cfg.replace(max_iter=n),
                                     x_val, y_val, rng, callback, stage)
    return history


RESTARTS = 3
"""How many times a diverged fine-tuning stage restarts at half the learning rate."""


def _stage_or_restart(params, x, y, n_keep, first, cfg, x_val, y_val, rng, callback, stage):
    """:func:`finetune_stage`; where it diverges, the stage again from its start (its parameters,
    the minibatch order's generator) with lr and lr_final halved, at most :data:`RESTARTS`
    times, with a RuntimeWarning each time; then the divergence is raised.

    A restarted stage equals the stage run at the halved rates from the start (a test holds it):
    one seed's network that a rate sends to NaN in one stage does not end the whole run.
    """
    start = {name: a.copy() for name, a in params.items()}
    order = copy.deepcopy(rng.bit_generator.state)
    for restart in range(RESTARTS + 1):
        try:
            return finetune_stage(params, x, y, n_keep, first, cfg, x_val, y_val, rng, callback, stage)
        except TrainingDiverged as err:
            if restart == RESTARTS:
                raise TrainingDiverged(f"{err} (the stage was restarted {RESTARTS} times, each at half "
                                       f"the rate before; the last at lr={cfg.lr})", None) from err
            lower = cfg.replace(lr=cfg.lr / 2, lr_final=None if cfg.lr_final is None else cfg.lr_final / 2)
            warnings.warn(f"fine-tuning stage {stage} diverged at lr={cfg.lr}; restarting the stage from its "
                          f"start at lr={lower.lr}", RuntimeWarning, stacklevel=4)
            cfg = lower
            for name, a in params.items():
                a[...] = start[name]
            rng.bit_generator.state = copy.deepcopy(order)


def keep_counts(hidden_sizes, k, alpha):
    """alpha k for each hidden layer, checked against its size ( :func:`ksparse.kernels.encode.alpha_k`)."""
    return [alpha_k(k, alpha, int(H)) for H in hidden_sizes]
