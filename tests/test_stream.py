"""ksparse.training.stream: one epoch order for every source; streaming fit equals in-memory fit."""

import numpy as np
import pytest

from ksparse.training import epoch, stream
from ksparse.training.loop import fit


def _orders(n, batch, block_rows, shuffle_rows, seed=0):
    rng = np.random.default_rng(seed)
    return list(epoch.index_blocks(n, batch, rng, block_rows, shuffle_rows)), rng


def test_index_blocks_small_data_is_one_permutation():
    """Up to SHUFFLE_ROWS rows: one permutation of all rows, cut in minibatches (the old order)."""
    got, rng = _orders(1000, 64, 100, 1000)
    rng2 = np.random.default_rng(0)
    order = rng2.permutation(1000)
    expected = [order[s:s + 64] for s in range(0, 1000, 64)]
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    assert rng.bit_generator.state == rng2.bit_generator.state


def test_index_blocks_large_data_visits_every_row_once_mixing_blocks():
    got, _ = _orders(1000, 64, 50, 200)
    order = np.concatenate(got)
    np.testing.assert_array_equal(np.sort(order), np.arange(1000))
    assert [len(b) for b in got] == [64] * 15 + [40]  # minibatches run on across windows
    first_window_blocks = np.unique(order[:200] // 50)
    assert first_window_blocks.size == 4 and not np.array_equal(first_window_blocks, np.arange(4))


@pytest.mark.parametrize("n, batch", [(1000, 64), (999, 128), (130, 7)])
def test_stream_batches_equal_index_blocks(n, batch):
    x = np.random.default_rng(1).random((n, 5))
    idx, rng_a = _orders(n, batch, 50, 200, seed=3)
    rng_b = np.random.default_rng(3)
    got = list(stream.stream_batches(_Rows(x), batch, rng_b, np.asarray, 50, 200))
    assert len(got) == len(idx)
    for (xb,), i in zip(got, idx, strict=True):
        np.testing.assert_array_equal(xb, x[i])
    assert rng_a.bit_generator.state == rng_b.bit_generator.state


class _Rows:
    """A minimal row-sliced source (shape, dtype, slicing) that is not an ndarray."""

    def __init__(self, a):
        self.a, self.shape, self.dtype = a, a.shape, a.dtype
        self.reads = []

    def __getitem__(self, key):
        self.reads.append(key)
        return self.a[key].copy()


def test_column_stats_equal_numpy_bit_for_bit():
    for dtype in (np.float32, np.float64, np.uint8):
        x = (np.random.default_rng(2).random((5003, 17)) * 200).astype(dtype)
        mean, variance = stream.column_stats(_Rows(x), block_rows=700)
        np.testing.assert_array_equal(mean, x.mean(axis=0, dtype=np.float64))
        assert variance == float(((x - x.mean(axis=0)) ** 2).sum(axis=1).mean())


def test_column_stats_names_rows_with_nan():
    x = np.ones((100, 3))
    x[57, 1] = np.nan
    with pytest.raises(ValueError, match="nan at row 57, column 1;"):
        stream.column_stats(_Rows(x), block_rows=50)


def test_is_streamed(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 2)))
    assert stream.is_streamed(np.load(tmp_path / "x.npy", mmap_mode="r"))
    assert stream.is_streamed(stream.NpyRows(tmp_path / "x.npy"))
    assert not stream.is_streamed(np.zeros((3, 2)))
    assert not stream.is_streamed([[1.0, 2.0]])


@pytest.mark.parametrize("center", [False, True])
def test_fit_on_a_memmap_equals_in_memory_fit_bit_for_bit(tmp_path, monkeypatch, center):
    """Small windows (so the block shuffle runs): same parameters, velocities, RNG and history."""
    monkeypatch.setattr(epoch, "BLOCK_ROWS", 64)
    monkeypatch.setattr(epoch, "SHUFFLE_ROWS", 256)
    x = np.random.default_rng(4).random((1000, 20)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    cfg = {"n_hidden": 30, "k": 5, "k_start": 10, "max_iter": 3, "batch_size": 50, "center": center}
    a = fit(x, cfg)
    seen = []
    b = fit(np.load(tmp_path / "x.npy", mmap_mode="r"), cfg, progress=seen.append)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
        np.testing.assert_array_equal(a.velocity[name], b.velocity[name])
    assert a.history == b.history and a.rng_state == b.rng_state
    assert sum(seen) == 3 * 1000 and max(seen) == 50


def test_fit_streams_blocks_never_the_whole_source(monkeypatch):
    monkeypatch.setattr(epoch, "BLOCK_ROWS", 64)
    monkeypatch.setattr(epoch, "SHUFFLE_ROWS", 256)
    src = _Rows(np.random.default_rng(5).random((1000, 8)))
    fit(src, {"n_hidden": 12, "k": 3, "k_start": 3, "max_iter": 1})
    assert src.reads and all(k.stop - k.start <= 64 for k in src.reads)


def test_fit_on_npy_rows_equals_in_memory(tmp_path):
    x = np.random.default_rng(6).random((300, 10))
    np.save(tmp_path / "x.npy", x)
    cfg = {"n_hidden": 16, "k": 4, "k_start": 4, "max_iter": 2, "dtype": "float64"}
    a, b = fit(x, cfg), fit(stream.NpyRows(tmp_path / "x.npy"), cfg)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])


def test_fit_rejects_a_streamed_source_of_the_wrong_shape(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="must be 2-D"):
        fit(np.load(tmp_path / "x.npy", mmap_mode="r"), {"n_hidden": 4, "k": 2})


def _h5py(tmp_path, x):
    h5py = pytest.importorskip("h5py")
    f = h5py.File(tmp_path / "x.h5", "w")
    f.create_dataset("x", data=x, chunks=(64, x.shape[1]))
    return f["x"]


def _zarr(tmp_path, x):
    zarr = pytest.importorskip("zarr")
    z = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=x.shape, chunks=(64, x.shape[1]),
                        dtype=x.dtype)
    z[:] = x
    return z


def _dask(tmp_path, x):
    da = pytest.importorskip("dask.array")
    return da.from_array(x, chunks=(100, x.shape[1]))


@pytest.mark.parametrize("source", [_h5py, _zarr, _dask])
def test_fit_on_h5py_zarr_and_dask_equals_in_memory(tmp_path, monkeypatch, source):
    monkeypatch.setattr(epoch, "BLOCK_ROWS", 64)
    monkeypatch.setattr(epoch, "SHUFFLE_ROWS", 256)
    x = np.random.default_rng(7).random((600, 12)).astype(np.float32)
    cfg = {"n_hidden": 16, "k": 4, "k_start": 8, "max_iter": 2}
    a, b = fit(x, cfg), fit(source(tmp_path, x), cfg)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])


def test_top_variance_share_reads_the_same_rows_streamed(tmp_path):
    from ksparse.training.remedies import top_variance_share

    x = np.random.default_rng(7).random((2500, 6)) * np.arange(1, 7)
    np.save(tmp_path / "x.npy", x)
    src = _Rows(x)
    assert top_variance_share(src, max_rows=1000) == top_variance_share(x, max_rows=1000)
    assert top_variance_share(stream.NpyRows(tmp_path / "x.npy"), max_rows=1000) == \
        top_variance_share(x, max_rows=1000)
    assert len(src.reads) == 10 and all(k.stop - k.start == 100 for k in src.reads)


@pytest.mark.parametrize("center", [False, True])
def test_a_float16_file_read_by_rows_trains_and_encodes_as_the_array_in_memory(tmp_path, monkeypatch, center):
    # the estimator validates an array in memory to float64 (scikit-learn's rule for float16); rows
    # read from a file must meet the same arithmetic (in float16, x / s rounded: W differed by 0.03)
    from ksparse.estimators.autoencoder import KSparseAutoencoder

    monkeypatch.setattr(epoch, "BLOCK_ROWS", 64)
    monkeypatch.setattr(epoch, "SHUFFLE_ROWS", 256)
    x = (np.random.default_rng(8).random((600, 12)) * 16).astype(np.float16)
    np.save(tmp_path / "x16.npy", x)
    kw = {"n_hidden": 20, "k": 4, "max_iter": 2, "batch_size": 50, "center": center, "random_state": 0}
    a = KSparseAutoencoder(**kw).fit(x)
    rows = np.load(tmp_path / "x16.npy", mmap_mode="r")
    b = KSparseAutoencoder(**kw).fit(rows)
    np.testing.assert_array_equal(a.W_, b.W_)
    np.testing.assert_array_equal(a.transform(rows), a.transform(x))
