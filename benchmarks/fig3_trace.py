"""Trace the Fig. 3 divergence of one rate for all parameters (``bias_lr_ratio=1``, D13 off).

    python -m benchmarks.fig3_trace [--ratio 1.0] [--epochs 20]

Trains the defaults with ``bias_lr_ratio=RATIO`` on Fig. 3's 100,000 CIFAR-10 patches (the
quick profile, as ``benchmarks.fig3_variants``), keeps the last minibatches' parameters, and
after a divergence measures, on the minibatches just before it (float64): the top curvature of
D4 in W, b and b' (power iteration on finite differences of
:func:`ksparse.nn.layers.ksparse_step`'s gradient, the support held by the step), the units
resampled in that step (how many, on what share of the rows they are active, their mean
pairwise |cos|) and ``||mean(x - b')||``. Writes ``docs/fig3_trace.json``. One thread.
"""

import collections
import os

import numpy as np

from benchmarks import common
from ksparse.argparsing import HintParser
from ksparse.io import path_argument

KEEP = 8  # minibatches kept, the last the first whose loss is not finite


def curvature(x, p, k, group, iters=30, eps=1e-5):
    """Top eigenvalue of D4's Hessian in ``group`` on the minibatch ``x`` (power iteration)."""
    from ksparse.nn import layers

    def grad(q):
        return layers.ksparse_step(x, q["W"], q["b"], q["b_prime"], k, pre_bias=True)[1][group]

    v = np.random.default_rng(0).standard_normal(p[group].shape)
    v /= np.linalg.norm(v)
    lam = 0.0
    for _ in range(iters):
        plus, minus = dict(p, **{group: p[group] + eps * v}), dict(p, **{group: p[group] - eps * v})
        hv = (grad(plus) - grad(minus)) / (2 * eps)
        lam = float((hv * v).sum())
        v = hv / max(np.linalg.norm(hv), 1e-300)
    return lam


def describe(snap):
    """The measurements of one kept minibatch (after its step and resampling)."""
    x, k = snap["x"], snap["k"]
    p = {n: snap[n] for n in ("W", "b", "b_prime")}
    u = x - p["b_prime"]
    z = u @ p["W"] + p["b"]
    active = z >= np.sort(z, axis=1)[:, -k][:, None]
    new = snap["new"]
    Wn = p["W"] / np.maximum(np.linalg.norm(p["W"], axis=0), 1e-300)
    out = {"step": snap["step"], "lr": snap["lr"], "loss": snap["loss"], "k": k,
           "resampled_now": int(new.size),
           "mean_x_minus_b_prime_norm": float(np.linalg.norm(u.mean(axis=0))),
           "row_norm": float(np.linalg.norm(u, axis=1).mean()),
           "b_prime_max_abs": float(np.abs(p["b_prime"]).max()), "b_min": float(p["b"].min()),
           "b_mean": float(p["b"].mean())}
    if new.size:
        C = np.abs(Wn[:, new].T @ Wn[:, new])
        out["new_active_share"] = [float(a) for a in active[:, new].mean(axis=0)]
        out["new_mean_abs_cos"] = float((C.sum() - new.size) / max(new.size * (new.size - 1), 1))
    if np.isfinite(x).all() and all(np.isfinite(a).all() for a in p.values()):
        out["curvature"] = {g: curvature(x, p, k, g) for g in ("W", "b", "b_prime")}
    out["stability_limit"] = 2 * (1 + snap["momentum"]) / snap["lr"]
    return out


def main(argv=None):
    from ksparse.datasets import load_dataset
    from ksparse.reproduce._common import QUICK, autoencoder_config
    from ksparse.training.loop import TrainingDiverged, fit
    from ksparse.training.remedies import RemedyStep

    p = HintParser(description=__doc__.splitlines()[0])
    p.add_argument("--ratio", type=float, default=1.0, help="bias_lr_ratio (default: 1.0, one rate)")
    p.add_argument("--epochs", type=int, default=20, help="epochs (default: 20, the quick profile's)")
    p.add_argument("--data-dir", type=path_argument, default=None,
                   help="data folder (default: $KSPARSE_DATA, else ~/.cache/ksparse)")
    args = p.parse_args(argv)
    ds = load_dataset("cifar10-patches", data_dir=args.data_dir, n_patches=100000, n_test_patches=0,
                      random_state=0)
    kept = collections.deque(maxlen=KEEP)

    class Traced(RemedyStep):
        n = 0

        def __call__(self, batch, params, velocity, settings):
            out = super().__call__(batch, params, velocity, settings)
            Traced.n += 1
            if kept and not np.isfinite(kept[-1]["loss"]):
                return out  # the first non-finite step is the last one kept
            t = self.tracker
            kept.append({"step": Traced.n, "x": np.asarray(batch[0], np.float64), "k": settings.k,
                         "lr": settings.lr, "momentum": settings.momentum, "loss": float(out.loss),
                         "new": np.flatnonzero(t.last_reset == t.seen) if t.seen else np.zeros(0, int),
                         **{n: np.array(params[n], np.float64) for n in ("W", "b", "b_prime")}})
            return out

    config = autoencoder_config(QUICK, 50, args.epochs, 0, paper=False, lr=None, bias_lr_ratio=args.ratio)
    result = {"machine": common.machine(), "ratio": args.ratio, "epochs": args.epochs,
              "config": config.to_dict(),
              "command": "python -m benchmarks.fig3_trace " + " ".join(argv or [])}
    try:
        fit(ds.X_train, config, step=Traced(None))
        result["diverged"] = None
    except TrainingDiverged as e:
        result["diverged"] = str(e)
        result["history"] = [{n: h.get(n) for n in ("epoch", "fvu", "resampled")} for h in e.state.history]
    result["last_steps"] = [describe(s) for s in kept]
    for r in result["last_steps"]:
        print({n: v for n, v in r.items() if n != "new_active_share"}, flush=True)
    common.write_json(os.path.join(common.ROOT, "docs", "fig3_trace.json"), result)
    return result


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
