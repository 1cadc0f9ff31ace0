"""Forward/backward pairs of the discriminative k-sparse network, Sec. 4.5-4.6.

A shallow network has one k-sparse hidden layer and a softmax, a deep one several hidden
layers. Rows are samples. The equations, with their ids (S1-S4):

- S1, hidden layer (Sec. 2.2 "Sparse Encoding", used for fine-tuning in Sec. 4.5):
  ``h = supp_{alpha k}(W^T x + b)``, i.e. ``z = x @ W + b`` (D1) and ``h = z`` on
  ``Gamma = supp_{alpha k}(z)``, 0 elsewhere (D2 with alpha k in place of k).
- S2, backward of S1: ``dz = dh`` on Gamma, 0 off it (the gradient flows only through the
  alpha k units chosen in the forward pass), then ``dW = x^T dz``, ``db = sum_rows dz``,
  ``dx = dz W^T``.
- S3, softmax head: scores ``s = h @ W_out + b_out`` (the affine map of D1), class
  probabilities ``p = softmax(s)`` row-wise, and the cross-entropy
  ``E = -(1/N) sum_i log p[i, y_i]`` (mean over samples, as D4).
- S4, backward of S3: ``ds = (p - onehot(y)) / N``.
- S5, ReLU hidden layer of the comparison networks (Table 3's dropout and denoising rows):
  ``h = max(W^T x + b, 0)``; backward ``dz = dh`` where ``z > 0``, 0 elsewhere, then as S2.
- S6, the training-time noise of those rows (Sec. 4.5: fine-tuned "with the regularization of
  their pre-training"): the input ``x~ = x * m_0`` (B3) and each hidden output
  ``h~_l = h_l * m_l`` (B2), with scaled keep-masks ``m = Bernoulli(1 - p) / (1 - p)`` drawn
  afresh for every minibatch; backward multiplies by the same masks. Evaluation uses no masks.

A hidden layer whose ``n_keep`` is None is an S5 layer, otherwise S1.

Parameters of a network with L hidden layers live in one flat dict:
``W1, b1, ..., WL, bL`` (layer l maps (N, H_{l-1}) to (N, H_l)) and ``W_out, b_out``.
"""

from ksparse.backend import get_array_module
from ksparse.nn.baselines import dropout_backward, dropout_forward, relu_backward, relu_forward
from ksparse.nn.layers import encode_backward, encode_forward, select_backward, select_forward


def hidden_names(n_layers):
    """Names of the hidden layers' parameters, ``["W1", "b1", ...]``."""
    return [f"{p}{l}" for l in range(1, n_layers + 1) for p in ("W", "b")]


def sparse_layer_forward(x, W, b, n_keep):
    """S1, Sec. 2.2 and 4.5: h = supp_{alpha k}(W^T x + b), keeping ``n_keep = alpha k`` units.

    Parameters
    ----------
    x : array, shape (N, d)
    W : array, shape (d, H)
    b : array, shape (H,)
    n_keep : int
        The number of units kept, alpha k rounded half up (see :func:`ksparse.kernels.encode.alpha_k`).

    Returns
    -------
    h : array, shape (N, H)
        Zero off the support Gamma.
    cache : tuple
        ``(enc_cache, sel_cache)`` from D1 and D2.
    """
    z, enc_cache = encode_forward(x, W, b)
    h, sel_cache = select_forward(z, n_keep)
    return h, (enc_cache, sel_cache)


def sparse_layer_backward(dh, cache, need_dx=True):
    """S2: backward of S1 through the support chosen in the forward pass only.

    Parameters
    ----------
    dh : array, shape (N, H)
    cache : tuple
        From :func:`sparse_layer_forward`.
    need_dx : bool, default True
        False skips the product ``dz W^T`` (the bottom trainable layer needs no dx).

    Returns
    -------
    dx : array, shape (N, d), or None when ``need_dx`` is False
    dW : array, shape (d, H)
    db : array, shape (H,)
    """
    enc_cache, sel_cache = cache
    dz = select_backward(dh, sel_cache)  # D2 backward: zero off Gamma, (N, H)
    if need_dx:
        return encode_backward(dz, enc_cache)
    x, _ = enc_cache
    return None, x.T @ dz, dz.sum(axis=0)


def relu_layer_forward(x, W, b):
    """S5: h = max(W^T x + b, 0), every positive unit kept (B1 after D1).

    Parameters
    ----------
    x : array, shape (N, d)
    W : array, shape (d, H)
    b : array, shape (H,)

    Returns
    -------
    h : array, shape (N, H)
    cache : tuple
        ``(enc_cache, positive)`` with the (N, H) mask z > 0.
    """
    z, enc_cache = encode_forward(x, W, b)
    h, positive = relu_forward(z)
    return h, (enc_cache, positive)


def relu_layer_backward(dh, cache, need_dx=True):
    """S5 backward: dz = dh where z > 0, then dW = x^T dz, db = sum_rows dz, dx = dz W^T.

    Returns ``(dx, dW, db)``; dx is None when ``need_dx`` is False.
    """
    enc_cache, positive = cache
    dz = relu_backward(dh, positive)  # (N, H)
    if need_dx:
        return encode_backward(dz, enc_cache)
    x, _ = enc_cache
    return None, x.T @ dz, dz.sum(axis=0)


def hidden_layer_forward(x, W, b, n_keep):
    """S1 when ``n_keep`` is an int (alpha k), S5 when it is None. Returns ``(h, cache)``."""
    if n_keep is None:
        return relu_layer_forward(x, W, b)
    return sparse_layer_forward(x, W, b, n_keep)


def softmax(s):
    """Row-wise softmax of scores ``s`` (N, C), shifted by the row maximum for stability."""
    xp = get_array_module(s)
    e = xp.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_ce_forward(s, y):
    """S3, Sec. 4.5: cross-entropy E = -(1/N) sum_i log softmax(s)[i, y_i].

    Parameters
    ----------
    s : array, shape (N, C)
        Scores ``h @ W_out + b_out``.
    y : int array, shape (N,)
        Class indices in ``0 .. C-1``.

    Returns
    -------
    E : scalar array
    cache : tuple
        ``(p, y)`` with the probabilities p, (N, C).
    """
    xp = get_array_module(s)
    shifted = s - s.max(axis=1, keepdims=True)
    log_norm = xp.log(xp.exp(shifted).sum(axis=1))
    N = s.shape[0]
    E = (log_norm - shifted[xp.arange(N), y]).mean()
    p = xp.exp(shifted - log_norm[:, None])
    return E, (p, y)


def softmax_ce_backward(dE, cache):
    """S4: ds = dE (p - onehot(y)) / N. Returns ds, (N, C)."""
    p, y = cache
    xp = get_array_module(p)
    N = p.shape[0]
    ds = p.copy()
    ds[xp.arange(N), y] -= 1
    return ds * (dE / N)


def network_forward(x, params, n_keep, first=1, masks=None):
    """S1/S5 stacked, then the scores of S3: layers ``first .. L`` of the network and the head.

    Parameters
    ----------
    x : array, shape (N, H_{first-1})
        The input of layer ``first`` (the data itself when ``first=1``).
    params : dict
        ``W1, b1, ..., WL, bL, W_out, b_out``.
    n_keep : sequence of int or None, length L
        alpha k of each hidden layer (S1), or None for a ReLU layer (S5).
    first : int, default 1
        The lowest layer to run; ``first = L + 1`` runs the softmax head alone.
    masks : dict, optional
        S6's scaled keep-masks for training: ``masks[first - 1]`` (N, H_{first-1}) multiplies
        the input, ``masks[l]`` (N, H_l) the output of layer l; a missing key means no noise.

    Returns
    -------
    s : array, shape (N, C)
    cache : tuple
    """
    masks = masks or {}
    caches = []
    h, in_cache = _noise(x, masks.get(first - 1))
    for l in range(first, len(n_keep) + 1):
        h, c = hidden_layer_forward(h, params[f"W{l}"], params[f"b{l}"], n_keep[l - 1])
        h, m = _noise(h, masks.get(l))
        caches.append((n_keep[l - 1] is None, c, m))
    s, head_cache = encode_forward(h, params["W_out"], params["b_out"])
    return s, (caches, head_cache, first)


def _noise(a, mask):
    """S6 forward (B2/B3): ``a * mask``, or ``a`` itself when there is no mask; returns (out, mask)."""
    return (a, None) if mask is None else dropout_forward(a, mask)


def network_backward(ds, cache):
    """Backward of :func:`network_forward`: gradients of every parameter it used.

    Backpropagation stops at layer ``first``: no gradient with respect to its input.

    Returns
    -------
    grads : dict
        ``{"W_out", "b_out", "W{l}", "b{l}" for l >= first}``.
    """
    caches, head_cache, first = cache
    dh, dW_out, db_out = encode_backward(ds, head_cache)
    grads = {"W_out": dW_out, "b_out": db_out}
    for l in range(first + len(caches) - 1, first - 1, -1):
        relu, c, mask = caches[l - first]
        if mask is not None:
            dh = dropout_backward(dh, mask)  # S6 backward
        backward = relu_layer_backward if relu else sparse_layer_backward
        dh, grads[f"W{l}"], grads[f"b{l}"] = backward(dh, c, need_dx=l > first)
    return grads


def network_step(x, y, params, n_keep, first=1, masks=None):
    """Sec. 4.5-4.6, one fine-tuning step: S1/S5 (and S6) and S3 forward, S4 and back.

    Parameters
    ----------
    x : array, shape (N, H_{first-1})
    y : int array, shape (N,)
    params : dict
    n_keep : sequence of int or None
    first : int, default 1
        Layers below ``first`` are frozen; their output ``x`` is given.
    masks : dict, optional
        S6's keep-masks (see :func:`network_forward`).

    Returns
    -------
    E : scalar array
        The cross-entropy S3.
    grads : dict
        Gradients of the parameters of layers ``first .. L`` and the head.
    """
    s, cache = network_forward(x, params, n_keep, first, masks)
    E, ce_cache = softmax_ce_forward(s, y)
    return E, network_backward(softmax_ce_backward(1.0, ce_cache), cache)
