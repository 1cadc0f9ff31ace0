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
