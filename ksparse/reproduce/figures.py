"""Figures 1, 3 and 4 of the paper (Sec. 4.3): filters for several k, patch filters, activity histograms.

``ksparse reproduce fig1|fig3|fig4 --out DIR [--profile P] [--data-dir DIR] [--seed S]`` writes
``DIR/figN.png`` (fig1: one ``DIR/fig1_kK.png`` per k; fig3: one ``DIR/fig3_ROW.png`` per row)
with :mod:`ksparse.plots`, and the numbers in ``DIR/figN.json`` and in the result file
``RESULTS/figN-PROFILE-all-seedS.json`` (fig3: ``RESULTS/fig3-PROFILE-ROW-seedS.json``,
:mod:`ksparse.reproduce._runs`). A figure is drawn for one seed (default 0). Models are
shared with ``table1`` through the cache (``--cache``, default ``DIR/models``). ``--resume``
draws the figure again (continuing a stopped k-sparse autoencoder from its checkpoint); a
result file made with other settings (e.g. another ``--dataset``) is refused.

- Fig. 1: MNIST filters of k = 70, 40, 25, 10 (1000 hidden units), with each filter's
  spatial spread: smaller k should give larger, more global strokes.
- Fig. 3: CIFAR-10 patch filters, k = 50, with two numbers per filter against random
  filters of the same size: spatial spread (localisation) and orientation selectivity
  (:func:`filter_statistics`). Two rows (``--rows paper,defaults``): the paper's setting
  (Sec. 4.2.2 on the raw whitened patches) and the library's defaults, for the same epochs.
- Fig. 4: log histograms of hidden activity on the MNIST test set for a ReLU autoencoder,
  the dropout (50% hidden, 20% input) autoencoder and k-sparse k = 70 and k = 15.
"""

import json
import logging
import os
import time

import numpy as np

from ksparse.reproduce import _common, _progress, _runs

log = logging.getLogger("ksparse.reproduce")

FIG1_KS = (70, 40, 25, 10)
FIG3_K = 50
# Fig. 3's rows: key -> (label, paper); paper=True is Sec. 4.2.2's model on the raw patches,
# False the library's defaults (scale, D9, resampling, their own lr), the same epochs
FIG3_ROWS = {"paper": ("paper's setting", True), "defaults": ("library defaults", False)}
FIG4_MODELS = (("relu", "ReLU autoencoder"), ("k70", "k-sparse, k = 70"), ("k15", "k-sparse, k = 15"),
               ("dropout_denoising", "Dropout autoencoder, 50% hidden and 20% input"))


def spatial_spread(W, shape):
    """Energy-weighted RMS distance (pixels) of each filter's squared weights from their centroid.

    Parameters
    ----------
    W : array, shape (d, H)
        One filter per column; d = prod(shape).
    shape : tuple
        (height, width) or (height, width, channels); channels are summed.

    Returns
    -------
    spread : array, shape (H,)
        sqrt(2 (n^2 - 1) / 12) for a filter whose energy is spread evenly over n x n pixels
        (3.24 for 8 x 8, 11.4 for 28 x 28); smaller means more localised.
    """
    energy = (np.asarray(W, dtype=np.float64) ** 2).T.reshape((W.shape[1],) + tuple(shape))
    if energy.ndim == 4:
        energy = energy.sum(axis=3)
    energy = energy / np.maximum(energy.sum(axis=(1, 2), keepdims=True), 1e-300)
    rows, cols = np.indices(energy.shape[1:])
    mu_r = (energy * rows).sum(axis=(1, 2))
    mu_c = (energy * cols).sum(axis=(1, 2))
    var = (energy * ((rows - mu_r[:, None, None]) ** 2 + (cols - mu_c[:, None, None]) ** 2)).sum(axis=(1, 2))
    return np.sqrt(var)


def orientation_selectivity(W, shape, pad=16):
    """|sum_f P(f) exp(2i theta_f)| / sum_f P(f) of each filter's power spectrum, in [0, 1].

    P is the power of the zero-padded 2-D FFT (channels summed, DC removed), theta_f the
    orientation of frequency f. An oriented edge or Gabor filter scores high; a blob or
    white noise scores near 0.
    """
    F = np.asarray(W, dtype=np.float64).T.reshape((W.shape[1],) + tuple(shape))
    if F.ndim == 3:
        F = F[..., None]
    F = F - F.mean(axis=(1, 2), keepdims=True)
    P = (np.abs(np.fft.fft2(F, s=(pad, pad), axes=(1, 2))) ** 2).sum(axis=3)
    fy = np.fft.fftfreq(pad)[:, None]
    fx = np.fft.fftfreq(pad)[None, :]
    phase = np.exp(2j * np.arctan2(fy, fx))
    phase[0, 0] = 0.0
    return np.abs((P * phase).sum(axis=(1, 2))) / np.maximum(P.sum(axis=(1, 2)), 1e-300)


def _used(arrays, X, k):
    """Boolean (H,): the units in Gamma = supp_k(z) of at least one of the first 10,000 samples.

    z is the model's own pre-activation on the raw samples: ``x W_enc + b_enc`` where the
    arrays carry them (the scale, D9 and centring folded in,
    :func:`ksparse.training.loop.encoder_params`), else ``x W + b`` (the paper's model).
    """
    from ksparse.nn.layers import supp_k

    W, b = (arrays["W_enc"], arrays["b_enc"]) if "W_enc" in arrays else (arrays["W"], arrays["b"])
    Gamma = supp_k(X[:10000] @ W + b, min(k, W.shape[1]))
    used = np.zeros(W.shape[1], dtype=bool)
    used[np.unique(Gamma)] = True
    return used


def _pick(W, used, n_show, rng):
    """Columns of W to show: a random sample of the used filters (dead ones are random noise)."""
    return W[:, rng.permutation(np.flatnonzero(used))[:n_show]]


def filter_statistics(W, shape, used=None, seed=0):
    """Localisation and orientation selectivity of the filters W against random filters (Fig. 3).

    The random filters are as many i.i.d. N(0, 1) columns of the same shape, drawn from
    ``np.random.default_rng(seed)``; a filter counts as localised when its
    :func:`spatial_spread` is below the 1st percentile of theirs, and as orientation-selective
    when its :func:`orientation_selectivity` is above their 99th percentile.

    Parameters
    ----------
    W : array, shape (d, H)
        One filter per column.
    shape : tuple
        (height, width) or (height, width, channels), prod(shape) = d.
    used : bool array, shape (H,), optional
        The filters to judge (e.g. the units that are ever in Gamma); default all.

    Returns
    -------
    dict
        ``n_used_filters``, the medians of both statistics for the filters and for the random
        ones, ``fraction_below_1st_percentile_of_random_spread`` and
        ``fraction_above_99th_percentile_of_random_selectivity`` (over the judged filters).
    """
    W = np.asarray(W, dtype=np.float64)
    used = np.ones(W.shape[1], dtype=bool) if used is None else np.asarray(used, dtype=bool)
    rand = np.random.default_rng(seed).normal(size=W.shape)
    spread, spread_rand = spatial_spread(W[:, used], shape), spatial_spread(rand, shape)
    sel, sel_rand = orientation_selectivity(W[:, used], shape), orientation_selectivity(rand, shape)
    return {"n_used_filters": int(used.sum()),
            "median_spread_px": float(np.median(spread)),
            "median_spread_px_random": float(np.median(spread_rand)),
            "fraction_below_1st_percentile_of_random_spread":
                float(np.mean(spread < np.percentile(spread_rand, 1))),
            "median_orientation_selectivity": float(np.median(sel)),
            "median_orientation_selectivity_random": float(np.median(sel_rand)),
            "fraction_above_99th_percentile_of_random_selectivity":
                float(np.mean(sel > np.percentile(sel_rand, 99)))}


def fig1(args, prof, data):
    """Fig. 1: MNIST filters for k = 70, 40, 25, 10, and their spatial spread."""
    from ksparse.plots import filter_grid

    shape, train = data["shape"], data["train"]
    stats = {}
    for k in sorted(FIG1_KS, key=lambda k: k == 70):  # k = 70 last: table1 shares the others
        arrays, info = _common.ksparse_model(args.cache, train[0], min(k, prof["n_hidden"]), prof,
                                             args.dataset, args.seed, resume=args.resume)
        W = arrays["W"]
        used = _used(arrays, train[0], k)
        path = os.path.join(args.out, f"fig1_k{k}.png")
        filter_grid(_pick(W, used, 100, np.random.default_rng(args.seed)), shape, path, select="first",
                    title=f"k = {k}")
        log.info("fig1 k = %d: drew %s", k, path)
        spread = spatial_spread(W[:, used], shape)
        stats[f"k{k}"] = {"median_spread_px": float(np.median(spread)),
                          "fraction_local_spread_below_3px": float(np.mean(spread < 3.0)),
                          "dead_fraction": float(1.0 - used.mean()), "train_seconds": info["seconds"],
                          "epochs": info["epochs"]}
    return {f"k{k}": stats[f"k{k}"] for k in FIG1_KS}


def fig3(args, prof, data):
    """Fig. 3: CIFAR-10 patch filters (k = 50) with spread and orientation selectivity vs random filters."""
    from ksparse.plots import filter_grid
    from ksparse.training.loop import TrainingDiverged

    X, shape = data["X"], data["shape"]
    k = min(FIG3_K, prof["n_hidden"] // 2)
    patch_prof = dict(prof, ksparse_epochs=prof["patch_epochs"])
    name = "cifar10-patches" if args.dataset != "digits" else "digits-patches"
    stats = {}
    for row in args.rows.split(","):
        paper = FIG3_ROWS[row][1]
        try:
            arrays, info = _common.ksparse_model(args.cache, X, k, patch_prof, name, args.seed,
                                                 resume=args.resume, paper=paper)
        except TrainingDiverged as e:  # a row that diverges is a result too: say so, draw the others
            stats[row] = {"paper_setting": paper, "diverged": str(e), "epochs": e.state.epoch}
            log.info("fig3 %s: the model diverged at epoch %d; no figure for this row", row,
                     e.state.epoch + 1)
            continue
        W = arrays["W"]
        used = _used(arrays, X, k)
        title = f"{FIG3_ROWS[row][0]}: k = {k}, {prof['n_hidden']} units, {X.shape[0]} patches"
        path = os.path.join(args.out, f"fig3_{row}.png")
        filter_grid(_pick(W, used, 100, np.random.default_rng(args.seed)), shape, path, select="first",
                    title=title)
        log.info("fig3 %s: drew %s", row, path)
        stats[row] = dict({"n_patches": int(X.shape[0]), "d": int(X.shape[1]), "k": k, "paper_setting": paper,
                           "train_seconds": info["seconds"], "epochs": info["epochs"],
                           "dead_fraction_last_epoch": _last(info, "dead_fraction")},
                          **filter_statistics(W, shape, used, args.seed))
    return stats


def _last(info, key):
    """``key`` of the last epoch's record of a trained model, or None without a history."""
    history = info.get("history") or []
    return history[-1].get(key) if history else None


def fig4(args, prof, data):
    """Fig. 4: log histograms of hidden activity on the test set for four models."""
    from ksparse.kernels.encode import encode
    from ksparse.nn.baselines import features
    from ksparse.plots import activity_histogram

    train, test = data["train"], data["test"]
    acts, stats = {}, {}
    # k = 70 last (fig1 trains it too) and the dropout model late (table1 trains it)
    order = ("relu", "k15", "dropout_denoising", "k70")
    for key, label in sorted(FIG4_MODELS, key=lambda m: order.index(m[0])):
        if key.startswith("k"):
            k = min(int(key[1:]), prof["n_hidden"])
            arrays, info = _common.ksparse_model(args.cache, train[0], k, prof, args.dataset, args.seed,
                                                 resume=args.resume)
            h = encode(test[0], arrays["W"], arrays["b"], k)
        else:
            arrays, info = _common.baseline_model(args.cache, train[0], key, prof, args.dataset, args.seed)
            h = features(test[0], arrays["W"], arrays["b"])
        acts[label] = np.asarray(h, dtype=np.float64).ravel()
        stats[key] = {"zero_fraction": float(np.mean(acts[label] == 0)),
                      "mean_active_per_sample": float(np.mean((h != 0).sum(axis=1))),
                      "max_activity": float(acts[label].max()), "train_seconds": info["seconds"],
                      "epochs": info["epochs"]}
        log.info("fig4 %s: %d test images encoded", key, len(test[0]))
    activity_histogram({label: acts[label] for _, label in FIG4_MODELS}, os.path.join(args.out, "fig4.png"),
                       title=f"Hidden activities, {len(test[0])} test images")
    return stats


def load(name, args, prof):
    """The data figure ``name`` reads, as a dict of its arrays (``fingerprint``: their
    :func:`~ksparse.reproduce._common.data_fingerprint`, which its result file records)."""
    from ksparse.datasets import load_dataset

    if name == "fig3":
        if args.dataset == "digits":  # smoke tests: 8x8 digits stand in for patches
            ds = load_dataset("digits")
        else:
            ds = load_dataset("cifar10-patches", data_dir=args.data_dir, n_patches=prof["n_patches"],
                              n_test_patches=0, random_state=args.seed)
        data = {"X": ds.X_train, "shape": tuple(ds.image_shape)}
        return dict(data, fingerprint=_common.data_fingerprint(data["X"]))
    ds, train, _, test = _common.load_mnist_split(args.dataset, args.data_dir, prof["n_train"])
    data = {"shape": ds.image_shape, "train": train, "test": test}
    used = (train[0],) if name == "fig1" else (train[0], test[0])
    return dict(data, fingerprint=_common.data_fingerprint(*used))


def _write_record(path, meta, stats):
    """OUT/figN.json: the figure's numbers and ``meta`` (the settings, data and command of its run)."""
    _runs.write_text(path, json.dumps(dict(stats, meta=meta), indent=1, default=_runs.jsonable))


def _fig3_rows(text):
    """argparse type of fig3's --rows: known keys, comma-separated."""
    import argparse

    unknown = sorted(set(text.split(",")) - set(FIG3_ROWS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown rows {unknown}; choose from {list(FIG3_ROWS)}")
    return text


def outputs(name, args):
    """The files a run of figure ``name`` writes: its images, OUT/NAME.json and its result files."""
    rows = args.rows.split(",") if name == "fig3" else ["all"]
    images = {"fig1": [f"fig1_k{k}.png" for k in FIG1_KS], "fig3": [f"fig3_{row}.png" for row in rows]}
    return ([os.path.join(args.out, f) for f in images.get(name, [f"{name}.png"]) + [f"{name}.json"]]
            + result_paths(name, args))


def result_paths(name, args):
    """The result files a run of figure ``name`` writes: one per fig3 row, else one (row ``all``)."""
    rows = args.rows.split(",") if name == "fig3" else ["all"]
    return [_runs.result_path(args.results, name, args.profile, row, seed) for seed in args.seeds
            for row in rows]


def main(argv):
    """``ksparse reproduce fig1|fig3|fig4 --out DIR [--profile P] [--data-dir DIR] [--dataset D]``."""
    targets = {"fig1": fig1, "fig3": fig3, "fig4": fig4}
    if not argv or argv[0] not in targets:
        raise ValueError(f"the first argument must be one of {sorted(targets)}, got {argv[:1]}")
    name = argv[0]
    p = _common.parser(name, targets[name].__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("mnist", "digits"), default="mnist",
                   help="digits: scikit-learn's 8x8 digits, for smoke tests (fig3: instead of CIFAR-10)")
    if name == "fig3":
        p.add_argument("--rows", default=",".join(FIG3_ROWS), type=_fig3_rows,
                       help="comma-separated models to draw: paper (Sec. 4.2.2, raw patches, no "
                       "remedies), defaults (the library's defaults); default: both")
    args = p.parse_args(argv[1:])
    if args.seeds is not None and len(args.seeds) != 1:
        raise ValueError(f"a figure is drawn for one seed; give --seed S (got --seeds {args.seeds})")
    prof = _common.finish_args(args, lambda a: outputs(name, a),
                               "it draws the figure again from the models in the cache, continuing a stopped "
                               "k-sparse autoencoder's training from its checkpoint")
    data = "cifar10-patches" if name == "fig3" and args.dataset != "digits" else args.dataset
    arrays = load(name, args, prof)
    expected = {"settings": prof, "data": {"dataset": data}, "data_sha1": arrays["fingerprint"],
                "profile": args.profile}
    record = os.path.join(args.out, f"{name}.json")  # records the settings of the figure's images
    results = result_paths(name, args)
    _common.check_resume(args, results, expected,
                         records={p: record for p in outputs(name, args) if p not in results})
    meta = dict(_runs.run_meta(name, argv[1:], args.profile, args.seed), settings=prof,
                data={"dataset": data}, data_sha1=arrays["fingerprint"])
    # written before the images, so that those of a stopped run are known as this run's on --resume
    # (which keeps the numbers of the record it found, made with these settings, until it is done)
    if not (args.resume and os.path.isfile(record)):
        _write_record(record, meta, {"profile": args.profile, "dataset": data, "seconds": None, "stats": {}})
    start = time.perf_counter()
    stats = targets[name](args, prof, arrays)
    meta["seconds"] = time.perf_counter() - start
    stats = {"profile": args.profile, "dataset": data, "seconds": meta["seconds"], "stats": stats}
    _write_record(record, meta, stats)
    # one result file per run: fig3's rows each have their own, the other figures one for all
    rows = {"all": stats["stats"]} if name != "fig3" else {row: {row: s} for row, s in stats["stats"].items()}
    for row, row_stats in rows.items():
        entry = dict(stats, stats=row_stats, key=row)
        _runs.write_result(_runs.result_path(args.results, name, args.profile, row, args.seed), meta, entry)
    diverged = {f"fig3_{row}.png" for row, s in stats["stats"].items() if "diverged" in s}
    written = [p for p in outputs(name, args) if name != "fig3" or os.path.basename(p) not in diverged]
    print(_progress.wrote(written, args.results))
    return 0
