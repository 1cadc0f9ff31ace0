"""D11, the step bound: no minibatch may take a step its largest row cannot stand.

SGD on D4 is stable when the learning rate suits the rows of a minibatch; the data scale s
(:func:`ksparse.training.remedies.data_scale`) makes the rows' squared norms about 1 on
average, but not each row's. Per-pixel standardized images, for instance, turn a pixel that
is non-zero in a handful of images into a value of 100 there, and such a row, 80 times the
mean squared norm, made the default step diverge (docs/training.md, section 3).
:func:`bounded_lr` caps the step of each minibatch by its largest row, and
:class:`BoundedStep` applies it around any step of :mod:`ksparse.training.steps` (through
:class:`LrCap` inside a step that measures the rows itself).
"""

import dataclasses

from ksparse.kernels.remedies import max_row_norm2

#: the bound's constant: one row's reconstruction may move by at most its error (docs/equations.md, D11)
BOUND = 0.5


def bounded_lr(x, lr, momentum, b_prime=None):
    """D11: ``min(lr, (1 - momentum) N / (2 max_i ||x_i - b'||^2))`` for the minibatch ``x``.

    Parameters
    ----------
    x : array, shape (N, d)
        The minibatch as the model sees it (scaled).
    lr : float
        Eq. (11)'s learning rate of the epoch.
    momentum : float
        Eq. (11)'s m, in [0, 1).
    b_prime : array, shape (d,), optional
        D9's pre-encoder bias: the encoder sees x - b'. None: it sees x.

    Returns
    -------
    float
        ``lr``, or less when a row of the minibatch is far from the others' scale. A
        minibatch of zero rows (all at b') returns ``lr``.

    Notes
    -----
    With u_i = x_i - b', row i's share (1/N)||x_hat_i - x_i||^2 of D4 moves its own
    reconstruction, through the encoder's gradient (D8), by about lr (2/N) ||u_i||^2 times its
    error (W's columns of norm about 1), and the momentum adds up a gradient to 1 / (1 - m)
    times itself. Asking that move not to exceed the error gives the bound. On the scaled
    digits, MNIST and CIFAR-10 patches no minibatch of 64 or more rows reaches it at the
    default lr (their largest ||u_i||^2 is at most about 8 times the mean; the bound acts
    from 12.8 times at N = 64 and lr 0.25, and at N = 128 and lr 0.5, 6.4 at N = 32), so
    there it changes nothing; where it
    acts, only the minibatches holding such rows take a smaller step.
    """
    return capped_lr(lr, momentum, x.shape[0], max_row_norm2(x if b_prime is None else x - b_prime))


def capped_lr(lr, momentum, N, largest):
    """D11 from a minibatch's size ``N`` and ``largest`` = max_i ||x_i - b'||^2 (see :func:`bounded_lr`)."""
    if not largest > 0:
        return lr
    carried = 1.0 / (1.0 - momentum)  # how far the momentum carries one gradient, in steps
    return min(lr, BOUND * N / (carried * largest))


class LrCap:
    """D11 for one minibatch, for a step that measures max_i ||x_i - b'||^2 itself.

    ``cap(largest)`` returns :func:`capped_lr` of the minibatch's ``lr``, ``momentum`` and
    ``N`` and keeps it in ``cap.lr`` (None until called). A step that declares
    ``takes_lr_bound`` (:class:`ksparse.training.remedies.RemedyStep` on the support-only
    kernels) receives one as ``settings.lr_bound`` and calls it once, before its update:
    the compiled kernels measure the rows' squared norms while each row is in cache,
    instead of the extra passes of :func:`bounded_lr`.
    """

    def __init__(self, lr, momentum, N):
        self.lr_max, self.momentum, self.N, self.lr = lr, momentum, N, None

    def __call__(self, largest):
        self.lr = capped_lr(self.lr_max, self.momentum, self.N, largest)
        return self.lr


class BoundedStep:
    """A step whose learning rate :func:`bounded_lr` caps on each minibatch (``batch[0]`` the rows).

    Parameters
    ----------
    step : ksparse.training.steps.Step
        Any autoencoder step, called as ``step(batch, params, velocity, settings)`` with the
        bounded ``settings.lr``; a step whose ``takes_lr_bound`` is true is called with
        ``settings.lr_bound``, an :class:`LrCap`, instead, and must call it before its update.
    pre_bias : bool
        Whether the encoder subtracts ``params["b_prime"]`` (D9).

    Attributes
    ----------
    n_bounded, n_steps : int
        Minibatches whose lr the bound lowered, and all minibatches, since the last
        :meth:`reset_count`.
    """

    def __init__(self, step, pre_bias):
        self.step, self.pre_bias = step, pre_bias
        self.reset_count()

    def reset_count(self):
        self.n_bounded = self.n_steps = 0

    def __call__(self, batch, params, velocity, settings):
        x = batch[0]
        self.n_steps += 1
        if getattr(self.step, "takes_lr_bound", False):  # the step measures the rows itself
            cap = LrCap(settings.lr, settings.momentum, x.shape[0])
            out = self.step(batch, params, velocity, dataclasses.replace(settings, lr_bound=cap))
            if cap.lr is None:
                raise RuntimeError(f"{self.step!r} takes the step bound but did not apply it")
            self.n_bounded += cap.lr < settings.lr
            return out
        lr = bounded_lr(x, settings.lr, settings.momentum, params["b_prime"] if self.pre_bias else None)
        if lr < settings.lr:
            self.n_bounded += 1
            settings = dataclasses.replace(settings, lr=lr)
        return self.step(batch, params, velocity, settings)

    def end_epoch_(self, params, velocity):
        """The wrapped step's end of an epoch (e.g. lazy momentum brings every unit up to date)."""
        end = getattr(self.step, "end_epoch_", None)
        if end is not None:
            end(params, velocity)
