"""Table 1's classifier protocol before and after, on the same k-sparse models: validation (and test) error.

    python -m benchmarks.table1_classifier --models DIR [--rows k25,k25c,k25d] [--seeds 0,1,2]
                                           [--results docs/results] [--out docs]

For each row and seed, the quick-profile model ``ksparse-ROW-mnist-*.npz`` in ``--models`` (the
``OUT/models`` of ``ksparse reproduce table1 --profile quick --rows ROW --seeds S --out OUT``) is
classified with the protocols of :data:`BEFORE`, alpha at C = 10 and then C at that alpha (the
protocol of ``ksparse.reproduce.table1.select`` until this benchmark was written), and with the
current one (``table1.select`` with the quick profile: every (alpha, C) of a grid that grows past
its edges, fit on all 50,000 training images). Every choice is made on the validation split;
the test error is reported, never used to choose. The current protocol's numbers are read from
the result file in ``--results`` that names the same model file when there is one (the run that
made the model computed them), else computed here.

Every (row, seed) is one part of ``OUT/table1_classifier.json`` and its page ``.md``; a part
already there is skipped, so a stopped run resumes by running the same command again.
"""

import glob
import json
import os
import shlex
import time

import numpy as np

from benchmarks import common
from ksparse.argparsing import HintParser
from ksparse.io import folder_argument, path_argument

# the protocols table1.select had before: (alphas, the C of the alpha sweep, the Cs, select_n, max_iter)
OLD_GRID = ((1, 2, 3, 4), 10.0, (0.1, 1.0, 10.0, 100.0))
BEFORE = {
    "before, quick (10,000 images, 200 iterations)": OLD_GRID + (10000, 200),
    "before, paper (50,000 images, 1000 iterations)": OLD_GRID + (None, 1000),
}
NOW = "now: grown (alpha, C) grid, 50,000 images, 1000 iterations"


def coordinate(key, feats, protocol, train, evals, seed):
    """The former ``table1.select``: alpha at one C, then C at that alpha, the choice refit on all images.

    Returns ``(trials, record)``: the fits made for the choice and the refit's record (with
    ``n_fits`` and ``converged``, False when any fit stopped at its iteration limit).
    """
    from ksparse.reproduce import _common, table1

    alphas, C0, Cs, n_sel, max_iter = protocol
    prof = dict(_common.QUICK, logreg_max_iter=max_iter)
    F = {a: table1._fit_features(feats, a, train, evals) for a in alphas}
    trials = [table1._classify(F[a], a, C0, train, evals, prof, seed, n_sel) for a in alphas]
    alpha = min(trials, key=lambda t: t["val_error"])["alpha"]
    trials += [table1._classify(F[alpha], alpha, C, train, evals, prof, seed, n_sel) for C in Cs if C != C0]
    best = min((t for t in trials if t["alpha"] == alpha), key=lambda t: t["val_error"])
    full = table1._classify(F[alpha], alpha, best["C"], train, evals, prof, seed)
    return trials, dict(full, n_fits=len(trials) + 1, converged=all(t["converged"] for t in trials + [full]))


def find_model(folder, row, seed):
    """(path, arrays, meta) of the quick-profile model of ``row`` and ``seed`` in ``folder``."""
    from ksparse.reproduce import _common

    for path in sorted(glob.glob(os.path.join(folder, f"ksparse-{row}-mnist-*.npz"))):
        if ".ckpt" in path:
            continue
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            s = meta["settings"]
            if s["random_state"] == seed and s["max_iter"] == _common.QUICK["ksparse_epochs"]:
                return path, {n: f[n] for n in ("W_enc", "b_enc")}, meta
    raise SystemExit(f"no quick-profile model {row} seed {seed} in {folder}: "
                     "run ksparse reproduce table1 --profile quick first")


def now_from_results(results, row, seed, model_file):
    """The current protocol's record from the result file that names ``model_file``, or None."""
    path = os.path.join(results, f"table1-quick-{row}-seed{seed}.json")
    if not os.path.isfile(path):
        return None
    res = json.load(open(path))["result"]
    if res["model"]["file"] != model_file or "grid" not in res:
        return None
    return dict(res, n_fits=len(res["trials"]), converged=all(t["converged"] for t in res["trials"]),
                source=os.path.relpath(path, common.ROOT))


def run_one(row, seed, data, args):
    from ksparse.kernels.encode import encode
    from ksparse.reproduce import _common, table1

    path, arrays, meta = find_model(args.models, row, seed)
    k = table1._k(row)[0]
    feats = lambda Z, alpha=1: encode(Z, arrays["W_enc"], arrays["b_enc"], k, alpha)  # noqa: E731
    train, val, test = data
    out = {"row": row, "seed": seed, "model": os.path.basename(path), "model_code": meta.get("code"),
           "protocols": {}}
    for name, protocol in BEFORE.items():
        t0 = time.process_time()
        out["protocols"][name] = dict(coordinate(row, feats, protocol, train, [val, test], seed)[1],
                                      cpu=time.process_time() - t0)
    now = now_from_results(args.results, row, seed, os.path.basename(path))
    if now is None:
        t0 = time.process_time()
        trials, full = table1.select(row, feats, _common.QUICK, train, [val, test], seed)
        now = dict(full[0], n_fits=len(trials), converged=all(t["converged"] for t in trials),
                   cpu=time.process_time() - t0, source="computed here")
    out["protocols"][NOW] = {n: now.get(n) for n in ("alpha", "C", "val_error", "test_error", "n_fits",
                                                      "converged", "cpu", "grid", "source")}
    for name, r in out["protocols"].items():
        print(f"{row} seed {seed} {name}: alpha {r['alpha']}, C {r['C']:g}: val {r['val_error']:.4f}, "
              f"test {r['test_error']:.4f}", flush=True)
    return out


def markdown(res):
    rows = []
    for part in res.values():
        for name, r in part["protocols"].items():
            rows.append([part["row"], part["seed"], name, f"{r['alpha']}, {r['C']:g}",
                         f"{100 * r['val_error']:.2f}%", f"{100 * r['test_error']:.2f}%", r["n_fits"],
                         "yes" if r["converged"] else "no",
                         "" if r.get("cpu") is None else f"{r['cpu']:.0f}"])
    means = []
    for name in list(BEFORE) + [NOW]:
        for row in sorted({p["row"] for p in res.values()}):
            got = [p["protocols"][name] for p in res.values() if p["row"] == row and name in p["protocols"]]
            seeds = ", ".join(str(p["seed"]) for p in res.values() if p["row"] == row)
            means.append([row, seeds, name, f"{100 * np.mean([r['val_error'] for r in got]):.2f}%",
                          f"{100 * np.mean([r['test_error'] for r in got]):.2f}%"])
    return "\n".join([
        "# Table 1's classifier protocol: before and now, on the same models",
        "", "Written by `python -m benchmarks.table1_classifier` (`benchmarks/table1_classifier.py`). Each "
        "row's quick-profile model (the file in `model`) is classified by logistic regression (lbfgs) on its "
        "alpha k features with each protocol; alpha and C are chosen on the validation split, the test "
        "error is reported and never used to choose. Before: alpha in (1, 2, 3, 4) at C = 10, then C in "
        "(0.1, 1, 10, 100) at that alpha, the choice refit on all 50,000 training images. Now: every pair "
        "of alpha in (1, 2, 3, 4, 5, 6, 8) and C in (1, 3, 10, 30, 100), the grid grown past an edge the "
        "best pair sits on, all fit on the 50,000 images (`ksparse.reproduce.table1.select`). `converged`: "
        "no lbfgs fit stopped at its iteration limit. CPU: seconds of the whole selection (empty where the "
        "numbers were read from the result file that made the model, `source` in the JSON).", "",
        "## Mean over the seeds", "",
        common.table(["row", "seeds", "protocol", "val. error", "test error"], means), "",
        "## Per seed", "",
        common.table(["row", "seed", "protocol", "alpha, C", "val. error", "test error", "fits", "converged",
                      "CPU s"], rows), "",
        "Commands (each part's `command` in the JSON): "
        + ", ".join(sorted({f"`{p['command']}`" for p in res.values()})), ""])


def main(argv=None):
    p = HintParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", type=path_argument,
                   required=True, help="the models folder of a quick-profile table1 run")
    p.add_argument("--rows", default="k25,k25c,k25d", help="comma-separated Table 1 rows (default: these 3)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds of the models (default: 0,1,2)")
    p.add_argument("--results", type=path_argument, default=os.path.join(common.ROOT, "docs", "results"),
                   help="result files of the run that made the models (the current protocol's numbers)")
    p.add_argument("--data-dir", type=path_argument, default=None,
                   help="data folder (default: $KSPARSE_DATA, else ~/.cache/ksparse)")
    p.add_argument("--out", type=folder_argument, default=os.path.join(common.ROOT, "docs"),
                   help="folder for table1_classifier.json and .md (default: docs)")
    args = p.parse_args(argv)
    common.set_threads(1)
    from ksparse.reproduce import _common

    path = os.path.join(args.out, "table1_classifier.json")
    res = json.load(open(path)) if os.path.isfile(path) else {}
    _, train, val, test = _common.load_mnist_split("mnist", args.data_dir)
    command = shlex.join(["python", "-m", "benchmarks.table1_classifier"] + list(argv or []))
    for seed in (int(s) for s in args.seeds.split(",")):
        for row in args.rows.split(","):
            part = f"{row} / seed {seed}"
            if part in res:
                print(f"{part}: kept", flush=True)
                continue
            record = run_one(row, seed, (train, val, test), args)
            common.save_part(path, res, part, record, command, 1, markdown)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
