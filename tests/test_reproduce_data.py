"""``ksparse reproduce``: a cached model or a result file belongs to the data it was made from.

The model cache's key held the settings and the code version, not the data: two runs with
different ``--data-dir`` (here two CIFAR-10 folders whose files differ) shared one cache and the
second loaded the model trained on the first one's data. Now the key holds a fingerprint of the
data read (SHA-1 of the training array), so other data train a model of their own while a moved
copy of the same files still hits. Result files record the fingerprint too (``data_sha1``), and
``--resume`` refuses a file of other data; a resume whose OUT/data.json does not say which
folder the run read says which one it reads, in one ``ksparse: note:`` line.
"""

import json
import os
import shutil

import numpy as np
import pytest
from test_cli_bad_input import one_error
from test_datasets_cifar10 import smooth_images, write_batch

from ksparse.cli import main
from ksparse.reproduce import _common

pytestmark = pytest.mark.usefixtures("one_blas_thread")
FIG3 = ["reproduce", "fig3", "--profile", "smoke", "--rows", "paper"]


def _cifar(folder, seed, n=20):
    """A CIFAR-10 folder of ``n`` training images drawn with ``seed`` (the official format)."""
    write_batch(str(folder / "cifar10" / "data_batch_1.bin"), smooth_images(n, seed), np.arange(n) % 10)
    return folder


def _models(cache):
    return sorted(n for n in os.listdir(cache) if n.endswith(".npz"))


def test_cached_model_key_includes_the_datas_fingerprint_not_where_it_came_from(tmp_path):
    cached_model, data_fingerprint = _common.cached_model, _common.data_fingerprint
    calls = []

    def train(stem):
        calls.append(stem)
        return {"W": np.zeros(2)}

    X = np.arange(12.0).reshape(3, 4)
    cached_model(str(tmp_path), "m", {"x": 1}, train, data=X)
    cached_model(str(tmp_path), "m", {"x": 1}, train, data=X.copy())  # the same values: loaded
    _, info = cached_model(str(tmp_path), "m", {"x": 1}, train, data=X + 1)  # other values: trained
    assert len(calls) == 2 and calls[0] != calls[1]
    assert info["settings"]["data_sha1"] == data_fingerprint(X + 1)
    # the shape and dtype are part of it: the same bytes read otherwise are other data
    assert data_fingerprint(X) != data_fingerprint(X.reshape(4, 3))
    assert data_fingerprint(X) != data_fingerprint(X.astype(np.float32))
    assert data_fingerprint(np.asfortranarray(X)) == data_fingerprint(X)


def test_a_shared_cache_trains_again_for_another_data_folder_and_loads_for_a_moved_copy(tmp_path, capsys,
                                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = _cifar(tmp_path / "a", 0), _cifar(tmp_path / "b", 1)
    assert main([*FIG3, "--data-dir", str(a), "--out", "o"]) == 0
    assert len(_models("o/models")) == 1
    capsys.readouterr()
    # another folder whose files differ, the same settings and cache: a model of its own
    assert main([*FIG3, "--data-dir", str(b), "--out", "p", "--cache", "o/models"]) == 0
    assert "trained ksparse-k50-cifar10-patches" in capsys.readouterr().err
    assert len(_models("o/models")) == 2
    # a copy of the first folder elsewhere: its model is loaded, nothing trained
    shutil.copytree(a, tmp_path / "moved")
    assert main([*FIG3, "--data-dir", str(tmp_path / "moved"), "--out", "q", "--cache", "o/models"]) == 0
    err = capsys.readouterr().err
    assert "loaded ksparse-k50-cifar10-patches" in err and "training" not in err
    assert len(_models("o/models")) == 2
    recorded = json.loads((tmp_path / "o" / "results" / "fig3-smoke-paper-seed0.json").read_text())
    again = json.loads((tmp_path / "q" / "results" / "fig3-smoke-paper-seed0.json").read_text())
    assert recorded["meta"]["data_sha1"] == again["meta"]["data_sha1"]


def test_resume_without_data_json_says_which_folder_it_reads_and_refuses_other_data(tmp_path, capsys,
                                                                                   monkeypatch):
    # a run whose OUT/data.json is missing (runs before it was written): a resume fell back on
    # KSPARSE_DATA silently and replaced the run's files with those of other data
    monkeypatch.chdir(tmp_path)
    a, b = _cifar(tmp_path / "a", 0), _cifar(tmp_path / "b", 1)
    assert main([*FIG3, "--data-dir", str(a), "--out", "o"]) == 0
    os.remove(tmp_path / "o" / "data.json")
    monkeypatch.setenv("KSPARSE_DATA", str(b))
    one_error([*FIG3, "--out", "o", "--resume"], tmp_path, capsys, "--resume would mix settings",
              "fig3-smoke-paper-seed0.json", "data_sha1", "--overwrite")
    shutil.copytree(a, tmp_path / "copy")
    monkeypatch.setenv("KSPARSE_DATA", str(tmp_path / "copy"))
    capsys.readouterr()
    assert main([*FIG3, "--out", "o", "--resume"]) == 0  # the same data: the run goes on
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("ksparse: note:")]
    assert len(notes) == 1 and "o/data.json does not record the data folder" in notes[0], err
    assert str(tmp_path / "copy") in notes[0] and "--data-dir" in notes[0]
    assert "loaded ksparse-k50-cifar10-patches" in err and "training" not in err
    # with the folder recorded, a resume says nothing of it
    assert main([*FIG3, "--out", "o", "--resume"]) == 0
    assert "ksparse: note:" not in capsys.readouterr().err


def test_table1_resume_refuses_a_result_of_other_data_of_the_same_name_and_size(tmp_path, capsys,
                                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["reproduce", "table1", "--profile", "smoke", "--dataset", "digits", "--rows", "raw", "--out", "o"]
    assert main(argv) == 0
    path = tmp_path / "o" / "results" / "table1-smoke-raw-seed0.json"
    data = json.loads(path.read_text())
    assert data["meta"]["data_sha1"] == json.loads((tmp_path / "o" / "table1.json").read_text())[0][
        "meta"]["data_sha1"]
    data["meta"]["data_sha1"] = "0" * 40  # as a run on other files of the same shape wrote it
    path.write_text(json.dumps(data))
    one_error([*argv, "--resume"], tmp_path, capsys, "--resume would mix settings",
              "o/results/table1-smoke-raw-seed0.json", "data_sha1: '0000", "another --out", "--overwrite")
