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
import warnings

import numpy as np

from ksparse.backend import check_device, device_of, get_array_module, to_device, to_numpy
from ksparse.config import AutoencoderConfig, ConfigError
from ksparse.errors import ModelFileError, not_2d, reject_complex, reject_nonfinite
from ksparse.nn.schedule import k_schedule, linear_lr
from ksparse.training.bound import BoundedStep
from ksparse.training.checkpoint import PARAM_NAMES, load_checkpoint, save_checkpoint
from ksparse.training.datacheck import check_representable, check_same_data
from ksparse.training.epoch import index_blocks, minibatches, run_epoch
from ksparse.training.memory import check_memory
from ksparse.training.steps import AutoencoderStep, StepSettings
from ksparse.training.stream import (
    StreamedData,
    check_rows,
    column_stats,
    counted,
    is_streamed,
    read_dtype,
    row_energy,
)

DEFAULTS = AutoencoderConfig()
"""The default configuration (the estimator's and ``ksparse train``'s defaults)."""

#: learning rates when ``lr`` is None: on data scaled by s (mean squared distance to the mean 1),
#: LR_SCALED * min(1, d / k); the paper's Sec. 4.2.2 value on raw inputs (``benchmarks/remedies.py``)
LR_SCALED, LR_PAPER = 0.25, 0.01


def remedies_in_force(cfg, d):
    """The Round 2 remedies a config turns on, for data of dimension ``d`` (docs/training.md).

    Returns
    -------
    dict
        ``scale``, ``pre_bias``, ``b_prime_init``, ``k_aux``, ``c_aux``, ``dead_window`` and
        ``resample``, ``step_bound`` and ``bias_lr_ratio`` (D13; None when the data sets it, see
        :func:`bias_ratio`), all off (the ratio 1) under ``paper=True``. ``k_aux=None`` becomes
        ``max(1, min(H, d) // 2)`` (D10); ``dead_window=None`` becomes ``100 H / k`` samples, in
        which a unit active at the average rate k / H is active about 100 times.
    """
    H, k = cfg.n_hidden, cfg.k
    on = not cfg.paper
    return {"scale": on and cfg.scale, "pre_bias": on and cfg.pre_bias,
            "b_prime_init": cfg.b_prime_init if on and cfg.pre_bias else "zero",
            "k_aux": max(1, min(H, d) // 2) if cfg.k_aux is None else cfg.k_aux,
            "c_aux": cfg.c_aux if on else 0.0,
            "dead_window": -(-100 * H // k) if cfg.dead_window is None else cfg.dead_window,
            "resample": on and cfg.resample, "step_bound": on and cfg.step_bound,
            "bias_lr_ratio": cfg.bias_lr_ratio if on else 1.0}  # None: the data's (TrainState.bias_ratio)


def effective_lr(cfg, d, k=None):
    """``cfg.lr``, or when it is None the default for the data the model sees.

    On scaled data: ``LR_SCALED * min(1, d / k) * batch_factor(batch_size)`` for the epoch's k
    (``cfg.k`` when None).
    Through the tied encoder, a step moves x_hat by W_Gamma W_Gamma^T times it, whose largest
    eigenvalue grows like k / d once k > d (k columns in d dimensions cannot be orthogonal);
    the factor keeps low-dimensional data (iris: d = 4 under k = 100) as stable as images.
    On raw inputs (``paper`` or ``scale=False``): LR_PAPER, the paper's.
    """
    if cfg.lr is not None:
        return cfg.lr
    if not remedies_in_force(cfg, d)["scale"]:
        return LR_PAPER
    return LR_SCALED * min(1.0, d / (cfg.k if k is None else k)) * batch_factor(cfg.batch_size)


def batch_factor(batch_size):
    """The default learning rate's factor for the minibatch size: ``min(1, batch_size / 32)`` up to
    64, then ``min(2, batch_size / 64)``.

    The linear scaling rule (Goyal et al. 2017) below batch 32 (a batch of 8 of 16-dimensional
    uniform data diverged at 0.25 and trained at 0.1 and 0.05) and between 64 and 128, so that a
    batch of 128 takes the step per sample of the default batch of 64: Table 1's k25d model
    (batch 128) classified better at 0.5 than at 0.25 on the mean validation error of seeds 0-2,
    at D13's ratio 0.1 and at lambda_1, and Fig. 3's filters were more localised
    (``python -m benchmarks.table1_defaults``, docs/training.md section 3). Capped at 2: lr 1
    was not better there and diverged on the digits before D13.
    """
    return min(1.0, batch_size / 32) * min(2.0, max(1.0, batch_size / 64))


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
    scale: float = 1.0  # s: training sees x / s (ksparse.training.remedies.data_scale)
    tracker: dict = None  # the DeadTracker's state (ksparse.training.remedies), as JSON
    bias_ratio: float = None  # D13's ratio in force: config.bias_lr_ratio, or the data's lambda_1 when None

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
            scale=self.scale,
            bias_ratio=self.bias_ratio,
            tracker=json.loads(json.dumps(self.tracker)),
        )


def centered(x, state):
    """The model's input for data ``x``: (x - x_mean) / s, with x_mean only under ``center=True``.

    Every input to the model goes through this (training, encoding, reconstruction error);
    the model's x_hat in the data's units is then ``(W z_k + b') s + x_mean``.
    """
    dtype = getattr(x, "dtype", None)
    if dtype is not None and read_dtype(dtype) != dtype:  # float16 rows read from a file: as in memory
        x = x.astype(read_dtype(dtype))
    x = x if state.x_mean is None else np.asarray(x) - state.x_mean
    return x if state.scale == 1.0 else np.asarray(x) / state.scale


def uncentered(x_hat, state):
    """Back to the data's units: ``x_hat s + x_mean`` (the inverse of :func:`centered`)."""
    x_hat = x_hat if state.scale == 1.0 else x_hat * x_hat.dtype.type(state.scale)
    return x_hat if state.x_mean is None else x_hat + state.x_mean.astype(x_hat.dtype)


def model_input(x, state):
    """What the encoder's W sees: :func:`centered` x, minus b' under D9 (``pre_bias``); float64 host array."""
    u = np.asarray(centered(x, state), dtype=np.float64)
    if remedies_in_force(state.config, u.shape[1])["pre_bias"]:
        u = u - to_numpy(state.params["b_prime"])
    return u


def encoder_input(x, state, dtype):
    """:func:`model_input` in ``dtype``, in one subtraction and one division: (x - c) / s, with
    c = x_mean + s b' (x_mean only under ``center=True``, b' only under D9).

    The subtraction is computed in float64 when ``x`` (float16 read as float64, integers as
    float64) or ``dtype`` is float64, else in float32, and stored in ``dtype``; the division is
    in ``dtype``. So float32 data meets a float32 model without a float64 copy, and float64 data
    is read once (on 10,000 MNIST images this took ``transform`` from about 2 products to 1.3).
    NumPy, host.
    """
    x = np.asarray(x)
    dtype = np.dtype(dtype)
    work = np.result_type(read_dtype(x.dtype), dtype)
    work = work if work.kind == "f" else np.dtype(np.float64)
    shift = None if state.x_mean is None else np.asarray(state.x_mean, dtype=np.float64)
    if remedies_in_force(state.config, x.shape[1])["pre_bias"]:
        bp = to_numpy(state.params["b_prime"]).astype(np.float64) * state.scale
        shift = bp if shift is None else shift + bp
    if shift is None:
        u = x.astype(dtype)
    else:
        u = np.empty(x.shape, dtype=dtype)
        np.subtract(x, shift.astype(work), out=u, dtype=work, casting="same_kind")
    if state.scale != 1.0:
        np.divide(u, dtype.type(state.scale), out=u)
    return u


def encoder_params(state):
    """(W_enc, b_enc) with ``x W_enc + b_enc`` equal to the model's z for raw data x (D1 or D9).

    Folds the scale, the centring and the pre-encoder bias into one affine map:
    z = ((x - x_mean) / s - b') W + b = x (W / s) + (b - (x_mean / s + b') W). NumPy, the
    training dtype; for code that feeds raw inputs to :func:`ksparse.kernels.encode.encode`.
    """
    W, b, b_prime = (to_numpy(state.params[n]).astype(np.float64) for n in ("W", "b", "b_prime"))
    shift = np.zeros(W.shape[0]) if state.x_mean is None else state.x_mean / state.scale
    if remedies_in_force(state.config, W.shape[0])["pre_bias"]:
        shift = shift + b_prime
    dtype = state.config.dtype
    return (W / state.scale).astype(dtype), (b - shift @ W).astype(dtype)


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
        raise not_2d(name, x.shape)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {x.shape}; need at least one sample and one feature")
    reject_nonfinite(x, name)
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
            "x_mean": None if state.x_mean is None else [float(v) for v in state.x_mean],
            "scale": state.scale, "tracker": state.tracker, "bias_ratio": state.bias_ratio}
    save_checkpoint(path, state.params, state.velocity, meta)


def _check_meta(meta, params):
    """Validate a checkpoint's metadata against its arrays; return (config, epoch, x_mean, scale, tracker).

    A config written before Round 2 (no ``paper`` field) loads as ``paper=True`` (the field's
    ``legacy`` value), the model it was trained as.
    """
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
    scale = meta.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (
            math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    tracker = meta.get("tracker")
    if tracker is not None:
        _check_tracker(tracker, params["W"].shape[1])
    ratio = meta.get("bias_ratio")
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float))
                              or not 0 < ratio <= 1):
        raise ValueError(f"bias_ratio must be a number in (0, 1] or null, got {ratio!r}")
    return cfg, epoch, x_mean, float(scale), tracker, ratio


def _check_tracker(tracker, n_hidden):
    """Raise ValueError unless ``tracker`` is a DeadTracker's JSON for ``n_hidden`` units."""
    if not isinstance(tracker, dict):
        raise ValueError("tracker must be a mapping")
    for name in ("window", "seen", "n_resampled"):
        v = tracker[name]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"tracker {name} must be an integer >= 0, got {v!r}")
    for name in ("last_active", "last_reset"):
        v = tracker[name]
        if not isinstance(v, list) or len(v) != n_hidden or not all(
                isinstance(t, int) and not isinstance(t, bool) for t in v):
            raise ValueError(f"tracker {name} must be {n_hidden} integers")


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
        cfg, epoch, x_mean, scale, tracker, ratio = _check_meta(meta, params)
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        what = f"missing field {e}" if isinstance(e, KeyError) else e
        raise ModelFileError(f"{path!r} holds invalid training state ({what}); the file is corrupt") from None
    return TrainState({n: to_device(params[n], device) for n in PARAM_NAMES},
                      {n: to_device(velocity[n], device) for n in PARAM_NAMES},
                      cfg, epoch, meta["rng_state"], list(meta["history"]), x_mean,
                      _schedule_length(meta, cfg), str(meta.get("version")), scale, tracker, ratio)


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
    ``state``; with ``step_bound``, each minibatch's lr is capped by D11
    (:class:`ksparse.training.bound.BoundedStep`, the record's ``bounded``: the fraction of
    minibatches it lowered). Returns the epoch's record."""
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
    rem = remedies_in_force(cfg, state.params["W"].shape[0])
    run = BoundedStep(step, rem["pre_bias"]) if rem["step_bound"] else step  # D11
    record = run_epoch(run, batches, state.params, state.velocity, settings, cfg.n_hidden)
    if rem["step_bound"]:
        record["bounded"] = run.n_bounded / max(1, run.n_steps)
    state.rng_state = rng.bit_generator.state
    return record


def check_learnable(x, spread):
    """Raise ValueError for data with nothing to learn: fewer than 2 rows, or every row the same.

    ``spread`` is the mean squared distance of the rows to their mean (:func:`_data_stats`);
    checked before a fresh run's first epoch (the scale s and the FVU divide by it).
    """
    name = getattr(getattr(x, "source", None), "path", None) or "X"
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"{name} has {n} sample (n_samples = {n}); an autoencoder needs at least 2 "
                         "different rows: nothing to learn")
    if not spread > 0:
        raise ValueError(f"{name} has zero variance (all {n} rows are the same): nothing to learn; "
                         "check that the data loaded correctly")


def _data_stats(x):
    """The column means (float64) of ``x`` and the mean squared distance of its rows to them.

    One pass each, for arrays and streamed data alike (:func:`ksparse.training.stream.column_stats`
    gives the same numbers bit for bit); computed once per :func:`fit`.
    """
    if isinstance(x, StreamedData):
        return column_stats(x.source)
    rows = max(1, (1 << 20) // x.shape[1])  # row blocks: temporaries stay in cache
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing mean: row_energy redoes it in float64
        mean = x.mean(axis=0)
    mean64 = x.mean(axis=0, dtype=np.float64)
    return mean64, row_energy(lambda: (x[lo:lo + rows] for lo in range(0, len(x), rows)), mean, mean64)


def _training_data(x, state, device, stats):
    """``x`` as training reads it (on the device, or streamed by rows); ``stats`` from :func:`_data_stats`.

    Sets ``state.x_mean`` when the model centres its inputs and has no mean yet.
    """
    cfg = state.config
    if cfg.center and state.x_mean is None:
        state.x_mean = stats[0]
    if isinstance(x, StreamedData):
        return StreamedData(x.source, lambda block: to_device(centered(block, state), device,
                                                                dtype=cfg.dtype))
    return to_device(centered(x, state), device, dtype=cfg.dtype)


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
    ValueError
        Before a fresh run, for fewer than 2 rows or data of zero variance (:func:`check_learnable`).
        Before any run, for data too large for ``config.dtype``
        (:func:`ksparse.training.datacheck.check_representable`); before continuing a ``state``
        that has run epochs, for data whose spread differs from its training data's by more than
        a factor 10 (:func:`ksparse.training.datacheck.check_same_data`).

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
    given_state = state is not None
    if state is None:
        state = new_state(x.shape[1], check_config(config).replace(
            **({} if max_iter is None else {"max_iter": max_iter})), device)
    else:
        extend(state, x.shape[1], max_iter, config)
    resumed = given_state and config is not None and state.epoch > 0  # a resume keeps every setting
    cfg = state.config
    stats = _data_stats(x)
    check_representable(stats, cfg.dtype, read_dtype(getattr(x, "source", x).dtype))  # x / s: in this
    if state.epoch == 0:
        check_learnable(x, stats[1])
        default_batch = {f.name: f.default for f in dataclasses.fields(cfg)}["batch_size"]
        if x.shape[0] < cfg.batch_size != default_batch:  # a size the user chose
            warnings.warn(f"batch_size={cfg.batch_size} is more than the {x.shape[0]} rows of X: each epoch "
                          f"is one step on all of them (the default learning rate assumes the batch size "
                          f"given)", UserWarning, stacklevel=2)
    if given_state and state.epoch > 0:  # a resumed checkpoint, or more epochs of a model (partial_fit)
        check_same_data(state, stats, "resume" if resumed else "continue")
    step = _training_step(state, x, step, stats)  # sets the scale, b' and x_mean of a fresh run first
    xd, variance = _training_data(x, state, device, stats), stats[1]
    last_good = state.copy()
    stop = cfg.max_iter if epochs is None else min(cfg.max_iter, state.epoch + int(epochs))
    try:  # Ctrl-C or SIGTERM anywhere in the loop (an epoch, a checkpoint, the callback)
        while state.epoch < stop:
            last_good = _epoch(xd, x.shape[1], variance, state, step, last_good, checkpoint_path,
                               checkpoint_every, callback, progress, resumed)
        if checkpoint_path:
            save_state(checkpoint_path, state)
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:
        raise TrainingInterrupted(last_good) from None
    return state


def _epoch(xd, d, variance, state, step, last_good, checkpoint_path, checkpoint_every, callback,
           progress=None, resumed=False):
    """One epoch of :func:`fit`: train, check for divergence, record, checkpoint, call back.
    Returns the new last good state (a copy of ``state`` after the epoch)."""
    e = state.epoch
    k, lr = schedule_at(state, e)
    record = train_epoch(xd, state, k, lr, step, progress)
    record["loss"] *= state.scale ** 2  # D4 in the data's units
    if not (math.isfinite(record["loss"]) and all(
            bool(get_array_module(p).isfinite(p).all()) for p in state.params.values())):
        raise TrainingDiverged(f"training diverged at epoch {e + 1}: the loss became {record['loss']}; "
                               + _divergence_advice(state, variance, lr, resumed), last_good)
    record.update(epoch=e + 1, k=k, lr=lr, mse=record["loss"] / d,
                  fvu=record["loss"] / variance if variance > 0 else float("nan"),
                  dead_window=step.tracker.dead_fraction(), resampled=step.tracker.n_resampled)
    state.tracker = step.tracker.to_json()
    state.epoch = e + 1
    state.history.append(record)
    last_good = state.copy()
    try:  # a signal from here on reports this epoch: the checkpoint may already hold it
        if checkpoint_path and checkpoint_every and state.epoch % checkpoint_every == 0:
            save_state(checkpoint_path, state)
        if callback is not None:
            callback(record)
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:
        raise TrainingInterrupted(last_good) from None
    return last_good


def schedule_at(state, epoch):
    """(k, lr) of the 0-based ``epoch``: Sec. 4.2.1's k and the linear lr over ``state.schedule_length``
    epochs, holding their final values past it."""
    cfg, n = state.config, state.schedule_length
    k = k_schedule(epoch, n, cfg.k, cfg.k_start, cfg.n_hidden, cfg.k_fraction)
    return k, linear_lr(epoch, n, effective_lr(cfg, state.params["W"].shape[0], k), cfg.lr_final)


def extend(state, d, max_iter=None, config=None):
    """Check that ``state`` can continue on data of dimension ``d`` (and with ``config``, whose
    fields but ``max_iter`` must equal the state's); set its ``max_iter``, the total number of
    epochs to reach, to ``max_iter`` or else ``config.max_iter`` when given. In place; None.

    Raises
    ------
    ksparse.config.ConfigError
        Naming the first field of ``config`` that differs from the state's, or a
        ``max_iter`` below the epochs already run or below the span of the run's k and lr
        schedules (``state.schedule_length``: only a longer run may follow them).
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
    span = state.schedule_length if state.schedule_length is not None else state.config.max_iter
    if isinstance(max_iter, int) and not isinstance(max_iter, bool) and max_iter < span:
        # the k and lr schedules keep their span: a shorter run would end before k reached its target
        raise ConfigError("max_iter", f"must be >= the {span} epochs the run's k and lr schedules span (k "
                          "falls from k_start to k over them: a shorter run would end on a larger k than "
                          "the model's)", max_iter, fix=f"give {{max_iter}} {span} or more")
    state.config = state.config.replace(max_iter=max_iter)


def _training_step(state, x, step, stats):
    """Start the Round 2 state of a fresh run (s, b', the dead-unit clock); return the step object.

    On a fresh state (epoch 0) the scale s and D9's b' come from ``x``; the tracker is made
    once (also for states written before Round 2). The library's own step
    (:class:`~ksparse.training.steps.AutoencoderStep`) becomes a
    :class:`~ksparse.training.remedies.RemedyStep` of its kernel; a RemedyStep (subclass) is
    configured from the config; another step runs inside one.
    """
    from ksparse.training import remedies

    step = step or default_step()
    cfg = state.config
    rem = remedies_in_force(cfg, x.shape[1])
    streamed = isinstance(x, StreamedData)
    mean64, energy = stats  # the column means and the mean squared distance to them
    if cfg.center and state.x_mean is None:
        state.x_mean = mean64
    if state.tracker is None:
        if state.epoch == 0:  # s of remedies.data_scale; b' the (scaled, centred) mean, or the median
            s = float(np.sqrt(energy))
            if s <= 0:  # constant data: the root mean square, else 1
                s = 1.0 if streamed else remedies.data_scale(x)
            state.scale = s if rem["scale"] else 1.0
            shift = np.zeros_like(mean64) if state.x_mean is None else state.x_mean
            b_prime = (mean64 - shift) / state.scale
            if rem["b_prime_init"] == "zero":
                b_prime = np.zeros_like(mean64)
            elif rem["b_prime_init"] == "median" and not streamed:  # streamed data: the mean
                b_prime = remedies.init_b_prime(centered(x, state), "median")
            state.params["b_prime"][...] = to_device(b_prime, device_of(state.params["W"]), cfg.dtype)
        state.tracker = remedies.DeadTracker(cfg.n_hidden, rem["dead_window"]).to_json()
    tracker = remedies.DeadTracker.from_json(state.tracker, cfg.n_hidden)
    settings = (tracker, rem["pre_bias"], rem["k_aux"], rem["c_aux"], rem["resample"], bias_ratio(state, x))
    if isinstance(step, remedies.RemedyStep):  # e.g. a subclass that observes each minibatch
        step.configure(*settings)
        return step
    plain = type(step) is AutoencoderStep
    return remedies.RemedyStep(*settings, kernel=step.kernel if plain else "auto",
                               inner=None if plain else step)


def bias_ratio(state, x):
    """D13's ratio of the run, set once and kept in ``state.bias_ratio`` (saved in checkpoints):
    ``config.bias_lr_ratio``, 1 under ``paper=True``, or for None the training data's
    :func:`ksparse.training.remedies.top_variance_share` (lambda_1; docs/equations.md, D13)."""
    from ksparse.training.remedies import top_variance_share

    if state.bias_ratio is None:
        ratio = remedies_in_force(state.config, x.shape[1])["bias_lr_ratio"]
        source = x.source if isinstance(x, StreamedData) else x
        state.bias_ratio = float(top_variance_share(source) if ratio is None else ratio)
    return state.bias_ratio


def _divergence_advice(state, variance, lr, resumed=False):
    """What to do after a divergence, naming the one option that fixes its likely cause: the
    paper's setting (no remedies) on inputs far outside [0, 1], unscaled inputs, unbounded steps,
    else a lower learning rate (or momentum, or fewer resampled units).

    ``variance`` is the data's mean squared distance of a row to the mean (in its units). The
    options are written ``name=value`` (the CLI says them as flags). A ``resumed`` run keeps its
    checkpoint's settings, so a change of setting means a new run.
    """
    cfg = state.config
    d = state.params["W"].shape[0]
    rem = remedies_in_force(cfg, d)
    spread = math.sqrt(max(variance, 0.0) / d)  # typical deviation of one value from its mean
    if cfg.paper and spread > 1.0:
        return (f"the inputs are not scaled (paper=True) and their typical deviation from the mean is "
                f"{spread:.3g}, far outside the [0, 1] range the paper's setting assumes: scale X to "
                f"[0, 1], or use paper=False to train on the data's own scale")
    new_run = "start a new run (without resuming) with " if resumed else "train with "
    lower = "start a new run (without resuming) with a lower" if resumed else "lower the"
    if not rem["scale"] and spread > 1.0:
        return (f"the inputs were not scaled (scale=False) and their typical deviation from the mean "
                f"is {spread:.3g}: {new_run}scale=True (the default), or divide X by about {spread:.3g}")
    if cfg.paper:
        return (f"the paper's setting bounds no step: {lower} learning rate "
                f"(lr={lr / 4:.3g}; it was {lr:.4g}), or paper=False (scaled inputs, bounded steps)")
    if not rem["step_bound"]:
        return (f"the steps were not bounded (step_bound=False): {new_run}step_bound=True (the default), "
                f"which shrinks the step of minibatches holding rows far from the others' scale, or a "
                f"lower learning rate (lr={lr / 4:.3g}; it was {lr:.4g})")
    advice = (f"the inputs were scaled (s = {state.scale:.4g}, their mean distance to the mean) and every "
              f"step bounded (D11): {lower} learning rate (lr={lr / 4:.3g}; it was {lr:.4g})")
    if cfg.momentum > 0:  # a lower value than the run's, like every other suggestion here
        advice += f" or momentum (momentum={cfg.momentum / 2:.3g}; it was {cfg.momentum:g})"
    if rem["resample"] and state.tracker:  # churn: many units resampled (CIFAR-10 patches, docs/training.md)
        advice += (f", or resample fewer units with a longer window (dead_window="
                   f"{10 * state.tracker['window']}; {state.tracker['n_resampled']} were resampled)")
    ratio = state.bias_ratio if state.bias_ratio is not None else rem["bias_lr_ratio"]
    if ratio is not None and ratio > 0.01:  # D13: the biases' steps, which D11 alone does not bound
        advice += (f", or step the biases slower (bias_lr_ratio={ratio / 10:.3g}; it was {ratio:.3g})")
    return advice
