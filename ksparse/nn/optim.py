"""SGD with momentum, Eq. (11): v <- m v - lr grad; theta <- theta + v.

This module is the one place Eq. (11) is written. The fused kernels
(:func:`ksparse.kernels.fast.fast_train_step_`) compute the same update inside their
loops; ``tests/test_fast.py`` holds them to :func:`sgd_momentum_`.

On the CPU a velocity whose magnitude falls below the smallest normal number of its
type (``numpy.finfo(dtype).tiny``: 1.2e-38 in float32) is stored as 0 (flush to zero).
Momentum shrinks the velocity of a unit that stays off the support by m per step, so
after about 800 idle steps at m = 0.9 (float32) it would become subnormal, and subnormal
arithmetic costs some CPUs (Intel Xeon among them) about 20 times normal arithmetic: a
model with dead units would pay it in every pass over W and V. The change to the
parameters is below 1.2e-38 per entry. CuPy arrays keep their subnormals (GPUs compute
them at full speed).
"""

import numpy as np


def flush_subnormal_(v):
    """Set to 0, in place, the entries of a NumPy float array whose magnitude is below
    ``numpy.finfo(v.dtype).tiny`` (subnormal numbers); other arrays are left alone."""
    if isinstance(v, np.ndarray) and v.dtype.kind == "f":
        np.copyto(v, 0, where=np.abs(v) < np.finfo(v.dtype).tiny)


def sgd_momentum_(params, grads, velocity, lr, momentum):
    """Eq. (11) in place, for every parameter that has a gradient.

    Parameters
    ----------
    params : dict of arrays
        Updated in place: ``params[name] += v_new``. Parameters without an entry in
        ``grads`` (frozen layers) are left alone.
    grads : dict of arrays
        ``grads[name]`` has the shape of ``params[name]``; only read.
    velocity : dict of arrays
        Updated in place: ``v_new = momentum * v - lr * grads[name]``, then entries below
        the smallest normal number set to 0 on NumPy arrays (:func:`flush_subnormal_`).
    lr : float
        Learning rate eta_k, rounded to the velocity's dtype.
    momentum : float
        Momentum m_k, rounded to the velocity's dtype.

    Returns
    -------
    None

    Examples
    --------
    >>> import numpy as np
    >>> p, v = {"w": np.array([1.0, -2.0])}, {"w": np.array([0.2, 0.0])}
    >>> sgd_momentum_(p, {"w": np.array([0.5, 4.0])}, v, lr=0.1, momentum=0.9)
    >>> v["w"], p["w"]
    (array([ 0.13, -0.4 ]), array([ 1.13, -2.4 ]))
    """
    for name, g in grads.items():
        v = velocity[name]
        dtype = v.dtype.type  # lr and momentum in the parameters' precision
        v *= dtype(momentum)
        v -= dtype(lr) * g
        flush_subnormal_(v)
        params[name] += v
