"""``ksparse reproduce table3`` end to end on tiny data: digits, MNIST (when present), synthetic NORB."""

import json
import os
import struct

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from ksparse.reproduce import main as reproduce_main
from ksparse.reproduce import table3

BYTE, INT = 0x1E3D4C55, 0x1E3D4C54
PREFIX = {"training": "smallnorb-5x46789x9x18x6x2x96x96", "testing": "smallnorb-5x01235x9x18x6x2x96x96"}


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(1):
        yield


def read_result(out):
    """The run's records ``{"meta", "rows"}`` (rows in the order they ran) and its table."""
    with open(os.path.join(out, "table3.json")) as f:
        runs = json.load(f)
    with open(os.path.join(out, "table3.md")) as f:
        return {"meta": runs[0]["meta"], "rows": [r["result"] for r in runs]}, f.read()


def test_table3_smoke_on_digits_end_to_end(tmp_path):
    out = str(tmp_path / "out")
    assert reproduce_main(["table3", "--profile", "smoke", "--dataset", "digits", "--out", out]) == 0
    result, md = read_result(out)
    assert [r["key"] for r in result["rows"]] == ["no_pretrain", "shallow", "deep"]
    for r in result["rows"]:
        assert 0 <= r["test_error"] < 0.9 and 0 <= r["val_error"] <= 1
    assert result["meta"]["data"]["n_train"] == 600 and result["meta"]["settings"]["n_hidden"] == 100
    shallow, deep = result["rows"][1], result["rows"][2]
    assert shallow["n_stages"] == 1 and deep["n_stages"] == 3  # Sec. 4.5-4.6: only the deep one in stages
    assert [m["epochs"] for m in deep["pretrain"]] == [2, 2] and result["rows"][0]["pretrain"] == []
    files = sorted(os.listdir(os.path.join(out, "results")))
    assert files == [f"table3-smoke-{key}-seed0.json" for key in ("deep", "no_pretrain", "shallow")]
    assert "Deep k-sparse AE" in md and md.count("\n| ") == 4
    # the autoencoders are cached: a second run of one row trains none
    assert os.listdir(os.path.join(out, "models"))
    out2 = str(tmp_path / "out2")  # a new folder, with the models of the first run
    table3.main(["--profile", "smoke", "--dataset", "digits", "--out", out2, "--rows", "shallow",
                 "--ft-lr", "0.2", "--cache", os.path.join(out, "models")])
    again, _ = read_result(out2)
    assert again["rows"][0]["pretrain"][0]["seconds"] == shallow["pretrain"][0]["seconds"]
    assert again["rows"][0]["ft_lr"] == 0.2
    assert os.listdir(os.path.join(out2, "results")) == ["table3-smoke-lr0.2-shallow-seed0.json"]


def test_table3_rejects_unknown_rows(tmp_path):
    with pytest.raises(ValueError, match="unknown rows"):
        table3.main(["--profile", "smoke", "--dataset", "digits", "--out", str(tmp_path), "--rows", "wide"])


def test_table3_settings_follow_the_paper():
    paper = table3.settings("paper", "mnist")
    assert (paper["k"], paper["alpha"], paper["n_hidden"]) == (25, 3.0, 1000)
    assert (paper["ft_lr"], paper["ft_lr_final"], paper["ft_momentum"]) == (1.0, 0.001, 0.25)
    assert paper["ft_epochs"]["deep"] == (200, 200, 200) and paper["ae_epochs"] == (5000, 5000)
    assert paper["ft_epochs"]["shallow"] == (200,)  # Sec. 4.5: one stage
    long = table3.settings("long", "mnist")
    assert long["ft_epochs"]["deep"] == (10, 20, 40) and long["n_hidden"] == 1000
    norb = table3.settings("paper", "norb")
    assert (norb["k"], norb["alpha"], norb["n_hidden"], norb["lr"]) == (150, 2.0, 4000, 0.0001)


@pytest.mark.skipif(not os.environ.get("KSPARSE_DATA"), reason="needs MNIST under $KSPARSE_DATA")
def test_table3_smoke_on_mnist_subset(tmp_path):
    out = str(tmp_path / "out")
    table3.main(["--profile", "smoke", "--out", out, "--n-train", "300", "--rows", "no_pretrain,shallow"])
    result, _ = read_result(out)
    data = result["meta"]["data"]
    assert data["dataset"] == "mnist" and data["n_train"] == 300
    assert data["n_val"] == 10000 and data["n_test"] == 10000


def matrix_bytes(array, magic):
    """The NORB binary matrix: magic, ndim, max(3, ndim) sizes padded with 1s, then the data."""
    dims = list(array.shape) + [1] * (3 - array.ndim)
    dtype = "u1" if magic == BYTE else "<i4"
    return struct.pack(f"<2i{len(dims)}i", magic, array.ndim, *dims) + array.astype(dtype).tobytes()


def write_norb(folder, n_train=36, n_test=10, seed=0):
    """Four small NORB files whose classes differ in brightness, so that they can be learnt."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder)
    for part, n in (("training", n_train), ("testing", n_test)):
        y = np.arange(n) % 5
        pairs = rng.integers(0, 60, (n, 2, 96, 96)) + 40 * y[:, None, None, None]
        for kind, array, magic in (("dat", pairs, BYTE), ("cat", y, INT)):
            path = os.path.join(folder, f"{PREFIX[part]}-{part}-{kind}.mat")
            with open(path, "wb") as f:
                f.write(matrix_bytes(array, magic))


def test_table3_norb_path_on_synthetic_files(tmp_path):
    write_norb(tmp_path / "data" / "norb")
    out = str(tmp_path / "out")
    table3.main(["--profile", "smoke", "--dataset", "norb", "--data-dir", str(tmp_path / "data"),
                 "--out", out])
    result, md = read_result(out)
    meta = result["meta"]["data"]
    assert meta["dataset"] == "norb" and (meta["n_train"], meta["n_val"], meta["n_test"]) == (30, 6, 10)
    assert "Table 4" not in md and "k = 150" in md  # the NORB row labels
    assert all(r["test_error"] <= 1 for r in result["rows"])


def test_table3_norb_without_files_says_where_to_put_them(tmp_path):
    with pytest.raises(ValueError, match="small NORB files not found"):
        table3.main(["--profile", "smoke", "--dataset", "norb", "--data-dir", str(tmp_path),
                     "--out", str(tmp_path / "out")])


def test_table3_center_folds_the_mean_into_the_first_bias(tmp_path):
    import argparse

    from ksparse.kernels.encode import encode

    args = argparse.Namespace(cache=str(tmp_path), dataset="digits", seed=0, center=True, resume=False,
                              defaults=False)
    prof = table3.settings("smoke", "digits")
    X = table3.load_split("digits", None, None)[0][0]
    [(W, b_folded)], _ = table3.pretrain(args, prof, X, deep=False)
    (name,) = [f for f in os.listdir(tmp_path) if f.startswith("ksparse-k")]
    with np.load(os.path.join(tmp_path, name)) as f:
        x_mean, b = f["x_mean"], f["b"]
    np.testing.assert_array_equal(x_mean, X.mean(axis=0))
    k, alpha = prof["k"], prof["alpha"]
    np.testing.assert_allclose(encode(X, W, b_folded, k, alpha), encode(X - x_mean, W, b, k, alpha),
                               rtol=1e-5, atol=1e-6)


def test_table3_defaults_pretrain_with_the_library_defaults_and_fold_them_into_the_encoders(tmp_path):
    from ksparse.kernels.encode import encode
    from ksparse.training.loop import encoder_params, fit

    out = str(tmp_path / "out")
    assert reproduce_main(["table3", "--profile", "smoke", "--dataset", "digits", "--rows", "deep",
                           "--defaults", "--out", out]) == 0
    result, _ = read_result(out)
    (deep,) = result["rows"]
    assert result["meta"]["pretrain_defaults"] is True and 0 <= deep["test_error"] < 0.9
    assert os.listdir(os.path.join(out, "results")) == ["table3-smoke-defaults-deep-seed0.json"]
    assert [m["settings"]["paper"] for m in deep["pretrain"]] == [False, False]
    # layer 1's encoder is the defaults model's z on raw pixels: scale and pre-encoder bias folded in
    prof = table3.settings("smoke", "digits")
    X = table3.load_split("digits", None, prof["n_train"])[0][0]
    config = table3._common.autoencoder_config(prof, prof["k"], prof["ae_epochs"][0], 0, paper=False, lr=None)
    W_enc, b_enc = encoder_params(fit(X, config))
    (name,) = [f for f in os.listdir(os.path.join(out, "models")) if f.startswith("ksparse-k")]
    with np.load(os.path.join(out, "models", name)) as f:
        np.testing.assert_allclose(f["W_enc"], W_enc, rtol=1e-5, atol=1e-7)
        assert not np.allclose(f["W_enc"], f["W"])  # the data scale is in it
        np.testing.assert_allclose(encode(X, f["W_enc"], f["b_enc"], prof["k"], prof["alpha"]),
                                   encode(X, W_enc, b_enc, prof["k"], prof["alpha"]), rtol=1e-4, atol=1e-5)


def test_table3_ft_epochs_sets_every_stage_and_tags_the_files(tmp_path):
    out = str(tmp_path / "out")
    table3.main(["--profile", "smoke", "--dataset", "digits", "--rows", "shallow,deep", "--ft-epochs", "1",
                 "--out", out])
    result, _ = read_result(out)
    assert [r["ft_epochs"] for r in result["rows"]] == [[1], [1, 1, 1]]
    assert sorted(os.listdir(os.path.join(out, "results"))) == [
        "table3-smoke-ft1-deep-seed0.json", "table3-smoke-ft1-shallow-seed0.json"]
    with pytest.raises(ValueError, match="at least 1"):
        table3.main(["--profile", "smoke", "--dataset", "digits", "--ft-epochs", "0", "--out", out])


def test_table3_defaults_and_center_are_refused_together(tmp_path):
    with pytest.raises(ValueError, match="give one"):
        table3.main(["--profile", "smoke", "--dataset", "digits", "--defaults", "--center",
                     "--out", str(tmp_path)])


def test_table3_dropout_and_denoising_rows_on_digits(tmp_path):
    out = str(tmp_path / "out")
    assert reproduce_main(["table3", "--profile", "smoke", "--dataset", "digits", "--out", out,
                           "--rows", "dropout,denoising"]) == 0
    result, md = read_result(out)
    dropout, denoising = result["rows"]
    assert (dropout["p_hidden"], dropout["p_input"]) == (0.5, 0.0)  # Sec. 4.5: their pre-training noise
    assert (denoising["p_hidden"], denoising["p_input"]) == (0.0, 0.2)
    for r in result["rows"]:
        assert r["n_stages"] == 1 and 0 <= r["test_error"] < 0.9
        assert r["pretrain"][0]["settings"]["method"] == r["key"]
    assert "Shallow dropout AE + F.T." in md and "Denoising AE + F.T." in md


def test_sweep_records_validation_errors_only_and_the_report_tabulates_them(tmp_path):
    import json

    from ksparse.reproduce import report

    out = str(tmp_path / "out")
    assert reproduce_main(["sweep", "--profile", "smoke", "--dataset", "digits", "--out", out,
                           "--rows", "shallow,denoising", "--lrs", "0.1", "1e6"]) == 0
    files = sorted(os.listdir(os.path.join(out, "results")))
    assert files == ["sweep-smoke-denoising-seed0.json", "sweep-smoke-shallow-seed0.json"]
    with open(os.path.join(out, "results", files[1])) as f:
        run = json.load(f)
    runs = run["result"]["runs"]
    assert [r["lr"] for r in runs] == [0.1, 1e6] and runs[1]["diverged"] and not runs[0]["diverged"]
    assert run["result"]["chosen_lr"] == 0.1 and "\"test_error\"" not in json.dumps(run["result"])
    table = report.blocks(report.load_results(os.path.join(out, "results")))["sweep:smoke"]
    assert "| k-sparse AE + F.T. (k = 25) | 0 | " in table and "1e+06: diverged" in table
    assert reproduce_main(["sweep", "--profile", "smoke", "--dataset", "digits", "--out", out, "--defaults",
                           "--rows", "shallow", "--lrs", "0.1"]) == 0
    with open(os.path.join(out, "results", "sweep-smoke-defaults-shallow-seed0.json")) as f:
        run = json.load(f)
    assert run["meta"]["pretrain_defaults"] is True
    assert run["result"]["pretrain_epochs"] == [2] and run["result"]["chosen_lr"] == 0.1


@pytest.mark.parametrize("key", ["shallow", "dropout"])
def test_table3_networks_read_the_pixels_their_encoders_were_trained_on(key):
    """The classifier standardizes its inputs by default; the rows' encoders were trained on raw
    pixels, so the network must see raw pixels: before any fine-tuning it equals the encoder."""
    from ksparse.datasets import load_digits
    from ksparse.nn.supervised import hidden_layer_forward

    ds = load_digits()
    X, y = ds.X_train[:200], ds.y_train[:200]
    prof = dict(table3.settings("smoke", "digits"), dataset="digits")
    prof["ft_epochs"] = {k: (0,) * len(v) for k, v in prof["ft_epochs"].items()}
    rng = np.random.default_rng(0)
    W, b = rng.normal(0, 0.1, (64, prof["n_hidden"])), rng.normal(0, 0.1, prof["n_hidden"])
    clf = table3.classifier(key, prof, [(W, b)], 0).fit(X, y, X[:50], y[:50])
    n_keep = None if key == "dropout" else clf.n_keep_[0]
    h = hidden_layer_forward(X, W, b, n_keep)[0]
    s = h @ clf.params_["W_out"].astype(np.float64) + clf.params_["b_out"]
    expected = np.exp(s - s.max(axis=1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X), expected / expected.sum(axis=1, keepdims=True),
                               rtol=1e-4, atol=1e-6)
