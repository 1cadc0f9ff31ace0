"""`ksparse train --out RUN --resume` reads the data the run was trained on, not the default."""

import json
import os

import numpy as np
import pytest

from tests.test_cli import FAST, assert_user_error, run

QUIET = ["--quiet", "--no-logreg"]


def test_resume_without_dataset_uses_the_runs_data(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).random((200, 9)))
    out = tmp_path / "run"
    assert run(["train", *FAST, "--dataset", data, "--out", out], capsys)[0] == 0
    assert json.loads((out / "data.json").read_text())["dataset"] == str(data)
    code, _, err = run(["train", "--out", out, "--resume", "--max-iter", "4", *QUIET], capsys)
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text())["dataset"]["shape"] == [200, 9]


def test_resume_of_an_older_run_reads_its_summary_command(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).random((200, 9)))
    out = tmp_path / "run"
    assert run(["train", *FAST, "--dataset", data, "--out", out], capsys)[0] == 0
    os.remove(out / "data.json")  # as written before data.json existed: the summary's command only
    code, _, err = run(["train", "--out", out, "--resume", "--max-iter", "4", *QUIET], capsys)
    assert code == 0, err


def test_resume_with_nothing_recorded_says_the_default_was_loaded(tmp_path, capsys):
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).random((200, 9)))
    out = tmp_path / "run"
    assert run(["train", *FAST, "--dataset", data, "--out", out], capsys)[0] == 0
    os.remove(out / "data.json")
    os.remove(out / "summary.json")
    code, _, err = run(["train", "--out", out, "--resume", "--max-iter", "4", "--quiet"], capsys)
    assert_user_error(code, err, "9 features", "default 'digits'", "--dataset")


def test_failed_run_leaves_no_data_json(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(["train", *FAST, "--lr", "1e9", "--out", out], capsys)
    assert code == 2 and not out.exists(), err


def test_resume_after_the_data_moved_names_the_recorded_path_and_dataset_newpath(tmp_path, capsys):
    data, moved = tmp_path / "x.npy", tmp_path / "elsewhere.npy"
    np.save(data, np.random.default_rng(0).random((200, 9)))
    out = tmp_path / "run"
    assert run(["train", *FAST, "--dataset", data, "--out", out], capsys)[0] == 0
    os.rename(data, moved)
    code, _, err = run(["train", "--out", out, "--resume", "--max-iter", "4", *QUIET], capsys)
    assert_user_error(code, err, f"recorded --dataset '{data}'", str(out / "data.json"), "moved",
                      "--dataset NEWPATH")
    code, _, err = run(["train", "--out", out, "--resume", "--max-iter", "4", "--dataset", moved, *QUIET],
                       capsys)
    assert code == 0, err


def test_resume_after_the_data_folder_moved_names_it_and_data_dir_newfolder(tmp_path, capsys, monkeypatch):
    """A run on MNIST from --data-dir D, D moved away before --resume: one error naming D, data.json and
    --data-dir NEWFOLDER, before any download (was: a download of MNIST into D made anew)."""
    import ksparse.datasets.mnist as mnist

    folder, out = tmp_path / "data", tmp_path / "run"
    folder.mkdir()
    assert run(["train", *FAST, "--out", out, "--data-dir", folder], capsys)[0] == 0  # digits: a model
    recorded = json.loads((out / "data.json").read_text())
    assert recorded["data_dir"] == str(folder)
    (out / "data.json").write_text(json.dumps(dict(recorded, dataset="mnist")))  # as a run on MNIST records
    folder.rmdir()
    monkeypatch.setattr(mnist, "_download", lambda *a, **k: pytest.fail("downloaded into a folder made anew"))
    code, _, err = run(["train", "--out", out, "--resume", "--max-iter", "4", *QUIET], capsys)
    assert_user_error(code, err, f"data folder '{folder}'", str(out / "data.json"), "no longer",
                      "--data-dir NEWFOLDER")
    assert not folder.exists()


def test_a_relative_data_dir_is_recorded_by_its_absolute_path(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    assert run(["train", *FAST, "--out", "run", "--data-dir", "data"], capsys)[0] == 0
    assert json.loads((tmp_path / "run" / "data.json").read_text())["data_dir"] == str(tmp_path / "data")


def test_resume_reads_the_data_folder_found_through_ksparse_data(small_mnist, tmp_path, capsys, monkeypatch):
    """A run on MNIST found through $KSPARSE_DATA, resumed without it: the same folder, no download
    (was: data.json recorded no folder, and the resume downloaded MNIST into ~/.cache/ksparse)."""
    out = tmp_path / "run"
    monkeypatch.setenv("KSPARSE_DATA", str(small_mnist))
    assert run(["train", *FAST, "--dataset", "mnist", "--out", out], capsys)[0] == 0
    assert json.loads((out / "data.json").read_text())["data_dir"] == str(small_mnist)
    monkeypatch.delenv("KSPARSE_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the default folder holds no MNIST
    code, _, err = run(["train", "--out", out, "--resume", "--max-iter", "4", *QUIET], capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["dataset"]["shape"] == [200, 16]
    assert not (tmp_path / "home").exists()


def test_resume_after_the_ksparse_data_folder_moved_is_one_error_naming_data_dir(small_mnist, tmp_path,
                                                                                  capsys, monkeypatch):
    out, moved = tmp_path / "run", tmp_path / "moved"
    monkeypatch.setenv("KSPARSE_DATA", str(small_mnist))
    assert run(["train", *FAST, "--dataset", "mnist", "--out", out], capsys)[0] == 0
    monkeypatch.delenv("KSPARSE_DATA")
    os.rename(small_mnist, moved)
    before = (out / "model.npz").read_bytes()
    code, _, err = run(["train", "--out", out, "--resume", "--max-iter", "4", *QUIET], capsys)
    assert_user_error(code, err, f"'{small_mnist}'", str(out / "data.json"), "no longer exists",
                      "--data-dir NEWFOLDER")
    assert not small_mnist.exists() and (out / "model.npz").read_bytes() == before
    code, _, err = run(["train", "--out", out, "--resume", "--max-iter", "4", "--data-dir", moved, *QUIET],
                       capsys)
    assert code == 0, err


def test_reproduce_resume_reads_the_data_folder_of_the_run(small_mnist, tmp_path, capsys, monkeypatch):
    """`ksparse reproduce ... --resume` after a run that found MNIST through $KSPARSE_DATA, without it:
    the run's folder (OUT/data.json), no download; that folder gone: one error naming --data-dir."""
    out, moved = tmp_path / "rep", tmp_path / "moved"
    argv = ["reproduce", "table1", "--profile", "smoke", "--rows", "k25", "--out", out]
    monkeypatch.setenv("KSPARSE_DATA", str(small_mnist))
    assert run(argv, capsys)[0] == 0
    assert json.loads((out / "data.json").read_text()) == {"data_dir": str(small_mnist)}
    monkeypatch.delenv("KSPARSE_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the default folder holds no MNIST
    code, _, err = run([*argv, "--resume"], capsys)
    assert code == 0 and "Traceback" not in err, err
    assert not (tmp_path / "home").exists()
    os.rename(small_mnist, moved)
    code, _, err = run([*argv, "--resume"], capsys)
    assert_user_error(code, err, f"'{small_mnist}'", str(out / "data.json"), "no longer exists",
                      "--data-dir NEWFOLDER")
    assert run([*argv, "--resume", "--data-dir", moved], capsys)[0] == 0


def test_reproduce_run_that_fails_leaves_no_data_json(small_mnist, tmp_path, capsys, monkeypatch):
    out = tmp_path / "rep"
    monkeypatch.setenv("KSPARSE_DATA", str(small_mnist))
    code, _, err = run(["reproduce", "table3", "--profile", "smoke", "--out", out, "--defaults", "--center"],
                       capsys)
    assert_user_error(code, err, "--defaults and --center")
    assert not out.exists()
