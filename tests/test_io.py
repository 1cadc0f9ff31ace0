"""ksparse.io: atomic writes with the umask's mode, bounded .npy/.npz readers without pickles."""

import io
import os
import stat
import zipfile

import numpy as np
import pytest

from ksparse.datasets import load_matrix
from ksparse.errors import DataFileError, OutputNotWritableError
from ksparse.io import (
    atomic_write,
    check_output_file,
    check_writable,
    load_npy,
    open_npz,
    read_npy,
    read_npz_array,
    same_file,
)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_write_creates_files_with_the_umask_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "f.bin", lambda f: f.write(b"x"))
        (tmp_path / "plain").write_bytes(b"x")  # what open() would create
    finally:
        os.umask(old)
    mode = stat.S_IMODE(os.stat(tmp_path / "f.bin").st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)


def test_atomic_write_does_not_change_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "f.bin", lambda f: f.write(b"x"))
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(old)


@pytest.mark.parametrize("a", [np.arange(12.0).reshape(3, 4), np.asfortranarray(np.arange(6).reshape(2, 3)),
                               np.zeros((0, 5), np.float32), np.array(3.5), np.ones((2, 2), bool)])
def test_load_npy_round_trips_numpy_save(tmp_path, a):
    np.save(tmp_path / "a.npy", a)
    got = load_npy(tmp_path / "a.npy")
    assert got.dtype == a.dtype and got.shape == a.shape and np.array_equal(got, a)
    assert got.flags.writeable


def test_load_npy_refuses_objects_without_suggesting_allow_pickle(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataFileError, match="holds Python objects, which ksparse never loads") as info:
        load_matrix(tmp_path / "o.npy")
    assert "allow_pickle" not in str(info.value)


@pytest.mark.parametrize("content", [b"", b"hello world, not numpy", b"\x80\x04K\x01.", b"PK\x03\x04garbage"])
def test_load_matrix_of_a_non_array_file_never_suggests_allow_pickle(tmp_path, content):
    for name in ("x.npy", "x.npz"):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataFileError) as info:
            load_matrix(tmp_path / name)
        assert "pickle" not in str(info.value)


def test_read_npy_refuses_a_header_larger_than_the_data_before_allocating():
    buf = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**9, 10**6)}
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(b"\0" * 64)
    size = len(buf.getvalue())
    buf.seek(0)
    expected = r"holds 64 bytes of data but its header .* describes 8000000000000000;"
    with pytest.raises(DataFileError, match=expected):
        read_npy(buf, size, "'big.npy'")


def test_read_npz_array_refuses_a_member_declaring_more_than_it_stores(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, X=np.zeros(1000))
    with open_npz(path) as zf:
        info = zf.getinfo("X.npy")
        info.file_size = 10**12  # a forged size in the directory
        with pytest.raises(DataFileError, match="declares 1000000000000 bytes"):
            read_npz_array(zf, "X", "'x.npz'")


def test_load_matrix_npz_reads_x_and_y_and_names_a_missing_x(tmp_path):
    np.savez(tmp_path / "xy.npz", X=np.ones((4, 3)), y=np.arange(4))
    ds = load_matrix(tmp_path / "xy.npz")
    assert ds.X_train.shape == (4, 3) and ds.y_train.tolist() == [0, 1, 2, 3]
    np.savez_compressed(tmp_path / "two.npz", a=np.ones(2), b=np.ones(2))
    with pytest.raises(DataFileError, match=r"holds the arrays \['a', 'b'\]; name the data array 'X'"):
        load_matrix(tmp_path / "two.npz")


def test_load_matrix_reads_compressed_npz(tmp_path):
    np.savez_compressed(tmp_path / "c.npz", X=np.arange(20.0).reshape(4, 5))
    assert np.array_equal(load_matrix(tmp_path / "c.npz").X_train, np.arange(20.0).reshape(4, 5))
    with zipfile.ZipFile(tmp_path / "c.npz") as zf:
        assert zf.getinfo("X.npy").compress_type == zipfile.ZIP_DEFLATED


def test_same_file_sees_through_links_and_dots(tmp_path):
    (tmp_path / "a").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path / "a", tmp_path / "link")
    assert same_file(tmp_path / "a", tmp_path / "sub" / ".." / "a")
    assert same_file(tmp_path / "link", tmp_path / "a")
    assert not same_file(tmp_path / "a", tmp_path / "missing")
    (tmp_path / "b").write_bytes(b"x")
    assert not same_file(tmp_path / "a", tmp_path / "b")


def test_check_writable_leaves_no_trace(tmp_path):
    check_writable(tmp_path / "new" / "deeper")
    assert os.listdir(tmp_path) == []
    (tmp_path / "there").mkdir()
    check_writable(tmp_path / "there")
    assert os.listdir(tmp_path / "there") == []


def test_check_writable_refuses_a_path_through_a_file(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(OutputNotWritableError, match=r"cannot write into --out .*file/out.* choose a folder"):
        check_writable(tmp_path / "file" / "out")
    assert isinstance(OutputNotWritableError("x"), OSError)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_refuses_a_read_only_folder(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o500)
    with pytest.raises(OutputNotWritableError, match="Permission denied"):
        check_writable(tmp_path / "ro")


def test_atomic_write_into_a_folder_names_the_folder_and_leaves_no_file(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputNotWritableError, match=r"out' is a folder; give the name of a file"):
        atomic_write(tmp_path / "out", lambda f: f.write(b"x"))
    assert os.listdir(tmp_path) == ["out"] and os.listdir(tmp_path / "out") == []


def test_atomic_write_through_a_file_names_the_file_asked_for_not_a_temporary_one(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(OutputNotWritableError, match=r"cannot write '.*file/out.npz' \(.*\); choose a"):
        atomic_write(tmp_path / "file" / "out.npz", lambda f: f.write(b"x"))


def test_check_output_file_refuses_a_folder_and_a_path_through_a_file(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(OutputNotWritableError, match=r"checkpoint_path '.*' is a folder"):
        check_output_file(tmp_path, "checkpoint_path")
    with pytest.raises(OutputNotWritableError, match=r"checkpoint_path's folder .*file' is a file, not a"):
        check_output_file(tmp_path / "file" / "m.npz", "checkpoint_path")
    check_output_file(tmp_path / "new" / "m.npz", "checkpoint_path")
    assert os.listdir(tmp_path) == ["file"]
