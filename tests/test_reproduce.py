"""``ksparse reproduce``: table1 and the figures end to end on the bundled digits, in seconds."""

import json
import os

import numpy as np
import pytest

from ksparse.reproduce import main
from ksparse.reproduce import table1 as t1
from ksparse.reproduce._common import cached_model
from ksparse.reproduce.figures import orientation_selectivity, spatial_spread

SMOKE = ["--profile", "smoke", "--dataset", "digits"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """One output folder shared by the targets, so that table1 and the figures share models."""
    return str(tmp_path_factory.mktemp("reproduce"))


def test_table1_writes_a_markdown_table_with_every_row(out):
    docs = os.path.join(out, "results.md")
    with open(docs, "w") as f:
        f.write("# Results\n\nkept text\n")
    assert main(["table1", *SMOKE, "--out", out, "--docs", docs]) == 0
    table = open(os.path.join(out, "table1.md")).read()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| Method")]
    default = [row for row in t1.ROWS if row[0] in t1.DEFAULT_ROWS]
    assert len(rows) == len(default)
    for (_, label, paper), line in zip(default, rows, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 7 and cells[0] == label and cells[1] == f"{paper:.2f}%"
        assert 0.0 <= float(cells[2].rstrip("%")) <= 100.0
    result = json.load(open(os.path.join(out, "table1.json")))
    assert [r["key"] for r in result["rows"]] == t1.DEFAULT_ROWS
    k25 = next(r for r in result["rows"] if r["key"] == "k25")
    assert k25["alpha"] in (1, 2)  # the smoke profile's alphas, chosen on validation
    assert min(k25["trials"], key=lambda t: t["val_error"])["alpha"] == k25["alpha"]
    assert k25["n_fit"] == result["meta"]["n_train"] > k25["trials"][0]["n_fit"]  # refit on all of train
    text = open(docs).read()
    assert "kept text" in text and "<!-- table1:smoke -->" in text and table in text


def test_table1_reuses_cached_models_and_updates_docs_in_place(out):
    docs = os.path.join(out, "results.md")
    before = sorted(os.listdir(os.path.join(out, "models")))
    assert main(["table1", *SMOKE, "--out", out, "--docs", docs, "--rows", "raw,k25"]) == 0
    assert sorted(os.listdir(os.path.join(out, "models"))) == before
    text = open(docs).read()
    assert text.count("<!-- table1:smoke -->") == 1 and "k-sparse, k = 40" not in text


def test_table1_centred_row_trains_on_mean_subtracted_inputs(out):
    from ksparse.reproduce._common import PROFILES, load_mnist_split

    sub = os.path.join(out, "centred")
    assert main(["table1", *SMOKE, "--out", sub, "--docs", "none", "--rows", "k25c"]) == 0
    (name,) = [f for f in os.listdir(os.path.join(sub, "models")) if f.startswith("ksparse-k25c-")]
    with np.load(os.path.join(sub, "models", name)) as f:
        x_mean = f["x_mean"]
    _, train, _, _ = load_mnist_split("digits", None, PROFILES["smoke"]["n_train"])
    np.testing.assert_array_equal(x_mean, train[0].mean(axis=0, dtype=np.float64))
    table = open(os.path.join(sub, "table1.md")).read()
    assert "k = 25, centred inputs (ours)" in table


def test_table1_rejects_unknown_rows(out):
    with pytest.raises(ValueError, match="unknown rows"):
        main(["table1", *SMOKE, "--out", out, "--rows", "raw,pca"])


@pytest.mark.parametrize("name", ["fig1", "fig3", "fig4"])
def test_figures_write_png_and_numbers(out, name):
    assert main([name, *SMOKE, "--out", out]) == 0
    pngs = [f"fig1_k{k}.png" for k in (70, 40, 25, 10)] if name == "fig1" else [f"{name}.png"]
    for png in (os.path.join(out, p) for p in pngs):
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) < 200_000
    stats = json.load(open(os.path.join(out, f"{name}.json")))["stats"]
    if name == "fig1":
        assert set(stats) == {"k70", "k40", "k25", "k10"}
    elif name == "fig3":
        assert stats["median_spread_px_random"] > 0 and 0 <= stats["median_orientation_selectivity"] <= 1
    else:
        assert stats["k15"]["mean_active_per_sample"] == 15.0
        assert stats["k15"]["zero_fraction"] > stats["relu"]["zero_fraction"]


def test_unknown_target_is_refused():
    with pytest.raises(ValueError, match="unknown reproduce target"):
        main(["table9"])


def test_spatial_spread_of_a_point_and_of_flat_filters():
    shape = (8, 8)
    point = np.zeros((64, 1))
    point[27, 0] = 1.0
    flat = np.ones((64, 1))
    assert spatial_spread(point, shape)[0] == 0.0
    np.testing.assert_allclose(spatial_spread(flat, shape)[0], np.sqrt(2 * 63 / 12))


def test_orientation_selectivity_separates_gratings_from_noise():
    _, c = np.indices((8, 8))
    grating = np.cos(2 * np.pi * c / 4).reshape(64, 1)
    noise = np.random.default_rng(0).normal(size=(64, 200))
    assert orientation_selectivity(grating, (8, 8))[0] > 0.7
    assert np.median(orientation_selectivity(noise, (8, 8))) < 0.4


def test_cached_model_trains_once(tmp_path):
    calls = []

    def train():
        calls.append(1)
        return {"W": np.arange(6.0).reshape(2, 3)}

    a, _ = cached_model(str(tmp_path), "m", {"x": 1}, train)
    b, _ = cached_model(str(tmp_path), "m", {"x": 1}, train)
    cached_model(str(tmp_path), "m", {"x": 2}, train)
    assert len(calls) == 2
    np.testing.assert_array_equal(a["W"], b["W"])


needs_data = pytest.mark.skipif(not os.environ.get("KSPARSE_DATA"),
                                reason="set KSPARSE_DATA to the real data")


@needs_data
def test_table1_on_real_mnist_subset(tmp_path):
    argv = ["table1", "--profile", "smoke", "--rows", "raw,k25", "--out", str(tmp_path), "--docs", "none"]
    assert main(argv) == 0
    result = json.load(open(tmp_path / "table1.json"))
    assert result["meta"]["n_train"] == 600 and result["meta"]["n_val"] == 10000
    assert result["rows"][0]["test_error"] < 0.3  # raw pixels, 600 training images


@needs_data
def test_fig3_on_real_cifar10_patches(tmp_path):
    assert main(["fig3", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    stats = json.load(open(tmp_path / "fig3.json"))
    assert stats["dataset"] == "cifar10-patches" and stats["stats"]["d"] == 192
