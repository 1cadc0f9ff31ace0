"""Training the autoencoder: Gaussian initialisation, seeded minibatches, the k and lr
schedules, per-epoch metrics, checkpoints and resume, around the one epoch loop of
:mod:`ksparse.training.epoch` and a step of :mod:`ksparse.training.steps`.

The loop is backend-agnostic: the data and parameters live on the chosen device and the
host only draws random numbers and collects scalars.
"""

import dataclasses
import json
import math

import numpy as np

from ksparse.backend import check_device, get_array_module, to_device, to_numpy
from ksparse.errors import ModelFileError, reject_complex
from ksparse.kernels.encode import alpha_k
from ksparse.nn.schedule import k_schedule, linear_lr
from ksparse.training.checkpoint import PARAM_NAMES, load_checkpoint, save_checkpoint
from ksparse.training.epoch import index_blocks, minibatches, run_epoch
from ksparse.training.memory import check_memory
from ksparse.training.steps import AutoencoderStep, StepSettings

DEFAULTS = {
    "n_hidden": 1000,
    "k": 25,
    "k_start": 100,
    "k_fraction": 0.5,
    "alpha": 1.0,
    "n_epochs": 10,
    "batch_size": 128,
    "lr": 0.01,
    "lr_final": None,
    "momentum": 0.9,
    "sigma": 0.01,
    "dtype": "float32",
    "seed": 0,
    "center": False,
}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf. ``state`` holds the last good state (end of the last finished epoch)."""

    def __init__(self, message, state):
        super().__init__(message)
        self.state = state


@dataclasses.dataclass
class TrainState:
    """Everything needed to continue a run: parameters, velocities, epoch, RNG and history."""

    params: dict
    velocity: dict
    config: dict
    epoch: int = 0
    rng_state: dict = None
    history: list = dataclasses.field(default_factory=list)
    x_mean: np.ndarray = None  # (d,) training mean subtracted from the inputs when config["center"]

    def copy(self):
        xp = get_array_module(self.params["W"])
        return TrainState(
            params={n: xp.array(a, copy=True) for n, a in self.params.items()},
            velocity={n: xp.array(a, copy=True) for n, a in self.velocity.items()},
            config=dict(self.config),
            epoch=self.epoch,
            rng_state=json.loads(json.dumps(self.rng_state)),
            history=[dict(h) for h in self.history],
            x_mean=None if self.x_mean is None else self.x_mean.copy(),
        )


def centered(x, state):
    """``x`` minus the training mean when the model was trained with ``center=True``, else ``x``.

    Every input to a centred model goes through this (training, encoding, reconstruction
    error); the model's x_hat is then ``W z_k + b' + x_mean``.
    """
    return x if state.x_mean is None else np.asarray(x) - state.x_mean


def check_data(x, name="X"):
    """Return ``x`` as a 2-D float NumPy array, or raise ValueError saying what is wrong.

    Complex input raises :class:`ksparse.errors.ComplexDataError` (a ``TypeError``).
    """
    reject_complex(x, name)
    try:
        x = np.asarray(to_numpy(x))
    except Exception as e:
        raise TypeError(f"{name} must be an array of numbers ({e})") from None
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise TypeError(f"{name} must hold numbers, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got {x.ndim}-D shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {x.shape}; need at least one sample and one feature")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf; clean or impute the data first")
    return x


def check_config(config, d=None):
    """Fill defaults into ``config`` and validate it; return the completed dict."""
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown training options {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    cfg = dict(DEFAULTS, **config)
    for name in ("n_hidden", "k", "k_start", "n_epochs", "batch_size"):
        v = cfg[name]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {v!r}")
        cfg[name] = int(v)
    if cfg["n_hidden"] < 1:
        raise ValueError(f"n_hidden must be >= 1, got {cfg['n_hidden']}")
    if not 1 <= cfg["k"] <= cfg["n_hidden"]:
        raise ValueError(f"k must satisfy 1 <= k <= n_hidden = {cfg['n_hidden']}, got {cfg['k']}")
    alpha_k(cfg["k"], cfg["alpha"], cfg["n_hidden"])  # alpha finite, >= 1, alpha k <= n_hidden
    if cfg["n_epochs"] < 0 or cfg["batch_size"] < 1 or cfg["k_start"] < 1:
        raise ValueError("n_epochs must be >= 0, batch_size >= 1 and k_start >= 1")
    for name in ("lr", "momentum", "sigma", "k_fraction"):
        if not (isinstance(cfg[name], (int, float)) and math.isfinite(cfg[name]) and cfg[name] >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {cfg[name]!r}")
    if cfg["momentum"] >= 1 or cfg["k_fraction"] > 1:
        raise ValueError("momentum must be < 1 and k_fraction <= 1")
    if cfg["lr_final"] is not None and not cfg["lr_final"] >= 0:
        raise ValueError(f"lr_final must be None or >= 0, got {cfg['lr_final']!r}")
    if not isinstance(cfg["center"], (bool, np.bool_)):
        raise TypeError(f"center must be True or False, got {cfg['center']!r}")
    cfg["center"] = bool(cfg["center"])
    if cfg["dtype"] not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {cfg['dtype']!r}")
    return cfg


def init_params(d, n_hidden, sigma, rng, dtype="float32"):
    """Sec. 4.2.2: W ~ N(0, sigma^2), drawn on the host from ``rng``; b = 0, b' = 0."""
    W = rng.normal(0.0, sigma, size=(d, n_hidden)).astype(dtype)
    return {"W": W, "b": np.zeros(n_hidden, dtype), "b_prime": np.zeros(d, dtype)}


def new_state(d, config, device="cpu"):
    """A fresh TrainState for data of dimension ``d``: Gaussian weights, zero velocities.

    Raises ksparse.errors.NotEnoughMemoryError before allocating when the run cannot fit
    (:func:`ksparse.training.memory.check_memory`).
    """
    cfg = check_config(config)
    check_memory(d, cfg["n_hidden"], cfg["batch_size"], cfg["dtype"], device)
    rng = np.random.default_rng(cfg["seed"])
    params = init_params(d, cfg["n_hidden"], cfg["sigma"], rng, cfg["dtype"])
    params = {n: to_device(a, device) for n, a in params.items()}
    xp = get_array_module(params["W"])
    velocity = {n: xp.zeros_like(a) for n, a in params.items()}
    return TrainState(params, velocity, cfg, 0, rng.bit_generator.state, [])


def save_state(path, state):
    """Write ``state`` to ``path`` (atomic; see :mod:`ksparse.training.checkpoint`)."""
    meta = {"config": state.config, "epoch": state.epoch, "rng_state": state.rng_state,
            "history": state.history,
            "x_mean": None if state.x_mean is None else [float(v) for v in state.x_mean]}
    save_checkpoint(path, state.params, state.velocity, meta)


def _check_meta(meta, params):
    """Validate a checkpoint's metadata against its arrays; return (config, epoch, x_mean)."""
    cfg = check_config(meta["config"])
    if cfg["dtype"] != params["W"].dtype.name:
        raise ValueError(f"its config says dtype {cfg['dtype']} but W is {params['W'].dtype}")
    epoch = meta["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
    np.random.default_rng().bit_generator.state = meta["rng_state"]  # raises if malformed
    if not isinstance(meta["history"], list):
        raise ValueError("history must be a list")
    x_mean = None if meta.get("x_mean") is None else np.asarray(meta["x_mean"], dtype=np.float64)
    if x_mean is not None and (x_mean.shape != (params["W"].shape[0],) or not np.all(np.isfinite(x_mean))):
        raise ValueError(f"x_mean must be {params['W'].shape[0]} finite numbers (one per feature of W)")
    return cfg, epoch, x_mean


def load_state(path, device="cpu"):
    """Read a TrainState written by :func:`save_state`, onto ``device``.

    Raises
    ------
    ValueError
        If ``device`` is unknown or "gpu" is missing (said as such, not as a bad file).
    ksparse.errors.ModelFileError
        If the file or any array or field in it is invalid (see
        :func:`ksparse.training.checkpoint.load_checkpoint`).
    """
    check_device(device)
    params, velocity, meta = load_checkpoint(path)
    try:
        cfg, epoch, x_mean = _check_meta(meta, params)
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        what = f"missing field {e}" if isinstance(e, KeyError) else e
        raise ModelFileError(f"{path!r} holds invalid training state ({what}); the file is corrupt") from None
    return TrainState({n: to_device(params[n], device) for n in PARAM_NAMES},
                      {n: to_device(velocity[n], device) for n in PARAM_NAMES},
                      cfg, epoch, meta["rng_state"], list(meta["history"]), x_mean)


def default_step():
    """The step used by :func:`fit` when none is given: the support-only kernels with the
    fused Eq. (11) update, :class:`ksparse.training.steps.AutoencoderStep`."""
    return AutoencoderStep()


def train_epoch(x, state, k, lr, step):
    """One epoch of :func:`ksparse.training.epoch.run_epoch` over ``x`` (on the device), its
    minibatches drawn from ``state.rng_state``, updating ``state``. Returns the epoch's record."""
    cfg = state.config
    rng = np.random.default_rng()
    rng.bit_generator.state = state.rng_state
    batches = minibatches((x,), index_blocks(x.shape[0], cfg["batch_size"], rng))
    settings = StepSettings(lr=lr, momentum=cfg["momentum"], k=k)
    record = run_epoch(step, batches, state.params, state.velocity, settings, cfg["n_hidden"])
    state.rng_state = rng.bit_generator.state
    return record


def fit(x, config=None, state=None, device="cpu", callback=None, checkpoint_path=None,
        checkpoint_every=0, step=None, epochs=None):
    """Train a k-sparse autoencoder on ``x`` (N, d); start fresh or continue ``state``.

    Parameters
    ----------
    x : array, shape (N, d)
    config : dict, optional
        Options of :data:`DEFAULTS`. Ignored when ``state`` is given, except ``n_epochs``,
        which may extend a resumed run.
    state : TrainState, optional
        A run to continue (from :func:`load_state`); its epoch counts toward ``n_epochs``.
    device : {"cpu", "gpu"}
    callback : callable, optional
        Called as ``callback(record)`` after each epoch with the epoch's metrics.
    checkpoint_path : path, optional
        Where to write the state every ``checkpoint_every`` epochs and at the end.
    checkpoint_every : int, default 0
        0 writes only at the end.
    step : ksparse.training.steps.Step, optional
        The minibatch step (see :mod:`ksparse.training.steps`); default
        :func:`default_step`, the support-only kernels with the update fused in.
    epochs : int, optional
        Run at most this many epochs in this call (the schedules still span ``n_epochs``,
        and hold their final values past it). None runs until ``n_epochs``.

    Returns
    -------
    TrainState

    Raises
    ------
    TrainingDiverged
        When the loss turns NaN or inf; the checkpoint on disk is left at the last good epoch.

    Notes
    -----
    Each epoch's record holds ``loss`` (D4), ``mse`` (D4 divided by d, the error per
    element), ``fvu`` (the fraction of variance unexplained: D4 over the mean squared
    distance of the samples to their mean), ``dead_fraction`` (hidden units never in
    Gamma during the epoch), ``k`` and ``lr``.

    With ``config["center"]`` the training mean of ``x`` is stored in ``state.x_mean``
    and subtracted from every input (see :func:`centered`). This is preprocessing, not
    part of the paper's model: on MNIST's non-negative pixels it keeps far more hidden
    units alive under the Sec. 4.2.1 schedule.
    """
    check_device(device)
    x = check_data(x)
    if state is None:
        state = new_state(x.shape[1], config or {}, device)
    else:
        if state.params["W"].shape[0] != x.shape[1]:
            raise ValueError(
                f"the model expects {state.params['W'].shape[0]} features, the data has {x.shape[1]}"
            )
        if config and "n_epochs" in config:
            extended = check_config(dict(state.config, n_epochs=config["n_epochs"]))
            state.config["n_epochs"] = extended["n_epochs"]
    cfg = state.config
    step = step or default_step()
    if cfg["center"] and state.x_mean is None:
        state.x_mean = x.mean(axis=0, dtype=np.float64)
    xd = to_device(centered(x, state), device, dtype=cfg["dtype"])
    variance = float(((x - x.mean(axis=0)) ** 2).sum(axis=1).mean())
    last_good = state.copy()
    stop = cfg["n_epochs"] if epochs is None else state.epoch + int(epochs)
    while state.epoch < stop:
        e = state.epoch
        k = k_schedule(e, cfg["n_epochs"], cfg["k"], cfg["k_start"], cfg["n_hidden"], cfg["k_fraction"])
        lr = linear_lr(e, cfg["n_epochs"], cfg["lr"], cfg["lr_final"])
        record = train_epoch(xd, state, k, lr, step)
        if not (math.isfinite(record["loss"]) and all(
                bool(get_array_module(p).isfinite(p).all()) for p in state.params.values())):
            raise TrainingDiverged(
                f"training diverged at epoch {e + 1}: the loss became {record['loss']}; "
                f"lower the learning rate (lr={cfg['lr']}) or sigma", last_good)
        record.update(epoch=e + 1, k=k, lr=lr, mse=record["loss"] / x.shape[1],
                      fvu=record["loss"] / variance if variance > 0 else float("nan"))
        state.epoch = e + 1
        state.history.append(record)
        if checkpoint_path and checkpoint_every and state.epoch % checkpoint_every == 0:
            save_state(checkpoint_path, state)
        last_good = state.copy()
        if callback is not None:
            callback(record)
    if checkpoint_path:
        save_state(checkpoint_path, state)
    return state
