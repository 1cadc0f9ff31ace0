"""Orthogonal matching pursuit (Tropp & Gilbert 2007): a plain version for reading, and
batch OMP with a precomputed Gram matrix and progressive Cholesky updates (Rubinstein,
Zibulevsky & Elad 2008, Alg. 3).

Rows are samples: ``x`` is (N, d), ``W`` is (d, H) with unit-norm columns, codes are
(N, H). Both stop at k atoms or when the squared residual norm ||x - W z||^2 drops to
``tol`` or below (the convention of scikit-learn's ``orthogonal_mp``).
"""

import warnings

import numpy as np

from ksparse.errors import reject_complex
from reference.iti import check_problem

_CHUNK_ELEMENTS = 2_000_000
# A new atom whose squared distance to the span of the chosen ones is at most this is taken
# as linearly dependent on them (scikit-learn's test in orthogonal_mp_gram: float64 eps).
BREAKDOWN_EPS = np.finfo(np.float64).eps  # float64 entries of the (n, k, H) Gram gather per chunk


def _check_tol(tol):
    if tol is not None and not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be None or a finite number >= 0, got {tol!r}")
    return -1.0 if tol is None else float(tol)


def omp_plain(x, W, k, tol=None):
    """OMP for one signal, step by step: pick the atom most correlated with the residual,
    refit all chosen atoms by least squares, update the residual.

    Parameters
    ----------
    x : array, shape (d,)
    W : array, shape (d, H), unit-norm columns
    k : int, 1 <= k <= min(d, H)
        Most atoms to choose.
    tol : float, optional
        Stop once ||x - W z||^2 <= tol.

    Returns
    -------
    z : array, shape (H,)
    Gamma : int array
        The chosen atoms in the order they were chosen.

    Warns
    -----
    RuntimeWarning
        When the next atom is linearly dependent on the chosen ones; OMP stops there
        (see :func:`batch_omp`).
    """
    x, W = check_problem(np.asarray(x)[None, :] if np.ndim(x) == 1 else x, W, k)
    if x.shape[0] != 1:
        raise ValueError("omp_plain takes one signal x of shape (d,); use batch_omp for many")
    x, tol = x[0], _check_tol(tol)
    residual, Gamma, values = x.copy(), [], np.zeros(0)
    while len(Gamma) < k and residual @ residual > tol:
        correlation = np.abs(W.T @ residual)
        correlation[Gamma] = -1.0  # never pick an atom twice
        j = int(np.argmax(correlation))
        if Gamma and _dependent(W[:, Gamma], W[:, j]):
            _warn_breakdown(1, 1)
            break
        Gamma.append(j)
        values = np.linalg.lstsq(W[:, Gamma], x, rcond=None)[0]  # orthogonal projection
        residual = x - W[:, Gamma] @ values
    z = np.zeros(W.shape[1])
    z[Gamma] = values
    return z, np.array(Gamma, dtype=np.intp)


def _dependent(W_Gamma, w):
    """True when ``w`` lies within BREAKDOWN_EPS (squared distance) of span(W_Gamma)."""
    r = w - W_Gamma @ np.linalg.lstsq(W_Gamma, w, rcond=None)[0]
    return float(r @ r) <= BREAKDOWN_EPS


def _forward_sub(L, r):
    """Solve L v = r for lower-triangular L (n, m, m) and r (n, m), batched over n."""
    v = np.zeros_like(r)
    for i in range(r.shape[1]):
        v[:, i] = (r[:, i] - np.einsum("nj,nj->n", L[:, i, :i], v[:, :i])) / L[:, i, i]
    return v


def _back_sub_t(L, r):
    """Solve L^T v = r for lower-triangular L (n, m, m) and r (n, m), batched over n."""
    v = np.zeros_like(r)
    for i in reversed(range(r.shape[1])):
        v[:, i] = (r[:, i] - np.einsum("nj,nj->n", L[:, i + 1:, i], v[:, i + 1:])) / L[:, i, i]
    return v


def batch_omp(x, W, k, tol=None, G=None):
    """Batch OMP (Rubinstein et al. 2008, Alg. 3) for many signals, vectorised over samples.

    Parameters
    ----------
    x : array, shape (N, d)
    W : array, shape (d, H), unit-norm columns
    k : int, 1 <= k <= min(d, H)
    tol : float, optional
        Stop a sample once its ||x - W z||^2 <= tol.
    G : array, shape (H, H), optional
        The Gram matrix W^T W, when the caller has it already.

    Returns
    -------
    z : array, shape (N, H)
    Gamma : int array, shape (N, k)
        Chosen atoms in order; -1 pads samples that stopped early.

    Warns
    -----
    RuntimeWarning
        When the next atom of a sample is linearly dependent on its chosen atoms
        (``1 - w^T w <= eps`` below, e.g. a repeated atom): that sample stops with the atoms
        it has, as scikit-learn's ``orthogonal_mp`` does, instead of dividing by ~0.

    Notes
    -----
    With alpha0 = W^T x and the Cholesky factor L L^T = G_{Gamma,Gamma}, step n adds atom
    j = argmax |alpha|, extends L by w = L^{-1} G_{Gamma,j} and sqrt(1 - w^T w), solves
    L L^T z_Gamma = alpha0_Gamma and sets alpha = alpha0 - G_{:,Gamma} z_Gamma. The residual
    norm follows from eps_n = eps_{n-1} - delta_n + delta_{n-1}, delta_n = z_Gamma^T
    G_{Gamma,Gamma} z_Gamma, so x - W z is never formed.
    """
    x, W = check_problem(x, W, k)
    tol = _check_tol(tol)
    N, H = x.shape[0], W.shape[1]
    G = W.T @ W if G is None else np.asarray(reject_complex(G, "G"), dtype=np.float64)
    if G.shape != (H, H):
        raise ValueError(f"G must be W^T W of shape ({H}, {H}), got {G.shape}")
    z = np.zeros((N, H))
    Gamma = np.full((N, k), -1, dtype=np.intp)
    step = max(1, _CHUNK_ELEMENTS // (k * H))
    n_broken = 0
    for s in range(0, N, step):  # chunks bound the memory of the (n, k, H) gathers
        xc = x[s:s + step]
        values, Gc, broken = _batch_omp_chunk(xc @ W, np.einsum("nd,nd->n", xc, xc), G, k, tol)
        n_broken += broken
        chosen = Gc >= 0
        rows = np.broadcast_to(np.arange(s, s + xc.shape[0])[:, None], chosen.shape)
        z[rows[chosen], Gc[chosen]] = values[chosen]
        Gamma[s:s + step] = Gc
    if n_broken:
        _warn_breakdown(n_broken, N)
    return z, Gamma


def _batch_omp_chunk(alpha0, eps, G, k, tol):
    """Alg. 3 of Rubinstein et al. on one chunk: alpha0 = W^T x (n, H), eps = ||x||^2 (n,).

    Returns the values (n, k), the atoms (n, k) in the order chosen (-1 where unused), and
    the number of samples stopped by a breakdown (see :func:`batch_omp`).
    """
    N = alpha0.shape[0]
    alpha = alpha0.copy()
    L = np.zeros((N, k, k))
    Gamma = np.full((N, k), -1, dtype=np.intp)
    values = np.zeros((N, k))
    delta = np.zeros(N)
    active = eps > tol
    n_broken = 0
    for n in range(k):
        a = np.flatnonzero(active)
        if a.size == 0:
            break
        score = np.abs(alpha[a])
        score[np.arange(a.size)[:, None], Gamma[a, :n]] = -1.0  # chosen atoms stay out
        j = np.argmax(score, axis=1)  # (n_active,)
        if n == 0:
            L[a, 0, 0] = 1.0
        else:
            w = _forward_sub(L[a, :n, :n], G[Gamma[a, :n], j[:, None]])  # L^{-1} G_{Gamma, j}, (n_a, n)
            L_nn = G[j, j] - np.einsum("ni,ni->n", w, w)  # squared distance of w_j to span(W_Gamma)
            broken = L_nn <= BREAKDOWN_EPS  # w_j depends on the chosen atoms: stop these samples
            if broken.any():
                n_broken += int(broken.sum())
                active[a[broken]] = False
                a, j, w, L_nn = a[~broken], j[~broken], w[~broken], L_nn[~broken]
                if a.size == 0:
                    break
            L[a, n, :n] = w
            L[a, n, n] = np.sqrt(L_nn)
        Gamma[a, n] = j
        Ga = Gamma[a, :n + 1]
        La = L[a, :n + 1, :n + 1]
        c = _back_sub_t(La, _forward_sub(La, alpha0[a[:, None], Ga]))  # z_Gamma, (n_a, n + 1)
        values[a, :n + 1] = c
        beta = np.einsum("nih,ni->nh", G[Ga], c)  # G_{:,Gamma} z_Gamma (G is symmetric), (n_a, H)
        alpha[a] = alpha0[a] - beta
        delta_new = np.einsum("ni,ni->n", c, beta[np.arange(a.size)[:, None], Ga])
        eps[a] = eps[a] - delta_new + delta[a]
        delta[a] = delta_new
        active[a] = eps[a] > tol
    return values, Gamma, n_broken


def _warn_breakdown(n_broken, n_samples):
    warnings.warn(
        f"orthogonal matching pursuit stopped early for {n_broken} of {n_samples} samples: the next atom "
        "is linearly dependent on the chosen ones (e.g. a repeated atom), so those codes have fewer "
        "than k atoms; remove dependent atoms from W to get k", RuntimeWarning, stacklevel=3)
