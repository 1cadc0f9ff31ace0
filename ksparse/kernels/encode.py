"""Sparse encoding, Sec. 2.2: features h = supp_{alpha k}(W^T x + b)."""

from ksparse.backend import get_array_module
from ksparse.kernels.fast import supp_k
from ksparse.nn.layers import encode_forward, support_mask


def alpha_k(k, alpha, n_hidden):
    """Return the integer number of units kept at test time, round(alpha k), checked against H."""
    if alpha < 1:
        raise ValueError(f"alpha must be >= 1 (Sec. 2.2 keeps alpha*k units), got {alpha}")
    ak = int(round(alpha * k))
    if ak > n_hidden:
        raise ValueError(
            f"alpha*k = {alpha}*{k} = {ak} exceeds n_hidden = {n_hidden}; lower alpha or k"
        )
    return ak


def encode(x, W, b, k, alpha=1.0):
    """Sec. 2.2, sparse encoding: h = supp_{alpha k}(W^T x + b), zero off the support.

    Parameters
    ----------
    x : array, shape (N, d)
    W : array, shape (d, H)
    b : array, shape (H,)
    k : int
        Training sparsity level.
    alpha : float >= 1, default 1
        Multiplier of k at test time; round(alpha k) units are kept.

    Returns
    -------
    h : array, shape (N, H)
    """
    get_array_module(x, W)
    z, _ = encode_forward(x, W, b)
    Gamma = supp_k(z, alpha_k(k, alpha, W.shape[1]))
    return z * support_mask(Gamma, z.shape[1])
