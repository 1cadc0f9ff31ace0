"""Every benchmark parses its arguments: ``--help`` prints help and exits 0 without running or
writing anything, and ``--quick`` (a development run) never writes the docs."""

import hashlib
import importlib
import os
import pkgutil

import pytest

import benchmarks
from benchmarks import common

MODULES = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name != "common")


def _docs():
    folder = os.path.join(common.ROOT, "docs")
    return {name: hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
            for name in sorted(os.listdir(folder)) if os.path.isfile(os.path.join(folder, name))}


@pytest.mark.parametrize("name", MODULES)
def test_help_exits_0_and_writes_nothing(name, capsys):
    module = importlib.import_module(f"benchmarks.{name}")
    before = _docs()
    with pytest.raises(SystemExit) as e:
        module.main(["--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out
    assert _docs() == before


def test_quick_implies_no_save():
    assert common.parse_args("x", ["--quick"]).no_save
    assert not common.parse_args("x", []).no_save


@pytest.mark.parametrize("out", ["fig3.txt", "fig3"])
def test_fig3_variants_out_must_be_a_json_file_before_any_work(tmp_path, capsys, monkeypatch, out):
    """Its --out is the result file, its .md page beside it: another suffix is refused, naming .json
    (it wrote JSON into fig3.txt and the page to fig.md), before the patches are loaded."""
    import ksparse.datasets
    from benchmarks import fig3_variants

    monkeypatch.setattr(ksparse.datasets, "load_dataset", lambda *a, **k: pytest.fail("loaded the data"))
    with pytest.raises(SystemExit) as e:
        fig3_variants.main(["--out", str(tmp_path / out)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "the accepted suffix is .json" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


# every option of a script that names an output folder (made if missing); the inputs are not here
FOLDER_OPTIONS = [("benchmarks.dead_units", "--out"), ("benchmarks.dead_window", "--out"),
                  ("benchmarks.gpu", "--out"), ("benchmarks.gpu", "--prepare"),
                  ("benchmarks.remedies", "--out"),
                  ("benchmarks.subnormal", "--out"), ("benchmarks.table1_classifier", "--out"),
                  ("benchmarks.table1_defaults", "--out"), ("benchmarks.table1_defaults", "--work"),
                  ("benchmarks.training_targets", "--out"), ("reference.theorem31", "--out")]


@pytest.mark.parametrize("module, option", FOLDER_OPTIONS)
@pytest.mark.parametrize("name", ["results.json", "model.npz"])
def test_an_output_folder_named_like_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch,
                                                                      module, option, name):
    """As `ksparse train --out model.npz` (ksparse.io.check_folder_name): such an option made a folder
    called results.json; now exit code 2 naming the folder to give, and nothing made or loaded."""
    import ksparse.datasets

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ksparse.datasets, "load_dataset", lambda *a, **k: pytest.fail("loaded the data"))
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as e:
        main([option, name])
    err = capsys.readouterr().err
    stem = name.split(".")[0]
    assert e.value.code == 2 and "Traceback" not in err
    assert f"argument {option}: '{name}' is the folder to write into" in err and f"such as '{stem}'" in err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_named_like_a_file_is_taken_as_is(tmp_path):
    from ksparse.io import folder_argument

    (tmp_path / "old.json").mkdir()  # made before the rule: still usable
    assert folder_argument(str(tmp_path / "old.json")) == str(tmp_path / "old.json")


def test_rss_folder_must_exist_before_the_data_is_written(tmp_path, capsys):
    from benchmarks import rss

    with pytest.raises(SystemExit) as e:
        rss.main(["--folder", str(tmp_path / "nowhere"), "--no-save"])
    assert e.value.code == 2 and "is not a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_gpu_prepare_into_the_data_folder_itself_keeps_its_files(tmp_path, monkeypatch):
    """`benchmarks.gpu --prepare $KSPARSE_DATA` copied each MNIST file onto itself (shutil's
    SameFileError); into another folder each file is copied whole (atomically)."""
    import ksparse.datasets.mnist as mnist
    from benchmarks import gpu_train

    data = tmp_path / "data"
    gpu_train.fake_mnist(data, n_train=8, n_test=4)
    files = {p.name: p.read_bytes() for p in (data / "mnist").iterdir()}
    monkeypatch.setattr(mnist, "locate_mnist", lambda root, download=True: {
        name: os.path.join(root, "mnist", name) for name in files})
    monkeypatch.setattr(gpu_train, "load", lambda folder, dry: (None, None))
    monkeypatch.setattr(gpu_train, "cpu_reference", lambda X, config, n: {"stub": True})
    for folder in (data, tmp_path / "carry"):
        gpu_train.prepare(str(folder), str(data))
        assert {p.name: p.read_bytes() for p in (folder / "mnist").iterdir()} == files
