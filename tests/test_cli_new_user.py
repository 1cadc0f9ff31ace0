"""What a new user meets first, through ``ksparse.cli.main``: data that is not there (MNIST
offline), outputs into folders that do not exist, data with nothing to learn, options that
contradict each other. Each ends with exit code 2, one ``ksparse: error:`` line, no traceback
and no file or folder changed (the house style of tests/test_cli_bad_input.py)."""

import numpy as np
import pytest
from test_cli_bad_input import TINY, _hashes

import ksparse.datasets.mnist as mnist
from ksparse.cli import main


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A folder with X.npy and a trained model in run/; the cwd is the folder."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.random((64, 16)))
    assert main(["train", *TINY, "--dataset", str(tmp_path / "X.npy"), "--out", str(tmp_path / "run")]) == 0
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _one_error(argv, folder, capsys, *words):
    """Run ``argv`` and check the house style; return the message."""
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


@pytest.fixture
def offline(monkeypatch):
    """The MNIST mirrors refuse connections (no network is used)."""
    download = mnist._download

    def refused(name, mirrors, *args, **kwargs):
        return download(name, ["http://127.0.0.1:9/", "http://127.0.0.1:9/x/"], *args, **kwargs)

    monkeypatch.setattr(mnist, "_download", refused)


@pytest.mark.parametrize("argv", [["train", *TINY, "--dataset", "mnist", "--out", "o"],
                                  ["reproduce", "table1", "--profile", "smoke", "--out", "o/deep"]])
def test_missing_mnist_offline_is_one_short_line_and_makes_no_folder(folder, capsys, offline, argv):
    msg = _one_error([*argv, "--data-dir", folder / "nodata"], folder, capsys, "train-images-idx3-ubyte.gz",
                     str(folder / "nodata" / "mnist"), "docs/data.md", "no connection")
    assert len(msg) < 800 and msg.count("no connection") <= 2, msg
