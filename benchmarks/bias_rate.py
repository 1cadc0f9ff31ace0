"""D13's choice: the biases' learning rate relative to W's on digits, MNIST and CIFAR-10 patches.

    python -m benchmarks.bias_rate [--ratios 1,0.1,0.03] [--data digits,mnist,cifar]

Trains the defaults (every option at its default but ``bias_lr_ratio``) on the 8x8 digits
(the estimator's defaults, 30 epochs), the first 20,000 MNIST training images (H = 1000,
k = 25, batch 128, 10 epochs) and Fig. 3's 100,000 CIFAR-10 patches (the quick profile:
H = 1000, k = 50 falling from 100, batch 128, 20 epochs), and records for each ratio:
divergence, the last epoch's training FVU, dead units and units resampled, the wall time,
and on the patches Fig. 3's two filter statistics. Writes ``docs/bias_rate.json`` and
``docs/bias_rate.md``. One thread (``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1``).
"""

import os
import time

import numpy as np

from benchmarks import common
from ksparse.argparsing import HintParser


def _data(name):
    from ksparse.datasets import load_dataset
    from ksparse.reproduce._common import QUICK, autoencoder_config

    if name == "digits":
        return load_dataset("digits").X_train, {"max_iter": 30}, None
    if name == "mnist":
        X = load_dataset("mnist").X_train[:20000]
        return X, {"n_hidden": 1000, "k": 25, "max_iter": 10, "batch_size": 128}, None
    ds = load_dataset("cifar10-patches", n_patches=100000, n_test_patches=0, random_state=0)
    config = autoencoder_config(QUICK, 50, 20, 0, paper=False, lr=None).to_dict()
    return ds.X_train, config, tuple(ds.image_shape)


def run(X, config, shape, ratio):
    """One training at ``bias_lr_ratio = ratio``: its record (or the divergence message)."""
    from ksparse.reproduce.figures import _used, filter_statistics
    from ksparse.training.loop import TrainingDiverged, encoder_params, fit

    t0 = time.perf_counter()
    try:
        state = fit(X, dict(config, bias_lr_ratio=ratio))
    except TrainingDiverged as e:
        return {"ratio": ratio, "diverged": str(e), "epochs": len(e.state.history)}
    last = state.history[-1]
    record = {"ratio": ratio, "seconds": time.perf_counter() - t0, "epochs": len(state.history),
              **{n: last[n] for n in ("fvu", "dead_fraction", "dead_window", "resampled")}}
    if shape is not None:
        W_enc, b_enc = encoder_params(state)
        used = _used({"W_enc": W_enc, "b_enc": b_enc}, X, config["k"])
        record.update(filter_statistics(np.asarray(state.params["W"]), shape, used, 0))
    return record


def report(results):
    rows = []
    for name, records in results["data"].items():
        for r in records:
            if "diverged" in r:
                rows.append([name, r["ratio"], f"diverged in epoch {r['epochs'] + 1}"] + ["-"] * 5)
                continue
            stats = "-" if "n_used_filters" not in r else (
                f"{100 * r['fraction_below_1st_percentile_of_random_spread']:.1f}% / "
                f"{100 * r['fraction_above_99th_percentile_of_random_selectivity']:.1f}% "
                f"({r['n_used_filters']} used)")
            rows.append([name, r["ratio"], r["epochs"], f"{r['fvu']:.4f}", f"{r['dead_fraction']:.3f}",
                         r["resampled"], f"{r['seconds']:.0f} s", stats])
    header = ["data", "bias_lr_ratio", "epochs", "train FVU (last epoch)", "dead (last epoch)",
              "units resampled", "wall", "localised / oriented (Fig. 3)"]
    return common.table(header, rows)


def main(argv=None):
    p = HintParser(description=__doc__.splitlines()[0])
    p.add_argument("--ratios", default="1,0.1,0.03",
                   help="comma-separated bias_lr_ratio values to train with (default: 1,0.1,0.03)")
    p.add_argument("--data", default="digits,mnist,cifar",
                   help="comma-separated data sets: digits, mnist, cifar (default: all three)")
    p.add_argument("--no-save", action="store_true", help="print only; do not write docs/bias_rate.*")
    args = p.parse_args(argv)
    results = {"machine": common.machine(), "threads": {v: os.environ.get(v) for v in
                                                        ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}, "data": {}}
    for name in args.data.split(","):
        X, config, shape = _data(name)
        results["data"][name] = []
        for ratio in (float(r) for r in args.ratios.split(",")):
            results["data"][name].append(run(X, config, shape, ratio))
            print(name, results["data"][name][-1], flush=True)
    text = report(results)
    print(text)
    if not args.no_save:
        path = os.path.join(common.ROOT, "docs", "bias_rate.json")
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        md = [f"# The biases' learning rate, D13 ({when})", "",
              f"`python -m benchmarks.bias_rate --ratios {args.ratios} --data {args.data}`; load average at "
              f"the start {results['machine'].get('loadavg')}.", "", text, ""]
        common.write_report(path, results, "\n".join(md))
    return results


if __name__ == "__main__":
    main()
