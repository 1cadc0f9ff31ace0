"""Figures: filter grids (Fig. 1, Fig. 3), activity histograms (Fig. 4) and reconstructions.

Every function draws on its own :class:`matplotlib.figure.Figure` with the Agg canvas,
so importing or calling it never touches pyplot's global state or the user's backend,
and writes the PNG atomically (a temporary file renamed into place).
"""

import numpy as np

from ksparse.backend import to_numpy
from ksparse.io import atomic_write


def _figure(width, height):
    """A stand-alone Figure on an Agg canvas (no pyplot, no global backend change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path, dpi=100):
    """Write the matplotlib figure ``fig`` as a PNG to ``path`` atomically
    (:func:`ksparse.io.atomic_write`: a crash leaves the old file or the new one); return ``path``."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
    return path


def _check_shape(image_shape, d):
    """Return ``image_shape`` as a tuple whose product is ``d``, or None for bar plots."""
    if image_shape is None:
        return None
    shape = tuple(int(s) for s in image_shape)
    if len(shape) not in (2, 3) or int(np.prod(shape)) != d:
        raise ValueError(
            f"image_shape {image_shape} does not fit vectors of length {d}; give (h, w), "
            f"(h, w, c) or (c, h, w) with product {d}, or None to draw bars"
        )
    return shape


def _as_image(v, shape):
    """One vector as an image: 2-D gray, or (h, w, 3) colour from (h, w, c) or (c, h, w)."""
    img = v.reshape(shape)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)  # (c, h, w) -> (h, w, c)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    return img


def _scaled(img):
    """Scale one tile to [0, 1]: gray symmetric about 0 (0 is mid-gray), colour min-max."""
    if img.ndim == 2:
        m = np.abs(img).max()
        return 0.5 + 0.5 * img / (m if m > 0 else 1.0)
    span = img.max() - img.min()
    return (img - img.min()) / (span if span > 0 else 1.0)


def _mosaic(tiles, n_cols, pad=1):
    """Tile equally shaped images (values in [0, 1]) into one image with white gaps."""
    h, w = tiles[0].shape[:2]
    n_rows = int(np.ceil(len(tiles) / n_cols))
    out = np.ones((n_rows * (h + pad) + pad, n_cols * (w + pad) + pad) + tiles[0].shape[2:])
    for i, tile in enumerate(tiles):
        r, c = divmod(i, n_cols)
        out[pad + r * (h + pad):(r + 1) * (h + pad), pad + c * (w + pad):(c + 1) * (w + pad)] = tile
    return out


def _pick_columns(W, n_filters, select):
    """Indices of the columns to draw: the first ones, or those with the largest norm."""
    n = min(int(n_filters), W.shape[1])
    if select == "first":
        return np.arange(n)
    if select == "norm":
        return np.argsort(-np.linalg.norm(W, axis=0), kind="stable")[:n]
    raise ValueError(f"select must be 'norm' or 'first', got {select!r}")


def filter_grid(W, image_shape, path, n_filters=100, select="norm", n_cols=None, title=None):
    """Draw decoder columns W[:, j] as a grid of images, as in Fig. 1 and Fig. 3; write a PNG.

    Parameters
    ----------
    W : array, shape (d, H)
        Tied weights; column j is the filter (dictionary atom) of hidden unit j.
    image_shape : tuple or None
        (h, w) for gray images, (h, w, c) or (c, h, w) for colour; None draws each
        column as a bar plot (data without an image shape).
    path : str or path
        Output PNG, written atomically.
    n_filters : int, default 100
        How many columns to draw.
    select : {"norm", "first"}, default "norm"
        "norm" draws the columns of largest norm (dead units keep their small initial
        weights, so this shows the learnt filters); "first" draws columns 0, 1, ...
    n_cols : int, optional
        Grid width; default about the square root of the number drawn.
    title : str, optional

    Returns
    -------
    path
    """
    W = np.asarray(to_numpy(W), dtype=np.float64)
    if W.ndim != 2 or W.shape[1] == 0:
        raise ValueError(f"W must be 2-D (d, H) with H >= 1, got shape {W.shape}")
    shape = _check_shape(image_shape, W.shape[0])
    cols = _pick_columns(W, n_filters, select)
    n_cols = int(n_cols or np.ceil(np.sqrt(len(cols))))
    if shape is None:
        return _bar_grid(W[:, cols], n_cols, path, title)
    image = _mosaic([_scaled(_as_image(W[:, j], shape)) for j in cols], n_cols)
    height = 6.0 * image.shape[0] / max(image.shape[:2])
    width = 6.0 * image.shape[1] / max(image.shape[:2])
    fig = _figure(width, height + (0.4 if title else 0.0))
    ax = fig.add_axes((0, 0, 1, height / (height + (0.4 if title else 0.0))))
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.suptitle(title, y=0.99, va="top")
    return save_figure(fig, path)


def _bar_grid(columns, n_cols, path, title):
    """Fallback of :func:`filter_grid` for data without an image shape: one bar plot per column."""
    n_rows = int(np.ceil(columns.shape[1] / n_cols))
    fig = _figure(max(2.0, 0.8 * n_cols), max(2.0, 0.6 * n_rows + (0.4 if title else 0)))
    edges = np.arange(columns.shape[0] + 1) - 0.5
    for i in range(columns.shape[1]):
        ax = fig.add_subplot(n_rows, n_cols, i + 1)
        # one filled step patch per column, drawn like bars of width 1 (ax.bar made one patch per
        # feature: 100 columns of 5000 features took minutes)
        ax.stairs(columns[:, i], edges, baseline=0.0, fill=True, color="k")
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def activity_histogram(activities, path, bins=60, nonzero=False, title=None):
    """Histogram of hidden unit activities on a log count axis, as in Fig. 4; write a PNG.

    Parameters
    ----------
    activities : array (N, H) or dict of str -> array
        Hidden activities (e.g. ``h`` from :func:`ksparse.kernels.encode.encode`), or several
        labelled ones to overlay (one line per method).
    path : str or path
        Output PNG, written atomically.
    bins : int, default 60
        Number of bins, shared by all curves.
    nonzero : bool, default False
        Count only the nonzero activities (the units on the support).
    title : str, optional

    Returns
    -------
    path
    """
    if not isinstance(activities, dict):
        activities = {None: activities}
    values = {}
    for label, h in activities.items():
        v = np.asarray(to_numpy(h), dtype=np.float64).ravel()
        v = v[v != 0] if nonzero else v
        if v.size == 0 or not np.all(np.isfinite(v)):
            name = "activities" if label is None else f"activities {label!r}"
            raise ValueError(f"{name} must be finite and not empty")
        values[label] = v
    lo = min(v.min() for v in values.values())
    hi = max(v.max() for v in values.values())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, int(bins) + 1)
    fig = _figure(6, 4)
    ax = fig.add_subplot(1, 1, 1)
    for label, v in values.items():
        ax.hist(v, bins=edges, histtype="step", log=True, label=label)
    ax.set_xlabel("hidden activity")
    ax.set_ylabel("count (log scale)")
    if any(label is not None for label in values):
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def reconstructions(x, x_hat, image_shape, path, n=10, title=None):
    """Draw ``n`` inputs (top row) above their reconstructions (bottom row); write a PNG.

    Parameters
    ----------
    x, x_hat : array, shape (N, d)
        Inputs and their reconstructions (D3).
    image_shape : tuple or None
        As in :func:`filter_grid`; None draws bars.
    path : str or path
        Output PNG, written atomically.
    n : int, default 10
        Number of samples drawn (the first ``n``).
    title : str, optional

    Returns
    -------
    path
    """
    x = np.asarray(to_numpy(x), dtype=np.float64)
    x_hat = np.asarray(to_numpy(x_hat), dtype=np.float64)
    if x.ndim != 2 or x.shape != x_hat.shape or x.shape[0] == 0:
        raise ValueError(
            f"x and x_hat must be non-empty 2-D arrays of one shape, got {x.shape} and {x_hat.shape}"
        )
    shape = _check_shape(image_shape, x.shape[1])
    n = min(int(n), x.shape[0])
    lo, hi = float(x[:n].min()), float(x[:n].max())  # one gray scale for inputs and outputs
    fig = _figure(max(2.0, 0.9 * n), 2.0 + (0.4 if title else 0))
    for row, data in enumerate((x, x_hat)):
        for i in range(n):
            ax = fig.add_subplot(2, n, row * n + i + 1)
            if shape is None:
                ax.bar(np.arange(data.shape[1]), data[i], width=1.0, color="k")
            else:
                img = _as_image(data[i], shape)
                if img.ndim == 2:
                    ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
                else:
                    ax.imshow(np.clip((img - lo) / ((hi - lo) or 1.0), 0, 1), interpolation="nearest")
            ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
