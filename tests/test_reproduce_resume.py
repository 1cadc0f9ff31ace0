"""``ksparse reproduce TARGET --resume`` never mixes in a result file made with other settings.

A result file's name holds the target, the profile, some options, the row and the seed, not every
setting: table1's names lack ``--dataset``, sweep's ``--lrs`` and ``--ft-n-train``, table3's
``--dataset`` and ``--n-train``. ``--resume`` kept such a file as a finished row (or replaced it)
although it was made with other settings. Now the settings the file records (its profile's
settings, data, options) are compared with the run's before any work, and a file of other
settings ends the run with one ``ksparse: error:`` line naming it, what differs and the ways on.
"""

import json
import os
import shlex

import pytest
from test_cli_bad_input import one_error

from ksparse.cli import main
from ksparse.reproduce import _runs

SMOKE = ["--profile", "smoke", "--dataset", "digits"]
MIX = "--resume would mix settings"


def _edit(path, change):
    """Rewrite the result file ``path`` with ``change(data)`` applied: a file another run made."""
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_table1_resume_refuses_a_result_of_another_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["reproduce", "table1", *SMOKE, "--rows", "raw", "--out", "o"]
    assert main(argv) == 0
    path = tmp_path / "o" / "results" / "table1-smoke-raw-seed0.json"
    _edit(path, lambda d: d["meta"]["data"].update(dataset="mnist"))  # as `--dataset mnist` wrote it
    one_error([*argv, "--resume"], tmp_path, capsys, MIX, "o/results/table1-smoke-raw-seed0.json",
              "data.dataset: 'mnist' in the file, 'digits' in this run", "another --out",
              "--overwrite (instead of --resume)", "ksparse reproduce table1 --profile smoke")
    assert main([*argv, "--overwrite"]) == 0  # the way on that the message names
    assert json.loads(path.read_text())["meta"]["data"]["dataset"] == "digits"


@pytest.mark.skipif(not os.environ.get("KSPARSE_DATA"), reason="needs KSPARSE_DATA (MNIST)")
def test_table1_resume_with_mnist_after_digits_is_refused_on_real_data(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["reproduce", "table1", "--profile", "smoke", "--rows", "raw", "--out", "o"]
    assert main([*argv, "--dataset", "digits"]) == 0
    one_error([*argv, "--dataset", "mnist", "--resume"], tmp_path, capsys, MIX,
              "table1-smoke-raw-seed0.json", "data.dataset: 'digits' in the file, 'mnist' in this run")


def test_table3_resume_refuses_another_n_train_and_overwrite_trains_a_new_model(tmp_path, monkeypatch,
                                                                                capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["reproduce", "table3", *SMOKE, "--rows", "shallow", "--out", "o"]
    assert main([*argv, "--n-train", "300"]) == 0
    models = sorted(os.listdir(tmp_path / "o" / "models"))
    one_error([*argv, "--n-train", "200", "--resume"], tmp_path, capsys, MIX,
              "table3-smoke-shallow-seed0.json", "data.n_train: 300 in the file, 200 in this run")
    assert main([*argv, "--n-train", "300", "--resume"]) == 0  # its own settings: kept, nothing trained
    assert sorted(os.listdir(tmp_path / "o" / "models")) == models
    assert main([*argv, "--n-train", "200", "--overwrite"]) == 0
    # the model trained on 300 images is not reused for 200: the cache's key holds the settings
    now = sorted(os.listdir(tmp_path / "o" / "models"))
    assert len(now) == len(models) + 1 and set(models) < set(now)


def test_sweep_resume_keeps_its_own_rows_and_refuses_other_lrs_or_ft_n_train(tmp_path, monkeypatch,
                                                                             capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["reproduce", "sweep", *SMOKE, "--rows", "no_pretrain", "--out", "o"]
    assert main([*argv, "--lrs", "0.5", "--ft-n-train", "300"]) == 0
    path = tmp_path / "o" / "results" / "sweep-smoke-no_pretrain-seed0.json"
    first = path.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--lrs", "0.5", "--ft-n-train", "300", "--resume"]) == 0  # kept, not fine-tuned again
    assert path.read_bytes() == first
    assert capsys.readouterr().out.startswith("no_pretrain seed 0: lr 0.5: ")
    one_error([*argv, "--lrs", "0.5", "1", "--ft-n-train", "300", "--resume"], tmp_path, capsys, MIX,
              "sweep-smoke-no_pretrain-seed0.json", "lrs: [0.5] in the file, [0.5, 1.0] in this run")
    one_error([*argv, "--lrs", "0.5", "--ft-n-train", "200", "--resume"], tmp_path, capsys, MIX,
              "data.n_finetune: 300 in the file, 200 in this run")


@pytest.mark.parametrize("name", ["fig1", "fig4"])
def test_figure_resume_refuses_a_result_of_another_dataset(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    argv = ["reproduce", name, *SMOKE, "--out", "o"]
    assert main(argv) == 0
    path = tmp_path / "o" / "results" / f"{name}-smoke-all-seed0.json"
    _edit(path, lambda d: d["meta"]["data"].update(dataset="mnist"))
    one_error([*argv, "--resume"], tmp_path, capsys, MIX, f"{name}-smoke-all-seed0.json",
              "data.dataset: 'mnist' in the file, 'digits' in this run")


def test_resume_refuses_a_file_that_is_not_a_result(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "o" / "results").mkdir(parents=True)
    (tmp_path / "o" / "results" / "table1-smoke-raw-seed0.json").write_text("my notes")
    one_error(["reproduce", "table1", *SMOKE, "--rows", "raw", "--out", "o", "--resume"], tmp_path, capsys,
              "o/results/table1-smoke-raw-seed0.json", "not a result file", "--overwrite")


def test_differences_name_each_setting_and_skip_what_the_file_does_not_record(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"meta": {"settings": {"lr": 0.1, "old": 1, "unread": 2}, "data": {"n": 5}},
                                "result": {"lrs": [1.0]}}))
    assert _runs.differences(path, {"settings": {"lr": 0.1, "old": 1}, "data": {"n": 5}, "lrs": (1.0,),
                                    "center": True}, ignore=("unread",)) == []
    assert _runs.differences(path, {"settings": {"lr": 0.2, "new": 3}, "lrs": [0.5]}) == [
        "settings.lr: 0.1 in the file, 0.2 in this run",
        "settings.new: not recorded in the file, 3 in this run",
        "settings.old: 1 in the file, not recorded in this run",
        "settings.unread: 2 in the file, not recorded in this run",
        "lrs: [1.0] in the file, [0.5] in this run"]


@pytest.mark.parametrize("target", ["fig1", "sweep"])
def test_ctrl_c_says_what_resume_does_for_the_target(tmp_path, capsys, ctrl_c_at_call, target):
    from ksparse.training import loop

    ctrl_c_at_call(loop, "_epoch", 2)
    rows = ["--rows", "shallow"] if target == "sweep" else []
    argv = ["reproduce", target, *SMOKE, *rows, "--out", str(tmp_path / "o")]
    capsys.readouterr()
    assert main(argv) == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    again = shlex.join(["ksparse", *argv, "--resume"])
    assert last.startswith(f"ksparse: interrupted; continue with: {again} (it "), last
    # sweep skips its finished rows on --resume; a figure is drawn again (it has no rows to skip)
    assert ("skips the rows already written" in last) == (target == "sweep"), last
    assert ("draws the figure again" in last) == (target == "fig1"), last


@pytest.mark.parametrize("target, table", [("table1", "table1.md"), ("table3", "table3.md"),
                                           ("fig4", "fig4.png")])
def test_resume_with_results_elsewhere_refuses_another_runs_tables_and_figures(tmp_path, monkeypatch,
                                                                               capsys, target, table):
    # --results outside --out: the result files say nothing of OUT's tables and figures, and a
    # --resume into another run's OUT replaced them (and its table's JSON) with its own
    monkeypatch.chdir(tmp_path)
    rows = [] if target == "fig4" else ["--rows", "raw" if target == "table1" else "no_pretrain"]
    argv = ["reproduce", target, *SMOKE, *rows]
    assert main([*argv, "--out", "o"]) == 0
    other = [a if a != "smoke" else "quick" for a in argv]  # another profile, the same file names in OUT
    one_error([*other, "--out", "o", "--results", "r", "--resume"], tmp_path, capsys, MIX, f"o/{table}",
              "settings.", "another --out", "--overwrite (instead of --resume)")
    # the same settings into the same OUT continue the run, wherever the result files are
    assert main([*argv, "--out", "o", "--results", "r", "--resume"]) == 0


def test_resume_refuses_a_table_or_figure_whose_record_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "fig4.png").write_bytes(b"another run's figure")
    one_error(["reproduce", "fig4", *SMOKE, "--out", "o", "--resume"], tmp_path, capsys, "o/fig4.png",
              "o/fig4.json, which records them, is missing", "another --out", "--overwrite")


def test_fig1_stopped_after_its_first_image_resumes(tmp_path, capsys, monkeypatch, ctrl_c_at_call):
    # the figure's JSON, which records the settings of its images, is written before them
    from ksparse.training import loop

    monkeypatch.chdir(tmp_path)
    ctrl_c_at_call(loop, "_epoch", 3)  # the first epoch of the second model: one image drawn
    argv = ["reproduce", "fig1", *SMOKE, "--out", "o"]
    assert main(argv) == 130
    assert (tmp_path / "o" / "fig1_k40.png").is_file() and not (tmp_path / "o" / "fig1_k70.png").exists()
    assert json.loads((tmp_path / "o" / "fig1.json").read_text())["stats"] == {}
    assert main([*argv, "--resume"]) == 0
    stats = json.loads((tmp_path / "o" / "fig1.json").read_text())["stats"]
    assert set(stats) == {"k70", "k40", "k25", "k10"}
