"""Smoke tests of the benchmark scripts' pieces (no timing is asserted)."""

import numpy as np
import pytest

from benchmarks import common, run_all, step


def test_ratios_are_per_round_medians():
    times = {"base": np.array([1.0, 2.0, 4.0]), "other": np.array([2.0, 4.0, 8.0])}
    res = common.ratios(times, "base")
    assert res["other"]["ratio"] == pytest.approx(2.0)
    assert res["base"]["ratio"] == pytest.approx(1.0)
    assert res["other"]["ms"] == pytest.approx(4000.0)


def test_interleaved_calls_every_method_each_round():
    calls = {"a": 0, "b": 0}

    def bump(name):
        calls[name] += 1

    times = common.interleaved({"a": lambda: bump("a"), "b": lambda: bump("b")}, rounds=3, warmup=1)
    assert calls == {"a": 4, "b": 4}
    assert all(t.shape == (3,) for t in times.values())


def test_step_methods_run_on_a_small_shape(one_blas_thread):
    x, params = step._problem(8, 30, np.float64)
    fns = step.make_steps(x, params, with_torch=False)
    assert "one product x @ W" in fns and "dense masked step" in fns
    for f in fns.values():
        f()


def test_targets_read_the_stored_figures():
    methods = {"one product x @ W": {"ratio": 1.0}, "ksparse (numba)": {"ratio": 2.5},
               "PyTorch TopK": {"ratio": 7.5}}
    results = {"step": {"cases": [{"dtype": "float32", "N": 128, "H": 1000, "methods": methods}]}}
    rows = run_all.targets(results)
    assert ("float32 step, batch 128, H=1000: at most 3.0× one product", "2.50×", True) in rows
    assert any("PyTorch" in t and v == "3.00×" and ok for t, v, ok in rows)
