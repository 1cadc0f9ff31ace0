"""The training step with the remedies for dead units, on the support only (D9, D10).

:func:`remedies_step` computes the same numbers as
``ksparse.nn.layers.ksparse_step(x, W, b, b_prime, k, pre_bias, dead, k_aux, c_aux)``,
without any dense product beyond D1 and one over the dead units:

- D9 is the plain step on u = x - b' with a zero output bias: z = u W + b and
  x_hat - x = z_k W^T - u, so :func:`ksparse.kernels.fast.fast_step` computes it, and only
  the gradient of b' changes: db' = sum_rows dX_hat - W db.
- D10 needs z on the dead columns only, ``u W[:, dead] + b[dead]`` (N n_dead d
  multiply-adds), the residual e = x - x_hat on the support (N k d), and the auxiliary
  decode on the auxiliary support (N k_aux d). Its gradients land in the dead columns
  of dW and entries of db, then in db' through D9.
"""

import numpy as np

from ksparse.backend import get_array_module
from ksparse.kernels.fast import _check, fast_step
from ksparse.nn import layers
from ksparse.nn.optim import sgd_momentum_


def _sparse_rows(values, Gamma, n_cols):
    """A CSR (NumPy) or CuPy-sparse matrix with ``values[i, j]`` at column ``Gamma[i, j]`` of row i."""
    xp = get_array_module(values)
    if xp is np:
        from scipy import sparse
    else:  # pragma: no cover - GPU only
        from cupyx.scipy import sparse
    N, k = Gamma.shape
    indptr = xp.arange(0, N * k + 1, k)
    return sparse.csr_matrix((values.ravel(), Gamma.ravel(), indptr), shape=(N, n_cols))


def _gather_dots(A, B, Gamma, block=4096):
    """``out[i, j] = A[i] . B[:, Gamma[i, j]]`` for A (N, d), B (d, n), Gamma (N, m), in row blocks."""
    xp = get_array_module(A, B)
    BT = B.T
    out = xp.empty(Gamma.shape, dtype=A.dtype)
    rows = max(1, (1 << 20) // max(1, Gamma.shape[1] * A.shape[1]))
    for lo in range(0, A.shape[0], rows):
        sl = slice(lo, lo + rows)
        out[sl] = xp.matmul(BT[Gamma[sl]], A[sl, :, None])[..., 0]
    return out


def residual_on_support(u, W, b, Gamma):
    """e = u - z_k W^T with z_k = (u W + b) on Gamma (N k d multiply-adds): the target of D10.

    Parameters
    ----------
    u : array, shape (N, d)
        The encoder's input (x, or x - b' under D9); the decoder then adds no bias.
    W : array, shape (d, H)
    b : array, shape (H,)
    Gamma : int array, shape (N, k)

    Returns
    -------
    e : array, shape (N, d)
    """
    z_Gamma = _gather_dots(u, W, Gamma) + b[Gamma]
    return u - _sparse_rows(z_Gamma, Gamma, W.shape[1]) @ W.T


def auxk_grads(u, W, b, e, dead, k_aux, c_aux):
    """D10's gradients on the dead units only: (dW_dead (d, n_dead), db_dead (n_dead,)).

    Equal to the dead columns of the encoder's and the decoder's shares of
    :func:`ksparse.nn.layers.auxk_backward`; the live columns get nothing.
    """
    xp = get_array_module(u, W)
    cols = xp.flatnonzero(dead)
    W_dead = W[:, cols]
    z_dead = u @ W_dead + b[cols]  # D1 on the dead columns, (N, n_dead)
    Gamma_aux = layers.supp_k(z_dead, k_aux)  # D10 support, local column ids
    z_aux = _sparse_rows(xp.take_along_axis(z_dead, Gamma_aux, axis=1), Gamma_aux, cols.size)
    de_hat = z_aux @ W_dead.T  # E_hat, (N, d)
    de_hat -= e
    de_hat *= 2.0 * c_aux / u.shape[0]
    dz_aux = _sparse_rows(xp.take_along_axis(de_hat @ W_dead, Gamma_aux, axis=1), Gamma_aux, cols.size)
    dW_dead = (z_aux.T @ de_hat + dz_aux.T @ u).T  # decoder share + encoder share
    db_dead = xp.asarray(dz_aux.sum(axis=0)).ravel()
    return cols, xp.asarray(dW_dead), db_dead


def remedies_step(x, W, b, b_prime, k, pre_bias=False, dead=None, k_aux=0, c_aux=0.0, kernel="auto"):
    """D1-D8 with D9 and D10 on the support only; equals :func:`ksparse.nn.layers.ksparse_step`.

    Parameters
    ----------
    x : array, shape (N, d)
    W : array, shape (d, H)
        Fastest in column-major order (see :mod:`ksparse.kernels.fast`).
    b : array, shape (H,)
    b_prime : array, shape (d,)
    k : int
    pre_bias : bool
        D9.
    dead : bool array, shape (H,), optional
    k_aux : int
    c_aux : float
        D10; it runs when ``dead`` has a True entry, ``k_aux >= 1`` and ``c_aux > 0``.
    kernel : {"auto", "numba", "numpy"}

    Returns
    -------
    E : scalar
        The loss D4 (without the auxiliary term).
    grads : dict
        ``{"W": dW, "b": db, "b_prime": db_prime}``.
    Gamma : int array, shape (N, k)
    """
    xp = get_array_module(x, W)
    x = xp.asarray(x, dtype=W.dtype)
    u = x - b_prime if pre_bias else x
    E, grads, Gamma = fast_step(u, W, b, xp.zeros_like(b_prime) if pre_bias else b_prime, k, kernel)
    n_aux = _n_aux(dead, k_aux, c_aux)
    if n_aux > 0:
        e = residual_on_support(u, W, b, Gamma)
        if not pre_bias:
            e -= b_prime
        cols, dW_dead, db_dead = auxk_grads(u, W, b, e, dead, n_aux, W.dtype.type(c_aux))
        grads["W"][:, cols] += dW_dead
        grads["b"][cols] += db_dead
    if pre_bias:
        grads["b_prime"] = grads["b_prime"] - W @ grads["b"]  # D9: the encoder's share
    return E, grads, Gamma


def _n_aux(dead, k_aux, c_aux):
    """How many dead units D10 uses per sample (0: AuxK off)."""
    return 0 if dead is None or c_aux <= 0 else min(int(k_aux), int(dead.sum()))


def max_row_norm2(u):
    """max_i ||u_i||^2 over the rows of u (N, d), a Python float (D11's largest row)."""
    xp = get_array_module(u)
    return float(xp.max(xp.einsum("ij,ij->i", u, u)))


def remedies_train_step_(x, params, velocity, k, lr, momentum, kernel="auto", residual=False, lr_bound=None,
                         **remedies):
    """:func:`remedies_step`, then Eq. (11) in place; returns (E, Gamma, e, norms2).

    On the compiled CPU kernels and without D10 (the defaults), the gradient is fused with
    the update as in :func:`ksparse.kernels.fast.fast_train_step_`, D9 included
    (:func:`ksparse.kernels._cpu.train_step_`). ``params["W"]`` and ``velocity["W"]`` are
    switched, once, to column-major order. ``lr_bound``, when given, is D11
    (:class:`ksparse.training.bound.LrCap`): called with max_i ||u_i||^2 (u = x, or x - b'
    under D9) it returns the step's learning rate; the fused kernels measure those norms in
    their rows phase, the other paths with :func:`max_row_norm2`.

    Returns
    -------
    E : scalar
        The loss D4 before the update.
    Gamma : int array, shape (N, k)
    e : array, shape (N, d), or None
        With ``residual``: e = x - x_hat of this step, under the parameters before the update.
    norms2 : array, shape (H,), or None
        The squared norms of the columns of W after the update, where the kernel has them.
    """
    for store in (params, velocity):
        if not store["W"].T.flags.c_contiguous:
            store["W"] = get_array_module(store["W"]).asfortranarray(store["W"])
    W, b, b_prime = params["W"], params["b"], params["b_prime"]
    _, xc, impl = _check(x, W, k, kernel)
    pre_bias = bool(remedies.get("pre_bias", False))
    n_aux = _n_aux(remedies.get("dead"), remedies.get("k_aux", 0), remedies.get("c_aux", 0.0))
    if impl not in ("numpy", "cupy") and n_aux == 0:  # the fused compiled step
        lr, momentum = W.dtype.type(lr), W.dtype.type(momentum)
        E, Gamma, dx_hat, norms2 = impl.train_step_(xc, params, velocity, k, lr, momentum, pre_bias=pre_bias,
                                                    lr_bound=lr_bound)
        if residual:  # e = x - x_hat = -(N / 2) dx_hat, in dx_hat's own (new) array
            dx_hat *= W.dtype.type(-xc.shape[0] / 2)
        return E, Gamma, (dx_hat if residual else None), norms2
    if lr_bound is not None:
        lr = lr_bound(max_row_norm2(xc - b_prime if pre_bias else xc))
    E, grads, Gamma = remedies_step(xc, W, b, b_prime, k, kernel=kernel, **remedies)
    e = None
    if residual:  # before the update: e = u - z_k W^T (- b' without D9)
        e = residual_on_support(xc - b_prime if pre_bias else xc, W, b, Gamma)
        if not pre_bias:
            e -= b_prime
    sgd_momentum_(params, grads, velocity, lr, momentum)
    return E, Gamma, e, None
