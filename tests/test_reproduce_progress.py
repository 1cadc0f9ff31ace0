"""``ksparse reproduce``: progress on stderr (a bar per model's epochs, a line per model, row and
figure) and a closing ``wrote ...`` line on stdout naming the files, for the smoke profile."""

import pytest

from ksparse.cli import main
from ksparse.reproduce._progress import wrote

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _run(argv, capsys):
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, (out, err)
    return out, err.replace("\r", "\n")


def test_fig1_shows_each_models_epochs_and_each_figure_and_ends_with_what_it_wrote(tmp_path, capsys,
                                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, err = _run(["reproduce", "fig1", "--profile", "smoke", "--dataset", "digits", "--out", "o"], capsys)
    for k in (70, 40, 25, 10):
        assert f"training ksparse-k{k}-digits" in err  # the bar over its epochs
        assert f"fig1 k = {k}: drew o/fig1_k{k}.png" in err
    assert "2/2" in err
    assert "trained ksparse-k25-digits: 2 epochs" in err
    assert "{" not in out  # no raw JSON any more: it is in the files named
    last = out.strip().splitlines()[-1]
    assert last.startswith("wrote o/fig1_k70.png") and "o/fig1.json" in last
    assert "o/results/fig1-smoke-all-seed0.json" in last
    assert (tmp_path / "o" / "fig1.json").is_file()
    # a second run loads the cached models and says so
    out, err = _run(["reproduce", "fig1", "--profile", "smoke", "--dataset", "digits", "--out", "o",
                     "--resume"], capsys)
    assert "loaded ksparse-k25-digits from o/models/" in err and "training" not in err
    assert out.strip().splitlines()[-1].startswith("wrote ")


def test_table1_says_each_row_and_quiet_says_nothing_but_what_it_wrote(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["reproduce", "table1", "--profile", "smoke", "--dataset", "digits", "--rows", "raw,k25"]
    out, err = _run([*argv, "--out", "o"], capsys)
    assert "table1 raw seed 0: test error" in err and "wrote o/results/table1-smoke-raw-seed0.json" in err
    assert "training ksparse-k25-digits" in err and "table1 k25 seed 0: test error" in err
    assert out.strip().splitlines()[-1] == "wrote o/table1.md, o/table1.json and 2 result files in o/results"
    out, err = _run([*argv, "--out", "q", "--quiet"], capsys)
    assert err == ""
    assert out.strip().splitlines()[-1].startswith("wrote q/table1.md")


def test_reproduce_help_states_the_default_profile(capsys):
    for argv in (["reproduce", "--help"], ["reproduce", "table1", "--help"]):
        assert main(argv) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "(default: quick)" in text and "--quiet" in text


def test_wrote_names_the_files_and_counts_the_result_files():
    assert wrote(["o/a.md", "o/r/x.json"], "o/r") == "wrote o/a.md and o/r/x.json"
    assert wrote(["o/a.md", "o/r/x.json", "o/r/y.json"], "o/r") == "wrote o/a.md and 2 result files in o/r"
    assert wrote(["o/r/x.json", "o/r/y.json"], "o/r") == "wrote 2 result files in o/r"


def test_fine_tuning_shows_a_bar_per_stage_with_the_validation_error(tmp_path, capsys, monkeypatch):
    # it printed one line per fine-tuning epoch ("deep stage=2 first_layer=2 epoch=1 loss=...")
    monkeypatch.chdir(tmp_path)
    argv = ["reproduce", "table3", "--profile", "smoke", "--dataset", "digits", "--rows", "shallow,deep"]
    out, err = _run([*argv, "--out", "o"], capsys)
    for stage in (1, 2, 3):
        assert f"fine-tuning deep stage {stage}/3: 100%" in err  # each stage's bar ran to its end
    assert "fine-tuning shallow: 100%" in err and "3/3" in err
    assert "val error " in err and "first_layer" not in err
    assert "fine-tuning" not in out and "val error" not in out
    assert out.strip().splitlines()[-1].startswith("wrote o/table3.md")
    out, err = _run([*argv, "--out", "q", "--quiet"], capsys)
    assert err == "" and out.strip().splitlines()[-1].startswith("wrote q/table3.md")


def test_sweep_shows_a_bar_per_lr_and_keeps_stdout_to_its_rows_and_what_it_wrote(tmp_path, capsys,
                                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, err = _run(["reproduce", "sweep", "--profile", "smoke", "--dataset", "digits",
                     "--rows", "no_pretrain", "--lrs", "0.1", "0.5", "--out", "o"], capsys)
    assert "fine-tuning no_pretrain lr 0.1: 100%" in err and "fine-tuning no_pretrain lr 0.5: 100%" in err
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("no_pretrain seed 0: lr 0.1: ")  # the row, what it wrote
    assert lines[1] == "wrote o/results/sweep-smoke-no_pretrain-seed0.json"
