"""Every bad input through ``ksparse.cli.main``: exit code 2, one ``ksparse: error:`` line, no
traceback, and no input or earlier output changed (the folder's file hashes before and after).
Then the ways out: --overwrite, SIGTERM and Ctrl-C during training and during the evaluation.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from conftest import rewrite_model

import ksparse.summary
from ksparse.backend import gpu_available
from ksparse.cli import main
from ksparse.estimators.autoencoder import KSparseAutoencoder
from ksparse.training import loop as train

X, M = "{d}/X.npy", "{d}/run/model.npz"  # the data and the trained model of the folder
TINY = ["--n-hidden", "12", "--k", "3", "--k-start", "6", "--max-iter", "2", "--batch-size", "32",
        "--quiet", "--no-logreg"]




@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A folder with data files (good and bad), a trained run in run/, and broken models."""
    d = tmp_path_factory.mktemp("bad_input")
    rng = np.random.default_rng(0)
    X = rng.random((64, 16))
    np.save(d / "X.npy", X)
    assert main(["train", *TINY, "--dataset", str(d / "X.npy"), "--out", str(d / "run")]) == 0
    (d / "random.npy").write_bytes(rng.bytes(300))
    np.save(d / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(d / "complex.npy", X + 1j)
    np.save(d / "nan.npy", np.where(X > 0.9, np.nan, X))
    np.save(d / "cube.npy", X.reshape(4, 16, 16))
    np.save(d / "wrong_d.npy", X[:, :10])
    np.save(d / "big.npy", X * 1000)  # the same kind of data at another scale (0-1000, not 0-1)
    (d / "corrupt.npz").write_bytes((d / "run" / "model.npz").read_bytes()[:500])
    model = d / "run" / "model.npz"
    with np.load(model) as data:
        W = data["W"].copy()
    W[0, 0] = np.nan
    rewrite_model(model, d / "nan_model.npz", W=W)
    rewrite_model(model, d / "newer.npz", meta={"format": "ksparse-checkpoint-9"})
    os.symlink(model, d / "link.npy")
    shutil.copy(model, d / "copy.npz")  # a model of its own, outside run/
    return d


# (argv with {d} for the folder, words the one message must contain)
CASES = {
    "alpha inf": (["train", *TINY, "--alpha", "inf"], ["--alpha", "finite"]),
    "alpha 1e400": (["train", *TINY, "--alpha", "1e400"], ["--alpha", "finite"]),
    "alpha nan": (["train", *TINY, "--alpha", "nan"], ["--alpha"]),
    "hidden 1e12": (["train", *TINY, "--dataset", X, "--n-hidden", "1000000000000", "--out", "{d}/big"],
                   ["needs about", "is available", "lower n_hidden"]),
    "k-start -1": (["train", *TINY, "--k-start", "-1"], ["--k-start"]),
    "momentum 2.5": (["train", *TINY, "--momentum", "2.5"], ["--momentum"]),
    "lr nan": (["train", *TINY, "--lr", "nan"], ["--lr"]),
    "batch-size 0": (["train", *TINY, "--batch-size", "0"], ["--batch-size"]),
    "missing data": (["train", *TINY, "--dataset", "{d}/missing.npy", "--out", "{d}/o"], ["does not exist"]),
    "random bytes": (["train", *TINY, "--dataset", "{d}/random.npy", "--out", "{d}/o"], ["not a .npy"]),
    "objects": (["train", *TINY, "--dataset", "{d}/objects.npy", "--out", "{d}/o"], ["python objects"]),
    "complex data": (["train", *TINY, "--dataset", "{d}/complex.npy", "--out", "{d}/o"], ["complex"]),
    "nan data": (["train", *TINY, "--dataset", "{d}/nan.npy", "--out", "{d}/o"], ["nan"]),
    "3-D data": (["train", *TINY, "--dataset", "{d}/cube.npy", "--out", "{d}/o"], ["2-d"]),
    "out is a file": (["train", *TINY, "--dataset", X, "--out", X], ["is a file"]),
    "out holds a model": (["train", *TINY, "--dataset", X, "--out", "{d}/run"],
                          ["already holds a model", "--overwrite"]),
    "out not writable": (["train", *TINY, "--dataset", X, "--out", "{d}/X.npy/sub"],
                         ["cannot write into --out"]),
    "data is an output": (["train", *TINY, "--dataset", M, "--out", "{d}/run", "--overwrite"],
                          ["--dataset", "would be overwritten", "another --out"]),
    "resume corrupt": (["train", *TINY, "--dataset", X, "--out", "{d}/o", "--resume", "{d}/corrupt.npz"],
                       ["not a readable ksparse model file"]),
    "resume nan model": (["train", "--dataset", X, "--out", "{d}/o", "--resume", "{d}/nan_model.npz"],
                         ["nan or inf in w"]),
    "resume newer": (["train", "--dataset", X, "--out", "{d}/o", "--resume", "{d}/newer.npz"],
                     ["newer ksparse", "upgrade"]),
    "checkpoint-every -1": (["train", *TINY, "--checkpoint-every", "-1"], ["checkpoint"]),
    "encode over model": (["encode", M, X, M],
                          ["model file", "overwritten"]),
    "encode over input": (["encode", M, X, X], ["input file", "overwritten"]),
    "encode over model via link": (["encode", M, X, "{d}/link.npy"],
                                   ["model file", "overwritten"]),
    "encode into a folder": (["encode", M, X, "{d}/run"], ["is a folder"]),
    "old option name": (["train", "--dataset", X, "--out", "{d}/o", "--epochs", "3"],
                        ["--epochs is now --max-iter"]),
    "encode over another model": (["encode", M, X, "{d}/newer.npz", "--form", "topk"],
                                  ["already exists", "--overwrite"]),
    "encode over earlier codes": (["encode", M, X, "{d}/cube.npy"],
                                  ["already exists", "--overwrite"]),
    "encode nan model": (["encode", "{d}/nan_model.npz", X, "{d}/h.npy"], ["nan or inf in w"]),
    "encode newer model": (["encode", "{d}/newer.npz", X, "{d}/h.npy"], ["newer ksparse"]),
    "encode missing model": (["encode", "{d}/missing.npz", X, "{d}/h.npy"], ["does not exist"]),
    "encode corrupt model": (["encode", "{d}/corrupt.npz", X, "{d}/h.npy"], ["not a readable"]),
    "encode complex": (["encode", M, "{d}/complex.npy", "{d}/h.npy"], ["complex"]),
    "encode wrong d": (["encode", M, "{d}/wrong_d.npy", "{d}/h.npy"], ["expects 16"]),
    "encode random bytes": (["encode", M, "{d}/random.npy", "{d}/h.npy"], ["not a .npy"]),
    "encode alpha inf": (["encode", M, X, "{d}/h.npy", "--alpha", "inf"], ["--alpha must be a finite"]),
    "encode alpha 0.5": (["encode", M, X, "{d}/h.npy", "--alpha", "0.5"], ["--alpha must be a finite"]),
    "info corrupt": (["info", "{d}/corrupt.npz"], ["not a readable"]),
    # the run's folder given as its model: named a folder, with the model file in it (was "does not exist")
    "encode model is a folder": (["encode", "{d}/run", X, "{d}/h.npy"], ["is a folder", "run/model.npz"]),
    "info model is a folder": (["info", "{d}/run"], ["is a folder", "run/model.npz"]),
    "resume a folder": (["train", "--out", "{d}/run", "--resume", "{d}/run", "--max-iter", "3"],
                        ["is a folder", "run/model.npz"]),
    "info of a folder without a model": (["info", "{d}"], ["is a folder", "model.npz written by"]),
    "info nan model": (["info", "{d}/nan_model.npz"], ["nan or inf"]),
    "unknown option": (["train", "--hidden", "5"], ["unrecognized"]),
    # an option that --paper turns off is refused, not ignored
    "paper step-bound": (["train", *TINY, "--dataset", X, "--out", "{d}/o", "--paper", "--step-bound"],
                         ["--step-bound has no effect with --paper", "drop --step-bound"]),
    "paper scale": (["train", *TINY, "--paper", "--scale"], ["--scale has no effect with --paper"]),
    "paper pre-bias": (["train", *TINY, "--paper", "--pre-bias"], ["--pre-bias has no effect"]),
    "paper resample": (["train", *TINY, "--paper", "--resample"], ["--resample has no effect"]),
    "paper b-prime-init": (["train", *TINY, "--paper", "--b-prime-init", "median"],
                           ["--b-prime-init median"]),
    "paper c-aux": (["train", *TINY, "--paper", "--c-aux", "0.03"], ["--c-aux"]),
    # resuming: on data of another scale; below the epochs run (the error alone, no note first)
    "resume other data": (["train", "--dataset", "{d}/big.npy", "--out", "{d}/run", "--resume",
                           "--max-iter", "4", "--quiet", "--no-logreg"],
                          ["resume only on data of the kind", "new model"]),
    "resume max-iter below": (["train", "--dataset", X, "--out", "{d}/run", "--resume", "--max-iter", "1",
                               "--quiet", "--no-logreg"], ["--max-iter must be >= the 2 epochs"]),
    "resume into another run's out": (["train", "--dataset", X, "--out", "{d}/run", "--resume",
                                       "{d}/copy.npz", "--max-iter", "3", "--quiet", "--no-logreg"],
                                      ["already holds a model of another run", "another --out"]),
    # options and data are checked before whether --out (encode: OUTPUT) already holds a model
    "encode over earlier codes, bad alpha": (["encode", M, X, "{d}/cube.npy", "--alpha", "0.5"],
                                             ["--alpha must be a finite"]),
    "encode over earlier codes, wrong d": (["encode", M, "{d}/wrong_d.npy", "{d}/cube.npy"], ["expects 16"]),
    "encode over earlier codes, bad model": (["encode", "{d}/corrupt.npz", X, "{d}/cube.npy"],
                                             ["not a readable"]),
    "out holds a model, bad image shape": (["train", *TINY, "--dataset", X, "--out", "{d}/run",
                                            "--image-shape", "abc"], ["--image-shape must look like"]),
    "out holds a model, too big": (["train", *TINY, "--dataset", X, "--out", "{d}/run", "--n-hidden",
                                    "1000000000000"], ["needs about"]),
    "out holds a model, model as data": (["train", *TINY, "--dataset", "{d}/newer.npz", "--out", "{d}/run"],
                                         ["name the data array"]),
}
if not gpu_available():
    CASES["no gpu"] = (["train", *TINY, "--dataset", X, "--out", "{d}/o", "--device", "gpu"],
                       ["device 'gpu' needs"])
    CASES["encode no gpu"] = (["encode", M, X, "{d}/h.npy", "--device", "gpu"],
                              ["device 'gpu' needs"])


def _hashes(folder):
    """{relative path: sha256} of every file (links as their target's name) under ``folder``."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            if os.path.islink(path):
                out[rel] = "link:" + os.readlink(path)
            elif os.path.isfile(path):
                out[rel] = hashlib.sha256(open(path, "rb").read()).hexdigest()
            else:
                out[rel] = "dir"
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line_and_changes_nothing(base, tmp_path, monkeypatch, capsys, case):
    d = tmp_path / "work"
    shutil.copytree(base, d, symlinks=True)
    os.unlink(d / "link.npy")
    os.symlink(d / "run" / "model.npz", d / "link.npy")
    monkeypatch.chdir(tmp_path)  # a default --out (runs/ksparse) must not appear either
    argv, words = CASES[case]
    one_error([a.replace("{d}", str(d)) for a in argv], tmp_path, capsys, *words)


def one_error(argv, folder, capsys, *words):
    """Run ``main(argv)`` and check the house style: exit code 2, one ``ksparse: error:`` line
    holding every one of ``words``, no traceback, nothing under ``folder`` changed; return the line."""
    capsys.readouterr()
    before = _hashes(folder)
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ksparse: error: "), err
    assert "Traceback" not in err + out
    for word in words:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    assert _hashes(folder) == before
    return lines[0]


def test_overwrite_replaces_an_earlier_model(base, tmp_path, capsys):
    d = tmp_path / "work"
    shutil.copytree(base, d, symlinks=True)
    old = (d / "run" / "model.npz").read_bytes()
    assert main(["train", *TINY, "--dataset", str(d / "X.npy"), "--out", str(d / "run"),
                 "--overwrite", "--random-state", "7"]) == 0
    assert (d / "run" / "model.npz").read_bytes() != old
    assert train.load_state(d / "run" / "model.npz").config.random_state == 7


def test_unwritable_out_is_found_before_training(base, tmp_path, monkeypatch, capsys):
    def no_fit(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(KSparseAutoencoder, "fit", no_fit)
    (tmp_path / "file").write_bytes(b"x")
    code = main(["train", *TINY, "--dataset", str(base / "X.npy"), "--out", str(tmp_path / "file" / "out")])
    assert code == 2 and "cannot write into --out" in capsys.readouterr().err


def test_interrupt_during_evaluation_still_writes_the_summary(base, tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ksparse.summary, "logreg_errors", interrupted)
    out = tmp_path / "run"
    argv = [a for a in TINY if a != "--no-logreg"]
    assert main(["train", *argv, "--out", str(out)]) == 130  # digits: labelled, so logreg runs
    err = capsys.readouterr().err
    assert "interrupted after training" in err and "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] == "interrupted during the post-training evaluation"
    assert summary["n_iter"] == 2 and len(summary["history"]) == 2 and "score" in summary
    assert train.load_state(out / "model.npz").epoch == 2


@pytest.mark.parametrize("signum, code, word", [(signal.SIGTERM, 143, "terminated"),
                                                (signal.SIGINT, 130, "interrupted")])
def test_signal_during_training_saves_the_last_epoch_and_exits_conventionally(base, tmp_path, signum, code,
                                                                               word):
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYTHONPATH=os.getcwd())
    argv = [sys.executable, "-m", "ksparse.cli", "train", "--dataset", str(base / "X.npy"), "--out", str(out),
            "--n-hidden", "12", "--k", "3", "--k-start", "6", "--max-iter", "100000", "--batch-size", "8",
            "--checkpoint-every", "1", "--quiet", "--no-logreg"]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):  # until the first epoch is on disk (at most 60 s)
            if (out / "model.npz").exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert f"ksparse: {word}; the last good state (epoch" in err and "Traceback" not in err
    state = train.load_state(out / "model.npz")
    assert state.epoch >= 1 and len(state.history) == state.epoch
    assert not [f for f in os.listdir(out) if f.startswith(".tmp-")]


def _diverge_at_once(*args, **kwargs):
    return {"loss": float("nan")}


def test_paper_on_unscaled_data_names_the_cause_and_a_fix_in_flags(base, tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["train", *TINY, "--dataset", str(base / "big.npy"), "--out", str(out), "--paper"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "[0, 1]" in err and "scale X to [0, 1]" in err and "--no-paper" in err
    assert "lr=" not in err and "step_bound" not in err and "paper=" not in err


def test_paper_divergence_from_python_names_the_parameters(base):
    # one message, with no numpy RuntimeWarning (overflow, invalid value) on the way to it
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(train.TrainingDiverged, match=r"scale X to \[0, 1\], or use paper=False"):
            train.fit(np.load(base / "big.npy"), {"paper": True, "n_hidden": 12, "k": 3, "max_iter": 50})


def test_paper_divergence_on_pixels_gives_no_numpy_warnings():
    # the digits in 0-255 under the paper's setting: the steps overflow, then the loss is NaN
    from sklearn.datasets import load_digits

    X = (load_digits().data * 16).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(train.TrainingDiverged, match="paper=False"):
            train.fit(X, {"paper": True, "max_iter": 5, "random_state": 0})


def test_c_aux_with_paper_is_refused_by_the_estimator_too():
    with pytest.raises(ValueError, match="c_aux"):
        KSparseAutoencoder(paper=True, c_aux=0.03).fit(np.random.default_rng(0).random((40, 8)))


def test_failed_resume_leaves_the_model_unchanged_and_advises_a_new_run(base, tmp_path, capsys, monkeypatch):
    d = tmp_path / "work"
    shutil.copytree(base, d, symlinks=True)
    before = _hashes(d)
    monkeypatch.setattr(train, "train_epoch", _diverge_at_once)
    code = main(["train", "--dataset", str(d / "X.npy"), "--out", str(d / "run"), "--resume",
                 "--max-iter", "5",
                 "--quiet", "--no-logreg"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "new --out (without --resume)" in err and "--lr " in err and "is unchanged" in err
    assert _hashes(d) == before


@pytest.mark.parametrize("resume", [False, True])
def test_ctrl_c_before_an_epoch_ends_says_to_run_the_same_command(base, tmp_path, capsys, monkeypatch,
                                                                   resume):
    d = tmp_path / "work"
    shutil.copytree(base, d, symlinks=True)
    before = _hashes(d)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_epoch", interrupted)
    argv = ["train", "--dataset", str(d / "X.npy"), "--out", str(d / ("run" if resume else "new")), "--quiet"]
    argv += ["--resume", "--max-iter", "5"] if resume else ["--n-hidden", "12", "--k", "3"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 130 and "Traceback" not in err
    assert err.strip().endswith("run it again with: " + " ".join(["ksparse", *argv])), err
    assert ("is unchanged" if resume else "no model was saved") in err
    assert _hashes(d) == before


@pytest.mark.parametrize("how", ["--overwrite", "--resume"])
def test_interrupted_run_leaves_no_file_that_describes_another_model(base, tmp_path, capsys, ctrl_c_at_call,
                                                                     how):
    """--overwrite (or --resume) saves the new model on Ctrl-C: summary.json then describes that model,
    and the earlier filters.png (another model, or an earlier epoch) is gone; nothing else changes."""
    d = tmp_path / "work"
    shutil.copytree(base, d, symlinks=True)
    assert (d / "run" / "filters.png").exists()
    assert json.loads((d / "run" / "summary.json").read_text())["n_iter"] == 2  # the earlier run's
    before = {p: h for p, h in _hashes(d).items() if not p.startswith("run")}
    ctrl_c_at_call(train, "train_epoch", 2)
    argv = ["train", "--dataset", str(d / "X.npy"), "--out", str(d / "run"), "--max-iter", "6", "--quiet",
            "--no-logreg"]
    argv += ["--resume"] if how == "--resume" else [*TINY, "--max-iter", "6", "--random-state", "7", how]
    assert main(argv) == 130
    saved = 3 if how == "--resume" else 1  # the run's one finished epoch
    state = train.load_state(d / "run" / "model.npz")
    summary = json.loads((d / "run" / "summary.json").read_text())
    assert state.epoch == saved and summary["status"] == "interrupted" and summary["n_iter"] == saved
    assert summary["config"] == state.config.to_dict() and len(summary["history"]) == saved
    assert summary["command"] == " ".join(["ksparse", *argv]) and "--resume" in summary["note"]
    assert not (d / "run" / "filters.png").exists()
    assert {p: h for p, h in _hashes(d).items() if not p.startswith("run")} == before
    assert sorted(os.listdir(d / "run")) == ["data.json", "model.npz", "summary.json"]


def test_interrupt_before_the_filters_are_drawn_removes_the_earlier_ones(base, tmp_path, monkeypatch, capsys):
    d = tmp_path / "work"
    shutil.copytree(base, d, symlinks=True)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ksparse.summary, "draw_filters", interrupted)
    argv = ["train", *TINY, "--max-iter", "3", "--dataset", str(d / "X.npy"), "--out", str(d / "run"),
            "--overwrite"]
    assert main(argv) == 130
    summary = json.loads((d / "run" / "summary.json").read_text())
    assert summary["status"] == "trained; evaluation interrupted" and summary["n_iter"] == 3
    assert summary["filters"] is None and not (d / "run" / "filters.png").exists()


@pytest.mark.parametrize("shape", [(20, 8, 8), (6, 2, 3, 4)])
def test_data_of_three_or_more_dimensions_names_the_reshape(tmp_path, capsys, shape):
    # the command line, fit and the estimator: one line that says how to flatten the samples
    X = np.random.default_rng(0).random(shape)
    np.save(tmp_path / "x.npy", X)
    code = main(["train", "--dataset", str(tmp_path / "x.npy"), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "reshape(len(a), -1)" in err
    with pytest.raises(ValueError, match=r"got \d-D shape .*reshape\(len\(a\), -1\)"):
        train.fit(X, {"max_iter": 1})
    with pytest.raises(ValueError, match=r"X must be 2-D .*reshape\(len\(a\), -1\)"):
        KSparseAutoencoder(max_iter=1).fit(X)


def test_a_chosen_batch_larger_than_the_data_gets_one_note(tmp_path, capsys):
    # the estimator warns (a batch size the user chose; the default is silent on small data), and the
    # command line shows the library's warnings as one line each, "ksparse: note: ..."
    X = np.random.default_rng(0).random((40, 6)).astype(np.float32)
    with pytest.warns(UserWarning, match="batch_size=100 is more than the 40 rows"):
        KSparseAutoencoder(n_hidden=8, k=2, max_iter=1, batch_size=100).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        KSparseAutoencoder(n_hidden=8, k=2, max_iter=1).fit(X)  # the default batch (64): no warning
    np.save(tmp_path / "x.npy", X)
    code = main(["train", "--dataset", str(tmp_path / "x.npy"), "--out", str(tmp_path / "run"),
                 "--n-hidden", "8", "--k", "2", "--max-iter", "1", "--batch-size", "100", "--quiet",
                 "--no-logreg"])
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "batch_size=100" in line]
    assert code == 0 and notes == [notes[0]] and notes[0].startswith("ksparse: note: ")
