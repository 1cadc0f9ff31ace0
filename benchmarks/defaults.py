"""The default settings, measured: does ``KSparseAutoencoder()`` beat raw pixels?

``python -m benchmarks.defaults`` fits the estimator with its defaults (those of
``ksparse.config.AutoencoderConfig``, which ``ksparse train`` shares) on the bundled digits
for seeds 0-4, and on the first 3,000 MNIST training images (tested on the first 3,000 test
images) for seeds 0-1 when ``$KSPARSE_DATA`` holds MNIST. Then it fits scikit-learn's
``LogisticRegression(max_iter=1000)`` on the alpha k features and on the raw pixels, as
``ksparse train`` does, and writes ``docs/defaults.json``; ``docs/training.md`` (section 5) quotes it.
The same runs with ``paper=True`` (the paper's model on raw inputs) go under ``"paper"``.
Rerun it after changing a default (``--no-save``: print only; the file is written once, at
the end). About two minutes on one busy core.
"""

import json
import os
import time
import warnings

import numpy as np

from benchmarks.common import ROOT, machine, write_json
from ksparse.argparsing import HintParser

OUT = os.path.join(ROOT, "docs", "defaults.json")
DIGITS_SEEDS = (0, 1, 2, 3, 4)
MNIST_SEEDS = (0, 1)
MNIST_N_TRAIN, MNIST_N_TEST = 3000, 3000


def test_error(F_train, y_train, F_test, y_test):
    """Test error of ``LogisticRegression(max_iter=1000)`` (the classifier of ``ksparse train``)."""
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = LogisticRegression(max_iter=1000).fit(F_train, y_train)
    return float(1.0 - clf.score(F_test, y_test))


def measure(name, X, y, X_test, y_test, seeds, **params):
    """Fit the default estimator (changed by ``params``) for each seed; its features' and the raw
    pixels' test errors."""
    from ksparse import KSparseAutoencoder

    raw = test_error(X, y, X_test, y_test)
    runs = []
    for seed in seeds:
        cpu = time.process_time()
        est = KSparseAutoencoder(random_state=seed, **params).fit(X)
        fit_cpu = time.process_time() - cpu
        err = test_error(est.transform(X), y, est.transform(X_test), y_test)
        runs.append({"random_state": seed, "features_test_error": err, "fit_cpu_s": round(fit_cpu, 2),
                     "dead_fraction": est.history_[-1]["dead_fraction"], "score": est.score(X),
                     "fvu": est.history_[-1]["fvu"]})
        print(f"{name} seed {seed}: {100 * err:.2f}% (raw {100 * raw:.2f}%), fit {fit_cpu:.1f} s CPU",
              flush=True)
    errors = [r["features_test_error"] for r in runs]
    return {"n_train": len(X), "n_test": len(X_test), "d": X.shape[1], "raw_test_error": raw,
            "features_test_error_mean": float(np.mean(errors)), "features_test_error_min": min(errors),
            "features_test_error_max": max(errors), "beats_raw_every_seed": all(e < raw for e in errors),
            "runs": runs}


def main(argv=None):
    """Parse ``argv`` (``--help``, ``--no-save``), measure, and only then write docs/defaults.json."""
    import argparse

    p = HintParser(prog="python -m benchmarks.defaults", description=__doc__,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--no-save", action="store_true", help="print the result; do not write docs/defaults.json")
    args = p.parse_args(argv)
    result = measure_all()
    if not args.no_save:
        write_json(OUT, result)  # atomically, after the whole run
        print(f"wrote {OUT} in {result['wall_time_s']} s")
    else:
        print(json.dumps(result, indent=1))
    return result


def measure_all():
    """The record of docs/defaults.json: every data set, the defaults and paper=True."""
    from ksparse import KSparseAutoencoder
    from ksparse.datasets import load_dataset, load_digits

    started = time.perf_counter()
    result = {"command": "python -m benchmarks.defaults", "defaults": KSparseAutoencoder().get_params(),
              "classifier": "sklearn LogisticRegression(max_iter=1000) on the alpha k features "
                            "(transform) and on the raw pixels",
              "machine": machine(), "data": {}}
    result["defaults"].pop("callback")
    ds = load_digits()
    sets = [("digits", (ds.X_train, ds.y_train, ds.X_test, ds.y_test), DIGITS_SEEDS)]
    if os.environ.get("KSPARSE_DATA"):
        mnist = load_dataset("mnist", n_train=MNIST_N_TRAIN, n_test=MNIST_N_TEST)
        sets.append((f"mnist (first {MNIST_N_TRAIN} train, {MNIST_N_TEST} test)",
                     (mnist.X_train[:MNIST_N_TRAIN], mnist.y_train[:MNIST_N_TRAIN],
                      mnist.X_test[:MNIST_N_TEST], mnist.y_test[:MNIST_N_TEST]), MNIST_SEEDS))
    for name, data, seeds in sets:  # the defaults, then the paper's setting (paper=True) beside them
        result["data"][name] = measure(name.split()[0], *data, seeds)
        result.setdefault("paper", {})[name] = measure(name.split()[0] + " paper=True", *data, seeds,
                                                       paper=True)
    result["wall_time_s"] = round(time.perf_counter() - started, 1)
    return result


if __name__ == "__main__":
    main()
