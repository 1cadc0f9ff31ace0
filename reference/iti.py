"""Iterative thresholding with inversion (ITI), Sec. 3.1 after Maleki (2009), Eqs. (2)-(3),
and its first step, Eq. (4), which the k-sparse autoencoder approximates.

Rows are samples: ``x`` is (N, d), ``W`` is (d, H), codes ``z`` are (N, H) and supports
``Gamma`` are (N, k), sorted ascending so that two supports compare with ``==``.
Float64 throughout; slow and exact.
"""

from collections import namedtuple

import numpy as np

from ksparse.errors import reject_complex
from reference.coherence import check_dictionary

ITIResult = namedtuple("ITIResult", ["z", "Gamma", "n_iter", "converged"])
ITIResult.__doc__ = """Result of :func:`iti`.

z : (N, H) codes; Gamma : (N, k) final supports (sorted); n_iter : (N,) number of
inversion steps (Eq. 3) taken; converged : (N,) True where the support reached a fixed
point (Gamma^{n+1} = Gamma^n), False where it cycled or ran out of iterations."""

_CHUNK_ELEMENTS = 2_000_000  # float64 entries of the gathered W_Gamma per chunk (16 MB)


def check_signals(x, d):
    """Return ``x`` as a finite float64 (N, d) array (a single (d,) signal becomes (1, d))."""
    x = reject_complex(np.asarray(x), "x")
    if x.dtype == object or not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"x must hold real numbers, got dtype {x.dtype}")
    x = np.atleast_2d(x.astype(np.float64))
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"x must be (N, d) with d = {d} (the rows of W), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf; pass finite signals")
    return x


def check_k(k, d, H):
    """Return ``k`` as an int, or raise unless 1 <= k <= min(d, H)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer, got {k!r}")
    if not 1 <= k <= min(d, H):
        raise ValueError(
            f"k must satisfy 1 <= k <= min(d, H) = {min(d, H)} (W_Gamma must have full column "
            f"rank for the pseudo-inverse of Eq. 3 to be unique), got k={k}"
        )
    return int(k)


def check_problem(x, W, k, unit_norm=True):
    """Validate ``x`` (N, d), ``W`` (d, H) and ``k``; return float64 ``(x, W)`` (x made 2-D)."""
    W = check_dictionary(W, unit_norm=unit_norm)
    check_k(k, *W.shape)
    return check_signals(x, W.shape[0]), W


def supp_k(z, k):
    """Eq. (2)'s supp_k: the indices of the k largest entries of each row, sorted ascending.

    Ties go to the lower index (a stable sort), so the result is deterministic.
    """
    order = np.argsort(-z, axis=1, kind="stable")[:, :k]
    return np.sort(order, axis=1)


def lstsq_on_support(x, W, Gamma):
    """Eq. (3), inversion step: z_Gamma = W_Gamma^+ x, the least-squares values on Gamma.

    Parameters
    ----------
    x : array, shape (N, d)
    W : array, shape (d, H)
    Gamma : int array, shape (N, k)

    Returns
    -------
    z_Gamma : array, shape (N, k)
        argmin_v ||x - W_Gamma v||^2, the minimum-norm solution if W_Gamma is rank
        deficient (the Moore-Penrose pseudo-inverse, computed like LAPACK gelsd by an SVD
        with cut-off eps * max(d, k) * s_max).
    """
    N, k = Gamma.shape
    d = W.shape[0]
    out = np.empty((N, k))
    step = max(1, _CHUNK_ELEMENTS // (d * k))
    for s in range(0, N, step):  # chunks bound the memory of the (n, d, k) stack
        W_G = np.swapaxes(W.T[Gamma[s:s + step]], 1, 2)  # (n, d, k)
        U, sv, Vt = np.linalg.svd(W_G, full_matrices=False)
        cut = np.finfo(np.float64).eps * max(d, k) * sv[:, :1]
        inv = np.where(sv > cut, 1.0 / np.where(sv > cut, sv, 1.0), 0.0)
        Ux = np.einsum("ndk,nd->nk", U, x[s:s + step])
        out[s:s + step] = np.einsum("nkj,nk->nj", Vt, inv * Ux)
    return out


def scatter(values, Gamma, H):
    """The (N, H) code that holds ``values`` (N, k) on ``Gamma`` and 0 on the complement."""
    z = np.zeros((Gamma.shape[0], H))
    np.put_along_axis(z, Gamma, values, axis=1)
    return z


def one_step(x, W, k, b=None, unit_norm=True):
    """Eq. (4): the first ITI iteration, Gamma = supp_k(W^T x + b), z_Gamma = W_Gamma^+ x.

    Parameters
    ----------
    x : array, shape (N, d)
    W : array, shape (d, H)
    k : int
    b : array, shape (H,), optional
        The encoder bias of a k-sparse autoencoder; it shifts only the support estimate.
        ``None`` gives the paper's Eq. (4) exactly.
    unit_norm : bool, default True
        Require unit-norm columns; pass False for a trained W with free column norms.

    Returns
    -------
    z : array, shape (N, H)
    Gamma : int array, shape (N, k), sorted
    """
    x, W = check_problem(x, W, k, unit_norm)
    y = x @ W  # W^T x for every row, (N, H)
    if b is not None:
        b = np.asarray(reject_complex(b, "b"), dtype=np.float64)
        if b.shape != (W.shape[1],) or not np.all(np.isfinite(b)):
            raise ValueError(f"b must be a finite vector of shape ({W.shape[1]},), got shape {b.shape}")
        y = y + b
    Gamma = supp_k(y, k)
    return scatter(lstsq_on_support(x, W, Gamma), Gamma, W.shape[1]), Gamma


def _support_hash(Gamma, weights):
    """A 64-bit fingerprint of each sorted support (N, k) -> (N,), for spotting repeats."""
    return weights[Gamma].sum(axis=1, dtype=np.uint64)


def iti(x, W, k, max_iter=100, unit_norm=True):
    """ITI, Eqs. (2)-(3): from z^0 = 0, repeat Gamma = supp_k(z^n + W^T (x - W z^n)) (Eq. 2)
    and z^{n+1}_Gamma = W_Gamma^+ x, z^{n+1} = 0 off Gamma (Eq. 3).

    Parameters
    ----------
    x : array, shape (N, d)
    W : array, shape (d, H)
    k : int, 1 <= k <= min(d, H)
    max_iter : int, default 100
        Most inversion steps per sample.
    unit_norm : bool, default True
        Require unit-norm columns (Thm 3.1's setting); False accepts any non-zero columns.

    Returns
    -------
    ITIResult
        ``(z, Gamma, n_iter, converged)``; see its docstring.

    Notes
    -----
    Each sample stops as soon as its support repeats: Gamma^{n+1} = Gamma^n is a fixed
    point (``converged``), a repeat of an older support is a cycle (not converged).
    Repeats are spotted by a random 64-bit fingerprint of the support (false match
    probability about 2^-64 per comparison) and fixed points are confirmed exactly.
    The first step's support is supp_k(W^T x), so ``max_iter=1`` is :func:`one_step`.
    """
    x, W = check_problem(x, W, k, unit_norm)
    if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    N, H = x.shape[0], W.shape[1]
    weights = np.random.default_rng(12345).integers(0, 2**63, size=H, dtype=np.uint64)
    z = np.zeros((N, H))
    Gamma = np.zeros((N, k), dtype=np.intp)
    n_iter = np.zeros(N, dtype=np.intp)
    converged = np.zeros(N, dtype=bool)
    seen = [set() for _ in range(N)]
    active = np.arange(N)
    for _ in range(max_iter):
        xa, za = x[active], z[active]
        G_new = supp_k(za + (xa - za @ W.T) @ W, k)  # Eq. (2), (n, k)
        fixed = (n_iter[active] > 0) & np.all(G_new == Gamma[active], axis=1)
        hashes = _support_hash(G_new, weights)
        repeat = np.array([h in seen[i] for i, h in zip(active, hashes.tolist(), strict=True)], dtype=bool)
        converged[active[fixed]] = True
        go = ~(fixed | repeat)
        active, G_new, hashes = active[go], G_new[go], hashes[go]
        if active.size == 0:
            break
        for i, h in zip(active, hashes.tolist(), strict=True):
            seen[i].add(h)
        z[active] = scatter(lstsq_on_support(x[active], W, G_new), G_new, H)  # Eq. (3)
        Gamma[active] = G_new
        n_iter[active] += 1
    return ITIResult(z, Gamma, n_iter, converged)
