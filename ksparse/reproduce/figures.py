"""Figures 1, 3 and 4 of the paper (Sec. 4.3): filters for several k, patch filters, activity histograms.

``ksparse reproduce fig1|fig3|fig4 --out DIR [--profile P] [--data-dir DIR]`` writes
``DIR/figN.png`` and ``DIR/figN.json`` (the numbers quoted in docs/results.md). Models are
shared with ``table1`` through the cache (``--cache``, default ``DIR/models``).

- Fig. 1: MNIST filters of k = 70, 40, 25, 10 (1000 hidden units), with each filter's
  spatial spread: smaller k should give larger, more global strokes.
- Fig. 3: CIFAR-10 patch filters, k = 50, with two numbers per filter against random
  filters of the same size: spatial spread (localisation) and orientation selectivity.
- Fig. 4: log histograms of hidden activity on the MNIST test set for a ReLU autoencoder,
  the dropout (50% hidden, 20% input) autoencoder and k-sparse k = 70 and k = 15.
"""

import json
import os
import time

import numpy as np

from ksparse.reproduce import _common

FIG1_KS = (70, 40, 25, 10)
FIG3_K = 50
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


def _tile(W, shape, n_show):
    """Arrange the first ``n_show`` filters (columns of W) in a square grid image, each scaled to [0, 1]."""
    side = int(np.ceil(np.sqrt(n_show)))
    h, w = shape[:2]
    c = shape[2] if len(shape) == 3 else 1
    grid = np.ones(((h + 1) * side + 1, (w + 1) * side + 1, c))
    for i in range(min(n_show, W.shape[1])):
        f = W[:, i].reshape(h, w, c) if c > 1 else W[:, i].reshape(h, w, 1)
        f = (f - f.min()) / max(f.max() - f.min(), 1e-12)
        r, q = divmod(i, side)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + q * (w + 1):1 + q * (w + 1) + w] = f
    return grid[..., 0] if c == 1 else grid


def _save(fig, path):
    fig.savefig(path, dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)


def _used(W, b, X, k):
    """Boolean (H,): the units in Gamma = supp_k(z) of at least one of the first 10,000 samples."""
    from ksparse.layers import supp_k

    Gamma = supp_k(X[:10000] @ W + b, min(k, W.shape[1]))
    used = np.zeros(W.shape[1], dtype=bool)
    used[np.unique(Gamma)] = True
    return used


def _pick(W, used, n_show, rng):
    """Columns of W to show: a random sample of the used filters (dead ones are random noise)."""
    return W[:, rng.permutation(np.flatnonzero(used))[:n_show]]


def fig1(args, prof):
    """Fig. 1: MNIST filters for k = 70, 40, 25, 10, and their spatial spread."""
    import matplotlib.pyplot as plt

    ds, train, _, _ = _common.load_mnist_split(args.dataset, args.data_dir, prof["n_train"])
    shape = ds.image_shape
    models = {}
    for k in sorted(FIG1_KS, key=lambda k: k == 70):  # k = 70 last: table1 shares the others
        models[k] = _common.ksparse_model(args.cache, train[0], min(k, prof["n_hidden"]), prof,
                                          args.dataset, args.seed)
    fig, axes = plt.subplots(1, len(FIG1_KS), figsize=(3 * len(FIG1_KS), 3.3))
    stats = {}
    for ax, k in zip(axes, FIG1_KS, strict=True):
        arrays, sec = models[k]
        W = arrays["W"]
        used = _used(W, arrays["b"], train[0], k)
        grid = _tile(_pick(W, used, 100, np.random.default_rng(args.seed)), shape, 100)
        ax.imshow(grid, cmap="gray", interpolation="nearest")
        ax.set_title(f"k = {k}")
        ax.axis("off")
        stats[f"k{k}"] = {"median_spread_px": float(np.median(spatial_spread(W[:, used], shape))),
                          "dead_fraction": float(1.0 - used.mean()), "train_seconds": sec}
    _save(fig, os.path.join(args.out, "fig1.png"))
    return stats


def fig3(args, prof):
    """Fig. 3: CIFAR-10 patch filters (k = 50) with spread and orientation selectivity vs random filters."""
    import matplotlib.pyplot as plt

    from ksparse.datasets import load_dataset

    if args.dataset == "digits":  # smoke tests: 8x8 digits stand in for patches
        ds = load_dataset("digits")
    else:
        ds = load_dataset("cifar10-patches", data_dir=args.data_dir, n_patches=prof["n_patches"],
                          n_test_patches=0, random_state=args.seed)
    X, shape = ds.X_train, tuple(ds.image_shape)
    k = min(FIG3_K, prof["n_hidden"] // 2)
    patch_prof = dict(prof, ksparse_epochs=prof["patch_epochs"])
    name = "cifar10-patches" if args.dataset != "digits" else "digits-patches"
    arrays, sec = _common.ksparse_model(args.cache, X, k, patch_prof, name, args.seed)
    W = arrays["W"]
    used = _used(W, arrays["b"], X, k)
    shown = _pick(W, used, 100, np.random.default_rng(args.seed))
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.imshow(_tile(shown, shape, 100), cmap="gray" if len(shape) == 2 else None, interpolation="nearest")
    ax.set_title(f"k-sparse filters, k = {k}, CIFAR-10 patches" if args.dataset != "digits" else f"k = {k}")
    ax.axis("off")
    _save(fig, os.path.join(args.out, "fig3.png"))
    rand = np.random.default_rng(args.seed).normal(size=W.shape)
    live = W[:, used]
    return {"n_patches": int(X.shape[0]), "d": int(X.shape[1]), "k": k, "train_seconds": sec,
            "n_used_filters": int(live.shape[1]),
            "median_spread_px": float(np.median(spatial_spread(live, shape))),
            "median_spread_px_random": float(np.median(spatial_spread(rand, shape))),
            "median_orientation_selectivity": float(np.median(orientation_selectivity(live, shape))),
            "median_orientation_selectivity_random": float(np.median(orientation_selectivity(rand, shape)))}


def fig4(args, prof):
    """Fig. 4: log10 histograms of hidden activity on the test set for four models."""
    import matplotlib.pyplot as plt

    from ksparse.baselines import features
    from ksparse.encode import encode

    _, train, _, test = _common.load_mnist_split(args.dataset, args.data_dir, prof["n_train"])
    acts, stats = {}, {}
    # k = 70 last (fig1 trains it too) and the dropout model late (table1 trains it)
    order = ("relu", "k15", "dropout_denoising", "k70")
    for key, label in sorted(FIG4_MODELS, key=lambda m: order.index(m[0])):
        if key.startswith("k"):
            k = min(int(key[1:]), prof["n_hidden"])
            arrays, sec = _common.ksparse_model(args.cache, train[0], k, prof, args.dataset, args.seed)
            h = encode(test[0], arrays["W"], arrays["b"], k)
        else:
            arrays, sec = _common.baseline_model(args.cache, train[0], key, prof, args.dataset, args.seed)
            h = features(test[0], arrays["W"], arrays["b"])
        acts[label] = np.asarray(h, dtype=np.float64).ravel()
        stats[key] = {"zero_fraction": float(np.mean(acts[label] == 0)),
                      "mean_active_per_sample": float(np.mean((h != 0).sum(axis=1))),
                      "max_activity": float(acts[label].max()), "train_seconds": sec}
    top = max(float(np.percentile(a[a > 0], 99.9)) for a in acts.values() if (a > 0).any())
    bins = np.linspace(0.0, top, 61)
    fig, ax = plt.subplots(figsize=(6, 4))
    for _, label in FIG4_MODELS:
        a = acts[label]
        counts, _ = np.histogram(np.clip(a, 0.0, top), bins=bins)
        ax.plot(0.5 * (bins[1:] + bins[:-1]), np.log10(1 + counts), label=label)
    ax.set_xlabel("hidden activity")
    ax.set_ylabel("log10(1 + count)")
    ax.set_title(f"Log histogram of hidden activities ({len(test[0])} test images)")
    ax.legend(fontsize=8)
    _save(fig, os.path.join(args.out, "fig4.png"))
    return stats


def main(argv):
    """``ksparse reproduce fig1|fig3|fig4 --out DIR [--profile P] [--data-dir DIR] [--dataset D]``."""
    targets = {"fig1": fig1, "fig3": fig3, "fig4": fig4}
    if not argv or argv[0] not in targets:
        raise ValueError(f"the first argument must be one of {sorted(targets)}, got {argv[:1]}")
    name = argv[0]
    p = _common.parser(name, targets[name].__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("mnist", "digits"), default="mnist",
                   help="digits: scikit-learn's 8x8 digits, for smoke tests (fig3: instead of CIFAR-10)")
    args = p.parse_args(argv[1:])
    prof = _common.finish_args(args)
    os.environ.setdefault("MPLBACKEND", "Agg")
    start = time.perf_counter()
    stats = targets[name](args, prof)
    stats = {"profile": args.profile, "dataset": args.dataset, "seconds": time.perf_counter() - start,
             "stats": stats}
    with open(os.path.join(args.out, f"{name}.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print(json.dumps(stats, indent=1))
    return 0
