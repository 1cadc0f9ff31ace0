"""Two changes to the defaults lr=None and dead_window=None, measured (neither was adopted).

    python -m benchmarks.dead_window [--part cifar,table1] [--seeds 0,1] [--out docs]

Each setting is the library's defaults with ``lr`` and ``dead_window`` (T) given: "defaults"
(lr 0.25 at any batch of 32 or more, T = 100 H / k), "lr" (lr = 0.5 min(1, batch / 128): the
linear scaling rule up to 128, so still 0.25 at batch 64 but 0.5 at 128), "T" (T = 1000 H / k)
and both changes together.

- ``cifar``: 20,000 CIFAR-10 patches (k = 50, H = 1000, 10 epochs) at batch 64 and 128: the
  test FVU on 5,000 held-out patches and the units resampled.
- ``table1``: a cheap stand-in for Table 1's k25d row: the first 10,000 images of its
  training split (quick profile: k = 25, batch 128, 20 epochs, k from 100), and the
  validation error (10,000 images, never the test set) of the Table 1 classifier
  (``ksparse.reproduce._common.logreg``, C = 10, 200 iterations) fit on those 10,000
  images' alpha k features, alpha = 2, 3, 4.

Writes ``OUT/dead_window.json`` and ``OUT/dead_window.md``.
"""

import time

from benchmarks import common


def _settings(H, k, batch):
    """name -> (lr, dead_window) of the defaults and the three changes, at this batch size."""
    old_lr, new_lr = 0.25, 0.5 * min(1.0, batch / 128)
    old_T, new_T = -(-100 * H // k), -(-1000 * H // k)
    settings = {"defaults (lr 0.25, T = 100 H/k)": (old_lr, old_T),
                "lr = 0.5 min(1, batch/128)": (new_lr, old_T), "T = 1000 H/k": (old_lr, new_T),
                "both": (new_lr, new_T)}
    unique = {}  # at batch 64 the lr rule gives 0.25: one run per distinct setting
    for name, value in settings.items():
        if value not in unique.values():
            unique[name] = value
    return unique


def part_cifar(args):
    from benchmarks.training_targets import _test_fvu
    from ksparse.datasets import load_dataset
    from ksparse.training.loop import fit

    ds = load_dataset("cifar10-patches", data_dir=args.data_dir, n_patches=25000)
    X, X_test = ds.X_train[:20000], ds.X_train[20000:]
    rows = []
    for batch in (64, 128):
        for name, (lr, T) in _settings(1000, 50, batch).items():
            t0 = time.perf_counter()
            state = fit(X, {"n_hidden": 1000, "k": 50, "max_iter": 10, "batch_size": batch, "lr": lr,
                            "dead_window": T, "random_state": 0})
            h = state.history[-1]
            rows.append({"batch_size": batch, "setting": name, "lr": lr, "dead_window": T,
                         "train_fvu": h["fvu"], "test_fvu": _test_fvu(state, X_test),
                         "resampled": h["resampled"], "dead_fraction": h["dead_fraction"],
                         "seconds": time.perf_counter() - t0})
            print(rows[-1], flush=True)
    return {"n_train": len(X), "n_test": len(X_test), "rows": rows}


def part_table1(args):
    from ksparse.kernels.encode import encode
    from ksparse.reproduce import _common
    from ksparse.training.loop import encoder_params, fit

    _, train, val, _ = _common.load_mnist_split("mnist", args.data_dir)
    X, y = train[0][:10000], train[1][:10000]
    rows = []
    for seed in args.seeds:
        for name, (lr, T) in _settings(1000, 25, 128).items():
            cfg = _common.autoencoder_config(_common.QUICK, 25, 20, seed, paper=False, lr=lr, dead_window=T)
            t0 = time.perf_counter()
            state = fit(X, cfg)
            W, b = encoder_params(state)
            errors = {}
            for alpha in (2, 3, 4):
                F, F_val = encode(X, W, b, 25, alpha), encode(val[0], W, b, 25, alpha)
                errors[alpha] = _common.logreg(F, y, [(F_val, val[1])], 10.0, 200, seed, sparse=True)[0][0]
            h = state.history[-1]
            rows.append({"seed": seed, "setting": name, "lr": lr, "dead_window": T, "val_error": errors,
                         "best_val_error": min(errors.values()), "train_fvu": h["fvu"],
                         "resampled": h["resampled"], "seconds": time.perf_counter() - t0})
            print(rows[-1], flush=True)
    return {"n_train": len(X), "n_val": len(val[0]), "rows": rows}


def markdown(res):
    lines = ["# Two changes to the default lr and dead-unit window (python -m benchmarks.dead_window)", ""]
    if "cifar" in res:
        c = res["cifar"]
        lines += [f"## CIFAR-10 patches ({c['n_train']} training, {c['n_test']} test, k = 50, 10 epochs)", "",
                  f"`{c['command']}` ({c['when']})", "",
                  "| batch | setting | lr | T | train FVU | test FVU | resampled |",
                  "|---|---|---|---|---|---|---|"]
        for r in c["rows"]:
            lines.append(f"| {r['batch_size']} | {r['setting']} | {r['lr']:g} | {r['dead_window']} | "
                         f"{r['train_fvu']:.4f} | {r['test_fvu']:.4f} | {r['resampled']} |")
        lines.append("")
    if "table1" in res:
        t = res["table1"]
        lines += [f"## Table 1 stand-in ({t['n_train']} MNIST training images, quick profile, k = 25, "
                  "batch 128)",
                  "", f"`{t['command']}` ({t['when']})", "",
                  "| seed | setting | lr | T | val. error alpha = 2 / 3 / 4 | train FVU | resampled |",
                  "|---|---|---|---|---|---|---|"]
        for r in t["rows"]:
            errs = " / ".join(f"{100 * r['val_error'][a]:.2f}%" for a in sorted(r["val_error"]))
            lines.append(f"| {r['seed']} | {r['setting']} | {r['lr']:g} | {r['dead_window']} | {errs} | "
                         f"{r['train_fvu']:.4f} | {r['resampled']} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    args, path, res, command = common.parts_args(__doc__, argv, "dead_window", "cifar,table1", "0,1")
    for part in args.part.split(","):
        out = {"cifar": part_cifar, "table1": part_table1}[part](args)
        common.save_part(path, res, part, out, command, args.threads, markdown)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
