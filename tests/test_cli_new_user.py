"""What a new user meets first, through ``ksparse.cli.main``: data that is not there (MNIST
offline), outputs into folders that do not exist, data with nothing to learn, options that
contradict each other. Each ends with exit code 2, one ``ksparse: error:`` line, no traceback
and no file or folder changed (the house style of tests/test_cli_bad_input.py)."""

import json

import numpy as np
import pytest
from test_cli_bad_input import TINY, one_error

import ksparse.datasets.mnist as mnist
from ksparse.cli import main
from ksparse.estimators.autoencoder import KSparseAutoencoder


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A folder with X.npy and a trained model in run/; the cwd is the folder."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "X.npy", rng.random((64, 16)))
    assert main(["train", *TINY, "--dataset", str(tmp_path / "X.npy"), "--out", str(tmp_path / "run")]) == 0
    monkeypatch.chdir(tmp_path)
    return tmp_path


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
    msg = one_error([*argv, "--data-dir", folder / "nodata"], folder, capsys, "train-images-idx3-ubyte.gz",
                     str(folder / "nodata" / "mnist"), "docs/data.md", "no connection")
    assert len(msg) < 800 and msg.count("no connection") <= 2, msg


@pytest.mark.parametrize("command", ["train", "encode"])
@pytest.mark.parametrize("ext", [".npy", ".npz"])
def test_nonfinite_data_is_named_by_its_file(folder, capsys, command, ext):
    x = np.random.default_rng(1).random((40, 16))
    x[5, 3] = np.nan
    path = folder / f"nan{ext}"
    np.savez(path, X=x) if ext == ".npz" else np.save(path, x)
    argv = (["train", *TINY, "--dataset", path, "--out", "o"] if command == "train"
            else ["encode", folder / "run" / "model.npz", path, "h.npy"])
    one_error(argv, folder, capsys, f"{path} contains NaN or inf: nan at row 5, column 3",
               "clean or impute the data first")


@pytest.mark.parametrize("argv", [
    ["encode", "{d}/run/model.npz", "{d}/X.npy", "{d}/missing/H.npy"],
    ["encode", "{d}/run/model.npz", "{d}/X.npy", "{d}/missing/deeper/H.npz", "--form", "topk"],
    ["reproduce", "report", "--results", "{d}/results", "--docs", "{d}/missing/results.md"],
])
def test_an_output_file_in_a_missing_folder_is_refused(folder, capsys, argv):
    (folder / "results").mkdir()
    (folder / "results" / "r.json").write_text('{"meta": {"target": "table1", "profile": "x"}, "result": {}}')
    one_error([a.replace("{d}", str(folder)) for a in argv], folder, capsys, "does not exist",
               str(folder / "missing"), "create it first")
    assert not (folder / "missing").exists()


@pytest.mark.parametrize("x, words", [(np.zeros((50, 16)), ["zero variance", "nothing to learn"]),
                                      (np.full((50, 16), 3.0), ["zero variance"]),
                                      (np.random.default_rng(0).random((1, 16)), ["1 sample", "at least 2"])])
def test_data_with_nothing_to_learn_is_refused(folder, capsys, x, words):
    np.save(folder / "flat.npy", x)
    one_error(["train", *TINY, "--dataset", folder / "flat.npy", "--out", "o"], folder, capsys,
               "flat.npy", *words)
    from ksparse import KSparseAutoencoder

    with pytest.raises(ValueError, match=words[0]):
        KSparseAutoencoder(n_hidden=12, k=3, k_start=6, max_iter=1).fit(x)


def test_overwrite_and_resume_together_are_refused(folder, capsys):
    one_error(["train", *TINY, "--dataset", folder / "X.npy", "--out", folder / "run", "--overwrite",
                "--resume"], folder, capsys, "--overwrite and --resume", "give one of them")


SCHEDULES = [("100", "k schedule: 12 -> 3 over 0.5 of the epochs (k_start = 100 capped at n_hidden)"),
             ("2", "k schedule: 3 -> 3 over 0.5 of the epochs (k_start = 2 raised to k)"),
             ("6", "k schedule: 6 -> 3 over 0.5 of the epochs\n")]


@pytest.mark.parametrize("k_start, line", SCHEDULES)
def test_info_shows_the_k_schedule_training_used(folder, capsys, k_start, line):
    argv = [a for a in TINY if a not in ("--k-start", "6")]
    assert main(["train", *argv, "--k-start", k_start, "--dataset", str(folder / "X.npy"), "--out", "o"]) == 0
    capsys.readouterr()
    assert main(["info", "o/model.npz"]) == 0
    assert line in capsys.readouterr().out + "\n"


def test_max_iter_0_is_refused_for_a_new_run_as_by_the_estimator(folder, capsys):
    # one rule, the config field's: the CLI and KSparseAutoencoder(max_iter=0).fit refuse alike
    one_error(["train", *TINY, "--max-iter", "0", "--dataset", folder / "X.npy", "--out", folder / "new"],
              folder, capsys, "--max-iter must be an integer >= 1, got 0")
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1, got 0"):
        KSparseAutoencoder(n_hidden=8, k=2, max_iter=0).fit(np.load(folder / "X.npy"))


def test_only_n_hidden_changed_names_alpha_k_and_the_three_fixes(folder, capsys):
    # the defaults k = 20, alpha = 3 need n_hidden >= 60: the user changed only --n-hidden, and the
    # message began "--alpha must keep ...", blaming an option the user never gave (new-user trial)
    err = one_error(["train", "--dataset", "X.npy", "--n-hidden", "50", "--out", "o"], folder, capsys,
                    "alpha*k <= n_hidden is required",
                    "--alpha 3.0 and --k 20 give alpha*k = 60 > --n-hidden 50",
                    "lower --k or --alpha, or raise --n-hidden to at least 60")
    assert not err.startswith("ksparse: error: --alpha")
    # k alone above n_hidden names the rule and both options, with their values
    one_error(["train", "--dataset", "X.npy", "--n-hidden", "10", "--out", "o"], folder, capsys,
              "k <= n_hidden is required", "--k 20 > --n-hidden 10",
              "lower --k or raise --n-hidden to at least 20")


@pytest.mark.parametrize("name, how", [("ok.csv", "numpy.loadtxt('ok.csv', delimiter=',')"),
                                       ("ok.txt", "numpy.loadtxt('ok.txt')"), ("ok.parquet", "numpy.save")])
def test_existing_file_of_another_type_says_what_is_read_and_how_to_convert(folder, capsys, name, how):
    (folder / name).write_text("1,2\n3,4\n")
    one_error(["train", "--dataset", name, "--out", "o"], folder, capsys, ".npy and .npz", how)
    one_error(["encode", "run/model.npz", name, "h.npy"], folder, capsys, ".npy and .npz", how)



def test_values_whose_squares_overflow_float32_train_like_data_in_0_1(folder, capsys):
    # a .npy is read by rows (the streamed statistics): s is formed in float64, not as inf
    x01 = np.random.default_rng(2).random((200, 16)).astype(np.float32)
    np.save(folder / "x01.npy", x01)
    np.save(folder / "big.npy", x01 * np.float32(255e18))
    fvu = {}
    for name in ("x01", "big"):
        capsys.readouterr()
        assert main(["train", *TINY, "--dataset", f"{name}.npy", "--out", name]) == 0
        out = capsys.readouterr().out
        assert "score" in out and "from the alpha k = 9 largest units" in out, out  # k 3, alpha 3
        assert "s in all" in out, out  # the whole run's time, not the last epoch's
        fvu[name] = json.loads((folder / name / "summary.json").read_text())["last_epoch"]["fvu"]
    assert fvu["big"] == pytest.approx(fvu["x01"], rel=1e-3)


LOGREG = [a for a in TINY if a != "--no-logreg"]


def _split(rng, n=120, d=16):
    x = rng.random((n, d))
    y = (x[:, 0] > 0.5).astype(int)
    return {"X_train": x[:90], "y_train": y[:90], "X_test": x[90:], "y_test": y[90:]}


def test_npz_with_a_labelled_split_gets_the_test_error_like_the_built_in_sets(folder, capsys):
    np.savez(folder / "split.npz", **_split(np.random.default_rng(3)))
    assert main(["train", *LOGREG, "--dataset", "split.npz", "--out", "s"]) == 0
    assert "logistic regression test error" in capsys.readouterr().out
    record = json.loads((folder / "s" / "summary.json").read_text())
    assert record["dataset"]["test_shape"] == [30, 16]
    assert 0 <= record["logistic_regression"]["features_test_error"] <= 1


def test_npz_with_labels_but_no_test_split_says_so_instead_of_dropping_them(folder, capsys):
    x = np.random.default_rng(4).random((60, 16))
    np.savez(folder / "xy.npz", X=x, y=np.arange(60) % 3)
    capsys.readouterr()
    assert main(["train", *LOGREG, "--dataset", "xy.npz", "--out", "xy"]) == 0
    err = capsys.readouterr().err
    assert "ksparse: note: xy.npz holds labels y but no test split" in err and "X_test=" in err, err
    note = json.loads((folder / "xy" / "summary.json").read_text())["logistic_regression"]["note"]
    assert "holds labels y but no test split" in note and "X_train=..., y_train=..." in note


@pytest.mark.parametrize("change, words", [
    ({"y_test": None}, ["holds ['X_train', 'y_train', 'X_test'] but not ['y_test']", "all four arrays"]),
    ({"X_test": np.ones((30, 5))}, ["X_test has 5 features per row, X_train 16", "same columns"]),
    ({"y_train": np.zeros(80, int)}, ["y_train has 80 labels but X_train has 90 rows", "one label per row"]),
    ({"y_train": np.linspace(0, 1, 90)}, ["y_train holds float64 values such as", "not class labels",
                                          "integers or strings"]),
    ({"y_test": np.zeros((30, 1), int)}, ["y_test must be 1-D", "y.ravel()"]),
    ({"y_train": np.zeros(90, int)}, ["y_train holds one class", "at least 2"]),
    ({"names": np.arange(3)}, ["holds ['names'] besides", "save only the arrays it reads"]),
    ({"X_test": np.full((30, 16), np.nan)}, ["X_test contains NaN or inf"]),
])
def test_bad_labelled_split_is_one_clear_line(folder, capsys, change, words):
    arrays = {k: v for k, v in {**_split(np.random.default_rng(5)), **change}.items() if v is not None}
    np.savez(folder / "bad.npz", **arrays)
    one_error(["train", *LOGREG, "--dataset", "bad.npz", "--out", "o"], folder, capsys, *words)


def test_x_and_y_of_other_lengths_is_one_clear_line_and_encode_refuses_a_split(folder, capsys):
    np.savez(folder / "xy.npz", X=np.ones((20, 16)), y=np.arange(3))
    one_error(["train", *TINY, "--dataset", "xy.npz", "--out", "o"], folder, capsys,
              "y has 3 labels but X has 20 rows")
    np.savez(folder / "split.npz", **_split(np.random.default_rng(6)))
    one_error(["encode", "run/model.npz", "split.npz", "h.npy"], folder, capsys,
              "holds a train/test split", "numpy.save('X_test.npy', X_test)")


@pytest.mark.parametrize("name, text, how", [
    ("h.csv", "f0,f1,label\n1,2,0\n3,4,1\n", ["numpy.loadtxt('h.csv', delimiter=',', skiprows=1)",
                                             "usecols", "X_train=..., y_train=..."]),
    ("n.csv", "1,2\n3,4\n", ["numpy.loadtxt('n.csv', delimiter=',')", "add skiprows=1 for a header"]),
    ("d.h5", "", ["h5py.File('d.h5')['NAME'][:]", "KSparseAutoencoder().fit(h5py.File('d.h5')['NAME'])",
                  "docs/large_data.md"]),
])
def test_text_table_and_hdf5_hints_work_on_headers_labels_and_big_data(folder, capsys, name, text, how):
    (folder / name).write_text(text)
    one_error(["train", "--dataset", name, "--out", "o"], folder, capsys, *how)
    if name == "h.csv":  # the advice itself runs on a file with a header (and keeps 2 feature columns)
        np.save(folder / "hx.npy", np.loadtxt(name, delimiter=",", skiprows=1, usecols=(0, 1)))


@pytest.mark.parametrize("name, words", [
    ("d.zarr", [".zarr folder", "zarr.open('d.zarr', mode='r')[:]", "KSparseAutoencoder().fit(zarr.open"]),
    ("f.npz", ["'f.npz' is a folder", "give the path of a .npy or .npz file"]),
])
def test_a_folder_as_data_says_what_it_is(folder, capsys, name, words):
    (folder / name).mkdir()
    one_error(["train", "--dataset", name, "--out", "o"], folder, capsys, *words)
    one_error(["encode", "run/model.npz", name, "h.npy"], folder, capsys, *words)


def _closed_pipes(argv, closed, unbuffered=""):
    """Run ``python -m ksparse.cli ARGV`` with the streams in ``closed`` ("stdout", "stderr") writing to
    a pipe whose reader has gone before anything is written; return (exit code, the other's text)."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this checkout's ksparse
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYTHONPATH=here,
               PYTHONUNBUFFERED=unbuffered)
    streams = {name: write if name in closed else subprocess.PIPE for name in ("stdout", "stderr")}
    try:
        proc = subprocess.run([sys.executable, "-m", "ksparse.cli", *argv], text=True, env=env, timeout=120,
                              **streams)
    finally:
        os.close(write)
    return proc.returncode, proc.stdout or proc.stderr or ""


@pytest.mark.parametrize("unbuffered", ["", "1"])  # the error comes from the flush at the end, or a print
def test_info_with_stdout_closed_by_its_reader_ends_quietly_with_141(folder, unbuffered):
    """`ksparse info MODEL | head -1`: no 'Broken pipe' error, no traceback, exit code 128 + SIGPIPE."""
    assert _closed_pipes(["info", "run/model.npz"], ["stdout"], unbuffered) == (141, "")


@pytest.mark.parametrize("closed", [["stdout"], ["stderr"], ["stdout", "stderr"]])
@pytest.mark.parametrize("argv, made", [(["encode", "run/model.npz", "X.npy", "H.npy"], "H.npy"),
                                        (["train", *[a for a in TINY if a != "--quiet"], "--dataset",
                                          "X.npy", "--out", "new"], "new/summary.json")])  # a progress bar
def test_output_to_a_reader_that_has_gone_is_dropped_and_the_command_finishes(folder, argv, made, closed):
    """`ksparse train ... 2>&1 | head -1`: training (and its evaluation) finishes and saves, exit code 0
    (was 141, or nothing saved when the progress bar's first write failed)."""
    code, other = _closed_pipes(argv, closed)
    assert code == 0 and "Traceback" not in other and "rror" not in other, other
    assert (folder / made).is_file()
    if argv[0] == "train":
        assert KSparseAutoencoder.load(folder / "new" / "model.npz").n_iter_ == 2  # TINY's --max-iter


def test_bad_input_with_stderr_closed_still_exits_2(folder):
    assert _closed_pipes(["encode", "run/model.npz", "missing.npy", "H.npy"], ["stderr"]) == (2, "")


SMOKE = ["reproduce", "table1", "--profile", "smoke", "--dataset", "digits", "--rows", "raw"]


@pytest.mark.parametrize("argv, words", [
    # argparse's errors: one line, not the usage and then argparse's own line
    ([*SMOKE, "--out", "o", "--profile", "fast"], ["--profile: invalid choice", "--help"]),
    ([*SMOKE[:4], "--dataset", "digits"], ["required: --out"]),
    (["reproduce", "report", "--results", "{d}/results", "--frobnicate"], ["unrecognized", "--frobnicate"]),
    # output folders: a file, or a path through a file (was '[Errno 17] File exists'); before any training
    ([*SMOKE, "--out", "{d}/X.npy"], ["--out", "X.npy' is a file", "give a folder"]),
    ([*SMOKE, "--out", "o", "--results", "{d}/X.npy"], ["--results", "is a file"]),
    ([*SMOKE, "--out", "{d}/X.npy/o"], ["cannot write into --out", "choose a folder you can write to"]),
    # a negative seed (was scikit-learn's message about LogisticRegression's random_state)
    ([*SMOKE, "--out", "o", "--seeds", "0", "-1"], ["--seeds must be integers >= 0, got -1"]),
    # report: --docs a folder (was Errno 21 on a temporary file), a binary file, a broken result file
    (["reproduce", "report", "--results", "{d}/results", "--docs", "{d}/run"], ["--docs", "is a folder",
                                                                                "results.md"]),
    (["reproduce", "report", "--results", "{d}/results", "--docs", "{d}/X.npy"], ["not a text file"]),
    (["reproduce", "report", "--results", "{d}/broken", "--docs", "{d}/r.md"],
     ["bad.json", "not valid json"]),
    # report --docs naming one of the result files it reads (it appended Markdown to the JSON)
    (["reproduce", "report", "--results", "{d}/results", "--docs", "{d}/results/r.json"],
     ["--docs", "r.json' is a result file of --results", "my-results.md"]),
    (["reproduce", "report", "--results", "{d}/results", "--docs", "{d}/results/../results/r.json"],
     ["is a result file"]),
])
def test_reproduce_bad_input_is_one_line_before_any_work(folder, capsys, argv, words):
    (folder / "results").mkdir()
    (folder / "results" / "r.json").write_text('{"meta": {"target": "table1", "profile": "x"}, "result": {}}')
    (folder / "broken").mkdir()
    (folder / "broken" / "bad.json").write_text('{"meta": ')
    one_error([a.replace("{d}", str(folder)) for a in argv], folder, capsys, *words)


@pytest.mark.parametrize("dataset", ["mnist", "cifar10-patches", "norb"])
def test_a_data_dir_that_is_a_file_is_named_not_downloaded_into(folder, capsys, monkeypatch, dataset):
    # was: three mirrors tried, each '[Errno 20] Not a directory', in one long line
    one_error(["train", *TINY, "--dataset", dataset, "--data-dir", "X.npy", "--out", "o"], folder, capsys,
              "--data-dir", "'X.npy' is a file", "give the folder that holds mnist/")
    monkeypatch.setenv("KSPARSE_DATA", str(folder / "X.npy"))
    one_error(["train", *TINY, "--dataset", dataset, "--out", "o"], folder, capsys,
              "KSPARSE_DATA", "is a file")
    from ksparse.datasets import load_dataset

    with pytest.raises(ValueError, match="KSPARSE_DATA .* is a file"):
        load_dataset(dataset)


@pytest.mark.parametrize("command", ["train", "encode"])
def test_a_folder_given_as_data_is_called_a_folder(folder, capsys, command):
    (folder / "adir").mkdir()
    argv = (["train", *TINY, "--dataset", "adir", "--out", "o"] if command == "train"
            else ["encode", "run/model.npz", "adir", "h.npy"])
    msg = one_error(argv, folder, capsys, "'adir' is a folder; ksparse reads .npy and .npz")
    assert "extensionless" not in msg  # was "'adir' is a extensionless folder"


def test_resume_on_data_of_other_features_says_what_to_do(folder, capsys):
    np.save(folder / "wide.npy", np.random.default_rng(2).random((64, 20)))
    msg = one_error(["train", "--out", "run", "--resume", "--max-iter", "3", "--dataset", "wide.npy"], folder,
                    capsys, "expects 16 features, the data has 20", "'wide.npy'",
                    "leave out --dataset", "or train a new model into another --out")
    assert msg.count(";") == 1  # one fix, not a bare statement (was: no fix at all)


@pytest.mark.parametrize("alpha, fix", [("0.5", "got 0.5; give a finite --alpha >= 1 (the model's is 3)"),
                                        ("100", "lower --alpha (k and n_hidden are the model's)")])
def test_encode_alpha_says_its_rule_and_one_fix_once(folder, capsys, alpha, fix):
    msg = one_error(["encode", "run/model.npz", "X.npy", "h.npy", "--alpha", alpha], folder, capsys, fix)
    assert msg.count("the model's") == 1, msg  # was also '(k and n_hidden are the model's)' below 1


def test_info_settings_of_a_paper_model_are_a_command_train_accepts(folder, capsys):
    assert main(["train", *TINY, "--paper", "--dataset", "X.npy", "--out", "p"]) == 0
    capsys.readouterr()
    assert main(["info", "p/model.npz"]) == 0
    settings = capsys.readouterr().out.split("settings: ")[1].split()
    # was '--paper --scale --pre-bias ... --resample --step-bound', which train refuses with --paper
    off = {"--scale", "--pre-bias", "--resample", "--step-bound", "--b-prime-init"}
    assert "--paper" in settings and not off & set(settings)
    assert main(["train", *settings, "--dataset", "X.npy", "--out", "again", "--quiet", "--no-logreg"]) == 0
    np.testing.assert_array_equal(KSparseAutoencoder.load("again/model.npz").W_,
                                  KSparseAutoencoder.load("p/model.npz").W_)


def test_a_model_cached_by_reproduce_is_named_as_such(folder, capsys):
    assert main([*SMOKE[:4], "--dataset", "digits", "--rows", "k25", "--out", "rp"]) == 0
    cached = [p for p in (folder / "rp" / "models").iterdir() if p.name.startswith("ksparse-k25")]
    capsys.readouterr()
    for argv in (["info", cached[0]], ["encode", cached[0], "X.npy", "h.npy"]):  # was '(format None)'
        line = one_error(argv, folder, capsys, "a model cached by `ksparse reproduce` (ksparse on digits)",
                         f"numpy.load({str(cached[0])!r})", "or train such a model: ksparse train")
    with pytest.raises(ValueError, match="cached by `ksparse reproduce`"):
        KSparseAutoencoder.load(cached[0])
    arrays = np.load(cached[0])  # what the message says: its arrays read by numpy
    assert arrays["W_enc"].shape == (64, 100)
    command = line.split("or train such a model: ksparse train ")[1].replace("DIR", "fromcache").split()
    assert main(["train", *command, "--quiet", "--no-logreg"]) == 0  # a command train accepts
    assert KSparseAutoencoder.load("fromcache/model.npz").W_.shape == arrays["W"].shape


def test_data_files_named_in_upper_case_are_read(folder, capsys):
    # X.NPY / X.NPZ are the same files to numpy; the message said "'X.NPY' is a .npy file; ksparse
    # reads .npy and .npz ... convert it"
    (folder / "X.npy").rename(folder / "X.NPY")
    assert main(["train", *TINY, "--dataset", "X.NPY", "--out", "up"]) == 0
    assert main(["encode", "up/model.npz", "X.NPY", "up/H.npy"]) == 0
    np.savez(folder / "d.npz", X=np.load(folder / "X.NPY"))
    (folder / "d.npz").rename(folder / "D.NPZ")
    assert main(["train", *TINY, "--dataset", "D.NPZ", "--out", "up2"]) == 0
    assert np.load(folder / "up" / "H.npy").shape == (64, 12)


def test_encoding_data_of_another_scale_says_so(folder, capsys):
    # the model trained on [0, 1]; raw values 1000 times larger give codes that mean little
    np.save(folder / "big.npy", np.load(folder / "X.npy") * 1000)
    capsys.readouterr()
    assert main(["encode", "run/model.npz", "big.npy", "H.npy"]) == 0
    err = capsys.readouterr().err
    assert "ksparse: note: the rows to encode lie on average 1e+03 times as far" in err
    assert main(["encode", "run/model.npz", "X.npy", "H2.npy"]) == 0
    assert "times as far" not in capsys.readouterr().err


def test_an_earlier_runs_summary_without_its_model_is_not_replaced_unasked(folder, capsys):
    (folder / "stale").mkdir()
    (folder / "stale" / "summary.json").write_text("keep")
    argv = ["train", *TINY, "--dataset", "X.npy", "--out", "stale"]
    one_error(argv, folder, capsys, "already holds summary.json of an earlier run", "--overwrite")
    assert (folder / "stale" / "summary.json").read_text() == "keep"
    assert main([*argv, "--overwrite"]) == 0 and (folder / "stale" / "model.npz").exists()


@pytest.mark.parametrize("argv", [["train", *TINY, "--dataset", "X.npy", "--out", "model.npz"],
                                  ["reproduce", "table1", "--profile", "smoke", "--dataset", "digits",
                                   "--out", "results.json"]])
def test_an_output_folder_named_like_a_file_is_refused(folder, capsys, argv):
    # --out model.npz made a folder called model.npz (new-user trial)
    one_error(argv, folder, capsys, "named like a", "give a folder, such as")
    assert not (folder / argv[-1]).exists()
