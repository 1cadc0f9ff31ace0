"""Sparse encoding, Sec. 2.2: features h = supp_{alpha k}(W^T x + b)."""

import math

import numpy as np

from ksparse.backend import get_array_module
from ksparse.kernels.fast import supp_k
from ksparse.nn.layers import encode_forward, support_mask


def alpha_k(k, alpha, n_hidden):
    """Sec. 2.2: the number of units kept at test time, alpha k rounded half up, checked against H.

    The one rounding rule for alpha k everywhere (training checks, encoding, the CLI, the
    reproductions): ``floor(alpha * k + 0.5)``, so a half rounds up (k = 5: alpha 1.5 keeps
    8 units and alpha 2.5 keeps 13), not to the even neighbour as Python's ``round`` does.

    Raises
    ------
    ValueError
        If alpha is not a finite number >= 1, or alpha k exceeds ``n_hidden``.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)) \
            or not math.isfinite(alpha) or alpha < 1:
        raise ValueError(f"alpha must be a finite number >= 1 (Sec. 2.2 keeps alpha*k units), got {alpha!r}")
    ak = math.floor(alpha * k + 0.5)
    if ak > n_hidden:
        raise ValueError(
            f"alpha*k = {alpha}*{k} = {ak} exceeds n_hidden = {n_hidden}; lower alpha or k"
        )
    return int(ak)


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
