"""Encoding: the ksparse encoder against scikit-learn OMP and reference/ batch OMP.

    python -m benchmarks.encode [--quick] [--threads 2]

On an MNIST dictionary learned by ksparse (H = 1000 and 4000, k = 25), encode MNIST test
images with h = supp_k(W^T x + b) (Sec. 2.2), with scikit-learn's ``orthogonal_mp_gram``
(Gram matrix precomputed, W^T x computed in the timed call) and with ``reference.omp.
batch_omp``, both on the unit-norm columns of the same W. (The encoder selects with
``ksparse.kernels.fast.supp_k``, the compiled top-k when numba is installed.) The ksparse encoder
encodes all 10,000 test images per call; OMP is slow and encodes the first ``n_omp``. Figures
are per-round ratios of the time per image to the ksparse encoder's, medians over rounds;
the errors compare the methods on the same first ``n_omp`` images.
"""

import os

import numpy as np

from benchmarks import common
from ksparse.kernels.encode import encode
from ksparse.training.loop import fit

K = 25


def mnist(n_train, n_test, data_dir=None):
    from ksparse.datasets import load_dataset

    ds = load_dataset("mnist", data_dir=data_dir, n_train=n_train, n_test=n_test)
    return ds.X_train.astype(np.float32), ds.X_test.astype(np.float32)


def learn_dictionary(X, H, n_epochs, seed=0):
    """A k-sparse autoencoder dictionary, trained by ksparse with its defaults otherwise."""
    state = fit(X, {"n_hidden": H, "k": K, "alpha": 1.0, "max_iter": n_epochs, "batch_size": 128,
                    "random_state": seed})
    return {n: np.asarray(a) for n, a in state.params.items()}, state.history[-1]


def _mse(x, x_hat):
    return float(np.mean((x_hat - x) ** 2))


def compare(X, params, n_omp, rounds):
    """Time per image and error of each encoder: ksparse on all of X, OMP on X[:n_omp]."""
    from sklearn.linear_model import orthogonal_mp_gram

    from reference.omp import batch_omp

    W, b, b_prime = params["W"], params["b"], params["b_prime"]
    Wn = (W / np.linalg.norm(W, axis=0)).astype(np.float64)
    gram = Wn.T @ Wn
    xs64 = X[:n_omp].astype(np.float64)
    out = {}
    fns = {
        "ksparse encode": lambda: out.__setitem__("ksparse encode", encode(X, W, b, K)),
        "scikit-learn orthogonal_mp_gram": lambda: out.__setitem__(
            "scikit-learn orthogonal_mp_gram", orthogonal_mp_gram(gram, Wn.T @ xs64.T, n_nonzero_coefs=K).T),
        "reference batch_omp": lambda: out.__setitem__(
            "reference batch_omp", batch_omp(xs64, Wn, K, G=gram)[0]),
    }
    n_images = {"ksparse encode": X.shape[0]}
    times = common.interleaved(fns, rounds, warmup=1)
    per_image = {n: t / n_images.get(n, n_omp) for n, t in times.items()}
    res = common.ratios(per_image, "ksparse encode")
    for name, m in res.items():
        m["images"] = n_images.get(name, n_omp)
        m["us_per_image"] = m.pop("ms") * 1e3
        del m["ms_min"]
    h = out["ksparse encode"]
    res["ksparse encode"]["mse_per_pixel"] = _mse(X[:n_omp], h[:n_omp] @ W.T + b_prime)
    res["ksparse encode"]["mse_all_images"] = _mse(X, h @ W.T + b_prime)
    for name in ("scikit-learn orthogonal_mp_gram", "reference batch_omp"):
        res[name]["mse_per_pixel"] = _mse(xs64, out[name] @ Wn.T)
    return res


def run(quick=False, threads=2, data_dir=None):
    common.set_threads(threads)
    n_train, n_test = (5000, 2000) if quick else (20000, 10000)
    X_train, X_test = mnist(n_train, n_test, data_dir)
    results = {"machine": common.machine(), "threads": threads, "k": K, "n_train": n_train,
               "n_test": n_test, "cases": []}
    for H, n_omp in ((1000, 300 if quick else 1000), (4000, 50 if quick else 200)):
        params, last = learn_dictionary(X_train, H, n_epochs=2 if quick else 5)
        res = compare(X_test, params, n_omp, rounds=2 if quick else 3)
        results["cases"].append({"H": H, "n_omp": n_omp, "train_mse_per_pixel": last["mse"],
                                 "methods": res})
    results["loadavg_after"] = list(os.getloadavg())
    return results


def report(results):
    rows = []
    for c in results["cases"]:
        for name, m in c["methods"].items():
            rows.append([c["H"], name, m["images"], f"{m['us_per_image']:.1f}", f"{m['ratio']:.1f}×",
                         f"{m['mse_per_pixel']:.4f}"])
    header = ["H", "encoder", "images timed", "µs per image", "time per image / ksparse",
              f"MSE per pixel (first {results['cases'][0]['n_omp']} or {results['cases'][-1]['n_omp']})"]
    text = [common.table(header, rows), ""]
    for c in results["cases"]:
        m = c["methods"]["ksparse encode"]
        text.append(f"- H={c['H']}: MSE per pixel of the ksparse encoder over all {m['images']} "
                    f"test images: {m['mse_all_images']:.4f}; OMP errors are on the first {c['n_omp']}.")
    return "\n".join(text)


def main(argv=None):
    args = common.parse_args(__doc__, argv)
    results = run(args.quick, args.threads, args.data_dir)
    print(report(results))
    if not args.no_save:
        common.save_results("encode", results)
    return results


if __name__ == "__main__":
    main()
