"""Figures: each helper writes a PNG atomically and leaves matplotlib's global state alone."""

import os
import sys

import matplotlib
import matplotlib.figure
import numpy as np
import pytest

from ksparse import plots

PNG = b"\x89PNG\r\n\x1a\n"


def png_shape(path):
    import matplotlib.image

    return matplotlib.image.imread(path).shape


def no_temp_files(folder):
    return not [f for f in os.listdir(folder) if f.startswith(".tmp-")]


@pytest.mark.parametrize("d, shape", [(64, (8, 8)), (192, (8, 8, 3)), (192, (3, 8, 8)), (10, None)])
def test_filter_grid_writes_png(tmp_path, d, shape):
    W = np.random.default_rng(0).normal(size=(d, 30))
    path = tmp_path / "f.png"
    assert plots.filter_grid(W, shape, path, n_filters=12, title="t") == path
    assert path.read_bytes()[:8] == PNG and len(png_shape(path)) == 3
    assert no_temp_files(tmp_path)


def test_filter_grid_without_an_image_shape_draws_one_patch_per_filter(tmp_path, monkeypatch):
    # ax.bar made one patch per feature: `ksparse train` on 3 rows of 5000 features spent minutes on it
    W = np.random.default_rng(0).normal(size=(5000, 30))
    drawn = {}
    save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure",
                        lambda fig, path: drawn.setdefault("fig", fig) and save(fig, path))
    plots.filter_grid(W, None, tmp_path / "f.png", n_filters=12)
    axes = drawn["fig"].axes
    assert len(axes) == 12 and all(len(ax.patches) == 1 for ax in axes)
    cols = plots._pick_columns(W, 12, "norm")
    step = axes[0].patches[0]  # the heights are the filter's values, from 0 (bars of width 1)
    np.testing.assert_array_equal(step.get_data().values, W[:, cols[0]])
    assert step.get_data().baseline == 0.0 and (tmp_path / "f.png").exists()


def test_filter_grid_picks_largest_norm_columns():
    W = np.ones((4, 5)) * np.array([1.0, 5.0, 2.0, 4.0, 3.0])
    np.testing.assert_array_equal(plots._pick_columns(W, 3, "norm"), [1, 3, 4])
    np.testing.assert_array_equal(plots._pick_columns(W, 9, "first"), np.arange(5))
    with pytest.raises(ValueError, match="select"):
        plots._pick_columns(W, 3, "random")


def test_mosaic_places_tiles_with_gaps():
    tiles = [np.full((2, 3), v) for v in (0.0, 0.25, 0.5)]
    image = plots._mosaic(tiles, n_cols=2)
    assert image.shape == (2 * 3 + 1, 2 * 4 + 1)
    assert image[1, 1] == 0.0 and image[1, 5] == 0.25 and image[4, 1] == 0.5
    assert image[0].min() == 1.0 and image[4, 5] == 1.0  # gaps and the empty cell stay white


def test_scaled_tiles_map_zero_to_mid_gray_and_colour_to_unit_range():
    gray = plots._scaled(np.array([[-2.0, 0.0], [1.0, 2.0]]))
    np.testing.assert_allclose(gray, [[0.0, 0.5], [0.75, 1.0]])
    rgb = plots._scaled(np.random.default_rng(1).normal(size=(4, 4, 3)))
    assert rgb.min() == 0.0 and rgb.max() == 1.0
    assert plots._as_image(np.arange(48.0), (3, 4, 4)).shape == (4, 4, 3)


@pytest.mark.parametrize("shape", [(7, 7), (8, 4, 4), (64,)])
def test_filter_grid_rejects_wrong_image_shape(tmp_path, shape):
    with pytest.raises(ValueError, match="image_shape"):
        plots.filter_grid(np.zeros((64, 3)), shape, tmp_path / "f.png")
    assert not os.listdir(tmp_path)


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.png"
    path.write_bytes(b"old")

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        plots.filter_grid(np.ones((4, 2)), (2, 2), path)
    assert path.read_bytes() == b"old" and no_temp_files(tmp_path)


def test_plots_leave_global_matplotlib_state_alone(tmp_path):
    backend = matplotlib.get_backend()
    had_pyplot = "matplotlib.pyplot" in sys.modules
    figures = sys.modules["matplotlib.pyplot"].get_fignums() if had_pyplot else None
    plots.filter_grid(np.ones((4, 2)), (2, 2), tmp_path / "a.png")
    plots.activity_histogram(np.ones((3, 2)), tmp_path / "b.png")
    plots.reconstructions(np.ones((3, 4)), np.zeros((3, 4)), (2, 2), tmp_path / "c.png")
    assert matplotlib.get_backend() == backend
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot
    if had_pyplot:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == figures


def test_activity_histogram_one_or_several(tmp_path):
    rng = np.random.default_rng(2)
    h = np.maximum(rng.normal(size=(50, 20)), 0)
    plots.activity_histogram(h, tmp_path / "one.png", nonzero=True)
    plots.activity_histogram({"k=5": h, "k=10": 2 * h}, tmp_path / "two.png", bins=20, title="Fig. 4")
    assert (tmp_path / "one.png").read_bytes()[:8] == PNG == (tmp_path / "two.png").read_bytes()[:8]
    with pytest.raises(ValueError, match="finite"):
        plots.activity_histogram({"bad": np.array([1.0, np.nan])}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="empty"):
        plots.activity_histogram(np.zeros((3, 3)), tmp_path / "zero.png", nonzero=True)
    assert not (tmp_path / "bad.png").exists() and not (tmp_path / "zero.png").exists()


@pytest.mark.parametrize("shape, d", [((4, 4), 16), ((3, 4, 4), 48), (None, 5)])
def test_reconstructions_writes_png(tmp_path, shape, d):
    x = np.random.default_rng(3).random((6, d))
    plots.reconstructions(x, 0.9 * x, shape, tmp_path / "r.png", n=4, title="x and x_hat")
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG


def test_reconstructions_rejects_mismatched_arrays(tmp_path):
    with pytest.raises(ValueError, match="one shape"):
        plots.reconstructions(np.zeros((3, 4)), np.zeros((3, 5)), (2, 2), tmp_path / "r.png")
