"""``ksparse reproduce report``: the docs' tables come from the result files, and only from them."""

import json
import os
import pathlib

import pytest

from ksparse.reproduce import main as reproduce_main
from ksparse.reproduce import report

ROOT = pathlib.Path(__file__).resolve().parents[1]
SMOKE = ["--profile", "smoke", "--dataset", "digits"]


def test_docs_results_md_is_what_the_result_files_give():
    """docs/results.md's tables equal what `ksparse reproduce report` makes from docs/results/*.json."""
    docs = ROOT / "docs"
    argv = ["--results", str(docs / "results"), "--docs", str(docs / "results.md"), "--check"]
    assert report.main(argv) == 0, "run `ksparse reproduce report` after adding result files"


def test_every_result_file_names_its_command_and_code():
    for r in report.load_results(ROOT / "docs" / "results"):
        meta = r["meta"]
        assert meta["command"].startswith(f"ksparse reproduce {meta['target']} ")
        assert meta["profile"].split("-")[0] in meta["command"]
        assert len(meta["code"]["source_sha1"]) == 40 and meta["code"]["ksparse"]
        name = f"{meta['target']}-{report._profile(meta)}-{r['result']['key']}-seed{meta['seed']}.json"
        assert r["file"] == name


def test_mean_sd_is_the_sample_standard_deviation():
    assert report.mean_sd([0.01, 0.02, 0.03]) == "2.00% ± 1.00"
    assert report.mean_sd([0.0165]) == "1.65%"


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    argv = ["table1", *SMOKE, "--out", str(out), "--rows", "raw,k25", "--seeds", "0", "1"]
    assert reproduce_main(argv) == 0
    return out


def test_report_fills_blocks_and_check_catches_a_hand_edit(smoke_results, tmp_path):
    docs = tmp_path / "results.md"
    docs.write_text("# R\n\nkept\n\n<!-- report:table1:smoke -->\nold\n<!-- /report:table1:smoke -->\n\n"
                    "<!-- report:table3:smoke -->\n<!-- /report:table3:smoke -->\n")
    results = str(smoke_results / "results")
    assert report.main(["--results", results, "--docs", str(docs), "--check"]) == 1
    assert report.main(["--results", results, "--docs", str(docs)]) == 0
    text = docs.read_text()
    assert "kept" in text and "old" not in text and "(no results yet)" in text  # table3: no files
    k25 = json.load(open(os.path.join(results, "table1-smoke-k25-seed1.json")))["result"]
    assert f"{100 * k25['test_error']:.2f}%" in text
    assert report.main(["--results", results, "--docs", str(docs), "--check"]) == 0
    docs.write_text(text.replace("| 0, 1 |", "| 0, 1, 2 |", 1))
    assert report.main(["--results", results, "--docs", str(docs), "--check"]) == 1


def test_report_without_docs_file_writes_every_table_the_files_support(smoke_results, tmp_path, capsys):
    results = str(smoke_results / "results")
    docs = tmp_path / "my-results.md"  # missing: a fresh file with every block that has results
    assert report.main(["--results", results, "--docs", str(docs)]) == 0
    text, out = docs.read_text(), capsys.readouterr().out
    assert f"wrote {docs}" in out and "<!-- report:table1:smoke -->" in text
    assert "<!-- report:runs -->" in text
    assert "table3:smoke" not in text  # no table3 files: no block
    assert report.main(["--results", results, "--docs", str(docs), "--check"]) == 0
    (tmp_path / "notes.md").write_text("my notes\n")  # block-less: the blocks are added after the text
    assert report.main(["--results", results, "--docs", str(tmp_path / "notes.md")]) == 0
    notes = (tmp_path / "notes.md").read_text()
    assert notes.startswith("my notes\n") and notes.endswith(text)
    with pytest.raises(ValueError, match="no result files"):
        report.main(["--results", str(tmp_path), "--docs", str(docs)])
    with pytest.raises(ValueError, match="not a folder"):
        report.main(["--results", str(tmp_path / "none"), "--docs", str(docs)])


def test_targets_say_open_until_enough_seeds_ran(smoke_results):
    results = report.load_results(smoke_results / "results")
    table = report.targets_table(results)
    assert table.count("not run") == 6  # no MNIST results in the smoke folder
    k25 = [dict(r, meta=dict(r["meta"], profile="quick", data=dict(r["meta"]["data"], dataset="mnist")))
           for r in results if r["result"]["key"] == "k25"]
    line = next(l for l in report.targets_table(k25).splitlines() if l.startswith("| table1 k25, quick"))
    assert line.endswith("| open (2 of 3 seeds) |")


def _fig3_run(row, stats):
    meta = {"target": "fig3", "profile": "quick", "seed": 0}
    return {"meta": meta, "result": {"key": row, "stats": {row: stats}}}


def test_fig3_table_judges_both_statistics_against_the_target():
    seconds = {"wall": 60.0, "cpu": 40.0}
    good = {"epochs": 20, "train_seconds": seconds, "n_used_filters": 1000,
            "fraction_below_1st_percentile_of_random_spread": 0.95,
            "fraction_above_99th_percentile_of_random_selectivity": 0.91}
    half = dict(good, fraction_above_99th_percentile_of_random_selectivity=0.68)
    lines = report.fig3_table([_fig3_run("defaults", good), _fig3_run("paper", half),
                               _fig3_run("defaults", {"epochs": 3, "diverged": "the loss became nan"})]
                              ).splitlines()[2:]
    assert lines[0] == "| defaults (quick, seed 0) | 20 | 60 s (40 s) | 1000 | 95.00% | 91.00% | yes |"
    assert lines[1].endswith("| 68.00% | no |")
    assert lines[2].endswith("| no: the loss became nan |")
    assert report.fig3_table([]) == "(no results yet)\n"


def test_runs_pretrained_with_the_defaults_get_blocks_of_their_own():
    meta = {"target": "sweep", "profile": "quick", "pretrain_defaults": True}
    assert report._profile(meta) == "quick-defaults"
    assert report._profile(dict(meta, profile="quick-ft5")) == "quick-defaults-ft5"
    assert report._profile(dict(meta, profile="quick-defaults-lr1")) == "quick-defaults-lr1"
    assert report._profile(dict(meta, pretrain_defaults=False)) == "quick"
    assert report._profile({"target": "table1", "profile": "long"}) == "long"


def test_a_result_file_missing_a_field_is_one_error_naming_it(smoke_results, tmp_path):
    import shutil

    results = tmp_path / "results"
    shutil.copytree(smoke_results / "results", results)
    name = "table1-smoke-k25-seed1.json"
    data = json.loads((results / name).read_text())
    del data["meta"]["code"]  # e.g. written by hand, or by an older version
    (results / name).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f"{name}.*lacks the field 'code'.*run its target again"):
        report.main(["--results", str(results), "--docs", str(tmp_path / "r.md")])
    assert not (tmp_path / "r.md").exists()


def test_a_json_that_is_not_a_result_is_named_in_a_note(smoke_results, tmp_path, capsys):
    import shutil

    results = tmp_path / "results"
    shutil.copytree(smoke_results / "results", results)
    (results / "table1-smoke-k40-seed0.json").write_text('{"a": 1}')  # its row would vanish unexplained
    assert report.main(["--results", str(results), "--docs", str(tmp_path / "r.md")]) == 0
    assert "were left out: table1-smoke-k40-seed0.json" in capsys.readouterr().err
