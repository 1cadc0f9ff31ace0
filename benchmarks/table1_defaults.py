"""Changes to the library defaults, measured by Table 1's k25d validation error (never the test set).

    python -m benchmarks.table1_defaults [--candidates NAME,...] [--seeds 0,1] [--work DIR] [--out docs]

Each candidate is Table 1's ``k25d`` model (``ksparse reproduce table1 --profile quick --rows
k25d``: H = 1000, k = 25 from k_start = 100, batch 128, 20 epochs, every other option at the
library's defaults) with the changes of :data:`CANDIDATES`, trained on the reproduce split's
50,000 MNIST training images (``ksparse.reproduce._common.load_mnist_split``). Its alpha k
features are classified as Table 1 did when these rows were made and still does here, so that
new candidates compare with them (``benchmarks.table1_classifier.coordinate`` with the former
quick protocol: alpha in (1, 2, 3, 4) at C = 10, then C in (0.1, 1, 10, 100), chosen on the
validation split with classifiers fit on 10,000 training images, the choice refit on all
50,000; ``ksparse reproduce table1`` now selects on a grown grid fit on all 50,000 images,
docs/table1_classifier.md), but with the validation split alone: no test error is computed.

Every (candidate, seed) is one part of ``OUT/table1_defaults.json`` (and its page
``table1_defaults.md``), written as it finishes; a part already there is skipped, so a stopped
run resumes by running the same command again. The model being trained is checkpointed after
every epoch in ``--work`` (default ``runs/table1_defaults``) and resumed from there.
"""

import json
import os
import shlex
import time

from benchmarks import common
from ksparse.argparsing import HintParser
from ksparse.io import folder_argument, path_argument

# name -> AutoencoderConfig changes on top of k25d's (the library defaults under the quick profile)
CANDIDATES = {
    "defaults": {},
    "lr 0.5": {"lr": 0.5},
    "lr 1.0": {"lr": 1.0},
    "lr 0.5 falling to 0.05": {"lr": 0.5, "lr_final": 0.05},
    "k_fraction 0.25": {"k_fraction": 0.25},
    "k_fraction 0.75": {"k_fraction": 0.75},
    "no resampling": {"resample": False},
    "dead_window 4x (16000)": {"dead_window": 16000},
    "dead_window 0.5x (2000)": {"dead_window": 2000},
    "dead_window 0.25x (1000)": {"dead_window": 1000},
    "lr 0.5 and dead_window 2000": {"lr": 0.5, "dead_window": 2000},
    "bias_lr_ratio 0.03": {"bias_lr_ratio": 0.03},
    "bias_lr_ratio 0.3": {"bias_lr_ratio": 0.3},
    "lr 0.5 with the biases at 0.025 (bias_lr_ratio 0.05)": {"lr": 0.5, "bias_lr_ratio": 0.05},
    # not a library default under the quick profile (its batch is the paper's 128), but the
    # estimator's and ksparse train's default batch
    "batch 64": {"batch_size": 64},
    "momentum 0.95": {"momentum": 0.95},
    "k_start 50": {"k_start": 50},
    "k_start 200": {"k_start": 200},
    "no pre-encoder bias (pre_bias False)": {"pre_bias": False},
}


def run_one(name, seed, data, work):
    """Train candidate ``name`` on seed ``seed`` (resuming its checkpoint) and select on validation."""
    from benchmarks.table1_classifier import BEFORE, coordinate
    from ksparse.kernels.encode import encode
    from ksparse.reproduce import _common
    from ksparse.training.loop import TrainingDiverged

    prof, (train, val) = _common.QUICK, data
    config = _common.autoencoder_config(prof, 25, prof["ksparse_epochs"], seed,
                                        **dict({"paper": False, "lr": None}, **CANDIDATES[name])).to_dict()
    stem = os.path.join(work, f"{name.replace(' ', '_')}-seed{seed}")
    t0 = time.perf_counter()
    try:
        arrays, info = _common.train_autoencoder(train[0], config, stem, resume=True)
    except TrainingDiverged as e:  # a result too: the candidate cannot be a default
        print(f"{name} seed {seed}: diverged: {e}", flush=True)
        return {"candidate": name, "seed": seed, "changes": CANDIDATES[name], "config": config,
                "diverged": str(e), "seconds": {"train_wall": time.perf_counter() - t0}}
    train_wall = time.perf_counter() - t0
    W, b = arrays["W_enc"], arrays["b_enc"]
    t0 = time.perf_counter()
    trials, best = coordinate("k25d", lambda Z, alpha=1: encode(Z, W, b, 25, alpha),
                              BEFORE["before, quick (10,000 images, 200 iterations)"], train, [val], seed)
    last = info["history"][-1]
    print(f"{name} seed {seed}: val {best['val_error']:.4f} (alpha {best['alpha']}, C {best['C']:g}), "
          f"fvu {last['fvu']:.4f}, resampled {last['resampled']}", flush=True)
    return {"candidate": name, "seed": seed, "changes": CANDIDATES[name], "config": config,
            "val_error": best["val_error"], "alpha": best["alpha"], "C": best["C"],
            "trials": trials, "train_fvu": last["fvu"], "dead_fraction": last["dead_fraction"],
            "dead_window": last.get("dead_window"), "resampled": last["resampled"],
            "history": [{n: h.get(n) for n in ("epoch", "k", "lr", "fvu", "dead_fraction", "resampled")}
                        for h in info["history"]],
            "seconds": {"train_wall": train_wall, "train": info["seconds"],
                        "classify_wall": time.perf_counter() - t0}}


def markdown(res):
    lines = ["# Changes to the library defaults, by Table 1's k25d validation error",
             "", "Written by `python -m benchmarks.table1_defaults` (`benchmarks/table1_defaults.py`): "
             "Table 1's k25d model (quick profile: 50,000 MNIST training images, H = 1000, k = 25, batch "
             "128, 20 epochs) with one change to the library's defaults; alpha and C chosen on the "
             "validation split (10,000 images) as `ksparse reproduce table1` did until commit 33e56ad "
             "(alpha in 1-4 at C = 10, then C, fit on 10,000 training images; see "
             "`docs/table1_classifier.md`); the test split is not used. lr is the rate the run used "
             "(its history): lr=None was 0.25 at batch 128 "
             "until commit 40c5014, 0.5 since. D13's ratio (bias_lr_ratio=None) was the constant "
             "0.1 in `docs/table1_defaults.md` and the data's lambda_1 (0.097 on MNIST) in "
             "`docs/table1_defaults_lambda1/`. Train FVU, dead fraction and units resampled are "
             "those of the last epoch.", "",
             "| candidate | changes | lr | seed | val. error | alpha | C | train FVU | dead | resampled | "
             "train s | when |", "|" + "---|" * 12]
    parts = sorted(res.values(), key=lambda r: (list(CANDIDATES).index(r["candidate"])
                                                if r["candidate"] in CANDIDATES else 99, r["seed"]))
    for r in parts:
        if "diverged" in r:
            lines.append(f"| {r['candidate']} | `{json.dumps(r['changes'])}` | | {r['seed']} | diverged: "
                         f"{r['diverged'].split(':')[0]} | | | | | | | {r['when']} |")
            continue
        lr = r["history"][0]["lr"], r["history"][-1]["lr"]
        lines.append(f"| {r['candidate']} | `{json.dumps(r['changes'])}` | {lr[0]:.3g}"
                     f"{'' if lr[1] == lr[0] else f' to {lr[1]:.3g}'} | {r['seed']} | "
                     f"{100 * r['val_error']:.2f}% | {r['alpha']} | {r['C']:g} | {r['train_fvu']:.4f} | "
                     f"{r['dead_fraction']:.3f} | {r['resampled']} | {r['seconds']['train']['wall']:.0f} | "
                     f"{r['when']} |")
    lines += ["", "Commands (each row's `command` in the JSON): "
              + ", ".join(sorted({f"`{r['command']}`" for r in parts})), ""]
    return "\n".join(lines)


def main(argv=None):
    p = HintParser(description=__doc__.split("\n")[0])
    p.add_argument("--candidates", default=",".join(CANDIDATES),
                   help="comma-separated names of CANDIDATES (default: all)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    p.add_argument("--data-dir", type=path_argument, default=None,
                   help="data folder (default: $KSPARSE_DATA, else ~/.cache/ksparse)")
    p.add_argument("--threads", type=int, default=1, help="BLAS and numba threads (default: 1)")
    p.add_argument("--work", type=folder_argument, default=os.path.join("runs", "table1_defaults"),
                   help="folder for the per-epoch checkpoints of the model being trained")
    p.add_argument("--out", type=folder_argument, default=os.path.join(common.ROOT, "docs"),
                   help="folder for table1_defaults.json and .md (default: docs)")
    args = p.parse_args(argv)
    names = args.candidates.split(",")
    unknown = sorted(set(names) - set(CANDIDATES))
    if unknown:
        p.error(f"unknown candidates {unknown}; choose from {list(CANDIDATES)}")
    common.set_threads(args.threads)
    from ksparse.reproduce import _common

    os.makedirs(args.work, exist_ok=True)
    path = os.path.join(args.out, "table1_defaults.json")
    res = json.load(open(path)) if os.path.isfile(path) else {}
    _, train, val, _ = _common.load_mnist_split("mnist", args.data_dir)
    command = shlex.join(["python", "-m", "benchmarks.table1_defaults"] + list(argv or []))
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in names:
            part = f"{name} / seed {seed}"
            if part in res:
                print(f"{part}: kept", flush=True)
                continue
            common.save_part(path, res, part, run_one(name, seed, (train, val), args.work), command,
                             args.threads, markdown)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
