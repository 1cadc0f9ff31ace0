"""Encoding: the ksparse encoder against one product of its shape, and against OMP.

    python -m benchmarks.encode --product [--quick]   # encode / one product, 1 and 2 threads
    python -m benchmarks.encode [--quick] [--threads 2]   # against scikit-learn and reference OMP

``--product`` (issue #13, item 4): ``KSparseAutoencoder.transform`` of the 10,000 MNIST test
images (float32, and float64 as users often pass them) with a model trained by ksparse for one
epoch (H = 1000 and 4000, k = 25, alpha = 3, so 75 units per row), and the kernel
``ksparse.kernels.encode.encode`` alone (no input checks, scaling or D9), against one product
``x @ W`` of the same shape. Each method runs in its
own block of calls (as an epoch would), blocks alternate over several rounds; each block
is preceded by untimed calls of its own method for ``common.SETTLE_S`` seconds, so that it
does not start while the previous block's BLAS threads still spin; figures are
min and median per call, in wall time and (one thread) in process CPU time, with the load
average before and after. It also records the encoder's peak memory beyond its output
(tracemalloc) and writes docs/encode_product.json and docs/encode_product.md.

On an MNIST dictionary learned by ksparse (H = 1000 and 4000, k = 25), encode MNIST test
images with h = supp_k(W^T x + b) (Sec. 2.2), with scikit-learn's ``orthogonal_mp_gram``
(Gram matrix precomputed, W^T x computed in the timed call) and with ``reference.omp.
batch_omp``, both on the unit-norm columns of the same W. (The encoder selects with
``ksparse.kernels.fast.supp_k``, the compiled top-k when numba is installed.) The ksparse encoder
encodes all 10,000 test images per call; OMP is slow and encodes the first ``n_omp``. Figures
are per-round ratios of the time per image to the ksparse encoder's, medians over rounds;
the errors compare the methods on the same first ``n_omp`` images.
"""

import json
import os
import sys
import time

import numpy as np

from benchmarks import common
from ksparse.io import atomic_write
from ksparse.kernels.encode import default_block_rows, encode
from ksparse.training.loop import fit

K = 25
ALPHA = 3.0


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
    W64 = W.astype(np.float64)
    Wn = W64 / np.linalg.norm(W64, axis=0)  # unit columns in float64 (reference.omp checks them)
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


def _blocks(fns, rounds, reps, clock):
    """Each callable ``reps`` times in a row per round (its own block); per-call seconds per round.

    Before each block, untimed calls of the same method for ``common.SETTLE_S`` seconds
    (:func:`benchmarks.common.settle`); the first of them, which follows the previous
    block's method, is returned too (wall seconds): ``(times, first_calls)``.
    """
    out = {n: [] for n in fns}
    first = {n: [] for n in fns}
    for f in fns.values():
        f()  # warm-up: compile, fault in the pages
    for _ in range(rounds):
        for n, f in fns.items():
            first[n].append(common.settle(f))
            t0 = clock()
            for _ in range(reps):
                f()
            out[n].append((clock() - t0) / reps)
    return {n: np.array(t) for n, t in out.items()}, {n: np.array(t) for n, t in first.items()}


def _peak_beyond_output(f, out_bytes):
    """Peak bytes NumPy allocated during ``f()`` (tracemalloc), less the output's own bytes."""
    import tracemalloc

    tracemalloc.start()
    tracemalloc.reset_peak()
    f()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - out_bytes


def against_product(X, est, threads, rounds, reps):
    """``est.transform`` and the kernel ``encode`` (dense and top-k) against one product x @ W of
    the same shape; wall and CPU times."""
    W, b = (np.asarray(est.state_.params[n]) for n in ("W", "b"))
    X64 = X.astype(np.float64)
    common.set_threads(threads)
    fns = {"product x @ W": lambda: X @ W,
           "transform, dense": lambda: est.transform(X),
           "transform, topk": lambda: est.transform(X, output="topk"),
           "transform, topk, float64 X": lambda: est.transform(X64, output="topk"),
           "encode, dense": lambda: encode(X, W, b, K, ALPHA),
           "encode, topk": lambda: encode(X, W, b, K, ALPHA, output="topk")}
    res = {"threads": threads, "loadavg_before": list(os.getloadavg())}
    clocks = {"wall": time.perf_counter}
    if threads == 1:
        clocks["cpu"] = time.process_time
    for clock_name, clock in clocks.items():
        t, first = _blocks(fns, rounds, reps, clock)
        base = t["product x @ W"]
        res[clock_name] = {n: {"ms_min": float(v.min() * 1e3), "ms_median": float(np.median(v) * 1e3),
                               "ratio_min": float(v.min() / base.min()),
                               "ratio_median": float(np.median(v) / np.median(base))}
                           for n, v in t.items()}
        if clock_name == "wall":  # the settling calls are clocked in wall time
            for n, m in res[clock_name].items():
                m["first_call_ratio_median"] = float(np.median(first[n]) / np.median(base))
    res["loadavg_after"] = list(os.getloadavg())
    return res


def _product_case(X, est, quick):
    """Timings on 1 and 2 threads and peak memory of the encoder for one dictionary."""
    W, b = (np.asarray(est.state_.params[n]) for n in ("W", "b"))
    H = W.shape[1]
    case = {"H": H, "block_rows": default_block_rows(H), "timings": [],
            "extra_bytes_dense": _peak_beyond_output(lambda: encode(X, W, b, K, ALPHA), X.shape[0] * H * 4),
            "extra_bytes_topk": _peak_beyond_output(lambda: encode(X, W, b, K, ALPHA, output="topk"),
                                                    X.shape[0] * int(K * ALPHA) * 8)}
    for threads in (1, 2):
        case["timings"].append(against_product(X, est, threads, rounds=3 if quick else 5,
                                               reps=2 if quick else 5))
    return case


def run_product(quick=False, data_dir=None):
    """The ``--product`` benchmark for H = 1000 and 4000 on 1 and 2 threads."""
    X_train, X_test = mnist(5000 if quick else 10000, 2000 if quick else 10000, data_dir)
    results = {"machine": common.machine(), "k": K, "alpha": ALPHA, "n": X_test.shape[0],
               "d": X_test.shape[1], "dtype": "float32", "reps": 2 if quick else 5,
               "settle_s": common.SETTLE_S, "cases": []}
    from ksparse import KSparseAutoencoder

    for H in (1000, 4000):
        est = KSparseAutoencoder(n_hidden=H, k=K, alpha=ALPHA, max_iter=1, batch_size=128,
                                 random_state=0, progress=False).fit(X_train)
        results["cases"].append(_product_case(X_test, est, quick))
    return results


def report_product(results):
    rows = []
    for c in results["cases"]:
        for t in c["timings"]:
            for clock in ("wall", "cpu"):
                if clock not in t:
                    continue
                for name, m in t[clock].items():
                    rows.append([c["H"], t["threads"], clock, name, f"{m['ms_min']:.1f}",
                                 f"{m['ms_median']:.1f}", f"{m['ratio_min']:.2f}×",
                                 f"{m['ratio_median']:.2f}×",
                                 f"{m['first_call_ratio_median']:.2f}×" if "first_call_ratio_median" in m
                                 else "",
                                 f"{t['loadavg_before'][0]:.1f} / {t['loadavg_after'][0]:.1f}"])
    header = ["H", "threads", "clock", "method", "ms min", "ms median", "/ product (min)",
              "/ product (median)", "first call of the block / product (median)", "load before / after"]
    r = results
    lines = [f"# Encoding against one product ({r['machine']['date']})", "",
             f"`python -m benchmarks.encode --product`: {r['n']} MNIST test images (d = {r['d']}), "
             f"float32, k = {r['k']}, alpha = {r['alpha']} ({int(r['k'] * r['alpha'])} units per row); "
             f"CPU: {r['machine']['cpu']}, {r['machine']['cores']} cores. Each block of {r.get('reps', 5)} "
             f"calls is preceded by untimed calls of the same method for {r.get('settle_s', 0.2)} s; the "
             "'first call' column times the first of those, which starts right after the previous "
             "block's method (on two threads, after a product, while OpenBLAS's second thread still "
             "polls for work).", "",
             common.table(header, rows), ""]
    for c in results["cases"]:
        mib = {n: c[n] / 2**20 for n in ("extra_bytes_dense", "extra_bytes_topk")}
        lines.append(f"- H = {c['H']}: blocks of {c['block_rows']} rows; peak memory beyond the output "
                     f"{mib['extra_bytes_dense']:.1f} MiB (dense), {mib['extra_bytes_topk']:.1f} MiB (topk); "
                     f"one block of z is {c['block_rows'] * c['H'] * 4 / 2**20:.1f} MiB.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--product" in argv:
        argv.remove("--product")
        args = common.parse_args(__doc__, argv)
        results = run_product(args.quick, args.data_dir)
        text = report_product(results)
        print(text)
        if not args.no_save:
            for ext, data in (("json", json.dumps(results, indent=1)), ("md", text)):
                atomic_write(os.path.join(common.ROOT, "docs", f"encode_product.{ext}"),
                             lambda f, data=data: f.write(data.encode()))
        return results
    args = common.parse_args(__doc__, argv)
    results = run(args.quick, args.threads, args.data_dir)
    print(report(results))
    if not args.no_save:
        common.save_results("encode", results)
    return results


if __name__ == "__main__":
    main()
