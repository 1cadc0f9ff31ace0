"""The `ksparse` command end to end: train, encode, resume, reproduce, help and bad input.

Most tests call :func:`ksparse.cli.main` in-process (fast); one runs the installed script.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

import ksparse
import ksparse.training.loop
from ksparse.cli import main
from ksparse.config import AutoencoderConfig, flag
from ksparse.training.loop import load_state

# A tiny run: seconds on digits. FAST also skips the logistic regressions.
TINY = ["--n-hidden", "40", "--k", "5", "--k-start", "10", "--alpha", "2", "--max-iter", "3",
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
    for key in ("config", "score", "last_epoch", "wall_time_s", "train_time_s", "n_iter", "dataset",
                "logistic_regression", "history", "ksparse_version", "numpy_version", "command", "created"):
        assert key in s, key
    assert s["config"]["n_hidden"] == 40 and s["config"]["k"] == 5
    assert s["n_iter"] == 3 and len(s["history"]) == 3 and s["last_epoch"] == s["history"][-1]
    assert 0 < s["last_epoch"]["fvu"] < 1.5 and 0 <= s["last_epoch"]["dead_fraction"] <= 1
    assert s["ksparse_version"] == ksparse.__version__ and s["numpy_version"] == np.__version__
    assert s["command"].startswith("ksparse train --n-hidden 40") and s["created"].startswith("20")
    assert s["dataset"]["name"] == "digits" and s["dataset"]["shape"] == [1347, 64]
    assert s["score"] < 0
    lr = s["logistic_regression"]
    assert 0 <= lr["features_test_error"] <= 1 and 0 <= lr["raw_test_error"] < 0.1
    assert lr["n_active_features"] == 10
    state = load_state(trained / "model.npz")
    assert state.params["W"].shape == (64, 40) and state.epoch == 3


def test_train_on_npy_file_square_and_not(tmp_path, capsys):
    """User data is drawn as bars, even of a square width, unless --image-shape says images."""
    rng = np.random.default_rng(0)
    cases = ((16, "x16.npy", [], "bars"), (10, "x10.npy", [], "bars"), (16, "x16.npz", [], "bars"),
             (16, "y16.npy", ["--image-shape", "4x4"], "images"))
    for d, name, shape, drawn in cases:
        x = rng.normal(size=(150, d))
        data = tmp_path / name
        np.savez(data, X=x) if name.endswith(".npz") else np.save(data, x)
        out = tmp_path / f"out_{name.replace('.', '_')}"  # a folder, not named like a file
        code, stdout, err = run(["train", *TINY, "--dataset", data, "--out", out, *shape], capsys)
        assert code == 0, err
        s = json.loads((out / "summary.json").read_text())
        assert s["filters"].startswith(drawn) and (out / "filters.png").exists()
        assert "no labelled test split" in s["logistic_regression"]["note"]
        assert s["dataset"]["shape"] == [150, d] and "wrote" in stdout


def test_train_resume_equals_uninterrupted(tmp_path, capsys, monkeypatch, ctrl_c_at_call):
    opts = ["train", *FAST, "--lr-final", "0.001", "--checkpoint-every", "1"]
    assert run([*opts, "--max-iter", "4", "--out", tmp_path / "full"], capsys)[0] == 0
    # Ctrl-C in epoch 3 of 4, then resumed with no options: the checkpoint's settings
    ctrl_c_at_call(ksparse.training.loop, "train_epoch", 3)
    assert run([*opts, "--max-iter", "4", "--out", tmp_path / "part"], capsys)[0] == 130
    assert load_state(tmp_path / "part" / "model.npz").epoch == 2
    monkeypatch.undo()
    code, _, err = run(["train", "--quiet", "--no-logreg", "--out", tmp_path / "part", "--resume"], capsys)
    assert code == 0, err
    full, part = load_state(tmp_path / "full" / "model.npz"), load_state(tmp_path / "part" / "model.npz")
    assert part.epoch == 4 and part.history == full.history
    for name in ("W", "b", "b_prime"):
        np.testing.assert_array_equal(full.params[name], part.params[name])


def test_train_resume_extends_the_run_and_keeps_its_settings(trained, tmp_path, capsys):
    code, _, err = run(["train", "--resume", trained / "model.npz", "--max-iter", "5", "--quiet",
                        "--no-logreg", "--out", tmp_path / "more"], capsys)
    assert code == 0, err
    before, more = load_state(trained / "model.npz"), load_state(tmp_path / "more" / "model.npz")
    assert more.epoch == 5 and more.history[:3] == before.history
    assert [r["k"] for r in more.history[3:]] == [5, 5]  # the schedule holds, it does not start again
    code, _, err = run(["train", "--resume", trained / "model.npz", "--k", "7", "--out", tmp_path / "k7"],
                       capsys)
    assert_user_error(code, err, "--k must equal the checkpoint's 5")
    assert not (tmp_path / "k7").exists()


def test_train_equals_the_estimator_bit_for_bit(trained):
    from ksparse import KSparseAutoencoder
    from ksparse.datasets import load_digits

    est = KSparseAutoencoder(n_hidden=40, k=5, k_start=10, alpha=2, max_iter=3, batch_size=128)
    est.fit(load_digits().X_train)
    cli = load_state(trained / "model.npz")
    for name, mine in (("W", est.W_), ("b", est.b_), ("b_prime", est.b_prime_)):
        assert cli.params[name].tobytes() == mine.tobytes(), name
    assert cli.history == est.history_


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
    # an existing OUTPUT is replaced only when asked
    assert run(["encode", trained / "model.npz", x, tmp_path / "h3.npy"], capsys)[0] == 2
    assert np.all((np.load(tmp_path / "h3.npy") != 0).sum(axis=1) > 10)  # still the alpha 3 codes
    assert run(["encode", trained / "model.npz", x, tmp_path / "h3.npy", "--overwrite"], capsys)[0] == 0
    assert np.all((np.load(tmp_path / "h3.npy") != 0).sum(axis=1) <= 10)


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
    (["--k", "0"], ["--k must be an integer >= 1, got 0"]),
    (["--n-hidden", "10", "--k", "11"],
     ["k <= n_hidden is required", "--k 11 > --n-hidden 10", "lower --k or raise --n-hidden to at least 11"]),
    (["--n-hidden", "10", "--k", "5", "--alpha", "3"],
     ["alpha*k <= n_hidden is required", "--alpha 3.0 and --k 5 give alpha*k = 15 > --n-hidden 10",
      "lower --k or --alpha, or raise --n-hidden to at least 15"]),
    (["--alpha", "0.5"], ["--alpha must be a finite number >= 1, got 0.5"]),
    (["--alpha", "inf"], ["--alpha must be a finite number >= 1, got inf"]),
    (["--alpha", "1e400"], ["--alpha must be a finite number >= 1, got inf"]),
    (["--alpha", "nan"], ["--alpha must be a finite number >= 1, got nan"]),
    (["--k-start", "-1"], ["--k-start must be an integer >= 1, got -1"]),
    (["--momentum", "2.5"], ["--momentum must be a finite number in [0, 1), got 2.5"]),
    (["--lr", "-0.1"], ["--lr must be a finite number >= 0 or None, got -0.1"]),
    (["--max-iter", "2.5"], ["--max-iter", "invalid int value"]),
    (["--image-shape", "9x9"], ["--image-shape 9x9", "64 features"]),
    (["--dataset", "no-such-set"], ["unknown dataset", "digits"]),
    (["--dataset", "missing.npy"], ["missing.npy", "does not exist"]),
    (["--resume", "missing.npz"], ["missing.npz", "does not exist"]),
    (["--checkpoint-every", "-1"], ["--checkpoint-every must be an integer >= 0, got -1"]),
])
def test_train_rejects_bad_options(tmp_path, capsys, opts, words):
    out = tmp_path / "out"
    code, _, err = run(["train", *FAST, *opts, "--out", out], capsys)
    assert_user_error(code, err, *words)
    assert not out.exists()
    named = {w for w in err.split(";")[0].split() if w.startswith("--")}
    if "is required" in err:  # a rule between options blames none of them: it names each one with its value
        assert named == {o for o in opts if o.startswith("--")} | ({"--alpha"} if "alpha*k" in err else set())
    else:
        assert len(named) <= 1, err  # one wrong option (the fixes after ";" may name the others involved)


def test_train_rejects_out_that_is_a_file_and_bad_choice(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert_user_error(*run(["train", *FAST, "--out", tmp_path / "f"], capsys)[::2], "is a file")
    code, _, err = run(["train", "--dtype", "float16"], capsys)  # argparse's own message
    assert_user_error(code, err, "--dtype", "invalid choice")


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
    ("d", ["64", "10"]), ("nan", ["NaN"]), ("missing", ["does not exist"]),
    ("alpha", ["alpha*k <= n_hidden is required", "--alpha 100.0 and k = ", "> n_hidden = 40",
               "lower --alpha (k and n_hidden are the model's)"]),
    ("alpha below 1", ["--alpha must be a finite number >= 1, got 0.5", "give a finite --alpha >= 1"]),
    ("alpha inf", ["--alpha must be a finite number >= 1, got inf", "give a finite --alpha >= 1"]),
])
def test_encode_rejects_bad_input(trained, tmp_path, capsys, kind, words):
    data = {"d": np.zeros((5, 10)), "nan": np.full((5, 64), np.nan)}.get(kind, np.zeros((5, 64)))
    x = tmp_path / "nothing.npy" if kind == "missing" else save(tmp_path / "x.npy", data)
    extra = {"alpha": ["--alpha", "100"], "alpha below 1": ["--alpha", "0.5"],
             "alpha inf": ["--alpha", "inf"]}.get(kind, [])
    code, _, err = run(["encode", trained / "model.npz", x, tmp_path / "h.npy", *extra], capsys)
    assert_user_error(code, err, *words)
    assert "lower" not in err or kind == "alpha", err  # below 1: the fix raises it
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
    code, _, err = run(["train", *FAST, "--max-iter", "5", "--out", tmp_path], capsys)
    assert_user_error(code, err, "diverged at epoch 3", "epoch 2")
    assert load_state(tmp_path / "model.npz").epoch == 2
    summary = json.loads((tmp_path / "summary.json").read_text())  # it describes the saved model
    assert summary["status"] == "diverged" and summary["n_iter"] == 2 and len(summary["history"]) == 2
    assert "diverged at epoch 3" in summary["note"] and not (tmp_path / "filters.png").exists()


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


def test_help_explains_every_option_with_the_estimators_defaults(capsys):
    import dataclasses

    from ksparse import KSparseAutoencoder

    assert run(["--help"], capsys)[0] == 0
    code, out, _ = run(["train", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    defaults = KSparseAutoencoder().get_params()
    for f in dataclasses.fields(AutoencoderConfig):
        assert flag(f.name) in text and f.metadata["help"] in text, f.name
        assert f"default: {defaults[f.name]})" in text, f.name
    for option in ("--dataset", "--data-dir", "--device", "--out", "--resume", "--checkpoint-every",
                   "--image-shape"):
        assert option in out
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"ksparse {ksparse.__version__}"
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
    # the console script's entry point, importing this checkout's ksparse (an editable install
    # elsewhere would otherwise answer)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "out"
    ok = subprocess.run(["ksparse", "train", *FAST, "--no-logreg", "--out", str(out)],
                        capture_output=True, text=True, timeout=300, env=env)
    assert ok.returncode == 0, ok.stderr
    assert {"model.npz", "filters.png", "summary.json"} <= set(os.listdir(out))
    bad = subprocess.run(["ksparse", "train", "--k", "0", "--out", str(tmp_path / "bad")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "ksparse: error:" in bad.stderr


def test_train_center_stores_the_mean_and_encode_uses_it(tmp_path, capsys):
    from ksparse.datasets import load_digits
    from ksparse.kernels.encode import encode

    out = tmp_path / "centered"
    code, _, err = run(["train", *FAST, "--center", "--out", out], capsys)
    assert code == 0, err
    state = load_state(out / "model.npz")
    digits = load_digits()
    assert state.config.center is True
    np.testing.assert_array_equal(state.x_mean, digits.X_train.mean(axis=0))
    x = save(tmp_path / "x.npy", digits.X_test)
    assert run(["encode", out / "model.npz", x, tmp_path / "h.npy"], capsys)[0] == 0
    p = state.params
    u = (digits.X_test - state.x_mean) / state.scale - p["b_prime"]  # D9 on the scaled, centred input
    expected = encode(u.astype(np.float32), p["W"], p["b"], 5, 2.0)
    np.testing.assert_allclose(np.load(tmp_path / "h.npy"), expected, rtol=1e-5, atol=1e-6)


def test_info_describes_the_model(trained, capsys):
    code, out, err = run(["info", trained / "model.npz"], capsys)
    assert code == 0, err
    assert f"written by ksparse {ksparse.__version__}" in out
    assert "64 features -> 40 hidden units" in out and "k = 5, alpha = 2" in out
    assert "epochs run: 3 of max_iter = 3" in out and "dead units (no support during the epoch):" in out
    assert "--random-state 0" in out and "times lr (lambda_1 of the training data" in out
    assert_user_error(*run(["info", trained / "absent.npz"], capsys)[::2], "absent.npz", "does not exist")


def test_info_settings_line_trains_the_same_model_again(trained, tmp_path, capsys):
    out = run(["info", trained / "model.npz"], capsys)[1]
    settings = out.split("settings: ", 1)[1].split()
    code, _, err = run(["train", *settings, "--quiet", "--no-logreg", "--out", tmp_path / "again"], capsys)
    assert code == 0, err
    first = np.load(trained / "model.npz")["W"]
    assert np.array_equal(np.load(tmp_path / "again" / "model.npz")["W"], first)


def test_train_resume_of_a_finished_run_says_there_is_nothing_to_train(trained, tmp_path, capsys):
    import shutil

    shutil.copytree(trained, tmp_path / "run")
    code, _, err = run(["train", "--out", tmp_path / "run", "--resume", "--quiet", "--no-logreg"], capsys)
    assert code == 0 and "nothing to train" in err and "--max-iter" in err


def test_train_image_shape_draws_images_and_logreg_says_what_it_does(tmp_path, capsys):
    data = save(tmp_path / "x.npy", np.random.default_rng(0).random((120, 12)))
    code, _, err = run(["train", *FAST, "--dataset", data, "--image-shape", "3x4", "--out", tmp_path / "a"],
                       capsys)
    assert code == 0, err
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["filters"] == "images" and s["dataset"]["image_shape"] == [3, 4]
    tiny = [a for a in TINY if a != "--quiet"]
    code, _, err = run(["train", *tiny, "--out", tmp_path / "b"], capsys)
    assert code == 0, err
    assert "logistic regression on the 10-sparse features (1347 x 40)..." in err
    assert "logistic regression on the raw inputs (1347 x 64)..." in err


def test_ctrl_c_during_reproduce_says_how_to_continue_and_that_command_ends(tmp_path, capsys, monkeypatch,
                                                                            ctrl_c_at_call):
    from ksparse.training import loop

    ctrl_c_at_call(loop, "_epoch", 2)
    argv = ["reproduce", "table1", "--profile", "smoke", "--dataset", "digits", "--rows", "k25", "--out",
            str(tmp_path / "o")]
    code, _, err = run(argv, capsys)
    # was exit 130 and not a word: neither what was kept nor how to go on
    assert code == 130 and "Traceback" not in err
    again = f"ksparse {shlex.join(argv)} --resume"
    assert err.strip().splitlines()[-1].startswith(f"ksparse: interrupted; continue with: {again} (it skips")
    monkeypatch.undo()  # the real epoch again
    assert run(shlex.split(again)[1:], capsys)[0] == 0
    assert (tmp_path / "o" / "results" / "table1-smoke-k25-seed0.json").exists()
