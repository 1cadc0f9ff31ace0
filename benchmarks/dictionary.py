"""Dictionary learning: ksparse training against scikit-learn and K-SVD at equal wall time.

    python -m benchmarks.dictionary [--quick] [--threads 2]

On 10,000 MNIST training images, each method learns H atoms for a budget of wall time:

- ksparse: :func:`ksparse.training.loop.fit` with lr = 0.005 (the default 0.01 diverges at
  H = 256) and its other defaults, one epoch per call, 30 epochs at
  most (the sparsity schedule of Sec. 4.2.1 spans them); codes by its own encoder,
  supp_k(W^T x + b), and, as a second curve, by batch OMP on the same dictionary;
- scikit-learn ``MiniBatchDictionaryLearning``: ``partial_fit`` over minibatches, codes by
  OMP with k non-zeros (``transform_algorithm="omp"``);
- ``reference.ksvd.ksvd``: approximate K-SVD (Rubinstein et al. 2008), one iteration per
  call, codes by batch OMP with k non-zeros.

At geometrically spaced times, after an epoch or iteration, the clock stops and the
reconstruction error (MSE per pixel) of the first 1,000 MNIST test images is measured
with the method's own coder.
"""

import os
import time

import numpy as np

from benchmarks import common
from benchmarks.encode import mnist

H, K = 256, 25


def _clocked(train_once, evaluate, budget_s, growth=1.25):
    """Call ``train_once`` until ``budget_s`` of training time or until it returns False;
    evaluate at geometrically spaced times, off the clock.

    Returns ([(seconds, error or tuple of errors)], number of training calls).
    """
    curve, spent, next_eval, calls = [], 0.0, 0.0, 0
    while spent < budget_s:
        t0 = time.perf_counter()
        more = train_once()
        spent += time.perf_counter() - t0
        calls += 1
        if spent >= next_eval or more is False or spent >= budget_s:
            curve.append((spent, evaluate()))
            next_eval = spent * growth
        if more is False:
            break
    return curve, calls


def ksparse_curve(X, X_eval, budget_s, n_epochs=30, device="cpu"):
    from ksparse.backend import to_numpy
    from ksparse.kernels.encode import encode
    from ksparse.training.loop import fit

    config = {"n_hidden": H, "k": K, "alpha": 1.0, "max_iter": n_epochs, "batch_size": 128, "random_state": 0,
              "lr": 0.005}
    box = {"state": None}

    def train_once():
        box["state"] = fit(X, None if box["state"] else config, state=box["state"], epochs=1, device=device)
        return box["state"].epoch < n_epochs

    def evaluate():  # its own encoder, and OMP on the same dictionary
        from reference.omp import batch_omp

        W, b, b_prime = (to_numpy(box["state"].params[n]) for n in ("W", "b", "b_prime"))
        own = np.mean((encode(X_eval, W, b, K) @ W.T + b_prime - X_eval) ** 2)
        Wn = W.astype(np.float64)
        Wn /= np.linalg.norm(Wn, axis=0)  # in float64: unit norm to float64 precision
        x64 = X_eval.astype(np.float64)
        return float(own), float(np.mean((batch_omp(x64, Wn, K)[0] @ Wn.T - x64) ** 2))

    (curve, calls) = _clocked(train_once, evaluate, budget_s)
    return ([(t, e[0]) for t, e in curve], calls), ([(t, e[1]) for t, e in curve], calls)


def sklearn_curve(X, X_eval, budget_s, batch_size=256):
    from sklearn.decomposition import MiniBatchDictionaryLearning

    model = MiniBatchDictionaryLearning(n_components=H, batch_size=batch_size, transform_algorithm="omp",
                                        transform_n_nonzero_coefs=K, random_state=0)
    X64 = X.astype(np.float64)
    order = np.random.default_rng(0).permutation(X.shape[0])

    def train_once():  # one pass over the data
        for s in range(0, X.shape[0], batch_size):
            model.partial_fit(X64[order[s:s + batch_size]])

    def evaluate():
        return float(np.mean((model.transform(X_eval) @ model.components_ - X_eval) ** 2))

    return _clocked(train_once, evaluate, budget_s)


def ksvd_curve(X, X_eval, budget_s):
    from reference.ksvd import ksvd
    from reference.omp import batch_omp

    X64 = X.astype(np.float64)
    box = {"W": None, "iteration": 0}

    def train_once():
        box["W"] = ksvd(X64, H, K, n_iter=1, W0=box["W"], approximate=True,
                        random_state=box["iteration"]).W
        box["iteration"] += 1

    def evaluate():
        return float(np.mean((batch_omp(X_eval, box["W"], K)[0] @ box["W"].T - X_eval) ** 2))

    return _clocked(train_once, evaluate, budget_s)


def at_budget(curve, budget_s):
    """The error reached within ``budget_s`` seconds of training (None if no evaluation yet)."""
    done = [e for t, e in curve if t <= budget_s]
    return min(done) if done else None


def run(quick=False, threads=2, data_dir=None):
    common.set_threads(threads)
    X, X_test = mnist(10000 if not quick else 3000, 1000, data_dir)
    X_eval = X_test.astype(np.float64)
    budget = 8.0 if quick else 40.0
    results = {"machine": common.machine(), "threads": threads, "H": H, "k": K, "n_train": X.shape[0],
               "n_eval": X_eval.shape[0], "budget_s": budget}
    own, omp = ksparse_curve(X, X_eval.astype(np.float32), budget)
    runs = {"ksparse": own, "ksparse dictionary, OMP codes": omp,
            "scikit-learn MiniBatchDictionaryLearning": sklearn_curve(X, X_eval, budget),
            "K-SVD (reference, approximate)": ksvd_curve(X, X_eval, budget)}
    results["curves"] = {name: curve for name, (curve, _) in runs.items()}
    results["training_calls"] = {name: calls for name, (_, calls) in runs.items()}
    marks = [budget / 10, budget / 3, budget]
    results["at_budget"] = {name: {f"{b:g}": at_budget(c, b) for b in marks}
                            for name, c in results["curves"].items()}
    results["loadavg_after"] = list(os.getloadavg())
    return results


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in results["curves"].items():
        t, e = zip(*curve, strict=True)
        ax.plot(t, e, marker="o", ms=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("training wall time (s)")
    ax.set_ylabel("test MSE per pixel (k = %d)" % results["k"])
    ax.set_title(f"MNIST, {results['n_train']} images, H = {results['H']}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(results):
    marks = list(next(iter(results["at_budget"].values())))
    rows = [[name] + [("—" if v is None else f"{v:.4f}") for v in d.values()]
            + [results["training_calls"][name]] for name, d in results["at_budget"].items()]
    header = ["method"] + [f"error within {float(m):.3g} s" for m in marks] + ["epochs or iterations run"]
    return common.table(header, rows)


def main(argv=None):
    args = common.parse_args(__doc__, argv)
    results = run(args.quick, args.threads, args.data_dir)
    print(report(results))
    if not args.no_save:
        common.save_results("dictionary", results)
        plot(results, os.path.join(common.ROOT, "docs", "figures", "bench_dictionary.png"))
    return results


if __name__ == "__main__":
    main()
