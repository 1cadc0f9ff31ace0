"""Every output file the command line writes is named for what it holds: ``encode``'s OUTPUT by its
--form (.npy or .npz), ``reproduce report --docs`` Markdown (.md); any other name is one error line
listing the accepted suffixes, exit code 2, before any work, nothing written."""

import pathlib

import numpy as np
import pytest
from test_cli_bad_input import TINY, one_error

from ksparse.cli import main


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """X.npy, a model trained on it in run/, and a result file in results/; the cwd is the folder."""
    np.save(tmp_path / "X.npy", np.random.default_rng(0).random((64, 16)))
    assert main(["train", *TINY, "--dataset", str(tmp_path / "X.npy"), "--out", str(tmp_path / "run")]) == 0
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text('{"meta": {"target": "table1"}, "result": {}}')
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("output, form", [("codes.txt", "dense"), ("codes", "dense"), ("codes.npz", "dense"),
                                          ("codes.npy", "sparse"), ("codes.txt", "topk")])
def test_encode_output_without_the_forms_suffix_is_one_error_listing_the_suffixes(folder, capsys, output,
                                                                                   form):
    want = ".npy" if form == "dense" else ".npz"
    one_error(["encode", "run/model.npz", "X.npy", output, "--form", form], folder, capsys,
              f"OUTPUT '{output}'", ".npy for --form dense", ".npz for --form sparse or --form topk",
              f"name it 'codes{want}'")


def test_encode_checks_the_output_name_before_reading_the_model(folder, capsys):
    one_error(["encode", "missing.npz", "X.npy", "codes.txt"], folder, capsys, "OUTPUT 'codes.txt'", ".npy")


@pytest.mark.parametrize("output", ["X.npy", "run/model.npz"])
def test_encode_never_writes_over_its_own_inputs(folder, capsys, output):
    form = "dense" if output.endswith(".npy") else "sparse"
    one_error(["encode", "run/model.npz", "X.npy", output, "--form", form, "--overwrite"], folder, capsys,
              f"OUTPUT {output} is the", "would be overwritten")


@pytest.mark.parametrize("docs", ["report.json", "report", "report.txt"])
def test_report_docs_without_a_markdown_suffix_is_one_error_listing_the_suffixes(folder, capsys, docs):
    one_error(["reproduce", "report", "--results", "results", "--docs", docs], folder, capsys,
              f"--docs '{docs}'", ".md and .markdown", "name it 'report.md'")


def test_report_docs_named_md_is_written(folder, capsys):
    results = pathlib.Path(__file__).resolve().parents[1] / "docs" / "results"  # the project's own
    assert main(["reproduce", "report", "--results", str(results), "--docs", "report.md"]) == 0
    assert "<!-- report:" in (folder / "report.md").read_text()
