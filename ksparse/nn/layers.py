"""Forward/backward pairs of the k-sparse autoencoder, written as the equations.

Rows are samples: ``x`` is (N, d), ``W`` is (d, H), ``z`` is (N, H). Each pair follows
the CS231n convention: ``foo_forward(...) -> (out, cache)`` and
``foo_backward(dout, cache) -> grads`` in the order of the forward's inputs. The ids
D1-D8 refer to ``docs/equations.md``; Sec. 2.2 is the paper's algorithm.

This module is the plain, equation-by-equation path. ``ksparse.kernels.fast`` computes the same
math on the support only, and the tests hold it to this module.
"""

from ksparse.backend import get_array_module


def supp_k(z, k):
    """D2: indices of the k largest entries of each row, Gamma = supp_k(z).

    Parameters
    ----------
    z : array, shape (N, H)
    k : int, 1 <= k <= H

    Returns
    -------
    Gamma : int array, shape (N, k)
        Column indices of the k largest entries of each row, in no particular order.
        Ties are broken arbitrarily.
    """
    xp = get_array_module(z)
    H = z.shape[1]
    if not 1 <= k <= H:
        raise ValueError(f"k must satisfy 1 <= k <= {H} (the number of hidden units), got {k}")
    if k == H:
        return xp.broadcast_to(xp.arange(H), z.shape).copy()
    return xp.argpartition(z, H - k, axis=1)[:, H - k:]


def support_mask(Gamma, n_hidden):
    """Boolean (N, H) mask that is True on the support Gamma (N, k)."""
    xp = get_array_module(Gamma)
    N = Gamma.shape[0]
    mask = xp.zeros((N, n_hidden), dtype=bool)
    mask[xp.arange(N)[:, None], Gamma] = True
    return mask


def encode_forward(x, W, b):
    """D1, Sec. 2.2 step 1: z = W^T x + b, one sample per row: ``z = x @ W + b``.

    Parameters
    ----------
    x : array, shape (N, d)
    W : array, shape (d, H)
        Tied weights; the encoder uses ``W.T``.
    b : array, shape (H,)

    Returns
    -------
    z : array, shape (N, H)
    cache : tuple
        ``(x, W)`` for :func:`encode_backward`.
    """
    z = x @ W + b
    return z, (x, W)


def encode_backward(dz, cache):
    """Backward of D1: dx = dz W^T, dW_enc = x^T dz (D8, encoder part), db = sum dz (D7).

    Returns
    -------
    dx : array, shape (N, d)
    dW : array, shape (d, H)
        The encoder's share of the tied gradient.
    db : array, shape (H,)
    """
    x, W = cache
    return dz @ W.T, x.T @ dz, dz.sum(axis=0)


def pre_encode_forward(x, W, b, b_prime):
    """D9: the encoder with the pre-encoder bias, z = (x - b') W + b.

    Parameters
    ----------
    x : array, shape (N, d)
    W : array, shape (d, H)
    b : array, shape (H,)
    b_prime : array, shape (d,)
        The decoder's bias (D3), also subtracted before encoding (tied).

    Returns
    -------
    z : array, shape (N, H)
    cache : tuple
        ``(x - b_prime, W)`` for :func:`pre_encode_backward`.
    """
    u = x - b_prime
    return u @ W + b, (u, W)


def pre_encode_backward(dz, cache):
    """Backward of D9: dx = dz W^T, dW_enc = (x - b')^T dz, db = sum dz, db'_enc = -W db.

    Returns
    -------
    dx : array, shape (N, d)
    dW : array, shape (d, H)
        The encoder's share of the tied gradient.
    db : array, shape (H,)
    db_prime : array, shape (d,)
        The encoder's share of the gradient of b'; the decoder's share (D5) adds to it.
    """
    u, W = cache
    db = dz.sum(axis=0)
    return dz @ W.T, u.T @ dz, db, -(W @ db)


def auxk_forward(z, W, e, dead, k_aux, c_aux):
    """D10 (AuxK): c_aux E_aux, E_aux = (1/N) sum ||Z_aux W^T - e||^2 over the k_aux best dead units.

    Parameters
    ----------
    z : array, shape (N, H)
        Pre-activations (D1 or D9).
    W : array, shape (d, H)
    e : array, shape (N, d)
        The main residual x - x_hat, a constant target (no gradient flows into it).
    dead : bool array, shape (H,)
        Units counted dead; only they take part.
    k_aux : int, 1 <= k_aux <= dead.sum()
    c_aux : float
        Weight of the auxiliary loss.

    Returns
    -------
    E_aux : scalar array
        ``c_aux * E_aux``.
    cache : tuple
        For :func:`auxk_backward`.
    """
    xp = get_array_module(z, W)
    masked = xp.where(dead, z, -xp.inf)
    Gamma_aux = supp_k(masked, k_aux)
    mask = support_mask(Gamma_aux, z.shape[1])
    z_aux = xp.where(mask, z, 0)
    e_hat = z_aux @ W.T
    residual = e_hat - e
    N = z.shape[0]
    return c_aux * (residual * residual).sum() / N, (z_aux, mask, W, residual, c_aux, N)


def auxk_backward(dE, cache):
    """Backward of D10: dE_hat = dE (2 c_aux / N)(E_hat - e); dz_aux = dE_hat W on the aux support.

    Returns
    -------
    dz : array, shape (N, H)
        Zero off the auxiliary support; it flows into b and W through the encoder as dz does.
    dW : array, shape (d, H)
        The decoder's share, dE_hat^T Z_aux.
    """
    z_aux, mask, W, residual, c_aux, N = cache
    de_hat = dE * (2.0 * c_aux / N) * residual
    return (de_hat @ W) * mask, de_hat.T @ z_aux


def select_forward(z, k):
    """D2, Sec. 2.2 step 2: keep the k largest activities, z_k = z on Gamma, 0 elsewhere.

    Returns
    -------
    z_k : array, shape (N, H)
    cache : tuple
        ``(Gamma, H)`` with Gamma (N, k) from :func:`supp_k`.
    """
    Gamma = supp_k(z, k)
    mask = support_mask(Gamma, z.shape[1])
    return z * mask, (Gamma, z.shape[1])


def select_backward(dz_k, cache):
    """Backward of D2 (D6): the gradient flows only through Gamma, dz = dz_k on Gamma, 0 off it."""
    Gamma, H = cache
    return dz_k * support_mask(Gamma, H)


def decode_forward(z_k, W, b_prime):
    """D3, Sec. 2.2 step 3: x_hat = W z_Gamma + b', one sample per row: ``z_k @ W.T + b_prime``.

    Parameters
    ----------
    z_k : array, shape (N, H)
        Sparse code, zero off the support.
    W : array, shape (d, H)
    b_prime : array, shape (d,)

    Returns
    -------
    x_hat : array, shape (N, d)
    cache : tuple
        ``(z_k, W)``.
    """
    return z_k @ W.T + b_prime, (z_k, W)


def decode_backward(dx_hat, cache):
    """Backward of D3: dz_k = dx_hat W (D6), dW_dec = dx_hat^T z_k (D8), db' = sum dx_hat (D5).

    Returns
    -------
    dz_k : array, shape (N, H)
    dW : array, shape (d, H)
        The decoder's share of the tied gradient.
    db_prime : array, shape (d,)
    """
    z_k, W = cache
    return dx_hat @ W, dx_hat.T @ z_k, dx_hat.sum(axis=0)


def mse_forward(x_hat, x):
    """D4, Sec. 2.2 step 3: E = (1/N) sum_i ||x_hat_i - x_i||^2.

    The convention, kept everywhere in ksparse: squared error summed over the d
    dimensions and averaged over the N samples.

    Returns
    -------
    E : float-like scalar array
    cache : tuple
        ``(residual, N)`` with residual = x_hat - x, (N, d).
    """
    residual = x_hat - x
    N = x.shape[0]
    return (residual * residual).sum() / N, (residual, N)


def mse_backward(dE, cache):
    """D5: dx_hat = dE * (2/N)(x_hat - x). Returns (dx_hat, dx) with dx = -dx_hat."""
    residual, N = cache
    dx_hat = dE * (2.0 / N) * residual
    return dx_hat, -dx_hat


def ksparse_step(x, W, b, b_prime, k, pre_bias=False, dead=None, k_aux=0, c_aux=0.0):
    """Sec. 2.2 steps 1-3 and backprop: chains D1-D4 forward and D5-D8 backward.

    With ``pre_bias`` the encoder is D9's, z = (x - b') W + b; with ``dead`` (a boolean
    (H,) mask), ``k_aux >= 1`` and ``c_aux > 0``, the AuxK loss D10 is added:
    ``E + c_aux E_aux``. The defaults give the paper's model.

    Parameters
    ----------
    x : array, shape (N, d)
    W : array, shape (d, H)
    b : array, shape (H,)
    b_prime : array, shape (d,)
    k : int
    pre_bias : bool, default False
        D9: subtract b' before encoding (b' gains the encoder's share of the gradient).
    dead : bool array, shape (H,), optional
        Units counted dead (D10); AuxK acts on them only.
    k_aux : int, default 0
        D10: dead units used per sample to reconstruct the residual (at most ``dead.sum()``).
    c_aux : float, default 0.0
        D10: weight of the auxiliary loss.

    Returns
    -------
    E : scalar array
        The loss D4 (without the auxiliary term).
    grads : dict
        ``{"W": dW, "b": db, "b_prime": db_prime}``, with ``dW = dW_enc + dW_dec``
        because the tied weights fan out to the encoder and the decoder.
    Gamma : int array, shape (N, k)
        The support, for the dead-unit count.
    """
    if pre_bias:
        z, enc_cache = pre_encode_forward(x, W, b, b_prime)
    else:
        z, enc_cache = encode_forward(x, W, b)
    z_k, sel_cache = select_forward(z, k)
    x_hat, dec_cache = decode_forward(z_k, W, b_prime)
    E, mse_cache = mse_forward(x_hat, x)
    dx_hat, _ = mse_backward(1.0, mse_cache)
    dz_k, dW_dec, db_prime = decode_backward(dx_hat, dec_cache)
    dz = select_backward(dz_k, sel_cache)
    n_aux = 0 if dead is None or c_aux <= 0 else min(int(k_aux), int(dead.sum()))
    if n_aux > 0:  # D10: the residual e = x - x_hat is a constant target
        _, aux_cache = auxk_forward(z, W, x - x_hat, dead, n_aux, c_aux)
        dz_aux, dW_aux = auxk_backward(1.0, aux_cache)
        dz = dz + dz_aux
        dW_dec = dW_dec + dW_aux
    if pre_bias:
        _, dW_enc, db, db_prime_enc = pre_encode_backward(dz, enc_cache)
        db_prime = db_prime + db_prime_enc
    else:
        _, dW_enc, db = encode_backward(dz, enc_cache)
    grads = {"W": dW_enc + dW_dec, "b": db, "b_prime": db_prime}
    return E, grads, sel_cache[0]
