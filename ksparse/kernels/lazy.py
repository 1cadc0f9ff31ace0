"""Lazy momentum: Eq. (11) for the units outside a batch's support, in closed form (needs numba).

A unit h that gets no gradient for s steps follows v <- m v, W[:, h] <- W[:, h] + v, so after
the s steps (docs/equations.md, D12)

    v = m^s v_0,    W[:, h] = W_0[:, h] + (m + m^2 + ... + m^s) v_0.

:class:`LazyMomentum` leaves the columns of idle units as they were last written and keeps,
per unit, the step at which that was. A step then

1. computes z = x W + (x V) diag(S) + b, S = m + ... + m^s per unit (0 for units up to date):
   the product of the current W without writing it, at the price of a second product x V;
2. selects Gamma (D2), brings the units of the batch's support up to date in closed form,
   and runs D3-D8 and the fused update (:mod:`ksparse.kernels._cpu`) on those units only;
   b and b' are updated densely (H and d numbers).

The plain step reads and writes W and V once each per step (four streams of d H numbers)
besides its product; the lazy step reads W and V once each in its two products and writes
only the columns of the support. It can pay when the product is cheap against that pass
(small batches, W and V beyond the caches); :func:`lazy_pays` says where, from the
measurements of ``python -m benchmarks.lazy``. Before anyone reads the parameters (the end
of an epoch, a checkpoint), :meth:`LazyMomentum.materialize_` brings every unit up to date,
so saved models equal the plain ones. ``tests/test_lazy.py`` holds it to the plain update.
"""


import numpy as np

from ksparse.kernels import _cpu
from ksparse.kernels import _numba as nk
from ksparse.kernels._encode_numba import int_view
from ksparse.nn.optim import sgd_momentum_

#: lazy momentum is used automatically where a step's batch holds at most this many rows and
#: the support of a batch is expected to touch at most MAX_SUPPORT of the units
#: (``python -m benchmarks.lazy``, docs/benchmarks.md); 0 turns the automatic choice off.
MAX_BATCH = 0
MAX_SUPPORT = 0.1


def lazy_pays(N, H, k):
    """Whether lazy momentum is expected to be faster than the plain update for this shape."""
    expected = 1.0 - (1.0 - k / H) ** N  # the share of units on some sample's support
    return N <= MAX_BATCH and expected <= MAX_SUPPORT


class LazyMomentum:
    """Lazy momentum's state for one W (d, H) and its velocity: the step count and each unit's last write.

    Parameters
    ----------
    n_hidden : int
    momentum : float
        Eq. (11)'s m, fixed until :meth:`materialize_`.
    """

    def __init__(self, n_hidden, momentum):
        self.momentum = float(momentum)
        self.t = 0
        self.last = np.zeros(n_hidden, dtype=np.int64)
        self.stats = None  # (H, 3): ||w||^2, w . v, ||v||^2 of each column as last written

    def _closed_form(self, dtype, t=None):
        """(S, P) per unit: S = m + ... + m^s, P = m^s for s = t - last, in ``dtype``."""
        s = (self.t if t is None else t) - self.last
        m = self.momentum
        P = m ** s.astype(np.float64)
        S = m * (1.0 - P) / (1.0 - m) if m < 1 else s.astype(np.float64)
        return S.astype(dtype), P.astype(dtype)

    def _start(self, params, velocity):
        if self.stats is None:
            WT, VT = params["W"].T, velocity["W"].T
            self.stats = np.stack([np.einsum("ij,ij->i", WT, WT), np.einsum("ij,ij->i", WT, VT),
                                   np.einsum("ij,ij->i", VT, VT)], axis=1).astype(WT.dtype)

    def step_(self, x, params, velocity, k, lr, momentum, pre_bias=False):
        """One step with lazy momentum: (E, Gamma, dx_hat), as :func:`ksparse.kernels._cpu.train_step_`.

        ``params["W"]`` and ``velocity["W"]`` must be column-major; ``momentum`` must stay
        the same between materialisations (the closed form holds for a fixed m).
        """
        if self.t == 0:  # every unit up to date: the momentum may change here
            self.momentum = float(momentum)
        elif float(momentum) != self.momentum:
            raise ValueError(f"momentum changed from {self.momentum} to {momentum}: materialize first")
        self._start(params, velocity)
        S, P = self._closed_form(params["W"].dtype)
        E, Gamma, dx_hat, start = lazy_train_step_(x, params, velocity, S, P, self.stats, k, lr, momentum,
                                                   pre_bias)
        self.t += 1
        self.last[start[1:] > start[:-1]] = self.t  # the support's units are up to date
        return E, Gamma, dx_hat

    def norms2(self, W):
        """The squared norms of the current columns of W (d, H): ||W_0 + S v_0||^2 from the stats, (H,)."""
        if self.stats is None:
            return np.einsum("ij,ij->j", W, W)
        S, _ = self._closed_form(np.float64)
        ww, wv, vv = self.stats.astype(np.float64).T
        return ww + 2 * S * wv + S * S * vv

    def reset_units_(self, units, W):
        """Units whose column of W was just written and whose velocity set to zero (resampling)."""
        if self.stats is None:
            return
        self.last[units] = self.t
        cols = W[:, units]
        self.stats[units] = 0
        self.stats[units, 0] = np.einsum("ij,ij->j", cols, cols)

    def materialize_(self, params, velocity):
        """Bring every unit up to date (W and V as the plain update has them); the count restarts."""
        if self.stats is not None:
            WT, VT = params["W"].T, velocity["W"].T
            S, P = self._closed_form(WT.dtype)
            H = WT.shape[0]
            n = max(1, min(_cpu.numba.get_num_threads(), H))
            start = np.zeros(H + 1, dtype=np.int64)
            stats = self.stats
            _cpu.run_ranges(lambda c, lo, hi: nk.materialize_units(start, WT, VT, S, P, stats, True, lo, hi),
                            [H * c // n for c in range(n + 1)])
        self.t = 0
        self.last[:] = 0


def lazy_train_step_(x, params, velocity, S, P, stats, k, lr, momentum, pre_bias=False):
    """The fused step of :func:`ksparse.kernels._cpu.train_step_` with lazy momentum (see the module).

    Returns (E, Gamma, dx_hat, start): ``start`` (H + 1,) from the grouping by unit; the
    units with ``start[h + 1] > start[h]`` were on the support and are up to date.
    """
    N, d = x.shape
    W, b, b_prime = params["W"], params["b"], params["b_prime"]
    WT, VT = W.T, velocity["W"].T
    H = WT.shape[0]
    n = _cpu.threads_for(N, d, H)
    if pre_bias:  # D9: u = x - b', decoded without b'
        x, b_dec = x - b_prime, np.zeros_like(b_prime)
    else:
        b_dec = b_prime
    z, y = np.empty((N, H), dtype=x.dtype), np.empty((N, H), dtype=x.dtype)
    Gamma = np.empty((N, k), dtype=np.int64)
    dx_hat, dz, err = np.empty_like(x), np.empty((N, k), dtype=x.dtype), np.empty(N, dtype=np.float64)
    sq = np.empty(N, dtype=np.float64)
    db_prime, wdb = np.zeros((n, d), dtype=x.dtype), np.zeros((n, d), dtype=x.dtype)
    acc = np.empty((n, d), dtype=x.dtype)
    bits, shift, mask = int_view(z)
    rows = [N * c // n for c in range(n + 1)]

    def select(c, lo, hi):
        np.matmul(x[lo:hi], WT.T, out=z[lo:hi])  # D1 on W as last written
        np.matmul(x[lo:hi], VT.T, out=y[lo:hi])  # and the idle steps' share, x V
        nk.lazy_topk_rows(z, y, S, b, bits, shift, mask, Gamma, lo, hi)

    with _cpu.blas_threads(n, N, d, H):
        _cpu.run_ranges(select, rows)
        start, entries = _cpu.by_unit(Gamma, H)
        _cpu.run_ranges(lambda c, lo, hi: nk.materialize_units(start, WT, VT, S, P, stats, False, lo, hi),
                        _cpu._unit_bounds(start, d, n))
        scale = x.dtype.type(2.0 / N)
        _cpu.run_ranges(lambda c, lo, hi: nk.sample_rows(x, z, WT, b_dec, Gamma, scale, dx_hat, dz, err, sq,
                                                         db_prime[c], lo, hi), rows)
        _cpu.run_ranges(lambda c, lo, hi: nk.weight_grads_update(start, entries, x, z, dx_hat, dz, WT, b, VT,
                                                                 velocity["b"], lr, momentum, wdb[c], stats,
                                                                 True, acc[c], lo, hi),
                        _cpu._unit_bounds(start, d, n))
    db_prime = db_prime.sum(axis=0)
    if pre_bias:  # D9: the encoder's share of db'
        db_prime -= wdb.sum(axis=0)
    sgd_momentum_(params, {"b_prime": db_prime}, velocity, lr, momentum)  # Eq. (11) for b'
    return x.dtype.type(err.sum() / N), Gamma, dx_hat, start
