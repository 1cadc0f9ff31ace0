"""Coherence of a dictionary, Sec. 3.3: mu(W) (Eq. 8), the Welch bound, the Babel function,
and the condition of Theorem 3.1.

Rows are samples: ``z`` is (N, H); ``W`` is (d, H) with one atom per column.
Every function here needs unit-norm columns, as Eq. (8) and Thm 3.1 assume.
"""

import numpy as np

from ksparse.errors import reject_complex


def unit_norm_atol(dtype):
    """Tolerance on ``| ||w_j|| - 1 |`` for a dictionary stored in ``dtype``: sqrt(eps of dtype).

    A column normalised in precision u has a norm within about d u of 1 (at worst; sqrt(d) u
    typically), so sqrt(u) accepts every honestly normalised column up to d ~ 1/sqrt(u)
    (float32: d ~ 2900; float64: far beyond) and still refuses an unnormalised one.
    Integer dictionaries are judged as float64.
    """
    dtype = np.dtype(dtype)
    return float(np.sqrt(np.finfo(dtype if dtype.kind == "f" else np.float64).eps))


def check_dictionary(W, unit_norm=True, name="W"):
    """Return ``W`` as a finite 2-D float64 array, or raise saying what to change.

    Parameters
    ----------
    W : array, shape (d, H)
    unit_norm : bool, default True
        Also require every column to have unit l2 norm, within :func:`unit_norm_atol` of
        ``W``'s own dtype (1.5e-8 for float64, 3.5e-4 for float32).

    Raises
    ------
    TypeError
        If ``W`` does not hold real numbers.
    ValueError
        If ``W`` is not 2-D, is empty, holds NaN/inf, has a zero column, or (with
        ``unit_norm``) a column whose norm is not 1.
    """
    W = reject_complex(np.asarray(W), name)
    if W.dtype == object or not (np.issubdtype(W.dtype, np.floating) or np.issubdtype(W.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {W.dtype}")
    atol, W_dtype = unit_norm_atol(W.dtype), W.dtype
    W = W.astype(np.float64)
    if W.ndim != 2 or W.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (d, H), one atom per column; got {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError(f"{name} contains NaN or inf; pass a finite dictionary")
    norms = np.linalg.norm(W, axis=0)
    if np.any(norms == 0):
        zero = np.flatnonzero(norms == 0)[:5].tolist()
        raise ValueError(f"{name} has zero columns {zero}; remove or re-draw them")
    if unit_norm and not np.allclose(norms, 1.0, rtol=0, atol=atol):
        worst = int(np.argmax(np.abs(norms - 1)))
        raise ValueError(
            f"{name} must have unit-norm columns (column {worst} has norm {norms[worst]:.9g}, more than "
            f"{atol:.2g} from 1 for {W_dtype}); "
            "divide each column by its norm first, e.g. with normalize_columns(W)"
        )
    return W


def normalize_columns(W):
    """Return ``W`` with each column divided by its l2 norm (float64); zero columns raise."""
    W = check_dictionary(W, unit_norm=False)
    return W / np.linalg.norm(W, axis=0)


def mutual_coherence(W):
    """Eq. (8): mu(W) = max_{i != j} |<w_i, w_j>| for unit-norm columns w_i.

    Parameters
    ----------
    W : array, shape (d, H), unit-norm columns, H >= 2

    Returns
    -------
    mu : float in [0, 1]

    Examples
    --------
    >>> mutual_coherence(np.eye(3))
    0.0
    """
    W = check_dictionary(W)
    if W.shape[1] < 2:
        raise ValueError("mu(W) needs at least two atoms (columns)")
    G = np.abs(W.T @ W)
    np.fill_diagonal(G, 0.0)
    return float(min(G.max(), 1.0))


def welch_bound(d, H):
    """Lower bound on mu for H unit vectors in R^d: sqrt((H - d) / (d (H - 1))), 0 if H <= d.

    Notes
    -----
    Welch (1974); equality holds exactly for equiangular tight frames. No dictionary of H
    unit-norm atoms in d dimensions has a smaller mutual coherence.
    """
    if int(d) != d or int(H) != H or d < 1 or H < 2:
        raise ValueError(f"need integers d >= 1 and H >= 2, got d={d}, H={H}")
    if H <= d:
        return 0.0
    return float(np.sqrt((H - d) / (d * (H - 1.0))))


def babel(W, m=None):
    """Cumulative coherence (Babel function), Tropp 2004: mu_1(m) = max_i max_{|L|=m, i not in L}
    sum_{j in L} |<w_i, w_j>|.

    Parameters
    ----------
    W : array, shape (d, H), unit-norm columns
    m : int, optional
        1 <= m <= H - 1. When omitted, return mu_1(m) for every m = 1, ..., H - 1.

    Returns
    -------
    float, or array of shape (H - 1,)
        ``babel(W, 1) == mutual_coherence(W)`` and ``babel(W, m) <= m * mutual_coherence(W)``.
    """
    W = check_dictionary(W)
    H = W.shape[1]
    if H < 2:
        raise ValueError("the Babel function needs at least two atoms (columns)")
    G = np.abs(W.T @ W)
    np.fill_diagonal(G, -np.inf)
    ranked = -np.sort(-G, axis=1)[:, : H - 1]  # each row's off-diagonal entries, largest first
    curve = np.cumsum(ranked, axis=1).max(axis=0)
    if m is None:
        return curve
    if int(m) != m or not 1 <= m <= H - 1:
        raise ValueError(f"m must be an integer in [1, {H - 1}], got {m}")
    return float(curve[int(m) - 1])


def theorem31_ratio(mu, z):
    """Thm 3.1's ratio rho = 2 k mu z_1 / z_k for each code; the condition holds iff rho <= 1.

    Parameters
    ----------
    mu : float
        Mutual coherence of the dictionary.
    z : array, shape (N, H) or (H,)
        Sparse codes; k is each row's number of non-zeros, z_1 its largest and z_k its
        smallest non-zero entry.

    Returns
    -------
    rho : array, shape (N,)
        ``inf`` where a row has a non-positive non-zero entry or no non-zero at all: the
        theorem orders z_1 >= ... >= z_k > 0 and says nothing about such codes.
    """
    z = np.atleast_2d(np.asarray(reject_complex(z, "z"), dtype=np.float64))
    if z.ndim != 2 or not np.all(np.isfinite(z)):
        raise ValueError("z must be a finite (N, H) array of codes")
    if not (np.isfinite(mu) and 0 <= mu <= 1):
        raise ValueError(f"mu must be in [0, 1], got {mu}")
    nz = z != 0
    k = nz.sum(axis=1)
    z_1 = np.where(nz, z, -np.inf).max(axis=1)
    z_k = np.where(nz, z, np.inf).min(axis=1)
    ok = (k > 0) & (z_k > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(ok, 2.0 * k * mu * z_1 / np.where(ok, z_k, 1.0), np.inf)
    return rho


def theorem31_condition(W, z):
    """Thm 3.1: does k mu(W) <= z_k / (2 z_1) hold for each code z (non-negative, k non-zeros)?

    Parameters
    ----------
    W : array, shape (d, H), unit-norm columns
    z : array, shape (N, H) or (H,)

    Returns
    -------
    holds : bool array, shape (N,)
        Where True, the theorem guarantees supp_k(W^T W z) = supp(z).

    Notes
    -----
    The proof (Eqs. 9-10) gives y_i >= z_k - (k - 1) mu z_1 on the support and
    y_i <= k mu z_1 off it, so the support wins strictly whenever the condition holds
    and mu > 0; for mu = 0, y = z.
    """
    W = check_dictionary(W)
    z = np.atleast_2d(np.asarray(reject_complex(z, "z"), dtype=np.float64))
    if z.shape[-1] != W.shape[1]:
        raise ValueError(f"z has {z.shape[-1]} entries per code but W has {W.shape[1]} atoms")
    return theorem31_ratio(mutual_coherence(W), z) <= 1.0
