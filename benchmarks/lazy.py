"""Lazy momentum against the plain update: where does it pay? Blocks of real MNIST batches.

    python -m benchmarks.lazy [--quick] [--threads 2] [--data-dir DIR] [--rounds R]

For each shape (batch N, H units; d = 784, k = 25, float32) both steps run the same
``STEPS`` minibatches in a row, each in its own block, round after round, on 1 thread and
on ``--threads``: the plain fused step (``ksparse.kernels._cpu.train_step_``, Eq. (11) on
every unit) and the lazy one (``ksparse.kernels.lazy.LazyMomentum``, Eq. (11) in closed
form for the units outside the support, plus a second product x V), its block ending
with the materialisation that an epoch's end costs. Figures are per batch, medians and the
fastest round; ``lazy / plain`` below 1 means lazy momentum pays. The product ``x @ W``
of the same batches is timed alone for reference. Each block is preceded by untimed steps
of its own method for ``common.SETTLE_S`` seconds (a block of 60 small batches is shorter
than the time OpenBLAS's threads keep polling after the product's block). Results go to docs/benchmarks.json
(section ``lazy``) and docs/benchmarks.md via ``python -m benchmarks.run_all``.
"""

import time

import numpy as np

from benchmarks import common
from benchmarks.step import LR, MOMENTUM, D, K, batches_of, init_params, time_blocks
from ksparse.kernels import _cpu, lazy

SHAPES = [(4, 4000), (16, 4000), (32, 4000), (128, 4000), (4, 16384), (16, 16384), (32, 16384),
          (128, 16384)]
STEPS = 60
PLAIN, LAZY, PRODUCT = "plain update", "lazy momentum", "one product x @ W"


def batch_lr(N):
    """The step benchmark's lr at batch 128, scaled linearly below it: at 0.01 the model diverges
    within 60 batches of 4 raw MNIST images, and the timings would be of NaN arithmetic."""
    return LR * min(1.0, N / 128)


def _methods(batches, H):
    p_plain, p_lazy = init_params(H), init_params(H)
    v_plain, v_lazy = ({n: np.zeros_like(a) for n, a in p.items()} for p in (p_plain, p_lazy))
    state = lazy.LazyMomentum(H, MOMENTUM)
    lr, m = np.float32(batch_lr(len(batches[0]))), np.float32(MOMENTUM)
    W = p_plain["W"]

    def run_lazy():
        for x in batches:
            state.step_(x, p_lazy, v_lazy, K, lr, m, pre_bias=True)
        state.materialize_(p_lazy, v_lazy)

    one = {PRODUCT: lambda x: x @ W,
           PLAIN: lambda x: _cpu.train_step_(x, p_plain, v_plain, K, lr, m, pre_bias=True),
           LAZY: lambda x: state.step_(x, p_lazy, v_lazy, K, lr, m, pre_bias=True)}
    fns = {PRODUCT: lambda: [one[PRODUCT](x) for x in batches],
           PLAIN: lambda: [one[PLAIN](x) for x in batches],
           LAZY: run_lazy}
    warm = {n: common.one_batch_at_a_time(f, batches) for n, f in one.items()}
    return fns, warm, (p_plain, v_plain, p_lazy, v_lazy)


def run_case(X, N, H, threads, rounds):
    """One shape on ``threads``: per-batch milliseconds of each method, and lazy / plain."""
    batches = batches_of(X[:N * (STEPS + 2)], N)[:STEPS]
    fns, warm, models = _methods(batches, H)
    for f in fns.values():  # compile, fault in the memory
        f()
    finite = _finite(models)
    load_start = common.loadavg()
    times, share = time_blocks(fns, rounds, warm)
    n = len(batches)
    methods = {name: {"ms": float(np.median(t)) * 1e3 / n, "ms_min": float(t.min()) * 1e3 / n}
               for name, t in times.items()}
    support = 1.0 - (1.0 - K / H) ** N
    return {"threads": threads, "N": N, "H": H, "batches": len(batches), "methods": methods,
            "lazy_over_plain": methods[LAZY]["ms"] / methods[PLAIN]["ms"],
            "lazy_over_plain_min": methods[LAZY]["ms_min"] / methods[PLAIN]["ms_min"],
            "expected_support": support, "auto_lazy": lazy.lazy_pays(N, H, K),
            "others_share": share, "busy": share > common.BUSY_SHARE, "load_start": load_start,
            "lr": batch_lr(N), "finite": finite and _finite(models)}


def _finite(models):
    """True while both models' parameters and velocities are finite (a diverged model times NaN
    arithmetic)."""
    return all(np.isfinite(a).all() for arrays in models for a in arrays.values())


def run(quick=False, threads=2, data_dir=None, rounds=None, shapes=None):
    """Every shape on 1 thread, then on ``threads``."""
    from ksparse.datasets.mnist import load_mnist

    rounds = rounds or (2 if quick else 3)
    shapes = shapes or (SHAPES[:2] + SHAPES[4:6] if quick else SHAPES)
    X = load_mnist(data_dir, n_train=max(N for N, _ in shapes) * (STEPS + 2), n_test=1, n_val=1).X_train
    t0 = time.perf_counter()
    results = {"machine": common.machine(), "d": D, "k": K, "lr": LR, "lr_rule": "LR * min(1, N / 128)",
               "momentum": MOMENTUM, "rounds": rounds,
               "steps": STEPS, "max_batch": lazy.MAX_BATCH, "max_support": lazy.MAX_SUPPORT,
               "busy_share": common.BUSY_SHARE, "cases": []}
    for n_threads in sorted({1, threads}):
        common.set_threads(n_threads)
        for N, H in shapes:
            results["cases"].append(run_case(X, N, H, n_threads, rounds))
            c = results["cases"][-1]
            print(f"{n_threads} thr N={N} H={H}: lazy/plain {c['lazy_over_plain']:.2f}", flush=True)
    results["loadavg_after"] = common.loadavg()
    results["seconds"] = time.perf_counter() - t0
    return results


def report(results):
    """Markdown: per shape, the plain and lazy milliseconds per batch and their ratio."""
    rows = []
    for c in results["cases"]:
        m = c["methods"]
        machine = f"{'**busy**' if c['busy'] else 'quiet'} ({100 * c['others_share']:.0f}%)"
        machine += "" if c.get("finite", True) else ", **diverged** (NaN weights: not a timing)"
        rows.append([c["threads"], c["N"], c["H"], f"{c['expected_support']:.2f}", f"{m[PRODUCT]['ms']:.2f}",
                     f"{m[PLAIN]['ms']:.2f}", f"{m[LAZY]['ms']:.2f}",
                     f"{c['lazy_over_plain']:.2f}× ({c['lazy_over_plain_min']:.2f}×)",
                     "lazy" if c["auto_lazy"] else "plain", machine])
    pays = [c for c in results["cases"] if c["lazy_over_plain"] < 1]
    verdict = ("Lazy momentum paid in: " + ", ".join(f"{c['threads']} thread(s) N={c['N']} H={c['H']}"
                                                     for c in pays) + "." if pays else
               "Lazy momentum paid in none of the shapes measured.")
    auto = (f"The automatic choice (`ksparse.kernels.lazy.lazy_pays`) uses it for batches of at most "
            f"{results['max_batch']} rows whose support is expected to touch at most "
            f"{results['max_support']:.0%} of the units." if results["max_batch"] else
            "The automatic choice (`ksparse.kernels.lazy.lazy_pays`) keeps the plain update everywhere.")
    return "\n".join([
        f"Milliseconds per batch over {results['steps']} MNIST batches in a row (D9 step, "
        f"d = {results['d']}, k = {results['k']}, float32"
        + (f", lr {results.get('lr_rule', results['lr'])} with LR = {results['lr']}"
           if "lr" in results else "")
        + f"), medians over {results['rounds']} rounds "
        "(fastest in brackets for the ratio). 'support' is the expected share of units on some sample's "
        "support, 1 - (1 - k/H)^N; the "
        "lazy block includes one materialisation of every unit (an epoch's end).", "",
        common.table(["threads", "batch", "H", "support", "product ms", "plain ms", "lazy ms", "lazy / plain",
                      "auto", "machine"], rows), "", verdict + " " + auto])


def main(argv=None):
    args = common.parse_args(__doc__, argv, epoch=True)
    results = run(args.quick, args.threads, args.data_dir, args.rounds)
    print(report(results))
    if not args.no_save:
        common.save_results("lazy", results)
    return results


if __name__ == "__main__":
    main()
