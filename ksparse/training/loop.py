"""Training the autoencoder: Gaussian initialisation, seeded minibatches, the k and lr
schedules, per-epoch metrics, checkpoints and resume, around the one epoch loop of
:mod:`ksparse.training.epoch` and a step of :mod:`ksparse.training.steps`.

The loop is backend-agnostic: the data and parameters live on the chosen device and the
host only draws random numbers and collects scalars. Its options are the fields of
:class:`ksparse.config.AutoencoderConfig`.

Resume (one meaning everywhere: :func:`fit` with a ``state``, the estimator's
``fit(resume_from=...)`` and ``ksparse train --resume``): a resumed run keeps every setting
of the checkpoint; only ``max_iter``, the number of epochs to reach, may change. The k
and lr schedules span the ``max_iter`` the run was started with (``TrainState.schedule_length``)
and hold their final values past it, so a run extended on resume continues at the final k
and lr instead of starting the schedules again. Resuming with the same ``max_iter`` gives,
on CPU, the same numbers bit for bit as the uninterrupted run.
"""

import dataclasses
import json
import math

import numpy as np

from ksparse.backend import check_device, get_array_module, to_device, to_numpy
from ksparse.config import AutoencoderConfig, ConfigError
from ksparse.errors import ModelFileError, reject_complex
from ksparse.nn.schedule import k_schedule, linear_lr
from ksparse.training.checkpoint import PARAM_NAMES, load_checkpoint, save_checkpoint
from ksparse.training.epoch import index_blocks, minibatches, run_epoch
from ksparse.training.memory import check_memory
from ksparse.training.steps import AutoencoderStep, StepSettings
from ksparse.training.stream import (
    StreamedData,
    check_rows,
    column_stats,
    counted,
    is_streamed,
)

DEFAULTS = AutoencoderConfig()
"""The default configuration (the estimator's and ``ksparse train``'s defaults)."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf. ``state`` holds the last good state (end of the last finished epoch)."""

    def __init__(self, message, state):
        super().__init__(message)
        self.state = state


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`fit`; ``state`` holds the last good state (end of the last finished epoch)."""

    def __init__(self, state):
        super().__init__()
        self.state = state


@dataclasses.dataclass
class TrainState:
    """Everything needed to continue a run: parameters, velocities, epoch, RNG and history."""

    params: dict
    velocity: dict
    config: AutoencoderConfig
    epoch: int = 0
    rng_state: dict = None
    history: list = dataclasses.field(default_factory=list)
    x_mean: np.ndarray = None  # (d,) training mean subtracted from the inputs when config.center
    schedule_length: int = None  # epochs the k and lr schedules span: the max_iter the run began with
    written_by: str = None  # the ksparse version that wrote the checkpoint it was read from

    def __post_init__(self):
        if self.schedule_length is None:
            self.schedule_length = self.config.max_iter

    def copy(self):
        xp = get_array_module(self.params["W"])
        return TrainState(
            params={n: xp.array(a, copy=True) for n, a in self.params.items()},
            velocity={n: xp.array(a, copy=True) for n, a in self.velocity.items()},
            config=self.config,
            epoch=self.epoch,
            rng_state=json.loads(json.dumps(self.rng_state)),
            history=[dict(h) for h in self.history],
            x_mean=None if self.x_mean is None else self.x_mean.copy(),
            schedule_length=self.schedule_length,
            written_by=self.written_by,
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


def check_config(config=None):
    """The :class:`~ksparse.config.AutoencoderConfig` of ``config``: an instance, a dict of some
    of its fields (the rest take their defaults) or None (all defaults).

    Raises
    ------
    ksparse.config.ConfigError
        Naming the one field whose value is wrong (a ValueError; a TypeError too for a
        value of the wrong type).
    ValueError
        For a name that is not a field.
    """
    if isinstance(config, AutoencoderConfig):
        return config
    return AutoencoderConfig.from_dict(dict(config or {}))


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
    check_memory(d, cfg.n_hidden, cfg.batch_size, cfg.dtype, device)
    rng = np.random.default_rng(cfg.random_state)
    params = init_params(d, cfg.n_hidden, cfg.sigma, rng, cfg.dtype)
    params = {n: to_device(a, device) for n, a in params.items()}
    xp = get_array_module(params["W"])
    velocity = {n: xp.zeros_like(a) for n, a in params.items()}
    return TrainState(params, velocity, cfg, 0, rng.bit_generator.state, [])


def save_state(path, state):
    """Write ``state`` to ``path`` (atomic; see :mod:`ksparse.training.checkpoint`)."""
    meta = {"config": state.config.to_dict(), "epoch": state.epoch, "rng_state": state.rng_state,
            "history": state.history, "schedule_length": state.schedule_length,
            "x_mean": None if state.x_mean is None else [float(v) for v in state.x_mean]}
    save_checkpoint(path, state.params, state.velocity, meta)


def _check_meta(meta, params):
    """Validate a checkpoint's metadata against its arrays; return (config, epoch, x_mean)."""
    cfg = AutoencoderConfig.from_saved(meta["config"])
    if cfg.dtype != params["W"].dtype.name:
        raise ValueError(f"its config says dtype {cfg.dtype} but W is {params['W'].dtype}")
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
                      cfg, epoch, meta["rng_state"], list(meta["history"]), x_mean,
                      _schedule_length(meta, cfg), str(meta.get("version")))


def _schedule_length(meta, cfg):
    """The epochs the schedules span (files of 0.1.0 have none: their max_iter)."""
    n = meta.get("schedule_length", cfg.max_iter)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ModelFileError(f"schedule_length must be an integer >= 0, got {n!r}")
    return n


def default_step():
    """The step used by :func:`fit` when none is given: the support-only kernels with the
    fused Eq. (11) update, :class:`ksparse.training.steps.AutoencoderStep`."""
    return AutoencoderStep()


def train_epoch(x, state, k, lr, step, progress=None):
    """One epoch of :func:`ksparse.training.epoch.run_epoch` over ``x`` (on the device, or a
    :class:`ksparse.training.stream.StreamedData`), its minibatches drawn from
    ``state.rng_state`` in the order of :func:`ksparse.training.epoch.windows`, updating
    ``state``. Returns the epoch's record."""
    cfg = state.config
    rng = np.random.default_rng()
    rng.bit_generator.state = state.rng_state
    if isinstance(x, StreamedData):
        batches = x.batches(cfg.batch_size, rng)
    else:
        batches = minibatches((x,), index_blocks(x.shape[0], cfg.batch_size, rng))
    if progress is not None:
        batches = counted(batches, progress)
    settings = StepSettings(lr=lr, momentum=cfg.momentum, k=k)
    record = run_epoch(step, batches, state.params, state.velocity, settings, cfg.n_hidden)
    state.rng_state = rng.bit_generator.state
    return record


def _training_data(x, state, device):
    """``x`` as training reads it (on the device, or streamed by rows) and the variance for fvu.

    Sets ``state.x_mean`` when the model centres its inputs and has no mean yet.
    """
    cfg = state.config
    if isinstance(x, StreamedData):
        mean64, variance = column_stats(x.source)
        if cfg.center and state.x_mean is None:
            state.x_mean = mean64
        return StreamedData(x.source, lambda block: to_device(centered(block, state), device,
                                                                dtype=cfg.dtype)), variance
    if cfg.center and state.x_mean is None:
        state.x_mean = x.mean(axis=0, dtype=np.float64)
    xd = to_device(centered(x, state), device, dtype=cfg.dtype)
    return xd, float(((x - x.mean(axis=0)) ** 2).sum(axis=1).mean())


def fit(x, config=None, state=None, device="cpu", callback=None, checkpoint_path=None,
        checkpoint_every=0, step=None, epochs=None, max_iter=None, progress=None):
    """Train a k-sparse autoencoder on ``x`` (N, d); start fresh or continue ``state``.

    Parameters
    ----------
    x : array or array-like, shape (N, d)
        In memory (NumPy, CuPy), or streamed by rows without being loaded whole (a
        ``numpy.memmap``, an h5py dataset, a zarr array, a Dask array,
        :class:`ksparse.blockio.NpyRows`; see :mod:`ksparse.training.stream`).
        Both give the same minibatches, so the same model bit for bit on CPU.
    config : AutoencoderConfig or dict, optional
        The run's options (a dict names some fields, the rest take their defaults). With
        ``state``, every field but ``max_iter`` must equal the state's (a resumed run keeps
        the checkpoint's settings), and ``max_iter`` is the total to reach.
    state : TrainState, optional
        A run to continue (from :func:`load_state`); its epochs count toward ``max_iter``.
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
        Run at most this many epochs in this call. None runs until ``max_iter``.
    max_iter : int, optional
        With ``state``: the total number of epochs to reach, at least the epochs already
        run; it may exceed the run's first ``max_iter``, and the extra epochs run at the
        schedules' final k and lr (see the module's notes on resume). Default: the state's.
    progress : callable, optional
        Called as ``progress(rows)`` after each minibatch: progress in samples.

    Returns
    -------
    TrainState

    Raises
    ------
    TrainingDiverged
        When the loss turns NaN or inf; the checkpoint on disk is left at the last good epoch.
    TrainingInterrupted
        On Ctrl-C (a KeyboardInterrupt), with the last good state.

    Notes
    -----
    Each epoch's record holds ``loss`` (D4), ``mse`` (D4 divided by d, the error per
    element), ``fvu`` (the fraction of variance unexplained: D4 over the mean squared
    distance of the samples to their mean), ``dead_fraction`` (hidden units never in
    Gamma during the epoch), ``k`` and ``lr``.

    With ``config.center`` the training mean of ``x`` is stored in ``state.x_mean``
    and subtracted from every input (see :func:`centered`). This is preprocessing, not
    part of the paper's model: on MNIST's non-negative pixels it keeps far more hidden
    units alive under the Sec. 4.2.1 schedule.
    """
    check_device(device)
    x = StreamedData(check_rows(reject_complex(x)), None) if is_streamed(x) else check_data(x)
    if state is None:
        state = new_state(x.shape[1], check_config(config).replace(
            **({} if max_iter is None else {"max_iter": max_iter})), device)
    else:
        extend(state, x.shape[1], max_iter, config)
    cfg = state.config
    step = step or default_step()
    xd, variance = _training_data(x, state, device)
    last_good = state.copy()
    stop = cfg.max_iter if epochs is None else min(cfg.max_iter, state.epoch + int(epochs))
    try:  # Ctrl-C or SIGTERM anywhere in the loop (an epoch, a checkpoint, the callback)
        while state.epoch < stop:
            last_good = _epoch(xd, x.shape[1], variance, state, step, last_good, checkpoint_path,
                               checkpoint_every, callback, progress)
        if checkpoint_path:
            save_state(checkpoint_path, state)
    except KeyboardInterrupt:
        raise TrainingInterrupted(last_good) from None
    return state


def _epoch(xd, d, variance, state, step, last_good, checkpoint_path, checkpoint_every, callback,
           progress=None):
    """One epoch of :func:`fit`: train, check for divergence, record, checkpoint, call back.
    Returns the new last good state (a copy of ``state`` after the epoch)."""
    cfg, e = state.config, state.epoch
    k, lr = schedule_at(state, e)
    record = train_epoch(xd, state, k, lr, step, progress)
    if not (math.isfinite(record["loss"]) and all(
            bool(get_array_module(p).isfinite(p).all()) for p in state.params.values())):
        raise TrainingDiverged(
            f"training diverged at epoch {e + 1}: the loss became {record['loss']}; "
            f"lower the learning rate (lr={cfg.lr}) or sigma", last_good)
    record.update(epoch=e + 1, k=k, lr=lr, mse=record["loss"] / d,
                  fvu=record["loss"] / variance if variance > 0 else float("nan"))
    state.epoch = e + 1
    state.history.append(record)
    if checkpoint_path and checkpoint_every and state.epoch % checkpoint_every == 0:
        save_state(checkpoint_path, state)
    last_good = state.copy()
    if callback is not None:
        callback(record)
    return last_good


def schedule_at(state, epoch):
    """(k, lr) of the 0-based ``epoch``: Sec. 4.2.1's k and the linear lr over ``state.schedule_length``
    epochs, holding their final values past it."""
    cfg, n = state.config, state.schedule_length
    return (k_schedule(epoch, n, cfg.k, cfg.k_start, cfg.n_hidden, cfg.k_fraction),
            linear_lr(epoch, n, cfg.lr, cfg.lr_final))


def extend(state, d, max_iter=None, config=None):
    """Check that ``state`` can continue on data of dimension ``d`` (and with ``config``, whose
    fields but ``max_iter`` must equal the state's); set its ``max_iter``, the total number of
    epochs to reach, to ``max_iter`` or else ``config.max_iter`` when given. In place; None.

    Raises
    ------
    ksparse.config.ConfigError
        Naming the first field of ``config`` that differs from the state's, or a
        ``max_iter`` below the epochs already run.
    """
    if state.params["W"].shape[0] != d:
        raise ValueError(f"the model expects {state.params['W'].shape[0]} features, the data has {d}")
    if config is not None:
        config = check_config(config)
        for name in AutoencoderConfig.names():
            mine, kept = getattr(config, name), getattr(state.config, name)
            if name != "max_iter" and mine != kept:
                raise ConfigError(name, f"must equal the checkpoint's {kept!r} to resume it (a resumed "
                                  "run keeps every setting but max_iter)", mine)
        max_iter = config.max_iter if max_iter is None else max_iter
    if max_iter is None:
        return
    if isinstance(max_iter, int) and not isinstance(max_iter, bool) and max_iter < state.epoch:
        raise ConfigError("max_iter", f"must be >= the {state.epoch} epochs already run", max_iter)
    state.config = state.config.replace(max_iter=max_iter)
