"""Tools to test forward/backward pairs: the gradient checker and the registry of every pair.

- :func:`check_grad` compares a backward with centred differences of its forward, in
  float64, against a random upstream gradient, and reports the relative error of each
  input's gradient.
- :data:`REGISTRY` (:mod:`ksparse.testing.pairs`) lists a :class:`GradCase` for every
  forward/backward pair and every step function of :mod:`ksparse.nn`; the test suite
  checks all of them and fails when a pair is missing from it.

Examples
--------
>>> import numpy as np
>>> from ksparse.nn.layers import encode_backward, encode_forward
>>> rng = np.random.default_rng(0)
>>> x, W, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=5)
>>> result = check_grad(encode_forward, encode_backward, (x, W, b))
>>> result.max_error < 1e-7
True
"""

import collections

import numpy as np

from ksparse.testing.pairs import REGISTRY, GradCase

__all__ = ["GradCase", "GradCheck", "REGISTRY", "check_grad", "numeric_grad", "relative_error"]

GradCheck = collections.namedtuple("GradCheck", ["errors", "max_error"])
GradCheck.__doc__ = """Result of :func:`check_grad`.

errors : tuple of float or None
    The relative error of each input's gradient (None where backward gives no gradient).
max_error : float
    The largest of them.
"""


def numeric_grad(f, v, eps=1e-6):
    """d f() / d v by centred differences, (f(v + eps) - f(v - eps)) / (2 eps) per entry.

    Parameters
    ----------
    f : callable
        No arguments, returns a scalar; it reads ``v``.
    v : float64 ndarray
        Changed in place one entry at a time and restored.
    eps : float

    Returns
    -------
    grad : ndarray, shape of ``v``
    """
    grad = np.zeros_like(v)
    for i in np.ndindex(v.shape):
        old = v[i]
        v[i] = old + eps
        plus = f()
        v[i] = old - eps
        minus = f()
        v[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(analytic, numeric):
    """``||a - n|| / (||a|| + ||n||)`` over all entries; 0 when both are zero."""
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    scale = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - n) / scale)


def check_grad(forward, backward, inputs, eps=1e-6, seed=0):
    """Check ``backward`` against centred differences of ``forward``, in float64.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs) -> (out, cache)``; ``out`` is an array or a scalar.
    backward : callable
        ``backward(dout, cache) -> grads``: one gradient per input, in the order of
        ``inputs`` (a tuple, or a single array for a single input); None for an input it
        does not differentiate.
    inputs : sequence of arrays
        The inputs to differentiate; copied as float64. Bind anything else (k, labels,
        masks) into ``forward`` with a closure.
    eps : float, default 1e-6
        Step of the centred differences. Inputs must be at least this far from any kink
        (a tie in top-k, a zero of ReLU).
    seed : int
        Seed of the random upstream gradient ``dout`` (standard normal, the shape of ``out``).

    Returns
    -------
    GradCheck
        ``errors`` (per input, :func:`relative_error` of the analytic against the numeric
        gradient of ``sum(out * dout)``) and ``max_error``.

    Raises
    ------
    ValueError
        When ``backward`` gives a wrong number of gradients or a gradient of the wrong shape.
    """
    inputs = [np.array(a, dtype=np.float64) for a in inputs]
    out, cache = forward(*inputs)
    dout = np.random.default_rng(seed).standard_normal(np.shape(out))
    grads = backward(dout if np.ndim(out) else float(dout), cache)
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) != len(inputs):
        raise ValueError(f"backward gave {len(grads)} gradients for {len(inputs)} inputs")
    grads = [None if g is None else np.array(g, dtype=np.float64) for g in grads]  # before perturbing

    def loss():
        return float(np.sum(forward(*inputs)[0] * dout))

    errors = []
    for i, (v, g) in enumerate(zip(inputs, grads, strict=True)):
        if g is not None and g.shape != v.shape:
            raise ValueError(f"gradient {i} has shape {g.shape}, its input {v.shape}")
        errors.append(None if g is None else relative_error(g, numeric_grad(loss, v, eps)))
    return GradCheck(tuple(errors), max((e for e in errors if e is not None), default=0.0))
