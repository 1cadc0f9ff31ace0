"""Data-parallel training steps on a Dask cluster: one minibatch split across the workers.

Each worker computes the support-only gradient (D5-D8, :func:`ksparse.kernels.fast.fast_step`)
of its shard of the minibatch, scaled to the whole minibatch's mean, and sends back only
the columns of dW and entries of db of the units its shard used (the rest are zero). The
client adds the shards' gradients in a fixed order and applies Eq. (11) once. In float64
this equals the single-process step on the same minibatch up to the order of the sums.

Per step the client sends (W, b, b') to every worker and each worker returns d x |units
it used| numbers, at most d x min(H, rows x k): with a minibatch small against H/k this
is far less than the dense dW. ``benchmarks/scaling.py`` measures where the exchange stops
dominating.
"""

import numpy as np

from ksparse.kernels.fast import fast_step
from ksparse.training.steps import Step, StepOutput


def shard_gradient(x, params, k, n_total, kernel="auto"):
    """D1-D8 of one shard, as its share of the mean over a minibatch of ``n_total`` rows.

    Parameters
    ----------
    x : array, shape (n, d)
        The shard, n <= n_total rows of the minibatch.
    params : tuple
        ``(W, b, b_prime)``, shapes (d, H), (H,), (d,).
    k : int
    n_total : int
        Rows of the whole minibatch: D4 and D5 average over it.
    kernel : {"auto", "numba", "numpy"}

    Returns
    -------
    loss_sum : float
        n times the shard's D4, so the minibatch's loss is the sum over shards / n_total.
    units : int64 array, shape (m,)
        The hidden units on the shard's support (ascending).
    dW : array, shape (d, m)
        D8 on those units' columns; dW is zero on every other column.
    db : array, shape (m,)
        D7 on those units.
    db_prime : array, shape (d,)
        D5's sum over the shard's rows.
    Gamma : int array, shape (n, k)
    """
    W, b, b_prime = params
    n = x.shape[0]
    E, grads, Gamma = fast_step(x, W, b, b_prime, k, kernel=kernel)
    share = W.dtype.type(n / n_total)
    units = np.unique(Gamma)
    return (float(E) * n, units, grads["W"][:, units] * share, grads["b"][units] * share,
            grads["b_prime"] * share, Gamma)


def combine(parts, params, n_total):
    """Add the shards' outputs of :func:`shard_gradient`, in order: (E, grads, Gamma) of the minibatch."""
    W = params["W"]
    grads = {"W": np.zeros(W.shape, W.dtype, order="F"), "b": np.zeros_like(params["b"]),
             "b_prime": np.zeros_like(params["b_prime"])}
    loss = 0.0
    for loss_sum, units, dW, db, db_prime, _ in parts:
        loss += loss_sum
        grads["W"][:, units] += dW
        grads["b"][units] += db
        grads["b_prime"] += db_prime
    Gamma = np.concatenate([p[-1] for p in parts])
    return W.dtype.type(loss / n_total), grads, Gamma


class DaskDataParallelStep(Step):
    """The k-sparse autoencoder's step with each minibatch split across a Dask cluster's workers.

    A :class:`ksparse.training.steps.Step`: ``ksparse.training.loop.fit(x, config,
    step=DaskDataParallelStep(client))`` trains data-parallel.

    Parameters
    ----------
    client : distributed.Client
    n_shards : int, optional
        Shards per minibatch; default one per worker. Shard i runs on worker i mod n_workers.
    kernel : {"auto", "numba", "numpy"}, default "auto"
        The support-only kernels each worker runs (:func:`ksparse.kernels.fast.fast_step`).

    Notes
    -----
    Parameters stay on the client (NumPy arrays); each step scatters them to the workers
    (a broadcast of d H + H + d numbers), runs :func:`shard_gradient` on each shard and
    combines the results with :func:`combine`. The inherited ``__call__`` then applies
    Eq. (11) once (:meth:`ksparse.training.steps.Step.update_`).

    Examples
    --------
    >>> from distributed import Client, LocalCluster            # doctest: +SKIP
    >>> from ksparse.training.loop import fit                    # doctest: +SKIP
    >>> client = Client(LocalCluster(n_workers=2, processes=False))  # doctest: +SKIP
    >>> state = fit(X, {"n_hidden": 1000, "k": 25}, step=DaskDataParallelStep(client))  # doctest: +SKIP
    """

    name = "ksparse-dask"

    def __init__(self, client, n_shards=None, kernel="auto"):
        if kernel not in ("auto", "numba", "numpy"):
            raise ValueError(f"kernel must be 'auto', 'numba' or 'numpy', got {kernel!r}")
        self.client = client
        self.n_shards = n_shards
        self.kernel = kernel

    def _workers(self):
        workers = sorted(self.client.ncores())  # a fresh call (scheduler_info() may return a cache)
        if not workers:
            raise ValueError("the Dask cluster has no workers; start some, e.g. LocalCluster(n_workers=2)")
        return workers

    def gradient(self, x, params, k):
        """Loss, gradients and support of one minibatch ``x`` (N, d), computed shard by shard.

        Returns
        -------
        E : scalar
            D4 of the minibatch.
        grads : dict
            ``{"W": (d, H), "b": (H,), "b_prime": (d,)}``, the minibatch's D5-D8.
        Gamma : int array, shape (N, k)
        """
        workers = self._workers()
        n = x.shape[0]
        n_shards = max(1, min(n, self.n_shards or len(workers)))
        p = (params["W"], params["b"], params["b_prime"])
        [p_future] = self.client.scatter([p], broadcast=True, hash=False)
        shards = np.array_split(x, n_shards)
        futures = []
        for i, shard in enumerate(shards):  # data as futures, not in the task graph
            w = [workers[i % len(workers)]]
            [s] = self.client.scatter([shard], workers=w, hash=False)
            futures.append(self.client.submit(shard_gradient, s, p_future, k, n, self.kernel,
                                              workers=w, pure=False))
        parts = self.client.gather(futures)
        return combine(parts, params, n)

    def forward_backward(self, batch, params, settings):
        """The step contract: ``(StepOutput(E, Gamma), grads)`` of ``batch = (x,)`` at ``settings.k``."""
        (x,) = batch
        E, grads, Gamma = self.gradient(np.asarray(x), params, settings.k)
        return StepOutput(E, Gamma), grads
