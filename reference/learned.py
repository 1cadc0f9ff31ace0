"""Sec. 3.3 on learned dictionaries: train k-sparse autoencoders on MNIST with ``ksparse``
and compare the encoder's support and codes with ITI and OMP on the same W.

How the biases enter (our choice; see docs/theory.md). The autoencoder models
x ~ W z_k + b' with z = W^T x + b. We hand ITI and OMP the same affine model: they code
x - b' with the dictionary W, so all codes reconstruct x as W z + b' and their errors are
comparable. The encoder's support supp_k(W^T x + b) equals supp_k(W^T (x - b') + c) with
c = b + W^T b'; ITI's first step is supp_k(W^T (x - b')), so the two differ only by the
constant offset c, which we report separately. ITI runs on W as trained (Eqs. 2-3 need no
unit norms); OMP and mu use the column-normalised W, which spans the same atoms.
"""

import numpy as np

from reference.coherence import mutual_coherence, normalize_columns, theorem31_ratio, welch_bound
from reference.iti import iti, one_step, supp_k
from reference.omp import batch_omp


def load_mnist_subset(data_dir, n_train):
    """The first ``n_train`` MNIST training images in [0, 1], float64 (N, 784), via ksparse."""
    from ksparse.datasets import load_dataset

    ds = load_dataset("mnist", data_dir=data_dir, n_train=n_train, n_val=1, n_test=1, download=False)
    return np.asarray(ds.X_train, dtype=np.float64)


def train_dictionary(x, k, n_hidden, n_epochs, seed):
    """Train with ``ksparse.training.loop.fit`` (batch 128, the other options at their defaults).

    Returns ``(params, history)`` with W, b, b_prime as float64 NumPy arrays.
    """
    from ksparse.training.loop import fit

    state = fit(x, {"n_hidden": n_hidden, "k": k, "alpha": 1.0, "max_iter": n_epochs, "batch_size": 128,
                 "random_state": seed})
    params = {n: np.asarray(a, dtype=np.float64) for n, a in state.params.items()}
    return params, state.history


def sq_error(x, x_hat):
    """D4: (1/N) sum_i ||x_hat_i - x_i||^2."""
    return float(((x_hat - x) ** 2).sum(axis=1).mean())


def coherence_stats(W, Gamma_used):
    """mu of the normalised W, mu among the atoms in ``Gamma_used``, and the Welch bound."""
    Wn = normalize_columns(W)
    used = np.unique(Gamma_used)
    C = np.abs(Wn.T @ Wn)
    np.fill_diagonal(C, 0.0)
    return {
        "mu": mutual_coherence(Wn),
        "mu_used": float(C[np.ix_(used, used)].max()) if used.size > 1 else 0.0,
        "mean_abs_cos": float(C.sum() / (C.size - C.shape[0])),
        "n_used": int(used.size),
        "welch": welch_bound(*W.shape),
    }


def evaluate(x, params, k, max_iter):
    """Compare the autoencoder's support and codes with ITI and OMP on one trained W.

    Parameters
    ----------
    x : array, shape (N, d)
    params : dict
        ``W`` (d, H), ``b`` (H,), ``b_prime`` (d,).
    k : int
    max_iter : int
        ITI's iteration cap.

    Returns
    -------
    dict of floats: coherence, support agreement, D4 errors and ITI's iteration counts.
    """
    W, b, b_prime = params["W"], params["b"], params["b_prime"]
    x_c = x - b_prime  # the signal the dictionary codes, in every method
    y = x @ W + b  # D1
    Gamma_ae = supp_k(y, k)
    z_ae = np.zeros_like(y)
    np.put_along_axis(z_ae, Gamma_ae, np.take_along_axis(y, Gamma_ae, axis=1), axis=1)
    z_ls, _ = one_step(x_c, W, k, b=b + b_prime @ W, unit_norm=False)  # AE support, Eq. (3) values
    res = iti(x_c, W, k, max_iter=max_iter, unit_norm=False)
    first = supp_k(x_c @ W, k)  # ITI's first step, Eq. (4) without the offset c
    norms = np.linalg.norm(W, axis=0)
    z_omp, _ = batch_omp(x_c, W / norms, k)
    rho = theorem31_ratio(mutual_coherence(W / norms), np.abs(res.z) * norms)
    out = coherence_stats(W, Gamma_ae)
    out.update(
        k=k,
        agree_ae_iti=float(np.mean(np.all(Gamma_ae == res.Gamma, axis=1))),
        overlap_ae_iti=float(np.mean([np.intersect1d(a, g).size for a, g in zip(Gamma_ae, res.Gamma,
                                                                                   strict=True)]) / k),
        agree_first_iti=float(np.mean(np.all(first == res.Gamma, axis=1))),
        agree_ae_first=float(np.mean(np.all(Gamma_ae == first, axis=1))),
        iti_converged=float(res.converged.mean()),
        iti_mean_iter=float(res.n_iter.mean()),
        rho_min=float(rho.min()),
        thm_holds=float(np.mean(rho <= 1.0)),
        err_ae=sq_error(x, z_ae @ W.T + b_prime),
        err_ae_lstsq=sq_error(x_c, z_ls @ W.T),
        err_iti=sq_error(x_c, res.z @ W.T),
        err_omp=sq_error(x_c, z_omp @ (W / norms).T),
        err_zero=sq_error(x_c, 0.0 * x_c),
        norm_min=float(norms.min()),
        norm_max=float(norms.max()),
    )
    return out


def run_learned(data_dir, ks, n_train, n_eval, n_epochs, n_hidden, max_iter, seed, log=print):
    """Train one autoencoder per k on the first ``n_train`` MNIST images and evaluate it on
    the first ``n_eval`` of them (training samples, as Sec. 3.3's claim is about them)."""
    x = load_mnist_subset(data_dir, n_train)
    rows = []
    for k in ks:
        params, history = train_dictionary(x, k, n_hidden, n_epochs, seed)
        row = evaluate(x[:n_eval], params, k, max_iter)
        row.update(train_fvu=history[-1]["fvu"], dead_fraction=history[-1]["dead_fraction"])
        log(f"learned k={k}: mu={row['mu']:.3f} agree(AE, ITI)={row['agree_ae_iti']:.3f} "
            f"errors AE/ITI/OMP = {row['err_ae']:.2f}/{row['err_iti']:.2f}/{row['err_omp']:.2f}")
        rows.append(row)
    return rows
