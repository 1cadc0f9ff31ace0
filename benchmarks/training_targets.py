"""Issue 11's targets for training at the defaults, measured on raw MNIST.

    python -m benchmarks.training_targets [--part scale,dead] [--seeds 0,1,2] [--out docs]

- ``scale``: the first ``--n-scale`` MNIST training images in [0, 1], in [0, 255], times 10^6,
  and standardized per pixel, each trained with the defaults of
  :func:`ksparse.training.loop.fit` (``--scale-epochs`` epochs); the FVU of each in its own
  units and, for a comparison across versions, of its reconstruction mapped back to [0, 1]
  (``fvu_01``); the spread of the rescalings' FVU relative to the smallest; the fraction of
  minibatches whose step D11 bounded. None may diverge.
- ``dead``: raw MNIST (the 50,000 training images, pixels in [0, 1], not centred by the
  user), H = 1000, k = 25, the quick profile's 20 epochs and batch 128, every other option
  at its default, on each seed: the fraction of units in no support during the last epoch
  (``dead_fraction``), during the last T samples (``dead_window``), the training FVU, and
  the test FVU with k units; with ``--with-paper``, the same for ``paper=True`` on the first seed.

Writes ``OUT/training_targets.json`` (merged with what is there, by part) and
``OUT/training_targets.md``.
"""

import json
import time

import numpy as np

from benchmarks import common


def _fit(X, options):
    from ksparse.training.loop import fit

    t0 = time.perf_counter()
    state = fit(X, options)
    return state, time.perf_counter() - t0


def _reconstruct(state, X):
    """The model's x_hat of X (N, d) with its k units, in X's units (float64)."""
    from ksparse.kernels.encode import encode
    from ksparse.nn.layers import decode_forward
    from ksparse.training.loop import model_input, uncentered

    p = {n: np.asarray(a, dtype=np.float64) for n, a in state.params.items()}
    h = encode(model_input(X, state), p["W"], p["b"], state.config.k)
    return uncentered(decode_forward(h, p["W"], p["b_prime"])[0], state)


def _fvu(x_hat, X):
    return float(((x_hat - X) ** 2).sum(axis=1).mean() / ((X - X.mean(axis=0)) ** 2).sum(axis=1).mean())


def part_scale(args, progress=None):
    """Each version's training FVU in its own units (the history's) and the FVU of the final
    model's reconstruction mapped back to [0, 1] (``fvu_01``): a global rescaling leaves the FVU
    unchanged, so the two agree for [0, 255] and x 1e6; for standardized data x_hat sd + mean is
    compared with the [0, 1] images, the same error measure as the other rows."""
    from ksparse.datasets import load_dataset
    from ksparse.training.loop import TrainingDiverged

    X = np.asarray(load_dataset("mnist", data_dir=args.data_dir, n_train=args.n_scale).X_train, np.float64)
    mean, sd = X.mean(axis=0), X.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    versions = {"[0, 1]": (X, 1.0, 0.0), "[0, 255]": (X * 255.0, 1 / 255.0, 0.0),
                "x 1e6": (X * 1e6, 1e-6, 0.0), "standardized": ((X - mean) / sd, sd, mean)}
    rows = []
    for name, (data, back, shift) in versions.items():
        try:
            state, sec = _fit(data, {"max_iter": args.scale_epochs, "random_state": 0})
            h = state.history[-1]
            rows.append({"data": name, "fvu": h["fvu"], "mse": h["mse"], "scale": state.scale,
                         "fvu_01": _fvu(_reconstruct(state, data) * back + shift, X),
                         "dead_fraction": h["dead_fraction"], "seconds": sec,
                         "bounded": [r.get("bounded", 0.0) for r in state.history]})
        except TrainingDiverged as e:
            rows.append({"data": name, "diverged": str(e)})
        print(rows[-1], flush=True)
    fvus = [r["fvu"] for r in rows if "fvu" in r and r["data"] != "standardized"]
    spread = (max(fvus) - min(fvus)) / min(fvus) if fvus else None
    return {"n_train": len(X), "n_epochs": args.scale_epochs, "rows": rows,
            "fvu_spread_raw_scalings": spread}


def _test_fvu(state, X):
    return _fvu(_reconstruct(state, X), X)


def part_dead(args, progress=None):
    from ksparse.datasets import load_dataset

    ds = load_dataset("mnist", data_dir=args.data_dir)
    X, Xt = np.asarray(ds.X_train, np.float64), np.asarray(ds.X_test, np.float64)
    # the quick profile's shape; every other option at the default of AutoencoderConfig
    base = {"n_hidden": 1000, "k": 25, "alpha": 1.0, "max_iter": args.epochs, "batch_size": 128}
    runs = [("defaults", s, {}) for s in args.seeds]
    runs += [("paper", args.seeds[0], {"paper": True})] if args.with_paper else []
    rows = []
    for name, seed, extra in runs:
        state, sec = _fit(X, dict(base, random_state=seed, **extra))
        h = state.history[-1]
        rows.append({"setting": name, "seed": seed, "dead_fraction": h["dead_fraction"],
                     "dead_window": h["dead_window"], "resampled": h["resampled"], "train_fvu": h["fvu"],
                     "test_fvu": _test_fvu(state, Xt), "seconds": sec,
                     "dead_per_epoch": [r["dead_fraction"] for r in state.history]})
        print({k: v for k, v in rows[-1].items() if k != "dead_per_epoch"}, flush=True)
        if progress is not None:
            progress({"n_train": len(X), "config": base, "rows": rows})
    return {"n_train": len(X), "config": base, "rows": rows}


def markdown(res):
    lines = ["# Training targets (issue 11), measured", ""]
    if "dead" in res:
        d = res["dead"]
        lines += [f"## Dead units on raw MNIST ({d['n_train']} images, {json.dumps(d['config'])})", "",
                  f"`{d['command']}` ({d['when']})", "",
                  "| setting | seed | dead (last epoch) | dead (last T samples) | resampled | train FVU "
                  "| test FVU | seconds |", "|---|---|---|---|---|---|---|---|"]
        for r in d["rows"]:
            lines.append(f"| {r['setting']} | {r['seed']} | {r['dead_fraction']:.3f} | "
                         f"{r['dead_window']:.3f} | {r['resampled']} | {r['train_fvu']:.4f} | "
                         f"{r['test_fvu']:.4f} | {r['seconds']:.0f} |")
        lines.append("")
    if "scale" in res:
        s = res["scale"]
        lines += [f"## The same defaults at any data scale ({s['n_train']} MNIST images, "
                  f"{s['n_epochs']} epochs)",
                  "", f"`{s['command']}` ({s['when']})", "",
                  "| data | s | FVU (own units) | FVU in [0, 1] | MSE (data's units) | dead (last epoch) "
                  "| minibatches bounded (D11) |", "|---|---|---|---|---|---|---|"]
        for r in s["rows"]:
            if "diverged" in r:
                lines.append(f"| {r['data']} | diverged | | | | | |")
            else:
                bounded, fvu_01 = max(r.get("bounded", [0.0])), r.get("fvu_01", float("nan"))
                lines.append(f"| {r['data']} | {r['scale']:.4g} | {r['fvu']:.5f} | {fvu_01:.5f} "
                             f"| {r['mse']:.4g} | {r['dead_fraction']:.3f} | {bounded:.3f} |")
        lines += ["", "Spread of the FVU over [0, 1], [0, 255] and x 1e6: "
                  f"{s['fvu_spread_raw_scalings']:.2e} (relative to the smallest).", ""]
    return "\n".join(lines)


def _options(p):
    p.add_argument("--epochs", type=int, default=20, help="epochs of the dead-unit runs (quick profile: 20)")
    p.add_argument("--with-paper", action="store_true", help="also one paper=True run (first seed)")
    p.add_argument("--n-scale", type=int, default=10000, help="MNIST images, scale part (default: 10000)")
    p.add_argument("--scale-epochs", type=int, default=10, help="epochs of the scale part (default: 10)")


def main(argv=None):
    args, path, res, command = common.parts_args(__doc__, argv, "training_targets", "scale,dead", "0,1,2",
                                                 _options)

    def write(part, out):  # after every run, so that a stopped job keeps what it measured
        common.save_part(path, res, part, out, command, args.threads, markdown)

    for part in args.part.split(","):
        run = {"scale": part_scale, "dead": part_dead}[part]
        write(part, run(args, progress=lambda out, part=part: write(part, out)))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
