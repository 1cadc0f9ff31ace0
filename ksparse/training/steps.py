"""The step contract: the forward, backward and update of one minibatch, for every model.

A step is an object with a ``name`` and a ``kernel`` and three methods:

- ``forward_backward(batch, params, settings) -> (StepOutput, grads)``: the loss of the
  minibatch and the gradients of the parameters it trains;
- ``update_(params, grads, velocity, settings)``: Eq. (11),
  :func:`ksparse.nn.optim.sgd_momentum_`, on the parameters that have a gradient;
- ``__call__(batch, params, velocity, settings) -> StepOutput``: both, in place. This is
  what :func:`ksparse.training.epoch.run_epoch` calls. A step whose kernel fuses the
  gradient with the update (:func:`ksparse.kernels.fast.fast_train_step_`) overrides it;
  a test holds the fused form to ``forward_backward`` followed by ``update_``.

``batch`` is a tuple of row blocks (``(x,)`` for an autoencoder, ``(x, y)`` for the
classifier); ``settings`` holds the epoch's values of the schedules (:class:`StepSettings`).
To add a model, subclass :class:`Step` and write ``forward_backward``. A step may keep
state between calls (:class:`BaselineStep` keeps its mask generator; a step that needs
a running statistic of the units, such as which were dead over the last T samples, can
keep it the same way), and may report more numbers through ``StepOutput.metrics``,
which :func:`ksparse.training.epoch.run_epoch` averages into the epoch's record.
"""

import dataclasses

from ksparse.backend import get_array_module
from ksparse.kernels import fast
from ksparse.nn import baselines, layers, supervised
from ksparse.nn.optim import sgd_momentum_


@dataclasses.dataclass(frozen=True)
class StepSettings:
    """What a step needs from the schedules for one epoch.

    Attributes
    ----------
    lr, momentum : float
        Eq. (11)'s eta and m.
    k : int, optional
        Sparsity of the autoencoder's step this epoch (Sec. 4.2.1); steps that do not
        select a support ignore it.
    lr_bound : callable, optional
        D11 (:class:`ksparse.training.bound.LrCap`), given only to a step whose
        ``takes_lr_bound`` is true: called with max_i ||x_i - b'||^2 of the minibatch, it
        returns the learning rate to use instead of ``lr``.
    """

    lr: float
    momentum: float
    k: int = None
    lr_bound: object = None


@dataclasses.dataclass
class StepOutput:
    """What one step reports to the epoch loop.

    Attributes
    ----------
    loss : scalar array
        The minibatch's loss (a mean over its rows), on the device; never synchronised here.
    active : int array, optional
        Hidden units on the support of some row (any shape, e.g. Gamma (N, k)), for the
        dead-unit count; None when the model has no such notion.
    metrics : dict
        Further per-minibatch means (scalar arrays); the epoch loop averages them over rows.
    """

    loss: object
    active: object = None
    metrics: dict = dataclasses.field(default_factory=dict)


class Step:
    """The step contract (see the module docstring). Subclasses write :meth:`forward_backward`."""

    name = "step"
    kernel = "plain"

    def forward_backward(self, batch, params, settings):
        """Loss and gradients of one minibatch: ``(StepOutput, grads)``; writes nothing."""
        raise NotImplementedError

    def update_(self, params, grads, velocity, settings):
        """Eq. (11) in place on every parameter in ``grads`` (:func:`ksparse.nn.optim.sgd_momentum_`)."""
        sgd_momentum_(params, grads, velocity, settings.lr, settings.momentum)

    def __call__(self, batch, params, velocity, settings):
        """One training step in place: :meth:`forward_backward`, then :meth:`update_`."""
        out, grads = self.forward_backward(batch, params, settings)
        self.update_(params, grads, velocity, settings)
        return out

    def end_epoch_(self, params, velocity):
        """Called after an epoch's last step: leave ``params`` and ``velocity`` complete (no-op here)."""

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r}, kernel={self.kernel!r})"


class AutoencoderStep(Step):
    """The k-sparse autoencoder's step, Sec. 2.2 steps 1-3 with D1-D8, on ``batch = (x,)``.

    Parameters
    ----------
    kernel : {"auto", "numba", "numpy", "plain"}, default "auto"
        ``"plain"`` runs the equation-by-equation pairs,
        :func:`ksparse.nn.layers.ksparse_step`, then Eq. (11). The others run the
        support-only kernels of :mod:`ksparse.kernels.fast` with the update fused in
        (:func:`ksparse.kernels.fast.fast_train_step_`); CuPy arrays always take the CUDA
        kernels.
    """

    name = "ksparse"

    def __init__(self, kernel="auto"):
        if kernel not in (*fast.KERNELS, "plain"):
            raise ValueError(f"kernel must be one of {(*fast.KERNELS, 'plain')}, got {kernel!r}")
        if kernel == "numba" and not fast.has_numba():
            raise ValueError("kernel='numba' needs numba: `pip install -e \".[fast]\"`, "
                             "or use kernel='numpy'")
        self.kernel = kernel

    def forward_backward(self, batch, params, settings):
        (x,) = batch
        W, b, b_prime = params["W"], params["b"], params["b_prime"]
        if self.kernel == "plain":
            E, grads, Gamma = layers.ksparse_step(x, W, b, b_prime, settings.k)
        else:
            E, grads, Gamma = fast.fast_step(x, W, b, b_prime, settings.k, kernel=self.kernel)
        return StepOutput(E, Gamma), grads

    def __call__(self, batch, params, velocity, settings):
        if self.kernel == "plain":
            return super().__call__(batch, params, velocity, settings)
        (x,) = batch
        E, Gamma = fast.fast_train_step_(x, params, velocity, settings.k, settings.lr,
                                         settings.momentum, kernel=self.kernel)
        return StepOutput(E, Gamma)


class NetworkStep(Step):
    """A fine-tuning step of the network, Sec. 4.5-4.6, on ``batch = (x, y)``.

    Parameters
    ----------
    n_keep : sequence of int or None
        alpha k of each hidden layer (S1), or None for a ReLU layer (S5).
    first : int, default 1
        The lowest trainable layer; ``x`` is the input of that layer and the layers below
        are frozen (they get no gradient, so Eq. (11) never touches them).
    p_input, p_hidden : float in [0, 1), default 0
        S6's drop rates: of the input of layer ``first`` (the pixels when ``first`` is 1:
        the denoising row's noise) and of every trainable hidden layer's output (dropout).
        Fresh masks every call, from the step's own generator (seeded by ``random_state``,
        on the device of the data), so a run is repeatable under its seed.
    random_state : int, default 0
    """

    name = "network"

    def __init__(self, n_keep, first=1, p_input=0.0, p_hidden=0.0, random_state=0):
        for name, p in (("p_input", p_input), ("p_hidden", p_hidden)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must satisfy 0 <= {name} < 1, got {p!r}")
        self.n_keep = list(n_keep)
        self.first = int(first)
        self.p_input, self.p_hidden, self.random_state = float(p_input), float(p_hidden), random_state
        self._rng = None

    def masks(self, x, params):
        """S6's keep-masks for one minibatch (None when both rates are 0)."""
        if not (self.p_input or self.p_hidden):
            return None
        xp = get_array_module(x)
        if self._rng is None:
            self._rng = xp.random.default_rng(self.random_state)
        N, masks = x.shape[0], {}
        if self.p_input:
            masks[self.first - 1] = baselines.dropout_mask(x.shape, self.p_input, self._rng, x.dtype)
        if self.p_hidden:
            for l in range(self.first, len(self.n_keep) + 1):
                shape = (N, params[f"W{l}"].shape[1])
                masks[l] = baselines.dropout_mask(shape, self.p_hidden, self._rng, x.dtype)
        return masks

    def forward_backward(self, batch, params, settings):
        x, y = batch
        E, grads = supervised.network_step(x, y, params, self.n_keep, self.first, self.masks(x, params))
        return StepOutput(E), grads


class BaselineStep(Step):
    """A step of a comparison autoencoder of :mod:`ksparse.nn.baselines` (B1-B3), ``batch = (x,)``.

    Draws fresh dropout masks every call from its own generator (seeded by
    ``random_state``, on the device of the data). ``settings.k`` is ignored. The output's
    ``active`` lists the units positive on some row, so the dead-unit count keeps its meaning.

    Parameters
    ----------
    kind : one of :data:`ksparse.nn.baselines.KINDS`
    activation : {"relu", "sigmoid"}
    random_state : int
    """

    def __init__(self, kind, activation="relu", random_state=0):
        if kind not in baselines.KINDS:
            raise ValueError(f"unknown baseline kind {kind!r}; choose one of {sorted(baselines.KINDS)}")
        if activation not in baselines.ACTIVATIONS:
            raise ValueError(f"activation must be one of {baselines.ACTIVATIONS}, got {activation!r}")
        self.name, self.activation, self.random_state = kind, activation, random_state
        self._rng = None

    def forward_backward(self, batch, params, settings):
        (x,) = batch
        W = params["W"]
        xp = get_array_module(x, W)
        if self._rng is None:
            self._rng = xp.random.default_rng(self.random_state)
        p_input, p_hidden = (baselines.KINDS[self.name][p] for p in ("p_input", "p_hidden"))
        in_mask = baselines.dropout_mask(x.shape, p_input, self._rng, x.dtype) if p_input > 0 else None
        hid_mask = (baselines.dropout_mask((x.shape[0], W.shape[1]), p_hidden, self._rng, x.dtype)
                    if p_hidden > 0 else None)
        E, grads, h = baselines.ae_step(x, W, params["b"], params["b_prime"], in_mask, hid_mask,
                                        self.activation)
        return StepOutput(E, xp.nonzero((h > 0).any(axis=0))[0]), grads
