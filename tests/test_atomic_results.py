"""Result files of the reference experiments and the benchmarks are written atomically
(ksparse.io.atomic_write): a crash or Ctrl-C leaves the old file or the new one, never half of one."""

import os
import pathlib
import re

import pytest
from threadpoolctl import threadpool_limits

import ksparse.plots
import reference.theorem31
from reference.theorem31 import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
# a file opened for writing, a figure saved by its path, a JSON document streamed into an open file
DIRECT_WRITE = re.compile(r"""open\([^)]*["'](w|wb|a)["']|\.savefig\((?!f\b)|json\.dump\(""")


def test_theorem31_writes_every_output_through_atomic_write(tmp_path, monkeypatch):
    written = []

    def recording(real):
        def atomic_write(path, *args, **kwargs):
            written.append(os.path.abspath(path))
            return real(path, *args, **kwargs)
        return atomic_write

    monkeypatch.setattr(reference.theorem31, "atomic_write", recording(reference.theorem31.atomic_write))
    monkeypatch.setattr(ksparse.plots, "atomic_write", recording(ksparse.plots.atomic_write))
    with threadpool_limits(1):
        assert main(["--profile", "smoke", "--out", str(tmp_path)]) == 0
    files = sorted(str(p) for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == 4 and sorted(written) == files  # .md, .json, two figures (were open() and savefig)


@pytest.mark.parametrize("path", sorted([*ROOT.glob("reference/*.py"), *ROOT.glob("benchmarks/*.py")]),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_result_file_is_written_in_place(path):
    lines = [f"{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1)
             if DIRECT_WRITE.search(line) and not line.lstrip().startswith("#")]
    assert not lines, f"write these through ksparse.io.atomic_write (or ksparse.plots.save_figure): {lines}"
