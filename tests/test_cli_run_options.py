"""Nothing is lost: --resume runs as the original command did (its run options, recorded in
OUT/data.json), a fresh run does not write over another run's data.json, and summary.json
describes the finished model while it is evaluated."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_cli import assert_user_error, run

import ksparse.summary
import ksparse.training.loop
from ksparse.training import loop as train

SMALL = ["--n-hidden", "12", "--k", "3", "--k-start", "6", "--batch-size", "32"]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, np.random.default_rng(0).random((64, 16)))
    return path


def _model_epochs_seen(monkeypatch, out):
    """Spy on train_epoch: the epoch of OUT/model.npz at each call (a list), as a kill then finds it."""
    real, seen = ksparse.training.loop.train_epoch, []

    def spy(*args, **kwargs):
        seen.append(train.load_state(out / "model.npz").epoch)
        return real(*args, **kwargs)

    monkeypatch.setattr(ksparse.training.loop, "train_epoch", spy)
    return seen


def test_the_ctrl_c_hint_resumes_with_the_runs_checkpoint_every_and_no_logreg(data, tmp_path, capsys,
                                                                               monkeypatch, ctrl_c_at_call):
    out = tmp_path / "o"
    ctrl_c_at_call(ksparse.training.loop, "train_epoch", 3)  # Ctrl-C in epoch 3; later calls run
    code, _, err = run(["train", *SMALL, "--dataset", data, "--max-iter", "6", "--checkpoint-every", "1",
                        "--no-logreg", "--out", out], capsys)
    assert code == 130, err
    hint = err.split("continue with: ")[-1].strip()
    assert hint == shlex.join(["ksparse", "train", "--out", str(out), "--resume"])
    recorded = json.loads((out / "data.json").read_text())
    assert recorded["checkpoint_every"] == 1 and recorded["no_logreg"] is True
    seen = _model_epochs_seen(monkeypatch, out)
    code, _, err = run(shlex.split(hint)[1:], capsys)  # the hint, as typed
    assert code == 0, err
    assert seen == [2, 3, 4, 5]  # a checkpoint after each epoch: a kill loses at most one
    summary = json.loads((out / "summary.json").read_text())
    assert summary["logistic_regression"] == {"note": "skipped: --no-logreg"}


def _killed_at(argv, out, epoch):
    """Run ``ksparse`` ``argv`` in a process, SIGKILL it once OUT/model.npz holds ``epoch``; that epoch
    (None if it was not reached in 60 s)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen([sys.executable, "-m", "ksparse.cli", *map(str, argv)], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):
            try:
                if train.load_state(out / "model.npz").epoch >= epoch:
                    break
            except (OSError, ValueError):
                pass
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        else:
            return None
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        return train.load_state(out / "model.npz").epoch
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_killed_resume_of_a_killed_run_kept_checkpointing(data, tmp_path):
    out = tmp_path / "o"
    first = _killed_at(["train", *SMALL, "--dataset", data, "--max-iter", "100000", "--checkpoint-every", "1",
                        "--quiet", "--out", out], out, 2)
    assert first is not None
    assert _killed_at(["train", "--out", out, "--resume"], out, first + 2) is not None  # checkpoints went on


def test_a_run_option_given_again_on_resume_replaces_the_recorded_one(data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    assert run(["train", *SMALL, "--dataset", data, "--max-iter", "2", "--checkpoint-every", "1", "--quiet",
                "--no-logreg", "--out", out], capsys)[0] == 0
    seen = _model_epochs_seen(monkeypatch, out)
    code, _, err = run(["train", "--out", out, "--resume", "--max-iter", "4", "--checkpoint-every", "0"],
                       capsys)
    assert code == 0, err
    assert seen == [2, 2]  # no checkpoint between the epochs: the option given wins
    assert json.loads((out / "data.json").read_text())["checkpoint_every"] == 0  # for the next resume


def test_resume_of_a_run_that_recorded_no_run_options_keeps_the_defaults(data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    assert run(["train", *SMALL, "--dataset", data, "--max-iter", "2", "--checkpoint-every", "1", "--quiet",
                "--no-logreg", "--out", out], capsys)[0] == 0
    recorded = json.loads((out / "data.json").read_text())
    older = {k: recorded[k] for k in ("dataset", "data_dir", "image_shape")}  # as written before this
    (out / "data.json").write_text(json.dumps(older))
    seen = _model_epochs_seen(monkeypatch, out)
    code, _, err = run(["train", "--out", out, "--resume", "--max-iter", "4", "--no-logreg"], capsys)
    assert code == 0, err
    assert seen == [2, 2]  # as before run options were recorded: --checkpoint-every 0


def test_a_fresh_run_refuses_an_out_holding_another_runs_data_json(data, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "data.json").write_text('{"dataset": "mnist"}')
    argv = ["train", *SMALL, "--max-iter", "2", "--dataset", data, "--out", out]
    code, _, err = run(argv, capsys)
    assert_user_error(code, err, "data.json", "--overwrite")
    assert (out / "data.json").read_text() == '{"dataset": "mnist"}'
    assert sorted(p.name for p in out.iterdir()) == ["data.json"]
    code, _, err = run([*argv, "--overwrite"], capsys)
    assert code == 0, err
    assert json.loads((out / "data.json").read_text())["dataset"] == str(data)


def test_the_same_run_started_again_after_a_kill_before_any_epoch_is_not_refused(data, tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["train", *SMALL, "--max-iter", "2", "--dataset", data, "--out", out]
    assert run(argv, capsys)[0] == 0
    kept = (out / "data.json").read_text()
    for name in ("model.npz", "summary.json", "filters.png"):  # as a SIGKILL before the first epoch leaves it
        (out / name).unlink()
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert (out / "data.json").read_text() == kept


def test_reproduce_refuses_an_out_holding_another_data_json(small_mnist, tmp_path, capsys, monkeypatch):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "data.json").write_text('{"data_dir": "/elsewhere"}')
    monkeypatch.setenv("KSPARSE_DATA", str(small_mnist))
    argv = ["reproduce", "table1", "--profile", "smoke", "--rows", "k25", "--out", out]
    code, _, err = run(argv, capsys)
    assert_user_error(code, err, "data.json", "--overwrite")
    assert (out / "data.json").read_text() == '{"data_dir": "/elsewhere"}'
    assert sorted(p.name for p in out.iterdir()) == ["data.json"]


def test_summary_describes_the_finished_model_while_it_is_evaluated(data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    assert run(["train", *SMALL, "--max-iter", "2", "--dataset", data, "--out", out], capsys)[0] == 0
    real, found = ksparse.summary.run_summary, []

    def killed_here(*args, **kwargs):  # what a SIGKILL at the start of the evaluation leaves
        found.append((json.loads((out / "summary.json").read_text()), (out / "filters.png").exists()))
        return real(*args, **kwargs)

    monkeypatch.setattr(ksparse.summary, "run_summary", killed_here)
    code, _, err = run(["train", "--out", out, "--resume", "--max-iter", "4"], capsys)
    assert code == 0, err
    (summary, filters), = found
    assert summary["status"] == "trained; evaluating" and summary["n_iter"] == 4 == train.load_state(
        out / "model.npz").epoch
    assert "--resume" in summary["note"] and not filters  # no filters.png of the 2-epoch model
    assert json.loads((out / "summary.json").read_text())["status"] == "finished"


def test_resume_of_a_gpu_run_where_there_is_none_names_the_recorded_device(data, tmp_path, capsys):
    from ksparse.backend import gpu_available

    if gpu_available():
        pytest.skip("this machine has a GPU: the recorded --device gpu resumes")
    out = tmp_path / "o"
    assert run(["train", *SMALL, "--max-iter", "2", "--dataset", data, "--quiet", "--no-logreg",
                "--out", out], capsys)[0] == 0
    recorded = json.loads((out / "data.json").read_text())
    (out / "data.json").write_text(json.dumps(dict(recorded, device="gpu")))  # as a run on a GPU machine
    code, _, err = run(["train", "--out", out, "--resume", "--max-iter", "3"], capsys)
    assert_user_error(code, err, "device 'gpu'", "data.json", "--device cpu")
    assert run(["train", "--out", out, "--resume", "--max-iter", "3", "--device", "cpu"], capsys)[0] == 0


def test_resume_of_a_model_into_an_out_holding_another_data_json_is_refused(data, tmp_path, capsys):
    first, out = tmp_path / "first", tmp_path / "o"
    assert run(["train", *SMALL, "--max-iter", "2", "--dataset", data, "--quiet", "--no-logreg",
                "--out", first], capsys)[0] == 0
    out.mkdir()
    (out / "data.json").write_text('{"dataset": "mnist"}')
    code, _, err = run(["train", "--out", out, "--resume", first / "model.npz", "--dataset", data,
                        "--max-iter", "3"], capsys)
    assert_user_error(code, err, "data.json", "another --out")
    assert sorted(p.name for p in out.iterdir()) == ["data.json"]
