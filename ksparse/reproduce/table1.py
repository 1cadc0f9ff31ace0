"""Table 1 (Sec. 4.4): unsupervised features + logistic regression on MNIST, 1000 hidden units.

Each method is trained on the training split (50,000 images), its features are frozen, and
a scikit-learn logistic regression is fit on them. For the k-sparse rows, alpha in
h = supp_{alpha k}(W^T x + b) is chosen on the validation split (10,000), as in the paper;
every row reports the test error (10,000).

``ksparse reproduce table1 --profile quick|paper --out DIR [--seeds 0 1 2] [--rows k25]``
writes one JSON file per row and seed into ``--results`` (default ``DIR/results``, see
:mod:`ksparse.reproduce._runs`), and ``DIR/table1.md`` and ``DIR/table1.json`` for the rows
of this run; ``ksparse reproduce report`` makes the tables of ``docs/results.md`` from the
JSON files.
"""

import json
import logging
import os
import time

from ksparse.reproduce import _common, _progress, _runs

log = logging.getLogger("ksparse.reproduce")

# key, label, the paper's test error in percent (Table 1)
ROWS = [
    ("raw", "Raw pixels", 7.20),
    ("rbm", "RBM (scikit-learn BernoulliRBM)", 1.81),
    ("dropout", "Dropout autoencoder (50% hidden)", 1.80),
    ("denoising", "Denoising autoencoder (20% input dropout)", 1.95),
    ("dropout_denoising", "Dropout + denoising (20% input, 50% hidden)", 1.60),
    ("k40", "k-sparse, k = 40", 1.54),
    ("k25", "k-sparse, k = 25", 1.35),
    ("k10", "k-sparse, k = 10", 2.10),
    # not in the paper: the same models trained on mean-subtracted inputs (``center=True``);
    # the paper's column repeats its k-sparse number for comparison
    ("k40c", "k-sparse, k = 40, centred inputs (ours)", 1.54),
    ("k25c", "k-sparse, k = 25, centred inputs (ours)", 1.35),
    ("k10c", "k-sparse, k = 10, centred inputs (ours)", 2.10),
    # not in the paper: the library's defaults (data scale, pre-encoder bias D9, resampling of
    # dead units; docs/training.md) on the raw inputs
    ("k40d", "k-sparse, k = 40, library defaults (ours)", 1.54),
    ("k25d", "k-sparse, k = 25, library defaults (ours)", 1.35),
    ("k10d", "k-sparse, k = 10, library defaults (ours)", 2.10),
]
DEFAULT_ROWS = [key for key, _, _ in ROWS if not key.endswith(("c", "d"))]


def _k(key):
    """(k, center, paper) of a k-sparse row key such as "k25", "k25c" or "k25d"."""
    return int(key[1:].rstrip("cd")), key.endswith("c"), not key.endswith("d")


def _features(key, args, prof, train, seed):
    """Return (features function X -> F, the model's info from :func:`_common.cached_model`)."""
    from ksparse.kernels.encode import encode
    from ksparse.nn.baselines import features

    X = train[0]
    if key == "raw":
        return (lambda Z, alpha=None: Z), {"seconds": {"wall": 0.0, "cpu": 0.0}, "epochs": 0}
    if key == "rbm":
        arrays, info = _common.rbm_model(args.cache, X, prof, args.dataset, seed)
        return (lambda Z, alpha=None: _common.rbm_features(Z, arrays)), info
    if key.startswith("k"):
        k, center, paper = _k(key)
        arrays, info = _common.ksparse_model(args.cache, X, k, prof, args.dataset, seed, center=center,
                                             resume=args.resume, paper=paper)
        # z = x W_enc + b_enc on raw x: the centring, data scale and D9 folded in (encoder_params)
        return (lambda Z, alpha=1: encode(Z, arrays["W_enc"], arrays["b_enc"], k, alpha)), info
    arrays, info = _common.baseline_model(args.cache, X, key, prof, args.dataset, seed)
    return (lambda Z, alpha=None: features(Z, arrays["W"], arrays["b"])), info


def thin(history, n=100):
    """At most ``n`` evenly spaced records of a per-epoch history, the last one always included."""
    if not history or len(history) <= n:
        return history
    step = len(history) / n
    picked = sorted({min(len(history) - 1, int(round((i + 1) * step)) - 1) for i in range(n)})
    return [history[i] for i in picked]


def _alphas(key, prof):
    if not key.startswith("k"):
        return [None]
    k = _k(key)[0]
    return [a for a in prof["alphas"] if _fits(a, k, prof["n_hidden"])]


def _fits(alpha, k, n_hidden):
    """True when alpha k (rounded by :func:`ksparse.kernels.encode.alpha_k`) fits in n_hidden."""
    from ksparse.kernels.encode import alpha_k

    try:
        alpha_k(k, alpha, n_hidden)
    except ValueError:
        return False
    return True


def grow(grid, up, log_scale):
    """One value past an edge of a sorted grid: above its largest value (``up``) or below its smallest.

    Alpha (``log_scale=False``) repeats the grid's step at that edge (6, 8 -> 10); C
    (``log_scale=True``) goes a decade past the second value from that edge when the grid has
    more than one value per decade (1, 3, 10, 30, 100 -> 300 -> 1000; 1 -> 0.3), else repeats the
    edge's ratio (1, 10 -> 100).
    """
    a, b = (grid[-2], grid[-1]) if up else (grid[1], grid[0])  # b: the edge, a: its neighbour
    if not log_scale:
        return b + (b - a)
    if max(a, b) < 10 * min(a, b):
        return a * 10 if up else a / 10
    return b * b / a


def _fit_features(feats, alpha, train, evals):
    """The features of the training split and of each of ``evals`` for one alpha."""
    return feats(train[0], alpha), [feats(Z, alpha) for Z, _ in evals]


def _classify(F, alpha, C, train, evals, prof, seed, n_fit=None):
    """Fit the classifier on the first ``n_fit`` training samples (all when None); errors on ``evals``.

    ``F`` is ``(F_train, [F_eval, ...])`` from :func:`_fit_features`; ``evals`` is ``[val]`` or
    ``[val, test]`` (``test_error`` is None without a test split). On a subset, C is multiplied
    by ``len(train) / n_fit``, so that the penalty per sample, 1 / (C n), is that of the full fit.
    """
    n = min(n_fit or len(train[0]), len(train[0]))
    C_fit = C * len(train[0]) / n
    scored = [(Fe, t) for Fe, (_, t) in zip(F[1], evals, strict=True)]
    errors, info = _common.logreg(F[0][:n], train[1][:n], scored, C_fit, prof["logreg_max_iter"], seed,
                                  sparse=alpha is not None)
    return {"alpha": alpha, "C": C, "val_error": errors[0], "n_fit": n,
            "test_error": errors[1] if len(errors) > 1 else None, "n_iter": info["n_iter"],
            "converged": info["converged"]}


def _edges(best, alphas, Cs, key, prof, steps):
    """The (axis, up) edges of the grid that ``best`` sits on and that may still grow."""
    out = []
    if best["C"] in (Cs[0], Cs[-1]):
        out.append(("C", best["C"] == Cs[-1]))
    if best["alpha"] is not None and best["alpha"] in (alphas[0], alphas[-1]):
        up = best["alpha"] == alphas[-1]
        new = grow(alphas, up, False) if len(alphas) > 1 else None
        if new is not None and new >= 1 and _fits(new, _k(key)[0], prof["n_hidden"]):
            out.append(("alpha", up))
    return [e for e in out if steps.get(e, 0) < prof["grid_steps"]]


def select(key, feats, prof, train, evals, seed):
    """Table 1's model selection: the (alpha, C) of lowest validation error (``evals[0]``) on a growing grid.

    Every pair of ``prof["alphas"]`` (the k-sparse rows; those with alpha k <= n_hidden) and
    ``prof["logreg_Cs"]`` is fit on the first ``select_n`` training samples (all when None)
    and scored on the validation split. While the best pair sits on an edge of the grid, the
    grid grows one value past that edge (:func:`grow`; alpha not below 1 nor past n_hidden / k),
    at most ``grid_steps`` times per edge. Ties go to the pair first in grid order (smaller
    alpha, then smaller C). A choice made on a subset is refit on the whole training split,
    and so is alpha = 3 for k = 25 (the paper's best) at the chosen C; on the whole split the
    grid's own fits are used. ``evals`` is ``[val]`` (no test error is computed) or ``[val, test]``.

    Returns
    -------
    trials : list of dict
        One :func:`_classify` record per (alpha, C) of the final grid, in grid order.
    full : list of dict
        The fits on the whole training split, the chosen (alpha, C) first; the first has ``grid``:
        the final ``alphas`` and ``Cs`` and ``at_edge`` (the choice still on a grid edge).
    """
    alphas, Cs, n_sel = _alphas(key, prof), sorted(prof["logreg_Cs"]), prof["select_n"]
    fits, steps = {}, {}
    while True:
        for alpha in alphas:
            new = [C for C in Cs if (alpha, C) not in fits]
            F = _fit_features(feats, alpha, train, evals) if new else None
            for C in new:
                fits[alpha, C] = _classify(F, alpha, C, train, evals, prof, seed, n_sel)
                log.debug("%s alpha=%s C=%g (n=%d): val %.4f", key, alpha, C, fits[alpha, C]["n_fit"],
                         fits[alpha, C]["val_error"])
        trials = [fits[a, C] for a in alphas for C in Cs]
        best = min(trials, key=lambda t: t["val_error"])
        edges = _edges(best, alphas, Cs, key, prof, steps)
        if not edges:
            break
        for axis, up in edges:
            steps[axis, up] = steps.get((axis, up), 0) + 1
            grid = Cs if axis == "C" else alphas
            grid.insert(len(grid) if up else 0, grow(grid, up, axis == "C"))
    wanted = [(best["alpha"], best["C"])]
    if key == "k25" and best["alpha"] != 3 and 3 in alphas:
        wanted.append((3, best["C"]))
    full = [fits[a, C] if not n_sel else _classify(_fit_features(feats, a, train, evals), a, C, train, evals,
                                                   prof, seed) for a, C in wanted]
    at_edge = best["C"] in (Cs[0], Cs[-1]) or (best["alpha"] is not None and best["alpha"] in (alphas[0],
                                                                                                 alphas[-1]))
    full[0] = dict(full[0], grid={"alphas": alphas, "Cs": Cs, "at_edge": bool(at_edge and len(trials) > 1)})
    return trials, full


def run_row(key, args, prof, train, val, test, seed):
    """Train (or load) one method, fit the classifiers (:func:`select`) and return the row's record."""
    feats, info = _features(key, args, prof, train, seed)
    log.info("table1 %s seed %d: fitting the logistic regressions (alpha, C by validation error)", key, seed)
    start, cpu = time.perf_counter(), time.process_time()
    trials, full = select(key, feats, prof, train, [val, test], seed)
    log.debug("%s: alpha=%s C=%g: val %.4f test %.4f", key, full[0]["alpha"], full[0]["C"],
             full[0]["val_error"], full[0]["test_error"])
    label, paper = next((label, paper) for k, label, paper in ROWS if k == key)
    model = {"seconds": info["seconds"], "epochs": info.get("epochs"), "file": info.get("file"),
             "settings": info.get("settings"),
             "resumed_at": info.get("resumed_at", 0), "history": thin(info.get("history"))}
    return dict(full[0], key=key, label=label, paper_test_error=paper / 100, trials=trials, full_fits=full,
                model=model, classify_seconds={"wall": time.perf_counter() - start,
                                               "cpu": time.process_time() - cpu})


def outputs(args, keys, tables=True):
    """The files a run writes: one result file per row and seed, and (``tables``) OUT/table1.md and .json."""
    return ([_runs.result_path(args.results, "table1", args.profile, key, seed) for seed in args.seeds
             for key in keys] + [os.path.join(args.out, name) for name in ("table1.md", "table1.json")
                                                               if tables])


def tables(args):
    """OUT/table1.md and .json, each with the file that records its settings (the .json)."""
    record = os.path.join(args.out, "table1.json")
    return {os.path.join(args.out, "table1.md"): record, record: record}


def main(argv):
    """``ksparse reproduce table1 [--profile P] --out DIR [--seeds S ...] [--rows R] [--resume]``."""
    p = _common.parser("table1", __doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("mnist", "digits"), default="mnist",
                   help="digits: scikit-learn's 8x8 digits, for smoke tests")
    p.add_argument("--rows", default=",".join(DEFAULT_ROWS),
                   help="comma-separated subset of rows (default: the paper's); also k40c, k25c, k10c: "
                   "the k-sparse models on mean-subtracted inputs; k40d, k25d, k10d: the library's "
                   "defaults (data scale, pre-encoder bias, resampling)")
    args = p.parse_args(argv)
    keys = args.rows.split(",")
    unknown = set(keys) - {k for k, _, _ in ROWS}
    if unknown:
        raise ValueError(f"unknown rows {sorted(unknown)}; choose from {[k for k, _, _ in ROWS]}")
    prof = _common.finish_args(args, lambda a: outputs(a, keys))
    _, train, val, test = _common.load_mnist_split(args.dataset, args.data_dir, prof["n_train"])
    data = {"dataset": args.dataset, "n_train": len(train[0]), "n_val": len(val[0]), "n_test": len(test[0]),
            "val_split": _common.VAL_SPLIT if args.dataset == "mnist" else "digits: first quarter"}
    fingerprint = _common.data_fingerprint(*train, *val, *test)
    expected = {"settings": prof, "data": data, "data_sha1": fingerprint, "profile": args.profile}
    _common.check_resume(args, outputs(args, keys, tables=False), expected, records=tables(args))
    results = []
    for seed in args.seeds:
        for key in keys:
            path = _runs.result_path(args.results, "table1", args.profile, key, seed)
            done = _runs.finished(path) if args.resume else None
            if done is not None:
                log.info("%s seed %d: kept %s", key, seed, path)
                results.append(json.load(open(path)))
                continue
            meta = dict(_runs.run_meta("table1", argv, args.profile, seed), settings=prof, data=data,
                        data_sha1=fingerprint)
            start = time.perf_counter()
            record = run_row(key, args, prof, train, val, test, seed)
            meta["seconds"] = time.perf_counter() - start
            _runs.write_result(path, meta, record)
            chosen = ("" if record["alpha"] is None else f"alpha {record['alpha']}, ") + f"C {record['C']:g}"
            log.info("table1 %s seed %d: test error %s (%s), %.0f s; wrote %s", key, seed,
                     _percent(record["test_error"]), chosen, meta["seconds"], path)
            results.append({"meta": meta, "result": record})
    from ksparse.reproduce import report

    table = report.table1(results)
    _runs.write_text(os.path.join(args.out, "table1.json"),  # first: it records the settings of both
                     json.dumps(results, indent=1, default=_runs.jsonable))
    _runs.write_text(os.path.join(args.out, "table1.md"), table)
    print(table)
    print(_progress.wrote(outputs(args, keys), args.results))
    return 0


def _percent(error):
    return "n/a" if error is None else f"{100 * error:.2f}%"
