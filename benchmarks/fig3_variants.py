"""Fig. 3's settings, one change at a time: why the defaults fail on CIFAR-10 patches.

    python -m benchmarks.fig3_variants [--quick] [--only NAME,...]

Trains H = 1000, k = 50 autoencoders on the quick profile's CIFAR-10 patches (100,000
LCN + ZCA whitened 8x8 patches, 20 epochs, batch 128, k falling from 100 over the first half,
as ``ksparse reproduce fig3 --profile quick``) in variants of the paper's setting and of the
library's defaults, and records for each: divergence, dead units and resampling per epoch,
FVU, the training time, and Fig. 3's two statistics of the filters
(:func:`ksparse.reproduce.figures.filter_statistics`). Writes ``docs/fig3_variants.json`` and
``docs/fig3_variants.md``. One thread (``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1``).
"""

import argparse
import json
import os
import time

import numpy as np

from benchmarks import common

# name -> (what it changes, AutoencoderConfig fields, factor on the patches)
VARIANTS = {
    "paper": ("the paper's setting on the raw whitened patches (lr 0.01)", {"paper": True, "lr": 0.01}, 1.0),
    "paper_lr_decay": ("the paper's setting, lr falling linearly to 0", {"paper": True, "lr": 0.01,
                                                                         "lr_final": 0.0}, 1.0),
    "paper_unit_scale": ("the paper's model on the patches divided by s (mean squared distance to "
                         "the mean 1) at lr 0.01 s^2: the same steps of W, the biases' steps s^2 "
                         "times larger relative to W's", {"paper": True, "lr": "s2"}, "1/s"),
    "defaults": ("the library's defaults", {"paper": False}, 1.0),
    "defaults_no_resample": ("the defaults without resampling", {"paper": False, "resample": False}, 1.0),
    "defaults_one_bias_rate": ("the defaults with the biases at W's rate (bias_lr_ratio 1, D13 off; the "
                               "defaults before D13)", {"paper": False, "bias_lr_ratio": 1.0}, 1.0),
    "defaults_lr_0.0625": ("the defaults at the rate the divergence message advises (lr 0.0625)",
                           {"paper": False, "lr": 0.0625}, 1.0),
    # lr 0.5 at batch 128 classified better on Table 1's k25d (docs/table1_defaults.md)
    "defaults_lr_0.5": ("the defaults at lr 0.5 (batch 128 at the step per sample of batch 64)",
                        {"paper": False, "lr": 0.5}, 1.0),
    "defaults_lr_0.5_bias_0.05": ("the defaults at lr 0.5 with the biases at 0.05 of it (their rate at "
                                  "the defaults, 0.025)", {"paper": False, "lr": 0.5, "bias_lr_ratio": 0.05},
                                  1.0),
}
PATCHES, EPOCHS = 100000, 20


def run_variant(X, shape, name, epochs, seed=0):
    """Train one variant; its record (the statistics, or the divergence message)."""
    from ksparse.reproduce._common import QUICK, autoencoder_config
    from ksparse.reproduce.figures import _used, filter_statistics
    from ksparse.training.loop import TrainingDiverged, encoder_params, fit
    from ksparse.training.remedies import data_scale

    what, changes, factor = VARIANTS[name]
    s = float(data_scale(X))
    changes = dict(changes, lr=0.01 * s * s if changes.get("lr") == "s2" else changes.get("lr"))
    Xv = X / s if factor == "1/s" else X
    config = autoencoder_config(QUICK, 50, epochs, seed, **changes)
    history, t0, cpu = [], time.perf_counter(), time.process_time()
    record = {"what": what, "config": config.to_dict(), "data_factor": factor, "s": s}
    try:
        state = fit(Xv, config, callback=history.append)
    except TrainingDiverged as e:
        return dict(record, diverged=str(e), history=e.state.history)
    record["seconds"] = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - cpu}
    W_enc, b_enc = encoder_params(state)
    used = _used({"W_enc": W_enc, "b_enc": b_enc}, Xv, 50)
    stats = filter_statistics(np.asarray(state.params["W"]), shape, used, seed)
    keep = ("epoch", "k", "lr", "fvu", "dead_fraction", "dead_window", "resampled")
    return dict(record, history=[{n: h.get(n) for n in keep} for h in history], **stats)


def report(results):
    rows = []
    for name, r in results["variants"].items():
        last = r["history"][-1] if r["history"] else {}
        if "diverged" in r:
            rows.append([name, r["what"], f"diverged in epoch {len(r['history']) + 1}", "-", "-",
                         last.get("resampled", "-"), "-", "-", "-"])
            continue
        local = r["fraction_below_1st_percentile_of_random_spread"]
        oriented = r["fraction_above_99th_percentile_of_random_selectivity"]
        rows.append([name, r["what"], len(r["history"]), f"{last['fvu']:.4f}", f"{last['dead_fraction']:.3f}",
                     last["resampled"], f"{r['seconds']['wall']:.0f} s ({r['seconds']['cpu']:.0f} s)",
                     f"{r['n_used_filters']}", f"{100 * local:.1f}% / {100 * oriented:.1f}%"])
    header = ["variant", "change", "epochs", "FVU (last epoch)", "dead (last epoch)", "units resampled",
              "training: wall (CPU)", "used filters", "localised / oriented (vs 99% of random)"]
    return common.table(header, rows)


def main(argv=None):
    from ksparse.datasets import load_dataset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="20,000 patches, 4 epochs (development)")
    p.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variants")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args(argv)
    n, epochs = (20000, 4) if args.quick else (PATCHES, EPOCHS)
    ds = load_dataset("cifar10-patches", data_dir=args.data_dir, n_patches=n, n_test_patches=0,
                      random_state=0)
    results = {"machine": common.machine(), "n_patches": n, "epochs": epochs,
               "threads": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
               "variants": {}}
    path = os.path.join(common.ROOT, "docs", "fig3_variants.json")
    if os.path.exists(path) and not args.quick:  # keep the variants not rerun
        results["variants"] = json.load(open(path)).get("variants", {})
    for name in args.only.split(","):
        results["variants"][name] = run_variant(ds.X_train, tuple(ds.image_shape), name, epochs)
        print(name, {k: v for k, v in results["variants"][name].items() if k not in ("history", "config")},
              flush=True)
    results["loadavg_after"] = common.loadavg()
    text = report(results)
    print(text)
    if not args.no_save:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        md = [f"# Fig. 3's settings, one change at a time ({when})",
              "", f"`python -m benchmarks.fig3_variants` on {n} CIFAR-10 patches, {epochs} epochs, H = 1000, "
              f"k = 50; load average at the start {results['machine'].get('loadavg')}, at the end "
              f"{results['loadavg_after']}.", "", text, ""]
        common.write_report(path, results, "\n".join(md))
    return results


if __name__ == "__main__":
    main()
