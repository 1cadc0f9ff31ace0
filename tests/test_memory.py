"""ksparse.training.memory: a run that cannot fit is refused before allocating, with both numbers."""

import numpy as np
import pytest

import ksparse.training.memory as memory
from ksparse.backend import available_memory
from ksparse.errors import NotEnoughMemoryError
from ksparse.estimators.autoencoder import KSparseAutoencoder
from ksparse.training import loop as train


def test_training_bytes_counts_weights_velocities_and_one_batch_of_z():
    parts = memory.training_bytes(d=10, n_hidden=20, batch_size=8, dtype="float32")
    assert parts["weights"] == parts["velocities"] == (10 * 20 + 20 + 10) * 4
    assert parts["z"] == 8 * 20 * 4
    assert parts["total"] == 2 * 230 * 4 + 640
    assert memory.training_bytes(10, 20, 8, "float64")["total"] == 2 * parts["total"]


def test_check_memory_names_need_available_and_the_one_option_to_lower():
    with pytest.raises(NotEnoughMemoryError,
                       match=r"needs about 805 MB .* float32 .* but only 500 MB is available on the cpu; "
                             r"lower n_hidden$"):
        memory.check_memory(1000, 100_000, 10, "float32", available=500_000_000)
    with pytest.raises(NotEnoughMemoryError, match="lower batch_size$"):
        memory.check_memory(10, 100_000, 10_000, "float32", available=1_000_000_000)
    assert memory.check_memory(10, 10, 10, "float32", available=10**9) == memory.training_bytes(
        10, 10, 10, "float32")["total"]


def test_available_memory_is_a_positive_byte_count_here():
    free = available_memory("cpu")
    assert free is None or free > 0


def test_hundred_million_hidden_units_refused_before_any_allocation(monkeypatch):
    allocated = []
    monkeypatch.setattr(train, "init_params", lambda *a, **k: allocated.append(a))
    monkeypatch.setattr(memory, "available_memory", lambda device: 24 * 10**9)  # this project's machines
    with pytest.raises(NotEnoughMemoryError, match="but only .* is available"):
        train.new_state(64, {"n_hidden": 100_000_000, "k": 5, "k_start": 5})
    assert not allocated


def test_estimator_fit_checks_memory_first(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda device: 1000)
    X = np.random.default_rng(0).random((20, 8))
    with pytest.raises(NotEnoughMemoryError, match=r"lower n_hidden$"):
        KSparseAutoencoder(n_hidden=50, k=2, k_start=2, max_iter=1, batch_size=4).fit(X)
    assert not hasattr(KSparseAutoencoder(), "state_")
