"""Test dictionaries for Thm 3.1: random Gaussian ones, and lower-coherence frames.

Every function returns a float64 (d, H) array with unit-norm columns.
"""

import numpy as np
from scipy.linalg import hadamard

from reference.coherence import normalize_columns, welch_bound


def gaussian_dictionary(d, H, rng):
    """H atoms drawn i.i.d. from N(0, I_d), normalised; mu ~ sqrt(4 log H / d) for large d."""
    return normalize_columns(np.random.default_rng(rng).normal(size=(d, H)))


def two_ortho(d):
    """The union [I, Hadamard / sqrt(d)] of two orthonormal bases: H = 2d and mu = 1/sqrt(d).

    ``d`` must be a power of 2. Its coherence is within sqrt(2) of the Welch bound.
    """
    if int(d) != d or d < 2 or int(d) & (int(d) - 1):
        raise ValueError(f"two_ortho needs d a power of 2 (>= 2), got {d}")
    return np.hstack([np.eye(int(d)), hadamard(int(d)) / np.sqrt(d)])


def alternating_projection(d, H, rng, n_iter=200, slack=1.1):
    """A low-coherence frame by alternating projection on the Gram matrix (Tropp, Dhillon,
    Heath & Strohmer 2005).

    Starting from a Gaussian dictionary, repeat: clip the off-diagonal of G = W^T W to
    [-mu_t, mu_t] with mu_t = slack * Welch bound (the structural constraint), then keep the
    top d eigenpairs (the rank-d spectral constraint) and read off W = Lambda^(1/2) V^T,
    normalised. Returns the iterate with the smallest mutual coherence seen.
    """
    W = gaussian_dictionary(d, H, rng)
    mu_t = slack * welch_bound(d, H)
    best, best_mu = W, np.inf
    for _ in range(int(n_iter)):
        G = np.clip(W.T @ W, -mu_t, mu_t)
        np.fill_diagonal(G, 1.0)
        lam, V = np.linalg.eigh(G)  # ascending
        W = normalize_columns(np.sqrt(np.maximum(lam[-d:], 0.0))[:, None] * V[:, -d:].T)
        C = np.abs(W.T @ W)
        np.fill_diagonal(C, 0.0)
        if C.max() < best_mu:
            best, best_mu = W, C.max()
    return best
