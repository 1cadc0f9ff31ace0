"""The comparison autoencoders of Table 1 and Fig. 4, in the forward/backward style of layers.py.

All are tied-weight autoencoders with a linear decoder and the D4 loss, trained by
:func:`ksparse.training.baselines.fit_baseline` (minibatches, Eq. (11) momentum). They differ from
the k-sparse autoencoder only in what sits between D1 and D3:

- B1, hidden nonlinearity: ``h = relu(z)`` (or ``sigmoid(z)``), z from D1;
- B2, dropout (Hinton et al., 2012): ``a_drop = a * m / (1 - p)``, ``m ~ Bernoulli(1 - p)``,
  "inverted" so that the test-time network uses every unit unscaled;
- B3, masking noise (denoising, Vincent et al., 2008): B2 applied to the input, with the
  loss still measured against the clean x: ``E = (1/N) sum ||x_hat(x_drop) - x||^2``;
- B4, features for the classifier (Sec. 4.4): every hidden unit on the clean input,
  ``h = relu(W^T x + b)``, no dropout.

Kinds (:data:`KINDS`): ``relu`` (Fig. 4), ``dropout`` (50% hidden), ``denoising`` (20% input)
and ``dropout_denoising`` (both). The paper does not name the baselines' hidden units; we
use ReLU, whose activities are on the same scale as the k-sparse code (Fig. 4's axis), and
offer ``activation="sigmoid"``, the classic denoising choice.
"""

from ksparse.backend import get_array_module
from ksparse.nn.layers import decode_backward, decode_forward, encode_forward, mse_backward, mse_forward

KINDS = {
    "relu": {"p_input": 0.0, "p_hidden": 0.0},
    "dropout": {"p_input": 0.0, "p_hidden": 0.5},
    "denoising": {"p_input": 0.2, "p_hidden": 0.0},
    "dropout_denoising": {"p_input": 0.2, "p_hidden": 0.5},
}
ACTIVATIONS = ("relu", "sigmoid")


def relu_forward(z):
    """B1: h = max(z, 0). Returns ``(h, cache)`` with cache the (N, H) mask z > 0."""
    positive = z > 0
    return z * positive, positive


def relu_backward(dh, cache):
    """Backward of B1: dz = dh where z > 0, 0 elsewhere."""
    return dh * cache


def sigmoid_forward(z):
    """B1 (sigmoid form): h = 1 / (1 + exp(-z)). Returns ``(h, cache)`` with cache = h."""
    xp = get_array_module(z)
    h = 1.0 / (1.0 + xp.exp(-z))
    return h, h


def sigmoid_backward(dh, cache):
    """Backward of B1 (sigmoid form): dz = dh h (1 - h)."""
    h = cache
    return dh * h * (1.0 - h)


_ACT = {"relu": (relu_forward, relu_backward), "sigmoid": (sigmoid_forward, sigmoid_backward)}


def dropout_mask(shape, p, rng, dtype):
    """B2: a scaled keep-mask, ``m / (1 - p)`` with m ~ Bernoulli(1 - p), of ``shape``.

    Parameters
    ----------
    shape : tuple
    p : float in [0, 1)
        Drop rate.
    rng : numpy.random.Generator or cupy.random.Generator
        Its module decides where the mask lives.
    dtype : dtype of the mask
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"the drop rate p must satisfy 0 <= p < 1, got {p}")
    return (rng.random(shape) >= p).astype(dtype) / (1.0 - p)  # a Python float keeps the dtype


def dropout_forward(a, mask):
    """B2: a_drop = a * mask, with a scaled mask from :func:`dropout_mask`. Cache: the mask."""
    return a * mask, mask


def dropout_backward(da_drop, cache):
    """Backward of B2: da = da_drop * mask."""
    return da_drop * cache


def encode_params_backward(dz, cache):
    """Backward of D1 for the parameters only: dW_enc = x^T dz (D8), db = sum dz (D7).

    :func:`ksparse.nn.layers.encode_backward` also returns dx = dz W^T, a full product that
    an autoencoder step never uses; this saves it.
    """
    x, _ = cache
    return x.T @ dz, dz.sum(axis=0)


def ae_step(x, W, b, b_prime, input_mask=None, hidden_mask=None, activation="relu"):
    """B1-B3 forward, D4 loss and backward for one minibatch of a tied autoencoder.

    Parameters
    ----------
    x : array, shape (N, d)
        Clean input, also the reconstruction target.
    W : array, shape (d, H)
    b : array, shape (H,)
    b_prime : array, shape (d,)
    input_mask : array, shape (N, d), optional
        Scaled keep-mask for the input (B3); None means no input noise.
    hidden_mask : array, shape (N, H), optional
        Scaled keep-mask for the hidden units (B2); None means no dropout.
    activation : {"relu", "sigmoid"}

    Returns
    -------
    E : scalar array
        D4 against the clean x.
    grads : dict
        ``{"W": dW_enc + dW_dec, "b": db, "b_prime": db_prime}``.
    h : array, shape (N, H)
        Hidden activities before dropout.
    """
    act_forward, act_backward = _ACT[activation]
    x_in, in_cache = dropout_forward(x, input_mask) if input_mask is not None else (x, None)
    z, enc_cache = encode_forward(x_in, W, b)                 # D1, (N, H)
    h, act_cache = act_forward(z)                             # B1
    h_d, hid_cache = dropout_forward(h, hidden_mask) if hidden_mask is not None else (h, None)
    x_hat, dec_cache = decode_forward(h_d, W, b_prime)        # D3 with h_d for z_k
    E, mse_cache = mse_forward(x_hat, x)                      # D4, clean target
    dx_hat, _ = mse_backward(1.0, mse_cache)                  # D5
    dh_d, dW_dec, db_prime = decode_backward(dx_hat, dec_cache)
    dh = dropout_backward(dh_d, hid_cache) if hidden_mask is not None else dh_d
    dz = act_backward(dh, act_cache)
    dW_enc, db = encode_params_backward(dz, enc_cache)
    return E, {"W": dW_enc + dW_dec, "b": db, "b_prime": db_prime}, h


def features(x, W, b, activation="relu"):
    """B4, Sec. 4.4: every hidden unit on the clean input, h = act(W^T x + b), shape (N, H)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    z, _ = encode_forward(x, W, b)
    return _ACT[activation][0](z)[0]
