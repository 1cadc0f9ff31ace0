"""Persistence: atomic writes, the one-file checkpoint, corrupt files, checkpoint_every, resume."""

import json
import os

import numpy as np
import pytest
from conftest import rewrite_model

from ksparse import __version__
from ksparse.datasets import load_digits
from ksparse.errors import ModelFileError
from ksparse.io import atomic_write
from ksparse.training import loop as train
from ksparse.training.checkpoint import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_blas_thread")

CFG = {"n_hidden": 32, "k": 4, "k_start": 16, "max_iter": 4, "batch_size": 64, "random_state": 5}


@pytest.fixture(scope="module")
def x():
    return load_digits().X_train[:400]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, x):
    path = tmp_path_factory.mktemp("ckpt") / "model.npz"
    state = train.fit(x, dict(CFG, max_iter=1), checkpoint_path=path)
    return path, state


# -- atomic_write ---------------------------------------------------------------------------
def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write(path, lambda f: f.write(b"hello"))
    assert path.read_bytes() == b"hello"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


# -- round trip -----------------------------------------------------------------------------
def test_save_state_load_state_round_trip(saved):
    path, state = saved
    loaded = train.load_state(path)
    for n in ("W", "b", "b_prime"):
        assert np.array_equal(loaded.params[n], state.params[n])
        assert np.array_equal(loaded.velocity[n], state.velocity[n])
        assert loaded.params[n].dtype == state.params[n].dtype
    assert loaded.config == state.config and loaded.epoch == 1
    assert loaded.rng_state == state.rng_state and loaded.history == state.history
    assert os.listdir(path.parent) == ["model.npz"]


def test_checkpoint_records_library_version(saved):
    _, _, meta = load_checkpoint(saved[0])
    assert meta["version"] == __version__ and meta["format"] == "ksparse-checkpoint-1"


# -- bad files -------------------------------------------------------------------------------
def test_load_missing_file_raises(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        train.load_state(tmp_path / "nope.npz")


@pytest.mark.parametrize("keep", [0, 10, 200, -30])
def test_load_truncated_file_raises(saved, tmp_path, keep):
    data = saved[0].read_bytes()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(data[:keep])  # the first bytes, or all but the last 30
    with pytest.raises(ValueError, match="not a readable ksparse model file"):
        train.load_state(bad)


def test_load_garbage_file_raises(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(os.urandom(2000))
    with pytest.raises(ValueError, match="not a readable ksparse model file"):
        train.load_state(bad)


def test_load_other_npz_raises(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, X=np.ones((3, 3)))
    with pytest.raises(ValueError, match="not a readable ksparse model file"):
        train.load_state(other)


def test_load_wrong_format_tag_raises(tmp_path):
    path = tmp_path / "m.npz"
    params = {"W": np.ones((3, 2)), "b": np.ones(2), "b_prime": np.ones(3)}
    save_checkpoint(path, params, params, {})
    with np.load(path) as data:
        arrays = dict(data)
    arrays["meta"] = np.array(json.dumps({"format": "something-else"}))
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="not a readable ksparse model file"):
        train.load_state(path)


def test_load_inconsistent_shapes_raises(tmp_path):
    path = tmp_path / "m.npz"
    params = {"W": np.ones((3, 2)), "b": np.ones(5), "b_prime": np.ones(3)}
    save_checkpoint(path, params, params, {})
    with pytest.raises(ModelFileError, match=r"holds b of shape \(5,\), expected \(2,\)"):
        train.load_state(path)


def test_load_invalid_config_raises(tmp_path):
    path = tmp_path / "m.npz"
    params = {"W": np.ones((3, 2)), "b": np.ones(2), "b_prime": np.ones(3)}
    save_checkpoint(path, params, params, {"config": {"k": 7, "n_hidden": 2}, "epoch": 0,
                                          "rng_state": None, "history": []})
    with pytest.raises(ValueError, match="invalid training state"):
        train.load_state(path)




@pytest.mark.parametrize("name", ["W", "b", "b_prime", "v_W", "v_b", "v_b_prime"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_load_non_finite_array_raises(saved, tmp_path, name, bad):
    path = tmp_path / "m.npz"
    path.write_bytes(saved[0].read_bytes())
    with np.load(path) as data:
        a = data[name].copy()
    a.flat[len(a.flat) // 2] = bad
    rewrite_model(path, **{name: a})
    with pytest.raises(ModelFileError, match=f"NaN or inf in {name}; the model is unusable"):
        train.load_state(path)


@pytest.mark.parametrize("name", ["W", "v_b"])
@pytest.mark.parametrize("dtype", ["float16", "int64", "complex64", "bool"])
def test_load_wrong_dtype_raises(saved, tmp_path, name, dtype):
    path = tmp_path / "m.npz"
    path.write_bytes(saved[0].read_bytes())
    with np.load(path) as data:
        a = data[name].astype(dtype)
    rewrite_model(path, **{name: a})
    with pytest.raises(ModelFileError, match=f"holds {name} of dtype {dtype}"):
        train.load_state(path)


def test_load_velocity_of_wrong_shape_raises(saved, tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(saved[0].read_bytes())
    rewrite_model(path, v_W=np.zeros((3, 3), np.float32))
    with pytest.raises(ModelFileError, match=r"holds v_W of shape \(3, 3\)"):
        train.load_state(path)


@pytest.mark.parametrize("meta, match", [
    ({"format": "ksparse-checkpoint-2", "version": "9.0"}, "written by a newer ksparse .9.0, model format 2"),
    ({"x_mean": [float("nan")] * 64}, "x_mean must be 64 finite numbers"),
    ({"x_mean": [0.0] * 3}, "x_mean must be 64 finite numbers"),
    ({"epoch": -1}, "epoch must be an integer >= 0"),
    ({"rng_state": {"bit_generator": "nope"}}, "invalid training state"),
    ({"config": dict(CFG, dtype="float64")}, "its config says dtype float64 but W is float32"),
])
def test_load_invalid_meta_raises(saved, tmp_path, meta, match):
    path = tmp_path / "m.npz"
    path.write_bytes(saved[0].read_bytes())
    rewrite_model(path, meta=meta)
    with pytest.raises(ModelFileError, match=match):
        train.load_state(path)


def test_load_newer_format_says_upgrade(saved, tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(saved[0].read_bytes())
    rewrite_model(path, meta={"format": "ksparse-checkpoint-7"})
    with pytest.raises(ModelFileError, match="upgrade ksparse to read it$"):
        load_checkpoint(path)


def test_load_on_missing_gpu_says_gpu_not_invalid_file(saved, monkeypatch):
    import ksparse.backend

    monkeypatch.setattr(ksparse.backend, "gpu_available", lambda: False)
    with pytest.raises(ValueError, match="device 'gpu' needs (CuPy|a CUDA GPU)") as info:
        train.load_state(saved[0], device="gpu")
    assert not isinstance(info.value, ModelFileError) and "model" not in str(info.value)


def test_load_pickled_array_is_refused_without_allow_pickle_advice(saved, tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(saved[0].read_bytes())
    rewrite_model(path, W=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelFileError, match="holds Python objects") as info:
        train.load_state(path)
    assert "allow_pickle" not in str(info.value)


# -- checkpoint_every and resume -------------------------------------------------------------
def test_checkpoint_every_writes_during_training(x, tmp_path):
    path = tmp_path / "ckpt.npz"
    on_disk = []
    train.fit(x, CFG, checkpoint_path=path, checkpoint_every=2,
              callback=lambda r: on_disk.append(train.load_state(path).epoch if path.exists() else None))
    assert on_disk == [None, 2, 2, 4]
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_resume_equals_uninterrupted_training(x, tmp_path):
    whole = train.fit(x, CFG)
    path = tmp_path / "half.npz"
    half = train.fit(x, CFG, epochs=2)
    train.save_state(path, half)
    resumed = train.fit(x, state=train.load_state(path))
    assert resumed.epoch == whole.epoch == 4
    for n in ("W", "b", "b_prime"):
        assert np.array_equal(resumed.params[n], whole.params[n])  # bit-exact on CPU
        assert np.array_equal(resumed.velocity[n], whole.velocity[n])
    assert resumed.history == whole.history


def test_resume_after_crash_equals_uninterrupted_training(x, tmp_path):
    whole = train.fit(x, CFG)
    path = tmp_path / "ckpt.npz"

    def crash(record):
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train.fit(x, CFG, checkpoint_path=path, checkpoint_every=2, callback=crash)
    state = train.load_state(path)
    assert state.epoch == 2
    resumed = train.fit(x, state=state)
    assert np.array_equal(resumed.params["W"], whole.params["W"])


def test_atomic_write_defers_a_signal_until_the_file_is_in_place(tmp_path):
    import signal

    path = tmp_path / "out.bin"

    def write(f):
        f.write(b"first half ")
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives mid-write
        f.write(b"second half")

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, write)
    assert path.read_bytes() == b"first half second half"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_interruptible_atomic_write_stops_at_once_and_keeps_the_old_file(tmp_path):
    import signal

    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    written = []

    def write(f):  # a writer that computes blocks as it writes them (ksparse.blockio)
        for block in (b"first ", b"second ", b"third"):
            f.write(block)
            written.append(block)
            if len(written) == 1:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between two blocks

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, write, interruptible=True)
    assert written == [b"first "] and path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_signal_right_after_a_checkpoint_reports_the_checkpointed_epoch(tmp_path, monkeypatch):
    # Ctrl-C or SIGTERM landing just after model.npz was written: the state fit reports as the
    # last good one is the epoch on disk, not the one before (the CLI said "no epoch had finished")
    x = load_digits().X_train[:200]
    path = tmp_path / "model.npz"
    write = train.save_state

    def write_then_interrupt(p, state):
        write(p, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "save_state", write_then_interrupt)
    with pytest.raises(train.TrainingInterrupted) as caught:
        train.fit(x, {"n_hidden": 12, "k": 3, "max_iter": 5}, checkpoint_path=path, checkpoint_every=1)
    assert caught.value.state.epoch == 1 == train.load_state(path).epoch


def test_resume_may_not_stop_before_the_k_schedule_ends():
    # a run of 4 epochs stopped after 1: its k falls over all 4, so a total of 3 would end on a
    # k larger than the model's; 4 or more continue it
    from sklearn.datasets import load_digits

    from ksparse.config import ConfigError
    from ksparse.estimators.autoencoder import KSparseAutoencoder
    from ksparse.training.loop import extend

    x = load_digits().data[:200] / 16
    state = KSparseAutoencoder(n_hidden=20, k=3, k_start=10, max_iter=1, random_state=0).fit(x).state_
    state.schedule_length = 4
    with pytest.raises(ConfigError, match="4 epochs the run's k and lr schedules span") as e:
        extend(state.copy(), x.shape[1], max_iter=3)
    assert e.value.fix_text(lambda name: "--" + name.replace("_", "-")) == "; give --max-iter 4 or more"
    for total in (4, 9):
        s = state.copy()
        extend(s, x.shape[1], max_iter=total)
        assert s.config.max_iter == total
