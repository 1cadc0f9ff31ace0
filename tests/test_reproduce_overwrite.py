"""``ksparse reproduce TARGET`` run again into the same folders: refused, as ``ksparse train`` refuses to
replace a model, unless ``--resume`` (continue the run) or ``--overwrite`` (replace its files).

A second run rewrote its result files, tables and figures silently (new-user trial). Now any file
the run would write that exists already ends it with one ``ksparse: error:`` line naming the
files and both ways forward, exit code 2, before any folder or file is made or changed.
"""

import json
import os
import shlex

import pytest
from test_cli_bad_input import one_error

from ksparse.cli import main

SMOKE = ["--profile", "smoke", "--dataset", "digits"]

# (argv, a file that run writes, relative to --out): every target that writes files
TARGETS = {
    "table1": (["table1", *SMOKE, "--rows", "raw"], "results/table1-smoke-raw-seed0.json"),
    "table1 table": (["table1", *SMOKE, "--rows", "raw"], "table1.md"),
    "table3": (["table3", *SMOKE, "--rows", "no_pretrain"], "results/table3-smoke-no_pretrain-seed0.json"),
    "table3 --center": (["table3", *SMOKE, "--rows", "shallow", "--center"],
                        "results/table3-smoke-centred-shallow-seed0.json"),
    "sweep": (["sweep", *SMOKE, "--rows", "no_pretrain"], "results/sweep-smoke-no_pretrain-seed0.json"),
    "fig1": (["fig1", *SMOKE], "fig1_k25.png"),
    "fig3": (["fig3", *SMOKE, "--rows", "paper"], "results/fig3-smoke-paper-seed0.json"),
    "fig4": (["fig4", *SMOKE], "fig4.json"),
}


@pytest.mark.parametrize("case", sorted(TARGETS))
def test_every_target_refuses_to_replace_an_earlier_runs_file(tmp_path, monkeypatch, capsys, case):
    monkeypatch.chdir(tmp_path)
    argv, name = TARGETS[case]
    (tmp_path / "o" / os.path.dirname(name)).mkdir(parents=True, exist_ok=True)
    (tmp_path / "o" / name).write_text("an earlier run's")
    one_error(["reproduce", *argv, "--out", "o"], tmp_path, capsys,  # nothing made or changed
              "earlier run", os.path.join("o", name), "already exist", "add --resume to continue",
              "--overwrite to replace them")
    assert "models" not in os.listdir(tmp_path / "o")  # refused before any folder was made


def test_a_second_run_is_refused_and_resume_and_overwrite_go_on(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["reproduce", "table1", *SMOKE, "--rows", "raw"]
    assert main([*argv, "--out", "o"]) == 0
    result = tmp_path / "o" / "results" / "table1-smoke-raw-seed0.json"
    first = result.read_bytes()
    one_error([*argv, "--out", "o"], tmp_path, capsys, "o/results/table1-smoke-raw-seed0.json",
              "o/table1.md", "o/table1.json", "--resume", "--overwrite")
    # the result files in a --results of its own: the message says to move both folders
    one_error([*argv, "--out", "q", "--results", "o/results"], tmp_path, capsys,
              "o/results/table1-smoke-raw-seed0.json", "another --out and --results")
    one_error([*argv, "--out", "o", "--resume", "--overwrite"], tmp_path, capsys,
              "--overwrite and --resume contradict each other")
    assert main([*argv, "--out", "o", "--resume"]) == 0  # as before: the finished row is kept
    assert result.read_bytes() == first
    assert main([*argv, "--out", "o", "--overwrite"]) == 0  # run again and replaced
    again = json.loads(result.read_text())
    assert again["meta"]["command"].endswith("--overwrite") and result.read_bytes() != first
    # the same rows into another --out are a new run, not in the way
    assert main([*argv, "--out", "p"]) == 0


def test_ctrl_c_of_an_overwrite_run_continues_with_resume_alone(tmp_path, capsys, ctrl_c_at_call):
    from ksparse.training import loop

    ctrl_c_at_call(loop, "_epoch", 2)
    argv = ["reproduce", "table1", *SMOKE, "--rows", "k25", "--out", str(tmp_path / "o"), "--overwrite"]
    capsys.readouterr()
    assert main(argv) == 130
    last = capsys.readouterr().err.strip().splitlines()[-1]
    again = shlex.join(["ksparse", *argv[:-1], "--resume"])  # --overwrite and --resume contradict
    assert last.startswith(f"ksparse: interrupted; continue with: {again} (it skips"), last


def test_report_rewrites_its_own_docs_without_overwrite_and_keeps_the_rest(tmp_path, monkeypatch, capsys):
    # rewriting --docs is the report's purpose: its blocks change, every other line stays
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "table1", *SMOKE, "--rows", "raw", "--out", "o"]) == 0
    report = ["reproduce", "report", "--results", "o/results", "--docs", "r.md"]
    assert main(report) == 0
    text = (tmp_path / "r.md").read_text()
    (tmp_path / "r.md").write_text("my notes\n\n" + text)
    assert main(report) == 0 and main(report) == 0
    assert (tmp_path / "r.md").read_text() == "my notes\n\n" + text
