"""Which remedies for dead units work: each combination on digits, MNIST and CIFAR-10 patches.

    python -m benchmarks.remedies [--out docs] [--data-dir DIR] [--epochs-scale 1.0]

For each data set it trains :func:`ksparse.training.loop.fit` with the paper's model on the
raw inputs (``paper=True``, lr 0.01) and, on the scaled inputs with D9's pre-encoder bias,
every combination of AuxK (D10) and resampling, at two learning rates (AuxK, the slowest,
at the smaller one only). It records the
training and test FVU (codes with k units, the training sparsity), the fraction of units
in no support during the last epoch and during the last T samples, the units resampled,
and the wall time. Writes ``OUT/remedies.json`` and ``OUT/remedies.md``; the defaults in
:data:`ksparse.training.loop.DEFAULTS` are chosen from them (``docs/training.md``).
"""

import json
import os
import time

import numpy as np

from benchmarks import common
from ksparse.argparsing import HintParser

SETTINGS = [  # name, fit options
    ("paper (raw inputs, no remedies)", {"paper": True, "lr": 0.01}),
    ("scale + D9", {"c_aux": 0.0, "resample": False}),
    ("scale + D9 + AuxK", {"c_aux": 1 / 32, "resample": False}),
    ("scale + D9 + resample", {"c_aux": 0.0}),
    ("scale + D9 + AuxK + resample", {"c_aux": 1 / 32}),
]
LRS = (0.25, 0.5)


def datasets(data_dir, epochs_scale):
    """name -> (X_train, X_test, base fit options)."""
    from ksparse.datasets import load_dataset

    out = {}
    ds = load_dataset("digits")
    out["digits"] = (ds.X_train, ds.X_test, {"n_hidden": 1000, "k": 25, "max_iter": 30})
    ds = load_dataset("mnist", data_dir=data_dir, n_train=20000)
    out["mnist-20k"] = (ds.X_train, ds.X_test[:5000], {"n_hidden": 1000, "k": 25, "max_iter": 10})
    ds = load_dataset("cifar10-patches", data_dir=data_dir, n_patches=25000)
    n = 20000
    out["cifar10-patches"] = (ds.X_train[:n], ds.X_train[n:], {"n_hidden": 1000, "k": 50, "max_iter": 10})
    for _, _, base in out.values():
        base["max_iter"] = max(1, int(round(base["max_iter"] * epochs_scale)))
    return out


def test_fvu(state, X):
    """FVU of the codes with k units on held-out X, in the data's units."""
    from ksparse.kernels.encode import encode
    from ksparse.nn.layers import decode_forward
    from ksparse.training.loop import model_input, uncentered

    p = {n: np.asarray(a, dtype=np.float64) for n, a in state.params.items()}
    h = encode(model_input(X, state), p["W"], p["b"], state.config.k)
    x_hat = uncentered(decode_forward(h, p["W"], p["b_prime"])[0], state)
    return float(((x_hat - X) ** 2).sum(axis=1).mean() / ((X - X.mean(axis=0)) ** 2).sum(axis=1).mean())


def run_one(X, X_test, options):
    from ksparse.training.loop import TrainingDiverged, fit

    t0 = time.perf_counter()
    try:
        state = fit(X, dict(options, random_state=0, alpha=1.0, batch_size=128))
    except TrainingDiverged as e:
        return {"diverged": str(e), "seconds": time.perf_counter() - t0}
    last = state.history[-1]
    return {"train_fvu": last["fvu"], "test_fvu": test_fvu(state, X_test),
            "dead_epoch": last["dead_fraction"],
            "dead_window": last["dead_window"], "resampled": last["resampled"],
            "seconds": time.perf_counter() - t0}


def markdown(results):
    lines = ["# Remedies for dead units: measured", "",
             f"Written by `{results['command']}` ({results['when']}, {results['threads']} thread).", ""]
    for name, data in results["datasets"].items():
        lines += [f"## {name}: {data['shape']}, {json.dumps(data['base'])}", "",
                  "| setting | lr | train FVU | test FVU | dead (last epoch) | dead (last T samples) "
                  "| resampled | seconds |", "|---|---|---|---|---|---|---|---|"]
        for r in data["runs"]:
            if "diverged" in r:
                lines.append(f"| {r['setting']} | {r['lr']} | diverged | | | | | {r['seconds']:.0f} |")
                continue
            lines.append(f"| {r['setting']} | {r['lr']} | {r['train_fvu']:.4f} | {r['test_fvu']:.4f} | "
                         f"{r['dead_epoch']:.3f} | {r['dead_window']:.3f} | {r['resampled']} | "
                         f"{r['seconds']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    from ksparse.io import atomic_write, folder_argument, path_argument

    p = HintParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=folder_argument, default=os.path.join(common.ROOT, "docs"),
                   help="folder for remedies.json and remedies.md (default: docs)")
    p.add_argument("--data-dir", type=path_argument, default=None,
                   help="data folder (default: $KSPARSE_DATA, else ~/.cache/ksparse)")
    p.add_argument("--threads", type=int, default=1, help="BLAS and numba threads (default: 1)")
    p.add_argument("--epochs-scale", type=float, default=1.0,
                   help="multiply every data set's epochs by this (default: 1.0)")
    p.add_argument("--only", default=None, help="comma-separated data set names")
    args = p.parse_args(argv)
    common.set_threads(args.threads)
    results = {"command": "python -m benchmarks.remedies " + " ".join(argv or []),
               "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "threads": args.threads,
               "datasets": {}}
    for name, (X, X_test, base) in datasets(args.data_dir, args.epochs_scale).items():
        if args.only and name not in args.only.split(","):
            continue
        X, X_test = np.asarray(X, np.float64), np.asarray(X_test, np.float64)
        runs = []
        for setting, options in SETTINGS:
            for lr in ([options["lr"]] if "lr" in options else LRS if "AuxK" not in setting else LRS[:1]):
                r = run_one(X, X_test, dict(base, **dict(options, lr=lr)))
                runs.append(dict(r, setting=setting, lr=lr))
                print(name, setting, lr, {k: v for k, v in r.items() if k != "diverged"}, flush=True)
        results["datasets"][name] = {"shape": list(X.shape), "base": base, "runs": runs}
    atomic_write(os.path.join(args.out, "remedies.json"),
                 lambda f: f.write(json.dumps(results, indent=1).encode()))
    atomic_write(os.path.join(args.out, "remedies.md"), lambda f: f.write(markdown(results).encode()))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
