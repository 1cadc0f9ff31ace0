"""Fuzzing the loaders: IDX, CIFAR-10 binary, NORB, .npy, .npz and model files.

Each loader gets a valid file, then that file truncated, with an oversized header, with a
wrong magic number, with random bytes spliced in, or replaced by random bytes. The
property: it returns an array or raises a project-own error (``ksparse.errors.KSparseError``,
a ``ValueError``), never another exception; it never allocates much more than the file's
size; and it writes nothing (the folder and the file are unchanged).
"""

import gzip
import hashlib
import io
import os
import struct
import tempfile
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ksparse.datasets import load_matrix
from ksparse.datasets.cifar10 import RECORD, read_cifar_batch
from ksparse.datasets.mnist import read_idx
from ksparse.datasets.norb import read_norb_matrix
from ksparse.errors import KSparseError
from ksparse.training import loop as train

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BIG = 1 << 40  # a header size no test file can back


def _idx():
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    return b"\0\0\x08\x03" + struct.pack(">3I", *a.shape) + a.tobytes(), 4, lambda b: (
        b[:4] + struct.pack(">3I", BIG >> 20, 1 << 20, 7) + b[16:])


def _cifar():
    rng = np.random.default_rng(0)
    rec = rng.integers(0, 256, (2, RECORD), dtype=np.uint8)
    rec[:, 0] = [3, 9]
    return rec.tobytes(), 1, lambda b: bytes([200]) + b[1:]


def _norb():
    a = np.arange(6, dtype=np.int32)
    return struct.pack("<2i3i", 0x1E3D4C54, 1, 6, 1, 1) + a.tobytes(), 4, lambda b: (
        b[:8] + struct.pack("<i", 2**31 - 1) + b[12:])


def _npy_bytes(a, shape=None):
    """``a`` as .npy bytes; with ``shape``, a header that claims that shape over a's data."""
    buf = io.BytesIO()
    header = np.lib.format.header_data_from_array_1_0(a)
    if shape is not None:
        header["shape"] = shape
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(a.tobytes())
    return buf.getvalue()


def _zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # stored, as numpy.savez writes
        for name, data in members.items():
            zf.writestr(name + ".npy", data)
    return buf.getvalue()


def _unzip(raw):
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return {name[:-4]: zf.read(name) for name in zf.namelist()}


def _npy():
    a = np.arange(12.0).reshape(3, 4)
    return _npy_bytes(a), 6, lambda b: _npy_bytes(a, (9_999_999, 99_999))


def _npz():
    a = np.arange(12.0).reshape(3, 4)
    return _zip({"X": _npy_bytes(a)}), 4, lambda b: _zip({"X": _npy_bytes(a, (9_999_999, 99_999))})


def _model():
    x = np.random.default_rng(0).random((20, 6))
    state = train.fit(x, {"n_hidden": 5, "k": 2, "k_start": 3, "alpha": 1.0, "max_iter": 1, "batch_size": 10})
    with tempfile.TemporaryDirectory() as d:
        train.save_state(os.path.join(d, "m.npz"), state)
        with open(os.path.join(d, "m.npz"), "rb") as f:
            raw = f.read()

    def oversize(b):
        members = _unzip(b)
        members["W"] = _npy_bytes(state.params["W"], (99_999_999, 5))
        return _zip(members)

    return raw, 4, oversize


FORMATS = {
    "idx": (_idx, "x-idx3-ubyte", read_idx),
    "idx.gz": (_idx, "x-idx3-ubyte.gz", read_idx),
    "cifar": (_cifar, "data_batch_1.bin", read_cifar_batch),
    "norb": (_norb, "x-training-cat.mat", read_norb_matrix),
    "npy": (_npy, "X.npy", load_matrix),
    "npz": (_npz, "X.npz", load_matrix),
    "model": (_model, "model.npz", train.load_state),
}
_VALID = {}


def _valid(name):
    if name not in _VALID:
        _VALID[name] = FORMATS[name][0]()
    return _VALID[name]


def _mutations(raw, magic_len, oversize):
    """Strategies for the five kinds of damage (and a few at once)."""
    n = len(raw)
    truncated = st.integers(0, max(n - 1, 0)).map(lambda i: raw[:i])
    oversized = st.just(oversize(raw))
    wrong_magic = st.binary(min_size=magic_len, max_size=magic_len).filter(
        lambda m: m != raw[:magic_len]).map(lambda m: m + raw[magic_len:])
    spliced = st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=32), st.integers(0, 32)).map(
        lambda t: raw[:t[0]] + t[1] + raw[t[0] + t[2]:])
    random_bytes = st.binary(max_size=4096)
    return st.one_of(truncated, oversized, wrong_magic, spliced, random_bytes)


def _check_one(name, data):
    """Write ``data`` as the format's file, load it, and check the three properties."""
    _, filename, load = FORMATS[name]
    if filename.endswith(".gz"):
        data = gzip.compress(data)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, filename)
        with open(path, "wb") as f:
            f.write(data)
        before = hashlib.sha256(data).hexdigest()
        tracemalloc.start()
        try:
            load(path)
        except KSparseError as e:
            assert isinstance(e, (ValueError, OSError)), type(e)
            assert "allow_pickle" not in str(e) and "\n" not in str(e)
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert os.listdir(folder) == [filename]  # nothing written beside it
        with open(path, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == before
    # a few copies of the (decompressed) bytes, plus the interpreter's own overhead
    limit = 8 * max(len(data), len(gzip.decompress(data)) if filename.endswith(".gz") else 0) + (2 << 20)
    assert peak < limit, f"{name}: peak allocation {peak} bytes for a {len(data)}-byte file"


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_loader_accepts_its_valid_file(name):
    raw = _valid(name)[0]
    _check_one(name, raw)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_loader_refuses_oversized_header_before_allocating(name):
    raw, _, oversize = _valid(name)
    damaged = oversize(raw)
    assert damaged != raw
    with pytest.raises(KSparseError):
        _, filename, load = FORMATS[name]
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, filename)
            with open(path, "wb") as f:
                f.write(gzip.compress(damaged) if filename.endswith(".gz") else damaged)
            load(path)
    _check_one(name, damaged)


@pytest.mark.parametrize("name", sorted(FORMATS))
@FUZZ
@given(data=st.data())
def test_loader_fuzz_raises_only_project_errors(name, data):
    raw, magic_len, oversize = _valid(name)
    _check_one(name, data.draw(_mutations(raw, magic_len, oversize)))
