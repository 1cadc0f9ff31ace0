"""Why hidden units die under the Sec. 4.2.1 schedule: a diagnosis on raw MNIST.

    python -m benchmarks.dead_units [--n-train 10000] [--epochs 10] [--out docs]

Trains H = 1000, k = 25 k-sparse autoencoders on the first ``--n-train`` MNIST training
images (read from ``--data-dir`` or ``$KSPARSE_DATA``) with the paper's settings (lr 0.01,
momentum 0.9, sigma 0.01, batch 128, k falling from 100 to 25 over the first half of the
epochs), and variants that each change one thing:

- ``paper``: the setting above, raw pixels in [0, 1];
- ``fixed_k``: k = 25 from the first step (no Sec. 4.2.1 schedule);
- ``centred``: the inputs minus their training mean (the ``center`` option);
- ``defaults``: the library's defaults (:class:`ksparse.config.AutoencoderConfig`): the data
  scale, the learned pre-encoder bias (D9) and resampling (batch 128 as above).

Every ``--window`` training samples it records the fraction of units that were in no
sample's support Gamma during that window. At each epoch's end, on 2,000 probe images,
it splits each unit's pre-activation z_j = x W_j + b_j into its mean over the probe set,
m_j = mean(x) W_j + b_j, and the per-image variation around it, and records the share of
the variance of z that the unit means explain,

    shared = var_j(m_j) / (var_j(m_j) + mean_j var_i(z_ij)),

the spread of b, and the cosine of each W_j with the mean image. It writes
``OUT/dead_units.json`` and ``OUT/figures/dead_units.png``; ``docs/training.md`` reads them.
"""

import json
import os
import time

import numpy as np

from benchmarks import common
from ksparse.argparsing import HintParser
from ksparse.plots import save_figure

H, K = 1000, 25


def variants():
    """name -> (fit config changes, centre the inputs?)."""
    paper = {"n_hidden": H, "k": K, "alpha": 1.0, "k_start": 100, "lr": 0.01, "momentum": 0.9,
             "sigma": 0.01, "batch_size": 128, "paper": True}
    return {"paper": (paper, False), "fixed_k": (dict(paper, k_start=K), False), "centred": (paper, True),
            "defaults": ({"n_hidden": H, "k": K, "alpha": 1.0, "batch_size": 128}, False)}


def probe_stats(state, x_probe, x_mean):
    """Decomposition of z on the probe set (see the module docstring), for one state."""
    from ksparse.backend import to_numpy
    from ksparse.training.loop import model_input

    p = {n: to_numpy(a).astype(np.float64) for n, a in state.params.items()}
    z = model_input(x_probe, state) @ p["W"] + p["b"]
    m = z.mean(axis=0)
    within = z.var(axis=0).mean()
    norms = np.linalg.norm(p["W"], axis=0) * np.linalg.norm(x_mean) + 1e-30  # cos(W_j, mean image)
    cos = x_mean @ p["W"] / norms
    return {"shared": float(m.var() / (m.var() + within)), "b_mean": float(p["b"].mean()),
            "b_std": float(p["b"].std()), "cos_mean": _quantiles(cos), "unit_mean": _quantiles(m)}


def _quantiles(v):
    """A per-unit quantity summarised by its mean and 0/10/50/90/100th percentiles (the file keeps
    summaries; only the last epoch's win counts are kept per unit, for the figure)."""
    levels = (0, 10, 50, 90, 100)
    q = np.percentile(v, levels)
    return {"mean": float(np.mean(v)), **{f"p{p}": float(x) for p, x in zip(levels, q, strict=True)}}


def run(name, config, center, x, x_probe, n_epochs, seed, window):
    """Train one variant; return its record (windows, epochs, final win counts)."""
    from ksparse.training import loop

    x_mean = x.mean(axis=0)
    xin = x - x_mean if center else x
    probe = x_probe - x_mean if center else x_probe
    cfg = dict(config, max_iter=n_epochs, random_state=seed)
    rec = {"name": name, "config": cfg, "center": center, "windows": [], "epochs": []}
    wins = np.zeros(H, np.int64)

    def on_batch(Gamma, seen):
        wins[:] += np.bincount(np.asarray(Gamma).ravel(), minlength=H)
        if seen % window < len(Gamma):
            rec["windows"].append({"seen": int(seen), "dead": float(np.mean(on_batch.win == 0))})
            on_batch.win[:] = 0
        on_batch.win += np.bincount(np.asarray(Gamma).ravel(), minlength=H)

    on_batch.win = np.zeros(H, np.int64)
    state = None
    hook = _batch_hook(loop, on_batch)  # one counter of samples over all epochs
    t0 = time.perf_counter()
    for e in range(n_epochs):
        wins[:] = 0
        state = loop.fit(xin, cfg if state is None else None, state=state, epochs=1, **hook)
        r = dict(state.history[-1], **probe_stats(state, probe, x_mean))
        rec["epochs"].append(r)
        print(f"{name} epoch {e + 1}: k {r['k']} dead {r['dead_fraction']:.3f} shared {r['shared']:.3f} "
              f"b mean {r['b_mean']:+.4f} fvu {r['fvu']:.3f}", flush=True)
    rec["seconds"] = time.perf_counter() - t0
    rec["last_epoch_wins"] = wins.tolist()  # per unit: times in Gamma during the last epoch
    return rec


def _batch_hook(loop, on_batch):
    """Keyword arguments of ``loop.fit`` that report each minibatch's Gamma to ``on_batch``: a
    :class:`ksparse.training.remedies.RemedyStep` (configured by ``fit``) that observes."""
    from ksparse.training.remedies import RemedyStep

    seen = [0]

    class Observed(RemedyStep):
        def __call__(self, batch, params, velocity, settings):
            out = super().__call__(batch, params, velocity, settings)
            seen[0] += batch[0].shape[0]
            on_batch(np.asarray(out.active), seen[0])
            return out

    return {"step": Observed(tracker=None)}


def figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for rec in results:
        w = rec["windows"]  # in order, one per ``window`` samples
        x = [(i + 1) * rec["window"] / rec["n_train"] for i in range(len(w))]
        axes[0].plot(x, [v["dead"] for v in w],
                     label=rec["name"])
        last = np.sort(rec["last_epoch_wins"])[::-1]
        axes[1].plot(np.arange(1, H + 1), np.cumsum(last) / max(last.sum(), 1), label=rec["name"])
        axes[2].plot([r["epoch"] for r in rec["epochs"]], [r["shared"] for r in rec["epochs"]],
                     marker="o", label=rec["name"])
    axes[0].set(xlabel="epoch", ylabel="dead fraction (per window)", title="units in no Gamma of a window",
                ylim=(0, 1))
    axes[1].set(xscale="log", xlabel="units, most winning first", ylabel="share of all Gamma slots",
                title="which units win (last epoch)")
    axes[2].set(xlabel="epoch", ylabel="var of unit means / var of z", title="z decided by the unit, not x",
                ylim=(0, 1))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def main(argv=None):
    from ksparse.datasets import load_dataset
    from ksparse.io import atomic_write, folder_argument, path_argument

    p = HintParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-train", type=int, default=10000, help="first N MNIST images (default: 10000)")
    p.add_argument("--epochs", type=int, default=10, help="epochs of each variant (default: 10)")
    p.add_argument("--window", type=int, default=5000, help="samples per dead-fraction window")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights and minibatch order")
    p.add_argument("--variants", default=None, help="comma-separated subset of the variants")
    p.add_argument("--data-dir", type=path_argument, default=None,
                   help="data folder (default: $KSPARSE_DATA, else ~/.cache/ksparse)")
    p.add_argument("--threads", type=int, default=1, help="BLAS and numba threads (default: 1)")
    p.add_argument("--out", type=folder_argument, default=os.path.join(common.ROOT, "docs"),
                   help="folder for dead_units.json and figures/dead_units.png (default: docs)")
    p.add_argument("--replot", action="store_true", help="only redraw the figure from OUT/dead_units.json")
    args = p.parse_args(argv)
    if args.replot:
        results = json.load(open(os.path.join(args.out, "dead_units.json")))["results"]
        for rec in results:
            rec.setdefault("window", args.window)
        return figure(results, os.path.join(args.out, "figures", "dead_units.png"))
    common.set_threads(args.threads)
    ds = load_dataset("mnist", data_dir=args.data_dir, n_train=args.n_train)
    x = np.asarray(ds.X_train, dtype=np.float64)
    x_probe = np.asarray(ds.X_val[:2000], dtype=np.float64)
    todo = variants()
    names = args.variants.split(",") if args.variants else list(todo)
    results = []
    for name in names:
        config, center = todo[name]
        rec = run(name, config, center, x, x_probe, args.epochs, args.seed, args.window)
        rec["windows"] = [dict(w, dead=round(w["dead"], 6)) for w in rec["windows"]]
        rec["n_train"], rec["window"] = len(x), args.window
        results.append(rec)
    os.makedirs(os.path.join(args.out, "figures"), exist_ok=True)
    meta = {"command": "python -m benchmarks.dead_units " + " ".join(argv or []), "machine": common.machine()
            if hasattr(common, "machine") else None, "threads": args.threads, "results": results}
    atomic_write(os.path.join(args.out, "dead_units.json"),
                 lambda f: f.write(json.dumps(meta, indent=1).encode()))
    figure(results, os.path.join(args.out, "figures", "dead_units.png"))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
