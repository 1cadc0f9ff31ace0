"""The `ksparse` command end to end: train, encode, resume, reproduce, help and bad input.

Most tests call :func:`ksparse.cli.main` in-process (fast); one runs the installed script.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import ksparse.training.loop
from ksparse.cli import TRAIN_OPTIONS, main
from ksparse.training.loop import load_state

# A tiny run: seconds on digits. FAST also skips the logistic regressions.
TINY = ["--hidden", "40", "--k", "5", "--k-start", "10", "--alpha", "2", "--epochs", "3",
        "--batch-size", "128", "--quiet"]
FAST = TINY + ["--no-logreg"]


def run(argv, capsys):
    """main(argv) -> (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, err, *words):
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("ksparse: error:")]
    assert len(lines) == 1, err
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny digits run shared by the tests that only read its files."""
    out = tmp_path_factory.mktemp("digits")
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


def save(path, array):
    np.save(path, array)
    return path


def test_train_digits_writes_model_filters_summary(trained):
    assert {"model.npz", "filters.png", "summary.json"} <= set(os.listdir(trained))
    assert not [f for f in os.listdir(trained) if f.startswith(".tmp-")]
    assert (trained / "filters.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s = json.loads((trained / "summary.json").read_text())
    for key in ("hyperparameters", "mse", "fvu", "dead_fraction", "wall_time_s", "train_time_s",
                "epochs_done", "dataset", "logistic_regression", "history"):
        assert key in s, key
    assert s["hyperparameters"]["n_hidden"] == 40 and s["hyperparameters"]["k"] == 5
    assert s["epochs_done"] == 3 and len(s["history"]) == 3
    assert 0 < s["fvu"] < 1.5 and 0 <= s["dead_fraction"] <= 1
    lr = s["logistic_regression"]
    assert 0 <= lr["features_test_error"] <= 1 and 0 <= lr["raw_test_error"] < 0.1
    assert lr["n_active_features"] == 10
    state = load_state(trained / "model.npz")
    assert state.params["W"].shape == (64, 40) and state.epoch == 3


def test_train_on_npy_file_square_and_not(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for d, drawn in ((16, "images"), (10, "bars")):
        data = save(tmp_path / f"x{d}.npy", rng.normal(size=(150, d)))
        out = tmp_path / f"out{d}"
        code, stdout, err = run(["train", *TINY, "--dataset", data, "--out", out], capsys)
        assert code == 0, err
        s = json.loads((out / "summary.json").read_text())
        assert s["filters"].startswith(drawn) and (out / "filters.png").exists()
        assert "no labelled test split" in s["logistic_regression"]["note"]
        assert s["dataset"]["d"] == d and "wrote" in stdout


def test_train_resume_equals_uninterrupted(tmp_path, capsys):
    # constant k and lr, so the schedule does not depend on the total number of epochs
    opts = ["train", *FAST, "--k-start", "5", "--checkpoint-every", "1"]
    assert run([*opts, "--epochs", "4", "--out", tmp_path / "full"], capsys)[0] == 0
    assert run([*opts, "--epochs", "2", "--out", tmp_path / "part"], capsys)[0] == 0
    code, _, err = run([*opts, "--epochs", "4", "--out", tmp_path / "part", "--resume"], capsys)
    assert code == 0, err
    full, part = load_state(tmp_path / "full" / "model.npz"), load_state(tmp_path / "part" / "model.npz")
    assert part.epoch == 4 and len(part.history) == 4
    for name in ("W", "b", "b_prime"):
        np.testing.assert_array_equal(full.params[name], part.params[name])
    code, _, err = run(["train", "--resume", tmp_path / "full" / "model.npz", "--epochs", "5", "--k", "7",
                        "--quiet", "--no-logreg", "--out", tmp_path / "more"], capsys)
    assert code == 0 and "keeps the checkpoint's k" in err
    assert load_state(tmp_path / "more" / "model.npz").epoch == 5


def test_encode_writes_alpha_k_features(trained, tmp_path, capsys):
    from ksparse.datasets import load_digits

    x = save(tmp_path / "x.npy", load_digits().X_test)
    code, out, err = run(["encode", trained / "model.npz", x, tmp_path / "h.npy"], capsys)
    assert code == 0, err
    h = np.load(tmp_path / "h.npy")
    assert h.shape == (450, 40)
    assert np.all((h != 0).sum(axis=1) <= 10) and np.mean((h != 0).sum(axis=1)) > 9
    assert run(["encode", trained / "model.npz", x, tmp_path / "h3.npy", "--alpha", "3"], capsys)[0] == 0
    assert np.all((np.load(tmp_path / "h3.npy") != 0).sum(axis=1) <= 15)


def bad_data(tmp_path, kind):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 16))
    if kind == "nan":
        x[3, 4] = np.nan
    elif kind == "inf":
        x[0, 0] = np.inf
    elif kind == "3d":
        x = x.reshape(50, 4, 4)
    elif kind == "empty":
        x = x[:0]
    return save(tmp_path / f"{kind}.npy", x)


@pytest.mark.parametrize("kind, words", [
    ("nan", ["NaN"]), ("inf", ["inf"]), ("3d", ["2-D"]), ("empty", ["empty"]),
])
def test_train_rejects_bad_data(tmp_path, capsys, kind, words):
    out = tmp_path / "out"
    code, _, err = run(["train", *FAST, "--dataset", bad_data(tmp_path, kind), "--out", out], capsys)
    assert_user_error(code, err, *words)
    assert not out.exists()


@pytest.mark.parametrize("opts, words", [
    (["--k", "0"], ["k must"]),
    (["--hidden", "10", "--k", "11"], ["k must", "10"]),
    (["--hidden", "10", "--k", "5", "--alpha", "3"], ["alpha"]),
    (["--alpha", "0.5"], ["alpha"]),
    (["--dataset", "no-such-set"], ["unknown dataset", "digits"]),
    (["--dataset", "missing.npy"], ["missing.npy", "does not exist"]),
    (["--resume", "missing.npz"], ["missing.npz", "does not exist"]),
    (["--checkpoint-every", "-1"], ["checkpoint-every"]),
])
def test_train_rejects_bad_options(tmp_path, capsys, opts, words):
    out = tmp_path / "out"
    code, _, err = run(["train", *FAST, *opts, "--out", out], capsys)
    assert_user_error(code, err, *words)
    assert not out.exists()


def test_train_rejects_out_that_is_a_file_and_bad_choice(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert_user_error(*run(["train", *FAST, "--out", tmp_path / "f"], capsys)[::2], "is a file")
    code, _, err = run(["train", "--dtype", "float16"], capsys)  # argparse's own message
    assert code == 2 and "invalid choice" in err and "Traceback" not in err


def test_resume_rejects_other_d(trained, tmp_path, capsys):
    data = save(tmp_path / "x.npy", np.ones((20, 9)))
    argv = ["train", "--dataset", data, "--resume", trained / "model.npz", "--out", tmp_path]
    code, _, err = run(argv, capsys)
    assert_user_error(code, err, "64", "9")


@pytest.fixture
def broken_models(trained, tmp_path):
    raw = (trained / "model.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all" * 10)
    np.savez(tmp_path / "foreign.npz", W=np.ones((4, 4)))
    return tmp_path


@pytest.mark.parametrize("name", ["truncated.npz", "garbage.npz", "foreign.npz", "absent.npz"])
def test_encode_rejects_corrupt_or_missing_model(broken_models, capsys, name):
    x = save(broken_models / "x.npy", np.zeros((5, 64)))
    code, _, err = run(["encode", broken_models / name, x, broken_models / "h.npy"], capsys)
    assert_user_error(code, err, name)
    assert not (broken_models / "h.npy").exists()


@pytest.mark.parametrize("kind, words", [
    ("d", ["64", "10"]), ("nan", ["NaN"]), ("missing", ["does not exist"]), ("alpha", ["alpha"]),
])
def test_encode_rejects_bad_input(trained, tmp_path, capsys, kind, words):
    data = {"d": np.zeros((5, 10)), "nan": np.full((5, 64), np.nan)}.get(kind, np.zeros((5, 64)))
    x = tmp_path / "nothing.npy" if kind == "missing" else save(tmp_path / "x.npy", data)
    extra = ["--alpha", "100"] if kind == "alpha" else []
    code, _, err = run(["encode", trained / "model.npz", x, tmp_path / "h.npy", *extra], capsys)
    assert_user_error(code, err, *words)
    assert not (tmp_path / "h.npy").exists()


def failing_step(at_call, error):
    """A training step that works ``at_call - 1`` times, then fails with ``error``."""
    from ksparse.training.steps import AutoencoderStep

    class Failing(AutoencoderStep):
        calls = 0

        def forward_backward(self, batch, params, settings):
            self.calls += 1
            if self.calls >= at_call:
                if error == "nan":
                    params = dict(params, W=params["W"] * np.nan)
                else:
                    raise KeyboardInterrupt
            return super().forward_backward(batch, params, settings)

    step = Failing(kernel="plain")
    return lambda: step


def test_train_divergence_keeps_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    # digits: 1347 rows in batches of 128 = 11 steps an epoch; fail in epoch 3
    monkeypatch.setattr(ksparse.training.loop, "default_step", failing_step(25, "nan"))
    code, _, err = run(["train", *FAST, "--epochs", "5", "--out", tmp_path], capsys)
    assert_user_error(code, err, "diverged at epoch 3", "epoch 2")
    assert load_state(tmp_path / "model.npz").epoch == 2
    assert not (tmp_path / "summary.json").exists()


def test_train_real_divergence_saves_nothing_bad(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(["train", *FAST, "--lr", "1000", "--sigma", "1", "--out", out], capsys)
    assert_user_error(code, err, "diverged", "learning rate")
    assert not out.exists()


def test_train_ctrl_c_saves_checkpoint_and_says_how_to_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ksparse.training.loop, "default_step", failing_step(15, "interrupt"))
    code, _, err = run(["train", *FAST, "--out", tmp_path], capsys)
    assert code == 130 and "Traceback" not in err and "--resume" in err
    assert load_state(tmp_path / "model.npz").epoch == 1


def test_help_explains_every_option(capsys):
    assert run(["--help"], capsys)[0] == 0
    code, out, _ = run(["train", "--help"], capsys)
    assert code == 0
    for flag, *_ in TRAIN_OPTIONS:
        assert flag in out
    for flag in ("--dataset", "--data-dir", "--device", "--out", "--resume", "--checkpoint-every",
                 "--center"):
        assert flag in out
    assert out.count("default") >= len(TRAIN_OPTIONS)
    code, out, _ = run(["encode", "--help"], capsys)
    assert code == 0 and "--alpha" in out


def test_reproduce_forwards_argv(capsys, monkeypatch):
    import ksparse.reproduce

    seen = []
    monkeypatch.setattr(ksparse.reproduce, "main", lambda argv: seen.append(argv) or 0)
    assert run(["reproduce", "table1", "--profile", "quick"], capsys)[0] == 0
    assert seen == [["table1", "--profile", "quick"]]

    def unknown(argv):
        raise ValueError(f"bad target {argv[0]!r}")

    monkeypatch.setattr(ksparse.reproduce, "main", unknown)
    assert_user_error(*run(["reproduce", "nope"], capsys)[::2], "bad target")


def test_reproduce_missing_package_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ksparse.reproduce", None)
    assert_user_error(*run(["reproduce", "table1"], capsys)[::2], "not available")


@pytest.mark.skipif(shutil.which("ksparse") is None, reason="the ksparse script is not installed")
def test_installed_script_trains_and_rejects_bad_input(tmp_path):
    out = tmp_path / "out"
    ok = subprocess.run(["ksparse", "train", *FAST, "--no-logreg", "--out", str(out)],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert {"model.npz", "filters.png", "summary.json"} <= set(os.listdir(out))
    bad = subprocess.run(["ksparse", "train", "--k", "0", "--out", str(tmp_path / "bad")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "ksparse: error:" in bad.stderr


def test_train_center_stores_the_mean_and_encode_uses_it(tmp_path, capsys):
    from ksparse.datasets import load_digits
    from ksparse.kernels.encode import encode

    out = tmp_path / "centered"
    code, _, err = run(["train", *FAST, "--center", "--out", out], capsys)
    assert code == 0, err
    state = load_state(out / "model.npz")
    digits = load_digits()
    assert state.config["center"] is True
    np.testing.assert_array_equal(state.x_mean, digits.X_train.mean(axis=0))
    x = save(tmp_path / "x.npy", digits.X_test)
    assert run(["encode", out / "model.npz", x, tmp_path / "h.npy"], capsys)[0] == 0
    p = state.params
    expected = encode((digits.X_test - state.x_mean).astype(np.float32), p["W"], p["b"], 5, 2.0)
    np.testing.assert_allclose(np.load(tmp_path / "h.npy"), expected, rtol=1e-6)
