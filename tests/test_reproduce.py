"""``ksparse reproduce``: table1 and the figures end to end on the bundled digits, in seconds."""

import json
import os

import numpy as np
import pytest

from ksparse.reproduce import main
from ksparse.reproduce import table1 as t1
from ksparse.reproduce._common import cached_model
from ksparse.reproduce._runs import source_digest
from ksparse.reproduce.figures import filter_statistics, orientation_selectivity, spatial_spread

SMOKE = ["--profile", "smoke", "--dataset", "digits"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """One output folder shared by the targets, so that table1 and the figures share models."""
    return str(tmp_path_factory.mktemp("reproduce"))


def _results(folder):
    return {f: json.load(open(os.path.join(folder, f))) for f in sorted(os.listdir(folder))}


def test_table1_writes_one_result_file_per_row_and_a_table(out):
    assert main(["table1", *SMOKE, "--out", out]) == 0
    table = open(os.path.join(out, "table1.md")).read()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| Method")]
    default = [row for row in t1.ROWS if row[0] in t1.DEFAULT_ROWS]
    assert len(rows) == len(default)
    files = _results(os.path.join(out, "results"))
    assert sorted(files) == sorted(f"table1-smoke-{key}-seed0.json" for key in t1.DEFAULT_ROWS)
    for (key, label, paper), line in zip(default, rows, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        result = files[f"table1-smoke-{key}-seed0.json"]["result"]
        assert len(cells) == 8 and cells[0] == label and cells[1] == f"{paper:.2f}%"
        assert cells[2] == f"{100 * result['test_error']:.2f}%" and cells[3] == "0"
    data = files["table1-smoke-k25-seed0.json"]
    k25, meta = data["result"], data["meta"]
    assert k25["alpha"] in k25["grid"]["alphas"]  # the smoke profile's alphas (grown), chosen on validation
    assert set(k25["grid"]["alphas"]) >= {1, 2} and k25["grid"]["Cs"][:3] == [1.0, 3.0, 10.0]
    assert min(k25["trials"], key=lambda t: t["val_error"])["alpha"] == k25["alpha"]
    assert k25["n_fit"] == meta["data"]["n_train"] > k25["trials"][0]["n_fit"]  # refit on all of train
    assert meta["seed"] == 0 and meta["profile"] == "smoke"
    assert meta["command"].startswith("ksparse reproduce table1")
    assert meta["code"]["source_sha1"] == source_digest() and meta["settings"]["ksparse_epochs"] == 2
    assert k25["model"]["epochs"] == 2 == len(k25["model"]["history"]) and k25["model"]["seconds"]["wall"] > 0


def test_table1_reuses_cached_models(out):
    before = sorted(os.listdir(os.path.join(out, "models")))  # --overwrite: these rows' files are there
    assert main(["table1", *SMOKE, "--out", out, "--rows", "raw,k25", "--overwrite"]) == 0
    assert sorted(os.listdir(os.path.join(out, "models"))) == before


def test_table1_seeds_write_one_file_each_and_resume_keeps_finished_ones(tmp_path):
    out = str(tmp_path)
    assert main(["table1", *SMOKE, "--out", out, "--rows", "k25", "--seeds", "0", "1"]) == 0
    folder = os.path.join(out, "results")
    files = _results(folder)
    assert sorted(files) == ["table1-smoke-k25-seed0.json", "table1-smoke-k25-seed1.json"]
    assert [f["meta"]["seed"] for f in files.values()] == [0, 1]
    models = os.path.join(out, "models")
    W = [np.load(os.path.join(models, f))["W"] for f in sorted(os.listdir(models))]
    assert len(W) == 2 and not np.array_equal(W[0], W[1])  # one model per seed
    stamp = os.path.getmtime(os.path.join(folder, "table1-smoke-k25-seed0.json"))
    assert main(["table1", *SMOKE, "--out", out, "--rows", "k25", "--seeds", "0", "1", "--resume"]) == 0
    assert os.path.getmtime(os.path.join(folder, "table1-smoke-k25-seed0.json")) == stamp


def test_seed_and_seeds_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not both"):
        main(["table1", *SMOKE, "--out", str(tmp_path), "--seed", "1", "--seeds", "0", "1"])


def test_table1_centred_row_trains_on_mean_subtracted_inputs(out):
    from ksparse.reproduce._common import PROFILES, load_mnist_split

    sub = os.path.join(out, "centred")
    assert main(["table1", *SMOKE, "--out", sub, "--rows", "k25c"]) == 0
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


def test_table1_select_on_validation_alone_matches_and_computes_no_test_error():
    from ksparse.reproduce._common import PROFILES, load_mnist_split

    _, train, val, test = load_mnist_split("digits", None)
    prof = PROFILES["smoke"]
    feats = lambda Z, alpha=None: Z  # noqa: E731  (raw pixels: one alpha, C chosen on validation)
    trials, full = t1.select("raw", feats, prof, train, [val], 0)
    both = t1.select("raw", feats, prof, train, [val, test], 0)
    assert [t["test_error"] for t in trials + full] == [None] * (len(trials) + len(full))
    pairs = [(t["C"], t["val_error"]) for t in trials + full]
    assert pairs == [(t["C"], t["val_error"]) for t in both[0] + both[1]]
    assert all(t["test_error"] is not None for t in both[0] + both[1])
    assert full[0]["C"] == min(trials, key=lambda t: t["val_error"])["C"]
    assert full[0]["n_fit"] == len(train[0])


@pytest.mark.parametrize("name", ["fig1", "fig3", "fig4"])
def test_figures_write_png_and_numbers(out, name):
    assert main([name, *SMOKE, "--out", out]) == 0
    pngs = {"fig1": [f"fig1_k{k}.png" for k in (70, 40, 25, 10)], "fig3": ["fig3_paper.png"]}.get(
        name, [f"{name}.png"])
    for png in (os.path.join(out, p) for p in pngs):
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(png) < 200_000
    stats = json.load(open(os.path.join(out, f"{name}.json")))["stats"]
    if name == "fig1":
        assert set(stats) == {"k70", "k40", "k25", "k10"}
    elif name == "fig3":
        assert set(stats) == {"paper", "defaults"}
        assert stats["paper"]["paper_setting"] and not stats["defaults"]["paper_setting"]
        for row in stats.values():
            assert row["median_spread_px_random"] > 0 and 0 <= row["median_orientation_selectivity"] <= 1
        assert os.path.exists(os.path.join(out, "fig3_defaults.png"))
        results = _results(os.path.join(out, "results"))
        assert {"fig3-smoke-paper-seed0.json", "fig3-smoke-defaults-seed0.json"} <= set(results)
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


def _edges(n, shape=(8, 8, 3)):
    """``n`` small oriented edges, (prod(shape), n): a 2 x 3 step at a random place and angle."""
    rng = np.random.default_rng(1)
    W = np.zeros(shape + (n,))
    for j in range(n):
        r, c = rng.integers(1, 5, size=2)
        patch = np.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
        W[r:r + 2, c:c + 3, :, j] = (patch if j % 2 else -patch)[..., None] * rng.uniform(0.5, 1, 3)
        if j % 3 == 0:  # some vertical ones
            W[..., j] = W[..., j].transpose(1, 0, 2)
    return W.reshape(-1, n)


def test_filter_statistics_pass_edges_and_fail_noise():
    shape = (8, 8, 3)
    edges, noise = _edges(40), np.random.default_rng(2).normal(size=(192, 40))
    good = filter_statistics(edges, shape)
    assert good["fraction_below_1st_percentile_of_random_spread"] == 1.0
    assert good["fraction_above_99th_percentile_of_random_selectivity"] == 1.0
    bad = filter_statistics(noise, shape)
    assert bad["fraction_below_1st_percentile_of_random_spread"] <= 0.1
    assert bad["fraction_above_99th_percentile_of_random_selectivity"] <= 0.1
    mixed = filter_statistics(np.hstack([edges, noise]), shape, used=np.arange(80) < 60)
    assert mixed["n_used_filters"] == 60  # the 40 edges and the first 20 noise filters
    assert 0.6 <= mixed["fraction_below_1st_percentile_of_random_spread"] <= 0.75


def test_cached_model_trains_once(tmp_path):
    calls = []

    def train(stem):
        calls.append(stem)
        return {"W": np.arange(6.0).reshape(2, 3)}

    a, info = cached_model(str(tmp_path), "m", {"x": 1}, train, data=np.zeros(3))
    b, again = cached_model(str(tmp_path), "m", {"x": 1}, train, data=np.zeros(3))
    cached_model(str(tmp_path), "m", {"x": 2}, train, data=np.zeros(3))
    assert len(calls) == 2 and calls[0].startswith(os.path.join(str(tmp_path), "m-"))
    np.testing.assert_array_equal(a["W"], b["W"])
    assert again["code"]["source_sha1"] == source_digest() and again["seconds"] == info["seconds"]


def test_cached_model_key_includes_the_code_version(tmp_path, monkeypatch):
    from ksparse.reproduce import _runs

    calls = []

    def train(stem):
        calls.append(stem)
        return {"W": np.zeros(2)}

    cached_model(str(tmp_path), "m", {"x": 1}, train, data=np.zeros(3))
    monkeypatch.setattr(_runs, "code_key", lambda: "0.0.0+other")
    cached_model(str(tmp_path), "m", {"x": 1}, train, data=np.zeros(3))
    assert len(calls) == 2 and calls[0] != calls[1]


def test_train_autoencoder_resumes_a_stopped_run_to_the_same_model(tmp_path):
    from ksparse.datasets import load_dataset
    from ksparse.reproduce._common import train_autoencoder

    X = load_dataset("digits").X_train[:300]
    config = {"n_hidden": 40, "k": 5, "k_start": 20, "max_iter": 4, "batch_size": 32, "random_state": 3}
    whole, info = train_autoencoder(X, config, str(tmp_path / "whole"))
    assert info["epochs"] == 4 and info["resumed_at"] == 0 and len(info["history"]) == 4

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    stem = str(tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        train_autoencoder(X, config, stem, callback=stop_after_two)
    assert os.path.isfile(stem + ".ckpt.npz")
    resumed, info = train_autoencoder(X, config, stem, resume=True)
    assert info["resumed_at"] == 2 and info["epochs"] == 4 and not os.path.exists(stem + ".ckpt.npz")
    assert [r["epoch"] for r in info["history"]] == [1, 2, 3, 4]
    for name in ("W", "b", "b_prime"):
        np.testing.assert_array_equal(resumed[name], whole[name])
    fresh, info = train_autoencoder(X, config, stem, resume=False)  # no checkpoint: starts afresh
    assert info["resumed_at"] == 0


needs_data = pytest.mark.skipif(not os.environ.get("KSPARSE_DATA"),
                                reason="set KSPARSE_DATA to the real data")


@needs_data
def test_table1_on_real_mnist_subset(tmp_path):
    argv = ["table1", "--profile", "smoke", "--rows", "raw,k25", "--out", str(tmp_path)]
    assert main(argv) == 0
    result = json.load(open(tmp_path / "results" / "table1-smoke-raw-seed0.json"))
    data = result["meta"]["data"]
    assert data["n_train"] == 600 and data["n_val"] == 10000 and data["val_split"]["kind"] == "random"
    assert result["result"]["test_error"] < 0.3  # raw pixels, 600 training images


@needs_data
def test_mnist_random_validation_split_is_fixed_and_disjoint():
    from ksparse.reproduce._common import load_mnist_split

    _, train, val, test = load_mnist_split("mnist", None)
    _, _, last, _ = load_mnist_split("mnist", None, split="last")
    assert (len(train[0]), len(val[0]), len(test[0])) == (50000, 10000, 10000)
    assert not np.array_equal(val[0], last[0])  # not the last 10,000
    _, train2, val2, _ = load_mnist_split("mnist", None, n_train=1000)
    np.testing.assert_array_equal(val2[0], val[0])
    np.testing.assert_array_equal(train2[0], train[0][:1000])


@needs_data
def test_fig3_on_real_cifar10_patches(tmp_path):
    assert main(["fig3", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    stats = json.load(open(tmp_path / "fig3.json"))
    assert stats["dataset"] == "cifar10-patches" and set(stats["stats"]) == {"paper", "defaults"}
    for row, setting in (("paper", True), ("defaults", False)):
        assert stats["stats"][row]["d"] == 192 and stats["stats"][row]["paper_setting"] is setting
        assert 0 <= stats["stats"][row]["fraction_above_99th_percentile_of_random_selectivity"] <= 1


def _tree(folder):
    """{relative path: bytes} of every file under ``folder``."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            files[os.path.relpath(path, folder)] = open(path, "rb").read()
    return files


def test_reproduce_writes_only_under_out_even_beside_a_docs_folder(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "results.md").write_text("<!-- report:table1 -->\nold\n<!-- /report:table1 -->\n")
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    assert main(["table1", *SMOKE, "--out", "run", "--rows", "raw,k25"]) == 0
    after = _tree(tmp_path)
    assert {p: b for p, b in after.items() if not p.startswith("run" + os.sep)} == before
    modes = {os.stat(tmp_path / "run" / p).st_mode & 0o777 for p in os.listdir(tmp_path / "run")
             if os.path.isfile(tmp_path / "run" / p)}
    assert modes == {0o666 & ~_umask()}  # files made like any tool's, not 0600 temporaries


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_profiles_are_derived_from_the_paper_config():
    from ksparse.config import AutoencoderConfig
    from ksparse.reproduce import _common

    P = _common.PROFILES
    for name in ("quick", "long", "smoke"):
        assert set(P[name]) == set(P["paper"]), name
    assert all(P["long"][n] == 3 * P["quick"][n] for n in _common.EPOCHS)
    assert {n: v for n, v in P["long"].items() if n not in _common.EPOCHS} == \
        {n: v for n, v in P["quick"].items() if n not in _common.EPOCHS}
    cfg = _common.autoencoder_config(P["smoke"], 10, 2, 3, center=True)
    assert isinstance(cfg, AutoencoderConfig)
    assert (cfg.n_hidden, cfg.k, cfg.max_iter, cfg.random_state, cfg.center) == (100, 10, 2, 3, True)
    assert (cfg.alpha, cfg.lr, cfg.momentum, cfg.batch_size) == (1.0, 0.01, 0.9, 64)
    paper = _common.autoencoder_config(P["paper"], 25, P["paper"]["ksparse_epochs"], 0)
    assert paper == _common.SEC_4_2_2.replace(random_state=0)


@pytest.mark.parametrize("key", ["k25c", "k25d"])
def test_table1_rows_beyond_the_paper_run_and_record_their_settings(tmp_path, key):
    out = str(tmp_path)
    assert main(["table1", *SMOKE, "--out", out, "--rows", key]) == 0
    data = _results(os.path.join(out, "results"))[f"table1-smoke-{key}-seed0.json"]
    assert 0 <= data["result"]["test_error"] <= 1
    settings = json.dumps(data)
    assert ('"paper": false' in settings) == (key == "k25d")


def test_fig3_records_a_row_that_diverges_and_draws_the_others(tmp_path, monkeypatch):
    from ksparse.reproduce import _common
    from ksparse.training.loop import TrainingDiverged

    train = _common.ksparse_model

    def diverging_defaults(*args, paper=True, **kw):
        if not paper:
            last_good = type("State", (), {"epoch": 1})
            raise TrainingDiverged("training diverged at epoch 2: the loss became nan", last_good)
        return train(*args, paper=paper, **kw)

    monkeypatch.setattr(_common, "ksparse_model", diverging_defaults)
    assert main(["fig3", *SMOKE, "--out", str(tmp_path)]) == 0
    stats = json.load(open(tmp_path / "fig3.json"))["stats"]
    assert stats["defaults"] == {"paper_setting": False, "epochs": 1,
                                 "diverged": "training diverged at epoch 2: the loss became nan"}
    assert stats["paper"]["n_used_filters"] > 0 and (tmp_path / "fig3_paper.png").exists()
    assert not (tmp_path / "fig3_defaults.png").exists()


def test_fig3_rows_option_refuses_an_unknown_row(tmp_path):
    with pytest.raises(ValueError, match=r"unknown rows \['zca'\]; choose from"):  # the CLI: one line, 2
        main(["fig3", *SMOKE, "--out", str(tmp_path), "--rows", "paper,zca"])
