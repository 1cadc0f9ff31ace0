"""An empty path ('' or blank) is refused wherever a path is taken: every path option and argument of
the command line (exit code 2, one line naming it; `--out ""` wrote into the current folder, `--data-dir
""` fell back to $KSPARSE_DATA unsaid), the estimator's save and checkpoint_path (no checkpoint was
written), and the benchmarks' and reference scripts' options."""

import importlib

import numpy as np
import pytest
from test_cli_bad_input import TINY, one_error

from ksparse.errors import OutputNotWritableError
from ksparse.estimators.autoencoder import KSparseAutoencoder

SMOKE = ["--profile", "smoke", "--dataset", "digits"]


@pytest.mark.parametrize("argv, name", [
    (["train", *TINY, "--out", ""], "--out"),
    (["train", *TINY, "--out", "o", "--data-dir", " "], "--data-dir"),
    (["train", *TINY, "--out", "o", "--dataset", ""], "--dataset"),
    (["train", *TINY, "--out", "o", "--resume", ""], "--resume"),
    (["info", ""], "MODEL"),
    (["encode", "", "X.npy", "h.npy"], "MODEL"),
    (["encode", "m.npz", "", "h.npy"], "INPUT"),
    (["encode", "m.npz", "X.npy", ""], "OUTPUT"),
    (["reproduce", "table1", *SMOKE, "--out", ""], "--out"),
    (["reproduce", "table1", *SMOKE, "--out", "o", "--cache", ""], "--cache"),
    (["reproduce", "table1", *SMOKE, "--out", "o", "--results", ""], "--results"),
    (["reproduce", "fig1", *SMOKE, "--out", "o", "--data-dir", ""], "--data-dir"),
    (["reproduce", "table3", "--profile", "smoke", "--out", ""], "--out"),
    (["reproduce", "report", "--docs", ""], "--docs"),
    (["reproduce", "report", "--results", ""], "--results"),
])
def test_an_empty_path_is_refused_by_name(tmp_path, monkeypatch, capsys, argv, name):
    monkeypatch.chdir(tmp_path)
    one_error(argv, tmp_path, capsys, f"argument {name}: is empty", "give the path of a file or folder")
    assert not list(tmp_path.iterdir())  # nothing written into the current folder


def test_the_estimator_refuses_an_empty_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(0).random((40, 6))
    est = KSparseAutoencoder(n_hidden=8, k=2, max_iter=1)
    with pytest.raises(ValueError, match="checkpoint_path must be a file path or None, not empty"):
        est.set_params(checkpoint_path="").fit(x)  # was: fitted, and no checkpoint written
    est.set_params(checkpoint_path=None).fit(x)
    with pytest.raises(OutputNotWritableError, match="path is empty"):  # was a temporary file
        est.save("")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("module, argv", [("benchmarks.table1_defaults", ["--out", ""]),
                                          ("benchmarks.common", ["--data-dir", ""]),
                                          ("reference.theorem31", ["--out", ""])])
def test_scripts_refuse_an_empty_path(module, argv, capsys):
    main = importlib.import_module(module)
    with pytest.raises(SystemExit) as e:
        main.parse_args("x", argv) if module == "benchmarks.common" else main.main(argv)
    assert e.value.code == 2 and "is empty" in capsys.readouterr().err
