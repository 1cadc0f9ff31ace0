"""Runs as data: the code version, one JSON file per run, resumable pre-training.

Every reproduce target writes one JSON file per (target, profile, row, seed) into its
results folder (``--results``, default ``OUT/results``). Each file holds the command that
wrote it, the code version (``ksparse.__version__``, the git commit when there is one, and
a digest of the package's source), the seed, the profile, the full settings, every number
the docs quote, wall times and epochs. ``ksparse reproduce report`` turns a folder of them
into the tables of ``docs/results.md``.

The code version is also part of every cached model's key (:func:`code_key`), so a rerun
after a change of the code trains its models again instead of mixing versions.
"""

import functools
import hashlib
import json
import os
import platform
import shlex
import subprocess
import time

import numpy as np

from ksparse.io import atomic_write

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


@functools.lru_cache(maxsize=1)
def source_digest():
    """SHA-1 of every ``.py`` file of the installed ``ksparse`` package (paths and contents)."""
    digest = hashlib.sha1()
    for folder, dirs, files in sorted(os.walk(PACKAGE)):
        dirs.sort()
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, PACKAGE).encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(f.read() + b"\0")
    return digest.hexdigest()


def _git(*argv):
    try:
        out = subprocess.run(["git", "-C", os.path.dirname(PACKAGE), *argv], capture_output=True,
                             text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def code_version():
    """``{"ksparse", "commit", "dirty", "source_sha1"}``: what code a run ran.

    ``commit`` is None outside a git checkout; ``dirty`` says whether the package's files
    differed from that commit (then only ``source_sha1`` names the code exactly).
    """
    from ksparse import __version__

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no", "--", "ksparse") if commit else None
    return {"ksparse": __version__, "commit": commit or None,
            "dirty": None if status is None else bool(status), "source_sha1": source_digest()}


def code_key():
    """The code version as it enters the model cache's keys: ``VERSION+SOURCE_SHA1[:12]``."""
    from ksparse import __version__

    return f"{__version__}+{source_digest()[:12]}"


def run_meta(target, argv, profile, seed):
    """What every result file records about the run: command, code, seed, machine, load, threads."""
    return {"command": shlex.join(["ksparse", "reproduce", target, *argv]), "target": target,
            "profile": profile, "seed": int(seed), "code": code_version(),
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "threads": {v: os.environ.get(v) for v in THREAD_VARS}}


def result_path(folder, target, profile, row, seed):
    """``FOLDER/TARGET-PROFILE-ROW-seedS.json``."""
    return os.path.join(folder, f"{target}-{profile}-{row}-seed{seed}.json")


def write_text(path, text):
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    atomic_write(path, lambda f: f.write(text.encode()))


def write_result(path, meta, record):
    """Write ``{"meta": meta, "result": record}`` to ``path`` atomically, as sorted, indented JSON."""
    text = json.dumps({"meta": meta, "result": record}, indent=1, sort_keys=True, default=jsonable)
    atomic_write(path, lambda f: f.write(text.encode() + b"\n"))


def finished(path):
    """The record of ``path`` when it exists and was written by this very code, else None.

    ``--resume`` skips such rows; a result of other code is run again (and overwritten). The
    run's settings are compared with the file's before any work
    (:func:`ksparse.reproduce._common.check_resume`), so a row kept here has this run's settings.
    """
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        data = json.load(f)
    if data["meta"]["code"]["source_sha1"] != source_digest():
        return None
    return data["result"]


def differences(path, expected, ignore=()):
    """The settings in which the result file ``path`` differs from ``expected``, as readable lines.

    ``expected`` maps names of the file's ``meta`` (or, where ``meta`` lacks one, ``result``)
    entries to this run's values, e.g. ``{"settings": prof, "data": data, "lrs": [0.1, 1.0]}``;
    a dict is compared entry by entry. A name the file does not record (files of older code)
    is not compared, nor an entry of a dict named in ``ignore`` (settings this target does not
    read). Returns ``[]`` when the file was made with these settings, else lines such
    as ``"data.dataset: 'mnist' in the file, 'digits' in this run"``.

    ``path`` may also be a table's JSON (a list of result records: each is compared) or a
    figure's JSON (``OUT/figN.json``: its entries and ``meta``).

    Raises
    ------
    ValueError
        When ``path`` is none of these (not JSON with ``meta`` and ``result``, a list of them, or
        a figure's ``stats``).
    """
    try:
        with open(path) as f:
            records = _records(json.load(f))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise ValueError(f"--resume cannot tell with what settings {path} was made: it is not a result "
                         f"file (nor a table's or figure's JSON) of `ksparse reproduce` ({type(e).__name__}: "
                         f"{e}); move it away, or add "
                         "--overwrite (instead of --resume) to replace it") from None
    here = json.loads(json.dumps(expected, default=jsonable))  # tuples as lists, as the file has them
    return list(dict.fromkeys(line for found in records for line in _differ(found, here, ignore)))


def _records(data):
    """The settings a file of ``ksparse reproduce`` records, as a list of dicts: one for a result
    file (``{"meta", "result"}``) or a figure's JSON (its entries and ``meta``), one per row for a
    table's JSON (a list of result records)."""
    if isinstance(data, list):
        return [r for entry in data for r in _records(entry)]
    if "result" in data:
        return [dict(data["result"], **data["meta"])]
    if "stats" not in data:
        raise KeyError("meta")
    return [dict({n: v for n, v in data.items() if n != "meta"}, **data.get("meta", {}))]


def command_of(path):
    """The command a file of ``ksparse reproduce`` records (its first, for a table), or None."""
    try:
        with open(path) as f:
            data = json.load(f)
        data = data[0] if isinstance(data, list) and data else data
        return data["meta"].get("command")
    except (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError):
        return None


def _differ(found, here, ignore):
    out = []
    for name, value in here.items():
        if name not in found:
            continue
        there = found[name]
        if isinstance(value, dict) and isinstance(there, dict):
            pairs = [(f"{name}.{n}", there.get(n, _NONE), value.get(n, _NONE))
                     for n in sorted(set(value) | set(there)) if n not in ignore]
        else:
            pairs = [(name, there, value)]
        out += [f"{n}: {_shown(a)} in the file, {_shown(b)} in this run" for n, a, b in pairs if a != b]
    return out


_NONE = object()  # an entry one side does not record


def _shown(value):
    return "not recorded" if value is _NONE else repr(value)


def jsonable(value):
    """``json.dump``'s ``default``: NumPy scalars and arrays as Python numbers and lists, tuples as lists."""
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (tuple, np.ndarray)):
        return list(value)
    raise TypeError(f"cannot write {type(value)} to JSON")


class EpochClock:
    """Wall and CPU seconds per epoch of a (possibly resumed) training run, kept beside its checkpoint.

    ``tick(epoch)`` records the time since the previous tick under that epoch and writes
    ``PATH`` (JSON); ``total(upto)`` sums the epochs ``<= upto``, so that the time of a run
    stopped and resumed counts each finished epoch once.
    """

    def __init__(self, path):
        self.path = path
        self.epochs = {}
        if path and os.path.isfile(path):
            with open(path) as f:
                self.epochs = {int(e): t for e, t in json.load(f).items()}
        self.restart()

    def restart(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def tick(self, epoch):
        wall, cpu = time.perf_counter(), time.process_time()
        self.epochs[int(epoch)] = {"wall": wall - self._wall, "cpu": cpu - self._cpu}
        self._wall, self._cpu = wall, cpu
        if self.path:
            text = json.dumps({str(e): t for e, t in sorted(self.epochs.items())})
            atomic_write(self.path, lambda f: f.write(text.encode()))

    def total(self, upto):
        done = [t for e, t in self.epochs.items() if e <= upto]
        return {"wall": sum(t["wall"] for t in done), "cpu": sum(t["cpu"] for t in done)}
