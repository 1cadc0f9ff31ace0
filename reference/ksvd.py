"""K-SVD (Aharon, Elad & Bruckstein 2006) and approximate K-SVD (Rubinstein, Zibulevsky &
Elad 2008, Alg. 5): alternate batch OMP sparse coding with an atom-by-atom update.

Rows are samples: ``x`` is (N, d), the dictionary ``W`` is (d, H) with unit-norm
columns, codes ``z`` are (N, H), so that x ~ z W^T.
"""

from collections import namedtuple

import numpy as np

from reference.coherence import check_dictionary
from reference.iti import check_k, check_signals
from reference.omp import batch_omp

KSVDResult = namedtuple("KSVDResult", ["W", "z", "errors", "n_replaced"])
KSVDResult.__doc__ = """Result of :func:`ksvd`.

W : (d, H) learned dictionary; z : (N, H) codes from the last iteration; errors : list of
the RMSE sqrt(||x - z W^T||_F^2 / (N d)) after each iteration; n_replaced : list of the
number of atoms replaced (unused or near-duplicate) in each iteration."""


def update_atom_(W, z, residual, j, approximate):
    """Update atom j and its coefficients over the samples that use it, in place.

    K-SVD: with omega = {i : z_ij != 0} and E = residual_omega + z_omega,j w_j^T (the error
    without atom j), take the best rank-1 approximation E ~ s u v^T and set w_j = v,
    z_omega,j = s u. Approximate K-SVD replaces the SVD by one power step:
    w_j = E^T g / ||E^T g||, z_omega,j = E w_j, with g the old coefficients.
    ``residual`` (N, d) = x - z W^T is kept current. Returns False if no sample uses atom j.
    """
    omega = np.flatnonzero(z[:, j])
    if omega.size == 0:
        return False
    E = residual[omega] + np.outer(z[omega, j], W[:, j])  # (|omega|, d)
    if approximate:
        w = E.T @ z[omega, j]
        norm = np.linalg.norm(w)
        if norm == 0:
            return False
        w = w / norm
        g = E @ w
    else:
        U, s, Vt = np.linalg.svd(E, full_matrices=False)
        w, g = Vt[0], s[0] * U[:, 0]
    W[:, j] = w
    z[omega, j] = g
    residual[omega] = E - np.outer(g, w)
    return True


def replace_atoms_(W, z, x, residual, unused, mu_max):
    """Replace unused atoms, and atoms within |cos| > mu_max of an earlier one, by the
    worst-represented samples (largest ||x_i - W z_i||), normalised; in place.

    Returns the number of atoms replaced. The replaced atoms' codes are zeroed and the
    residual is updated to match.
    """
    G = np.abs(W.T @ W)
    duplicate = np.any(np.triu(G, 1) > mu_max, axis=0)  # atom j repeats an atom i < j
    replace = np.flatnonzero(unused | duplicate)
    if replace.size == 0:
        return 0
    err = np.einsum("nd,nd->n", residual, residual)
    worst = np.argsort(-err, kind="stable")
    taken = 0
    for j in replace:
        residual += np.outer(z[:, j], W[:, j])
        z[:, j] = 0.0
        while taken < worst.size and np.linalg.norm(x[worst[taken]]) == 0:
            taken += 1
        if taken == worst.size:
            break
        W[:, j] = x[worst[taken]] / np.linalg.norm(x[worst[taken]])
        taken += 1
    return int(replace.size)


def ksvd(x, H, k, n_iter=10, W0=None, approximate=False, mu_max=0.99, random_state=0):
    """Learn a dictionary by K-SVD: batch OMP coding, then a rank-1 update of each atom.

    Parameters
    ----------
    x : array, shape (N, d)
    H : int
        Number of atoms.
    k : int
        Non-zeros per code (OMP stops at k atoms).
    n_iter : int, default 10
    W0 : array, shape (d, H), optional
        Initial dictionary with unit-norm columns; default: H distinct random samples,
        normalised.
    approximate : bool, default False
        Use approximate K-SVD (one power step instead of the SVD).
    mu_max : float, default 0.99
        Atoms whose |cos| with an earlier atom exceeds this are replaced.
    random_state : int or numpy Generator
        Draws the initial samples and the atom order of each sweep.

    Returns
    -------
    KSVDResult
        ``(W, z, errors, n_replaced)``.
    """
    rng = np.random.default_rng(random_state)
    if isinstance(H, bool) or int(H) != H or H < 1:
        raise ValueError(f"H (the number of atoms) must be an integer >= 1, got {H!r}")
    H = int(H)
    x = check_signals(x, np.shape(x)[-1])
    N, d = x.shape
    check_k(k, d, H)
    if W0 is None:
        norms = np.linalg.norm(x, axis=1)
        pool = np.flatnonzero(norms > 0)
        if pool.size < H:
            raise ValueError(f"need at least H = {H} non-zero samples to initialise, got {pool.size}")
        pick = rng.choice(pool, size=H, replace=False)
        W = (x[pick] / norms[pick, None]).T.copy()
    else:
        W = check_dictionary(W0).copy()
        if W.shape != (d, H):
            raise ValueError(f"W0 must have shape ({d}, {H}), got {W.shape}")
    if int(n_iter) != n_iter or n_iter < 1:
        raise ValueError(f"n_iter must be an integer >= 1, got {n_iter!r}")
    errors, n_replaced = [], []
    for _ in range(int(n_iter)):
        z, _ = batch_omp(x, W, k)
        residual = x - z @ W.T
        unused = np.zeros(H, dtype=bool)
        for j in rng.permutation(H):
            unused[j] = not update_atom_(W, z, residual, j, approximate)
        errors.append(float(np.sqrt(np.mean(residual ** 2))))
        n_replaced.append(replace_atoms_(W, z, x, residual, unused, mu_max))
    return KSVDResult(W, z, errors, n_replaced)
