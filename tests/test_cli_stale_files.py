"""No file of a run's --out describes another state than its model: a run killed (SIGKILL) while
it checkpoints, and --resume of such a run (summary.json, filters.png)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_cli_bad_input import TINY

import ksparse.training.loop
from ksparse.cli import main
from ksparse.training import loop as train


@pytest.fixture
def finished(tmp_path):
    """A finished 2-epoch run in tmp_path/run, on tmp_path/X.npy."""
    np.save(tmp_path / "X.npy", np.random.default_rng(0).random((64, 16)))
    assert main(["train", *TINY, "--dataset", str(tmp_path / "X.npy"), "--out", str(tmp_path / "run")]) == 0
    return tmp_path / "run"


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_a_run_killed_while_it_checkpoints_leaves_a_summary_of_its_checkpoint(finished):
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    argv = [sys.executable, "-m", "ksparse.cli", "train", "--out", str(finished), "--resume", "--max-iter",
            "100000", "--checkpoint-every", "1", "--quiet"]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):  # until the run is 3 checkpoints past the finished model (at most 60 s)
            if train.load_state(finished / "model.npz").epoch >= 5 or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    epoch, summary = train.load_state(finished / "model.npz").epoch, _summary(finished)
    assert summary["status"] == "running" and summary["filters"] is None  # was "finished", 2 epochs
    assert summary["n_iter"] in (epoch, epoch - 1)  # epoch - 1: killed between the checkpoint and its summary
    assert "--resume" in summary["note"] and not (finished / "filters.png").exists()


def test_resume_writes_a_stale_summary_again_from_the_checkpoint(finished, capsys, ctrl_c_at_call):
    stale = dict(_summary(finished), n_iter=1, status="running")  # as a run killed between the two writes
    (finished / "summary.json").write_text(json.dumps(stale))
    ctrl_c_at_call(ksparse.training.loop, "train_epoch", 1)  # stopped before a new epoch: model unchanged
    assert main(["train", "--out", str(finished), "--resume", "--max-iter", "5"]) == 130
    summary, err = _summary(finished), capsys.readouterr().err
    assert summary["n_iter"] == 2 and summary["status"] == "stopped", summary
    assert "described epoch 1, not the checkpoint's epoch 2; written again" in err
    assert not (finished / "filters.png").exists()
