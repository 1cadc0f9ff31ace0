"""Fig. 3's settings, one change at a time: why the defaults fail on CIFAR-10 patches.

    python -m benchmarks.fig3_variants [--quick] [--only NAME,...] [--resume]

Trains H = 1000, k = 50 autoencoders on the quick profile's CIFAR-10 patches (100,000
LCN + ZCA whitened 8x8 patches, 20 epochs, batch 128, k falling from 100 over the first half,
as ``ksparse reproduce fig3 --profile quick``) in variants of the paper's setting and of the
library's defaults, and records for each: divergence, dead units and resampling per epoch,
FVU, the training time, and Fig. 3's two statistics of the filters
(:func:`ksparse.reproduce.figures.filter_statistics`). Writes ``docs/fig3_variants.json`` and
``docs/fig3_variants.md`` after every variant, each record stamped with its command and time;
``--resume`` skips the variants the file already holds for the same patches and epochs, so
that a stopped sweep continues where it stopped. One thread
(``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1``).

A change may depend on the patches' scale s (:func:`ksparse.training.remedies.data_scale`):
``lr="s2"`` is 0.01 s^2, the paper's rate on the raw patches carried to the scaled ones (the
same steps of W), and ``bias_lr_ratio="1/s2"`` is 1 / s^2, the ratio of the biases' steps to
W's that the paper's raw setting has built in (docs/training.md, D13).
"""

import json
import os
import sys
import time

import numpy as np

from benchmarks import common
from ksparse.argparsing import HintParser
from ksparse.io import path_argument

# name -> (what it changes, AutoencoderConfig fields, factor on the patches); the rows run when D13's
# default was the constant 0.1 state it, so that they rerun as they ran
VARIANTS = {
    "paper": (
        "the paper's setting on the raw whitened patches (lr 0.01)",
        {"paper": True, "lr": 0.01}, 1.0),
    "paper_lr_decay": (
        "the paper's setting, lr falling linearly to 0",
        {"paper": True, "lr": 0.01, "lr_final": 0.0}, 1.0),
    "paper_unit_scale": (
        "the paper's model on the patches divided by s (mean squared distance to the mean 1) at "
        "lr 0.01 s^2: the same steps of W, the biases' steps s^2 times larger relative to W's",
        {"paper": True, "lr": "s2"}, "1/s"),
    "defaults": (
        "the library's defaults",
        {"paper": False}, 1.0),
    "defaults_bias_0.1": (
        "the defaults before lambda_1 (D13's ratio the constant 0.1)",
        {"paper": False, "bias_lr_ratio": 0.1}, 1.0),
    "defaults_no_resample": (
        "at bias_lr_ratio 0.1 (before lambda_1): the defaults then without resampling",
        {"paper": False, "resample": False, "bias_lr_ratio": 0.1}, 1.0),
    "defaults_one_bias_rate": (
        "the defaults with the biases at W's rate (bias_lr_ratio 1, D13 off; the defaults before "
        "D13)",
        {"paper": False, "bias_lr_ratio": 1.0}, 1.0),
    "defaults_lr_0.0625": (
        "at bias_lr_ratio 0.1 (before lambda_1): the defaults then at the rate the divergence "
        "message advises (lr 0.0625)",
        {"paper": False, "lr": 0.0625, "bias_lr_ratio": 0.1}, 1.0),
    "defaults_no_scale": (
        "at bias_lr_ratio 0.1 (before lambda_1): the defaults then without the data scale (raw "
        "whitened patches; lr None is then the paper's 0.01)",
        {"paper": False, "scale": False, "bias_lr_ratio": 0.1}, 1.0),
    "defaults_no_pre_bias": (
        "at bias_lr_ratio 0.1 (before lambda_1): the defaults then without D9 (x W + b, b' only "
        "in the decoder, started at 0)",
        {"paper": False, "pre_bias": False, "bias_lr_ratio": 0.1}, 1.0),
    "defaults_window_10x": (
        "at bias_lr_ratio 0.1 (before lambda_1): the defaults then with a ten times longer dead-"
        "unit window (T = 1000 H / k = 20000 samples)",
        {"paper": False, "dead_window": 20000, "bias_lr_ratio": 0.1}, 1.0),
    "defaults_no_step_bound": (
        "at bias_lr_ratio 0.1 (before lambda_1): the defaults then without the step bound D11",
        {"paper": False, "step_bound": False, "bias_lr_ratio": 0.1}, 1.0),
    "defaults_bias_1/s2": (
        "the defaults with the biases' ratio of the paper's raw setting (bias_lr_ratio 1 / s^2)",
        {"paper": False, "bias_lr_ratio": "1/s2"}, 1.0),
    "defaults_lr_0.5": (
        "at bias_lr_ratio 0.1 (before lambda_1): the defaults then at lr 0.5",
        {"paper": False, "lr": 0.5, "bias_lr_ratio": 0.1}, 1.0),
    "defaults_lr_s2": (
        "at bias_lr_ratio 0.1 (before lambda_1): the defaults then at the paper's steps of W (lr "
        "0.01 s^2)",
        {"paper": False, "lr": "s2", "bias_lr_ratio": 0.1}, 1.0),
    "defaults_paper_steps": (
        "the defaults at the paper's steps of W and of the biases (lr 0.01 s^2, bias_lr_ratio 1 /"
        " s^2): the remedies alone differ from the paper's row",
        {"paper": False, "lr": "s2", "bias_lr_ratio": "1/s2"}, 1.0),
    "defaults_bias_0.003": (
        "the defaults with the biases nearly still (bias_lr_ratio 0.003)",
        {"paper": False, "bias_lr_ratio": 0.003}, 1.0),
    "defaults_bias_1/s2_lr_decay": (
        "bias_lr_ratio 1 / s^2, lr falling linearly to 0",
        {"paper": False, "bias_lr_ratio": "1/s2", "lr_final": 0.0}, 1.0),
    "defaults_bias_1/s2_sigma_0.001": (
        "bias_lr_ratio 1 / s^2, initial weights of sd 0.001 (0.01)",
        {"paper": False, "bias_lr_ratio": "1/s2", "sigma": 0.001}, 1.0),
    "defaults_no_scale_lr_decay": (
        "at bias_lr_ratio 0.1 (before lambda_1): the defaults then without the data scale, lr "
        "0.01 falling linearly to 0",
        {"paper": False, "scale": False, "lr_final": 0.0, "bias_lr_ratio": 0.1}, 1.0),
    "defaults_bias_1/s2_40_epochs": (
        "bias_lr_ratio 1 / s^2, 40 epochs (twice the time)",
        {"paper": False, "bias_lr_ratio": "1/s2", "max_iter": 40}, 1.0),
    "paper_40_epochs": (
        "the paper's setting, 40 epochs (twice the time)",
        {"paper": True, "lr": 0.01, "max_iter": 40}, 1.0),
    "lambda1_no_resample": (
        "the defaults (D13's ratio lambda_1) without resampling",
        {"paper": False, "resample": False}, 1.0),
    "lambda1_no_pre_bias": (
        "the defaults (lambda_1) without D9",
        {"paper": False, "pre_bias": False}, 1.0),
    "lambda1_window_10x": (
        "the defaults (lambda_1) with T = 1000 H / k = 20000 samples",
        {"paper": False, "dead_window": 20000}, 1.0),
    "lambda1_lr_0.5": (
        "the defaults (lambda_1) at lr 0.5",
        {"paper": False, "lr": 0.5}, 1.0),
    "lambda1_no_scale": (
        "the defaults (lambda_1) without the data scale (raw patches, lr 0.01)",
        {"paper": False, "scale": False}, 1.0),
    "lambda1_40_epochs": (
        "the defaults (lambda_1), 40 epochs (twice the time)",
        {"paper": False, "max_iter": 40}, 1.0),
}
PATCHES, EPOCHS = 100000, 20


def resolve(changes, s):
    """The config fields of a variant for patches of scale ``s``: ``lr="s2"`` becomes 0.01 s^2 and
    ``bias_lr_ratio="1/s2"`` becomes 1 / s^2 (clipped to (0, 1]); ``lr`` is None when not given."""
    out = dict(changes, lr=0.01 * s * s if changes.get("lr") == "s2" else changes.get("lr"))
    if changes.get("bias_lr_ratio") == "1/s2":
        out["bias_lr_ratio"] = min(1.0, 1.0 / (s * s))
    return out


def run_variant(X, shape, name, epochs, seed=0):
    """Train one variant; its record (the statistics, or the divergence message)."""
    from ksparse.reproduce._common import QUICK, autoencoder_config
    from ksparse.reproduce.figures import _used, filter_statistics
    from ksparse.training.loop import TrainingDiverged, encoder_params, fit
    from ksparse.training.remedies import data_scale

    what, changes, factor = VARIANTS[name]
    s = float(data_scale(X))
    changes = resolve(changes, s)
    Xv = X / s if factor == "1/s" else X
    config = autoencoder_config(QUICK, 50, changes.pop("max_iter", epochs), seed, **changes)
    history, t0, cpu = [], time.perf_counter(), time.process_time()
    record = {"what": what, "config": config.to_dict(), "data_factor": factor, "s": s,
              "loadavg": {"start": common.loadavg()}}
    try:
        state = fit(Xv, config, callback=history.append)
    except TrainingDiverged as e:
        return dict(record, diverged=str(e), history=e.state.history)
    record["seconds"] = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - cpu}
    record["loadavg"]["end"] = common.loadavg()
    W_enc, b_enc = encoder_params(state)
    used = _used({"W_enc": W_enc, "b_enc": b_enc}, Xv, 50)
    W = np.asarray(state.params["W"])
    stats = filter_statistics(W, shape, used, seed)
    stats["by_activity"] = by_activity(W, shape, Xv[:10000] @ W_enc + b_enc, seed)
    stats["bias_ratio"] = state.bias_ratio
    keep = ("epoch", "k", "lr", "fvu", "dead_fraction", "dead_window", "resampled")
    return dict(record, history=[{n: h.get(n) for n in keep} for h in history], **stats)


BANDS = (0.0, 0.02, 0.05, 0.1, 1.01)  # the share of samples on which a unit is in Gamma (k / H = 0.05)


def by_activity(W, shape, Z, seed=0, k=50):
    """Fig. 3's two statistics of the filters grouped by how often their unit is in Gamma.

    ``Z`` (n, H) are the pre-activations of n samples; a band [lo, hi) holds the units in
    supp_k(z) of a share lo to hi of them. Returns one dict per non-empty band: ``band``,
    ``units``, the fractions ``localised`` and ``oriented`` (against the same random filters as
    :func:`ksparse.reproduce.figures.filter_statistics`) and the units' mean column norm.
    """
    from ksparse.nn.layers import supp_k
    from ksparse.reproduce.figures import orientation_selectivity, spatial_spread

    share = np.bincount(np.asarray(supp_k(Z, k)).ravel(), minlength=W.shape[1]) / len(Z)
    rand = np.random.default_rng(seed).normal(size=W.shape)
    local = spatial_spread(W, shape) < np.percentile(spatial_spread(rand, shape), 1)
    oriented = orientation_selectivity(W, shape) > np.percentile(orientation_selectivity(rand, shape), 99)
    out = []
    for lo, hi in zip(BANDS[:-1], BANDS[1:], strict=True):
        m = (share >= lo) & (share < hi)
        if m.any():
            out.append({"band": [lo, hi], "units": int(m.sum()), "localised": float(local[m].mean()),
                        "oriented": float(oriented[m].mean()),
                        "mean_norm": float(np.linalg.norm(W[:, m], axis=0).mean())})
    return out


def what(name, record):
    """A variant's change as :data:`VARIANTS` states it now (the record's own words otherwise)."""
    return VARIANTS[name][0] if name in VARIANTS else record["what"]


def report(results):
    rows = []
    for name, r in results["variants"].items():
        last = r["history"][-1] if r["history"] else {}
        if "diverged" in r:
            rows.append([name, what(name, r), f"diverged in epoch {len(r['history']) + 1}", "-", "-",
                         last.get("resampled", "-"), "-", "-", "-"])
            continue
        local = r["fraction_below_1st_percentile_of_random_spread"]
        oriented = r["fraction_above_99th_percentile_of_random_selectivity"]
        rows.append([name, what(name, r), len(r["history"]), f"{last['fvu']:.4f}",
                     f"{last['dead_fraction']:.3f}",
                     last["resampled"], f"{r['seconds']['wall']:.0f} s ({r['seconds']['cpu']:.0f} s)",
                     f"{r['n_used_filters']}", f"{100 * local:.1f}% / {100 * oriented:.1f}%"])
    header = ["variant", "change", "epochs", "FVU (last epoch)", "dead (last epoch)", "units resampled",
              "training: wall (CPU)", "used filters", "localised / oriented (vs 99% of random)"]
    return common.table(header, rows)


def activity_table(results):
    """The :func:`by_activity` split of each variant that has one, as a markdown table."""
    bands = [f"[{lo:g}, {hi:g})" for lo, hi in zip(BANDS[:-1], BANDS[1:], strict=True)]
    rows = []
    for name, r in results["variants"].items():
        cells = {f"[{b['band'][0]:g}, {b['band'][1]:g})": f"{b['units']}: {100 * b['localised']:.0f}% / "
                 f"{100 * b['oriented']:.0f}%, {b['mean_norm']:.2f}" for b in r.get("by_activity", [])}
        if cells:
            rows.append([name] + [cells.get(b, "-") for b in bands])
    return common.table(["variant"] + [f"in Gamma on {b} of the patches" for b in bands], rows)


def markdown(results):
    """The page docs/fig3_variants.md: the table, and the command and time of each variant."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    runs = [f"- `{name}`: `{r['command']}` ({r['when']}; load average {r['loadavg']['start']} at the start)"
            for name, r in results["variants"].items() if "command" in r]
    return "\n".join([f"# Fig. 3's settings, one change at a time ({when})", "",
                      f"`python -m benchmarks.fig3_variants` on {results['n_patches']} CIFAR-10 patches, "
                      f"{results['epochs']} epochs, H = 1000, k = 50, threads {results['threads']}.", "",
                      report(results), "", "By how often a unit is in Gamma (its share of the first 10,000 "
                      "patches; k / H = 0.05 on average): units, localised / oriented, mean column norm "
                      "(the variants run since this split was recorded):", "", activity_table(results), "",
                      "Each variant's run (the rows without one are from an earlier "
                      "version of this script, their date in the page's git history):", ""] + runs + [""])


def main(argv=None):
    from ksparse.datasets import load_dataset

    p = HintParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="20,000 patches, 4 epochs (development; not saved)")
    p.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variants")
    p.add_argument("--data-dir", type=path_argument, default=None,
                   help="data folder (default: $KSPARSE_DATA, else ~/.cache/ksparse)")
    p.add_argument("--no-save", action="store_true", help="print only; do not write the result files")
    p.add_argument("--out", type=path_argument,
                   default=os.path.join(common.ROOT, "docs", "fig3_variants.json"),
                   help="the result file (default docs/fig3_variants.json; its .md page beside it)")
    p.add_argument("--resume", action="store_true",
                   help="skip the variants docs/fig3_variants.json already holds (same patches and epochs)")
    args = p.parse_args(argv)
    if not args.out.endswith(".json"):  # before any work: the page goes beside it as .md
        p.error(f"--out {args.out!r}: the result file is JSON (its .md page beside it); the accepted suffix "
                f"is .json; name it {os.path.splitext(args.out)[0] + '.json'!r}")
    n, epochs = (20000, 4) if args.quick else (PATCHES, EPOCHS)
    ds = load_dataset("cifar10-patches", data_dir=args.data_dir, n_patches=n, n_test_patches=0,
                      random_state=0)
    results = {"machine": common.machine(), "n_patches": n, "epochs": epochs,
               "threads": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")},
               "variants": {}}
    path, args.no_save = args.out, args.no_save or args.quick
    if os.path.exists(path) and not args.quick:  # keep the variants not rerun
        results["variants"] = json.load(open(path)).get("variants", {})
    command = "python -m benchmarks.fig3_variants " + " ".join(argv if argv is not None else sys.argv[1:])
    threads = results["threads"]
    for name in args.only.split(","):
        done = results["variants"].get(name, {})  # stamped (save_part) for the same patches and epochs
        if args.resume and "command" in done and (done.get("n_patches"), done.get("epochs")) == (n, epochs):
            print(name, "already in", path, "(--resume): skipped", flush=True)
            continue
        record = run_variant(ds.X_train, tuple(ds.image_shape), name, epochs)
        record.update(n_patches=n, epochs=epochs)
        print(name, {k: v for k, v in record.items() if k not in ("history", "config")}, flush=True)
        if args.no_save:
            results["variants"][name] = record
            continue
        common.save_part(path, results, name, record, command, threads, markdown, into=results["variants"])
    print(report(results))
    return results


if __name__ == "__main__":
    main()
