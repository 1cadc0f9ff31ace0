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
