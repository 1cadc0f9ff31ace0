"""Training that keeps its units and does not depend on the data's units (DESIGN.md, Round 2).

- :func:`data_scale`: the scalar s stored with the model; training sees x / s.
- :func:`init_b_prime`: b' from the data (mean or geometric median), for D9.
- :func:`top_variance_share`: lambda_1, the largest share of the data's variance along one
  direction; D13's default ratio of the biases' learning rate to W's.
- :class:`DeadTracker`: for each unit, the last training sample whose support Gamma held it;
  a unit is dead when that was T or more samples ago (the exact statistic over a window of T).
- :class:`RemedyStep`: the step object the epoch loop runs: D9 and D10 on the support
  (:func:`ksparse.kernels.remedies.remedies_train_step_`), the dead-unit count, and the
  resampling of units dead for T samples towards badly reconstructed inputs.
"""

import contextlib
import dataclasses

import numpy as np

from ksparse.backend import get_array_module, to_numpy
from ksparse.kernels.remedies import max_row_norm2, remedies_step, remedies_train_step_
from ksparse.nn import layers
from ksparse.nn.optim import sgd_momentum_
from ksparse.training.steps import AutoencoderStep, StepOutput


def data_scale(x):
    """The data scale s: mean_i ||x_i - mean(x)||^2 / s^2 = 1 (samples at distance about 1 from the mean).

    Parameters
    ----------
    x : array, shape (N, d)

    Returns
    -------
    s : float > 0
        Falls back to the root mean square of x, then to 1, for constant or all-zero data.

    Notes
    -----
    The gradient of E grows with the square of the data's scale, so a learning rate only
    means something for data of a known scale. The curvature of E in W grows with the
    largest variance of the data along one direction, which is a similar fraction of the
    total variance for images of any size (about 1/10 for MNIST and the 8x8 digits); so
    the total, not the variance per feature, is set to 1, and one learning rate fits both.
    """
    x = np.asarray(x, dtype=np.float64)
    for energy in (((x - x.mean(axis=0)) ** 2).sum(axis=1).mean(), (x * x).sum(axis=1).mean()):
        s = float(np.sqrt(energy))
        if s > 0 and np.isfinite(s):
            return s
    return 1.0


def top_variance_share(x, max_rows=10000, n_blocks=10, n_iter=50):
    """lambda_1: the largest variance of ``x`` along one direction over its total variance, in (0, 1].

    D13's default ``bias_lr_ratio`` (docs/equations.md, D13): on data of total variance 1 the
    curvature of D4 in W is at most 2 lambda_1 and in the biases about 2, so at the ratio
    lambda_1 both step the same distance relative to their curvature. Unchanged by the data's
    scale and mean: 0.097 on MNIST, 0.149 on the 8x8 digits, 0.014 on Fig. 3's whitened
    CIFAR-10 patches.

    Parameters
    ----------
    x : array or array-like read by rows, shape (N, d)
        NumPy or CuPy, or a streamed source (:func:`ksparse.training.stream.read_block`).
    max_rows : int
        At most this many rows are read (fewer where d > 1,677: at most 2^24 numbers): all of
        them when N <= max_rows, else ``n_blocks`` contiguous blocks spread evenly over the rows
        (the same rows for any storage), each read in blocks of the training's ``BLOCK_ROWS``.
    n_iter : int
        Bounds the Lanczos iterations (``n_iter * d``, ARPACK from a fixed start: deterministic)
        on the covariance of those rows where d > 256; the largest eigenvalue converges to
        1e-10 relative long before. For d <= 256 the covariance's eigenvalues are computed
        exactly.

    Returns
    -------
    share : float in (0, 1]
        1.0 when the rows read have no variance.
    """
    from ksparse.training.epoch import BLOCK_ROWS
    from ksparse.training.stream import read_block

    n, d = x.shape
    max_rows = max(n_blocks, min(max_rows, (1 << 24) // d))  # at most 2^24 numbers (128 MB) held
    size = n if n <= max_rows else max(1, max_rows // n_blocks)
    starts = [0] if n <= max_rows else [i * (n - size) // (n_blocks - 1) for i in range(n_blocks)]
    step = BLOCK_ROWS  # reads of at most the training's block of rows
    rows = np.concatenate([to_numpy(read_block(x, a, min(lo + size, a + step))).astype(np.float64)
                           for lo in starts for a in range(lo, lo + size, step)])
    rows -= rows.mean(axis=0)
    total = float((rows * rows).sum()) / len(rows)
    if not total > 0 or not np.isfinite(total):
        return 1.0
    # lambda_1 of C = rows^T rows / n by Lanczos (ARPACK) from a fixed start: deterministic, and
    # about a fifth of the passes over the rows that power iteration takes to the same digits
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    n_rows, d = rows.shape
    if d <= 256:  # small: the covariance itself
        lam = float(np.linalg.eigvalsh(rows.T @ rows / n_rows)[-1])
        return float(min(1.0, max(lam / total, np.finfo(np.float64).tiny)))
    C = LinearOperator((d, d), matvec=lambda v: rows.T @ (rows @ v) / n_rows, dtype=np.float64)
    try:
        lam = float(eigsh(C, k=1, v0=np.random.default_rng(0).normal(size=d), tol=1e-10, maxiter=n_iter * d,
                          return_eigenvectors=False)[0])
    except ArpackNoConvergence as e:  # the best estimate so far, else no estimate (share 1)
        lam = float(e.eigenvalues[0]) if len(e.eigenvalues) else total
    return float(min(1.0, max(lam / total, np.finfo(np.float64).tiny)))


def init_b_prime(x, how="mean", n_iter=50, max_rows=10000):
    """D9's initial b': the mean of ``x`` (N, d), or its geometric median (Weiszfeld), or zeros.

    Parameters
    ----------
    x : array, shape (N, d)
        Already scaled.
    how : {"mean", "median", "zero"}
    n_iter : int
        Weiszfeld iterations for the median.
    max_rows : int
        The median uses the first ``max_rows`` rows.

    Returns
    -------
    b_prime : float64 array, shape (d,)
    """
    x = np.asarray(x, dtype=np.float64)
    if how == "zero":
        return np.zeros(x.shape[1])
    m = x.mean(axis=0)
    if how == "mean":
        return m
    if how != "median":
        raise ValueError(f"b_prime_init must be 'mean', 'median' or 'zero', got {how!r}")
    rows = x[:max_rows]
    for _ in range(n_iter):  # Weiszfeld: m <- sum(x_i / r_i) / sum(1 / r_i), r_i = ||x_i - m||
        w = 1.0 / np.maximum(np.linalg.norm(rows - m, axis=1), 1e-12)
        m = (w[:, None] * rows).sum(axis=0) / w.sum()
    return m


class DeadTracker:
    """For each unit, the index (in training samples seen) of the last sample it was active on.

    Parameters
    ----------
    n_hidden : int
    window : int
        T: a unit is dead when it was active on none of the last T samples.
    seen : int
        Samples seen so far.
    last_active, last_reset : int arrays, shape (H,), optional
        The index of the last sample whose Gamma held the unit (-1: never; the counting starts
        at 0 for everyone), and of the last resampling of the unit (which restarts its clock
        for the remedies, not for the statistic).
    n_resampled : int
        Units resampled so far.
    """

    def __init__(self, n_hidden, window, seen=0, last_active=None, last_reset=None, n_resampled=0):
        self.window = int(window)
        self.n_resampled = int(n_resampled)
        self.seen = int(seen)
        self.last_active = np.zeros(n_hidden, np.int64) if last_active is None else np.asarray(last_active)
        self.last_reset = np.zeros(n_hidden, np.int64) if last_reset is None else np.asarray(last_reset)

    def update(self, Gamma, N=None):
        """Record one minibatch's supports, Gamma (N, k): exact to the sample.

        A 1-D Gamma (the units active somewhere in a batch of ``N`` samples, as the baselines'
        steps return) counts them active on the batch's last sample.
        """
        Gamma = to_numpy(Gamma)
        if Gamma.ndim == 1:
            self.last_active[Gamma] = self.seen + N
            self.seen += N
            return
        N, k = Gamma.shape  # sample i of the batch is number seen + i + 1; the latest one wins
        sample = np.repeat(np.arange(self.seen + 1, self.seen + N + 1), k)
        np.maximum.at(self.last_active, Gamma.ravel(), sample)
        self.seen += N

    def dead(self):
        """(H,) bool: units inactive for the last T samples (resampled ones get T samples of grace)."""
        return self.seen - np.maximum(self.last_active, self.last_reset) >= self.window

    def dead_fraction(self):
        """The statistic: the fraction of units active on none of the last T samples (0 before T)."""
        if self.seen < self.window:
            return 0.0
        return float(np.mean(self.seen - self.last_active >= self.window))

    def to_json(self):
        return {"window": self.window, "seen": self.seen, "last_active": self.last_active.tolist(),
                "last_reset": self.last_reset.tolist(), "n_resampled": self.n_resampled}

    @classmethod
    def from_json(cls, data, n_hidden):
        return cls(n_hidden, data["window"], data["seen"], np.asarray(data["last_active"], np.int64),
                   np.asarray(data["last_reset"], np.int64), data.get("n_resampled", 0))


def resample_(params, velocity, tracker, e, dead, norms2=None):
    """Point units dead for T samples at the worst-reconstructed inputs of the minibatch, in place.

    The n = min(#dead, N) dead units of lowest index take, in order, the n inputs of the
    largest residual norm ||e_i|| (e = x - x_hat of the step just taken, under the
    parameters before its update): ``W[:, j] = e_i / ||e_i|| * r`` with r the mean norm
    of the live columns (after the update), ``b[j] = 0``, and their velocities zero.
    Deterministic: no random numbers.

    Parameters
    ----------
    params, velocity : dict
        ``{"W": (d, H), "b": (H,), "b_prime": (d,)}``, changed in place.
    tracker : DeadTracker
        The resampled units' clocks restart.
    e : array, shape (N, d)
        The minibatch's residual x - x_hat.
    dead : bool array, shape (H,)
    norms2 : array, shape (H,), optional
        ``||W[:, j]||^2`` for every column, when the step has them (the fused kernel does);
        else computed here, without copying W.

    Returns
    -------
    int
        The number of units resampled.
    """
    xp = get_array_module(params["W"])
    W, b = params["W"], params["b"]
    units = np.flatnonzero(dead)[:e.shape[0]]
    if units.size == 0 or units.size == dead.size:
        return 0
    norms = xp.sqrt(xp.einsum("ij,ij->i", e, e))
    rows = to_numpy(xp.argsort(-norms))[:units.size]
    if norms2 is None:
        norms2 = xp.einsum("ij,ij->j", W, W)
    radius = xp.sqrt(norms2[xp.asarray(~dead)]).mean()
    cols = xp.asarray(units)
    W[:, cols] = (e[rows] / xp.maximum(norms[rows], 1e-12)[:, None]).T * radius
    b[cols] = 0  # the mean of the live b made CIFAR-10 patches diverge (docs/training.md)
    velocity["W"][:, cols] = 0
    velocity["b"][cols] = 0
    tracker.last_reset[units] = tracker.seen
    tracker.n_resampled += int(units.size)
    return int(units.size)


class RemedyStep(AutoencoderStep):
    """The autoencoder's step with the remedies (:mod:`ksparse.training.steps` contract), ``batch = (x,)``.

    Each call: D9 (``pre_bias``) and D10 (AuxK on the units :class:`DeadTracker` counts dead)
    with Eq. (11); then the tracker records Gamma and, with ``resample``, units dead for T
    samples are resampled (:func:`resample_`). With neither D9 nor AuxK it runs the paper's
    step exactly as :class:`ksparse.training.steps.AutoencoderStep` (fused kernels).

    Parameters
    ----------
    tracker : DeadTracker
    pre_bias : bool
        D9.
    k_aux : int
    c_aux : float
        D10 (off when ``c_aux == 0``).
    resample : bool
    bias_lr_ratio : float in (0, 1]
        D13: b and b' take Eq. (11) at this times the learning rate (1: one rate for all).
    kernel : {"auto", "numba", "numpy", "plain"}
        ``"plain"`` runs :func:`ksparse.nn.layers.ksparse_step`, the others
        :func:`ksparse.kernels.remedies.remedies_step` (the same math on the support).
    inner : ksparse.training.steps.Step, optional
        Another step to run instead (its ``forward_backward`` and ``update_``), used as is: it
        must do D9 itself when ``pre_bias``; AuxK is not applied through it.
    lazy : {"auto", True, False}
        Lazy momentum (:mod:`ksparse.kernels.lazy`) on the compiled kernels without D10:
        ``"auto"`` where :func:`ksparse.kernels.lazy.lazy_pays` says it is faster; the
        parameters are brought up to date at the end of every epoch (:meth:`end_epoch_`).
    """

    def __init__(self, tracker, pre_bias=True, k_aux=0, c_aux=0.0, resample=False, bias_lr_ratio=1.0,
                 kernel="auto", inner=None, lazy="auto"):
        super().__init__(kernel)
        if lazy not in ("auto", True, False):
            raise ValueError(f"lazy must be 'auto', True or False, got {lazy!r}")
        self.inner, self.lazy, self._lazy, self._lazy_choice = inner, lazy, None, {}
        self.configure(tracker, pre_bias, k_aux, c_aux, resample, bias_lr_ratio)
        if inner is not None:
            self.name = inner.name

    def configure(self, tracker, pre_bias, k_aux, c_aux, resample, bias_lr_ratio=1.0):
        """Set the tracker and the remedies (``ksparse.training.loop.fit`` does, from the config)."""
        if not 0 < bias_lr_ratio <= 1:
            raise ValueError(f"bias_lr_ratio must be in (0, 1], got {bias_lr_ratio!r}")
        self.tracker, self.bias_lr_ratio = tracker, float(bias_lr_ratio)
        self.pre_bias, self.k_aux, self.c_aux, self.resample = pre_bias, k_aux, c_aux, resample

    @property
    def takes_lr_bound(self):
        """True on the support-only kernels: :class:`ksparse.training.bound.BoundedStep` then hands
        D11 to the step (``settings.lr_bound``), whose compiled rows phase measures the rows'
        squared norms while each row is in cache."""
        return self.kernel != "plain" and self.inner is None

    def _remedies(self, params):
        """Keyword arguments of the remedies for this step: D9, and D10 when units are dead."""
        kw = {"pre_bias": True} if self.pre_bias else {}
        dead = self.tracker.dead() if self.c_aux > 0 else None  # D10 only: the count is not free
        if dead is not None and dead.any():
            kw.update(dead=get_array_module(params["W"]).asarray(dead), k_aux=self.k_aux, c_aux=self.c_aux)
        return kw

    def forward_backward(self, batch, params, settings):
        """Loss and gradients of D1-D8 with D9/D10 (``ksparse_step``'s keywords); writes nothing."""
        if self.inner is not None:
            return self.inner.forward_backward(batch, params, settings)
        (x,) = batch
        args = (x, params["W"], params["b"], params["b_prime"], settings.k)
        kw = self._remedies(params)
        if self.kernel == "plain":
            E, grads, Gamma = layers.ksparse_step(*args, **kw)
        else:
            E, grads, Gamma = remedies_step(*args, kernel=self.kernel, **kw)
        return StepOutput(E, Gamma), grads

    def __call__(self, batch, params, velocity, settings):
        """One step in place, then the dead-unit count and resampling (from the step's own residual)."""
        (x,) = batch
        norms2 = None
        if self.kernel == "plain" and self.inner is None:
            out, grads = self.forward_backward(batch, params, settings)
            e = plain_residual(x, params, out.active, self.pre_bias) if self.resample else None
            self.update_(params, grads, velocity, settings)
        else:
            with _bias_steps_scaled(params, velocity, self.bias_lr_ratio):
                out, e, norms2 = self._fused_step(x, batch, params, velocity, settings)
        self.tracker.update(out.active, x.shape[0])
        if self.resample:
            dead = self.tracker.dead()
            if dead.any():
                if e is None:  # another step: the residual under the updated parameters
                    Gamma = _support(x, params, settings.k, self.pre_bias)
                    e = plain_residual(x, params, Gamma, self.pre_bias)
                if isinstance(norms2, _LazyNorms):
                    norms2 = norms2.lazy.norms2(params["W"])
                n = resample_(params, velocity, self.tracker, e, dead, norms2)
                if self._lazy is not None and n:
                    self._lazy.reset_units_(np.flatnonzero(dead)[:n], params["W"])
        return out

    def update_(self, params, grads, velocity, settings):
        """Eq. (11) in place, at ``settings.lr`` for W and ``bias_lr_ratio`` times it for b and b' (D13)."""
        groups = ({n: g for n, g in grads.items() if n not in BIASES},
                  {n: g for n, g in grads.items() if n in BIASES})
        for group, lr in zip(groups, (settings.lr, settings.lr * self.bias_lr_ratio), strict=True):
            sgd_momentum_(params, group, velocity, lr, settings.momentum)

    def _fused_step(self, x, batch, params, velocity, settings):
        """The step of ``inner`` or of the support-only kernels (fused update): (out, e, norms2)."""
        if self.inner is not None:
            return self.inner(batch, params, velocity, settings), None, None
        kw = self._remedies(params)
        lazy = self._lazy_momentum(x, params, velocity, settings, kw)
        if lazy is not None:
            if settings.lr_bound is not None:  # D11 before the lazy step, from its own pass over the rows
                u = x - params["b_prime"] if self.pre_bias else x
                settings = dataclasses.replace(settings, lr=settings.lr_bound(max_row_norm2(u)))
            E, Gamma, dx_hat = lazy.step_(x, params, velocity, settings.k, settings.lr, settings.momentum,
                                          pre_bias=self.pre_bias)
            if self.resample:  # e = x - x_hat = -(N / 2) dx_hat, in dx_hat's own (new) array
                dx_hat *= dx_hat.dtype.type(-x.shape[0] / 2)
            e = dx_hat if self.resample else None
            return StepOutput(E, Gamma), e, _LazyNorms(lazy, params["W"])
        E, Gamma, e, norms2 = remedies_train_step_(x, params, velocity, settings.k, settings.lr,
                                                   settings.momentum, kernel=self.kernel,
                                                   residual=self.resample, lr_bound=settings.lr_bound, **kw)
        return StepOutput(E, Gamma), e, norms2

    def _lazy_momentum(self, x, params, velocity, settings, kw):
        """The :class:`ksparse.kernels.lazy.LazyMomentum` to step with, or None for the plain update.

        ``lazy="auto"`` follows :func:`ksparse.kernels.lazy.lazy_pays` for the batch's shape;
        lazy momentum needs the compiled CPU kernels and runs without D10. A lazy state that
        is not used this step is materialised first.
        """
        if self.lazy is False:
            return None
        key = (x.shape[0], params["W"].shape[1], settings.k, self.kernel)
        if key not in self._lazy_choice:  # decided once per shape
            from ksparse.kernels import fast

            usable = self.kernel in ("auto", "numba") and fast.has_numba()
            if usable and self.lazy == "auto":
                from ksparse.kernels.lazy import lazy_pays

                usable = lazy_pays(*key[:3])
            self._lazy_choice[key] = usable
        if not self._lazy_choice[key] or "dead" in kw or get_array_module(params["W"]) is not np:
            self.end_epoch_(params, velocity)
            return None
        if self._lazy is None:
            from ksparse.kernels.lazy import LazyMomentum

            self._lazy = LazyMomentum(params["W"].shape[1], settings.momentum)
        for store in (params, velocity):
            if not store["W"].T.flags.c_contiguous:
                store["W"] = np.asfortranarray(store["W"])
        return self._lazy

    def end_epoch_(self, params, velocity):
        """Bring every unit up to date under lazy momentum (W and V as the plain update leaves them)."""
        if self._lazy is not None:
            self._lazy.materialize_(params, velocity)
            self._lazy = None


#: the parameters that D13 steps at ``bias_lr_ratio`` times the learning rate
BIASES = ("b", "b_prime")


@contextlib.contextmanager
def _bias_steps_scaled(params, velocity, ratio):
    """Run a step of Eq. (11) at one rate so that b and b' move at ``ratio`` times it (D13), in place.

    Eq. (11) is linear in (v, lr g): with the biases' velocities divided by ``ratio`` before
    the step, their change and new velocities times ``ratio`` are exactly those of the rate
    ``ratio * lr`` (any step: the fused kernels, lazy momentum, another step). ``ratio == 1``
    does nothing.
    """
    if ratio == 1:
        yield
        return
    start = {n: params[n].copy() for n in BIASES}
    for n in BIASES:
        velocity[n] /= velocity[n].dtype.type(ratio)
    try:
        yield
    finally:
        for n in BIASES:  # start + r (p - start), in place (the same roundings, no temporaries)
            r = params[n].dtype.type(ratio)
            params[n] -= start[n]
            params[n] *= r
            params[n] += start[n]
            velocity[n] *= r


class _LazyNorms:
    """The column norms of W under lazy momentum, computed only if resampling asks for them."""

    def __init__(self, lazy, W):
        self.lazy, self.W = lazy, W


def plain_residual(x, params, Gamma, pre_bias):
    """e = x - x_hat on the support Gamma, equation by equation (D1 or D9, D2's mask, D3), (N, d)."""
    xp = get_array_module(x, params["W"])
    W, b, b_prime = params["W"], params["b"], params["b_prime"]
    z = (x - b_prime if pre_bias else x) @ W + b
    z_k = xp.zeros_like(z)
    rows = xp.arange(z.shape[0])[:, None]
    z_k[rows, Gamma] = z[rows, Gamma]
    return x - (z_k @ W.T + b_prime)


def _support(x, params, k, pre_bias):
    """Gamma of the minibatch under the current parameters (D1 or D9, then D2)."""
    from ksparse.kernels.fast import supp_k

    u = x - params["b_prime"] if pre_bias else x
    return supp_k(u @ params["W"] + params["b"], k)
