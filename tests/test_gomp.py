"""The fused step's phases as OpenMP regions (ksparse.kernels._gomp) against the thread pool.

The OpenMP path runs the same kernels on the same ranges as the pool of
:mod:`ksparse.kernels._cpu`, so every output must be equal bit for bit wherever each range
holds at least two rows (numpy multiplies a single row with gemv, the OpenMP path with
gemm, which may round differently in the last bit).
"""

import multiprocessing
import threading

import numpy as np
import pytest

from ksparse.kernels import fast

pytestmark = pytest.mark.skipif(not fast.has_numba(), reason="numba is not installed (the `fast` extra)")


@pytest.fixture
def gomp():
    from ksparse.kernels import _blas, _gomp

    if _gomp._libgomp() is None or _blas.gemm(np.float32) is None:
        pytest.skip("libgomp or numpy's cblas_sgemm cannot be loaded here")
    return _gomp


def _model(seed, d=50, H=300):
    rng = np.random.default_rng(seed)
    params = {"W": np.asfortranarray(0.1 * rng.standard_normal((d, H), dtype=np.float32)),
              "b": 0.01 * rng.standard_normal(H, dtype=np.float32),
              "b_prime": 0.1 * rng.standard_normal(d, dtype=np.float32)}
    velocity = {n: np.asfortranarray(np.zeros_like(p)) for n, p in params.items()}
    return params, velocity


def _steps(params, velocity, sizes, pre_bias=False, lr_bound=None, seed=1, k=7):
    """Steps on batches of the given sizes: every return of every step."""
    from ksparse.kernels import _cpu

    rng = np.random.default_rng(seed)
    outs = []
    for N in sizes:
        x = rng.random((N, params["W"].shape[0]), dtype=np.float32)
        outs.append(_cpu.train_step_(x, params, velocity, k, np.float32(0.05), np.float32(0.9),
                                     pre_bias=pre_bias, lr_bound=lr_bound))
    return outs


def _assert_identical(a, b):
    (pa, va, oa), (pb, vb, ob) = a, b
    for name in pa:
        np.testing.assert_array_equal(pa[name], pb[name])
        np.testing.assert_array_equal(va[name], vb[name])
    for step_a, step_b in zip(oa, ob, strict=True):
        for u, w in zip(step_a, step_b, strict=True):
            np.testing.assert_array_equal(u, w)


def _run(monkeypatch, openmp, n_threads, **kw):
    from ksparse.kernels import _cpu

    monkeypatch.setattr(_cpu, "OPENMP", openmp)
    monkeypatch.setattr(_cpu, "threads_for", lambda N, d, H: n_threads)
    params, velocity = _model(0)
    return params, velocity, _steps(params, velocity, **kw)


@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("remedies", [{}, {"pre_bias": True}, {"lr_bound": lambda m: 0.05 / (1 + 0.01 * m)}])
def test_openmp_step_equals_the_pool_bit_for_bit(gomp, monkeypatch, n_threads, remedies):
    # batches of 64, then smaller ones on the same team (a last, partial batch), then 64 again
    from ksparse.kernels import _choice

    monkeypatch.setattr(_choice.Choice, "pick", lambda self, paths: paths[0])  # OpenMP where offered
    used = []
    step = gomp.train_step_
    monkeypatch.setattr(gomp, "train_step_", lambda *a, **kw: used.append(1) or step(*a, **kw))
    sizes = [64, 64, 23, 6, 64]
    pool = _run(monkeypatch, False, n_threads, sizes=sizes, **remedies)
    assert not used
    openmp = _run(monkeypatch, True, n_threads, sizes=sizes, **remedies)
    assert len(used) == len(sizes)
    _assert_identical(openmp, pool)


def test_openmp_step_with_single_row_ranges(gomp, monkeypatch):
    # 3 threads on batches of 2 and 4 rows: empty and one-row ranges, equal to the pool to rounding
    pool = _run(monkeypatch, False, 3, sizes=[4, 2, 4])
    openmp = _run(monkeypatch, True, 3, sizes=[4, 2, 4])
    for name in pool[0]:
        np.testing.assert_allclose(openmp[0][name], pool[0][name], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(openmp[1][name], pool[1][name], rtol=1e-5, atol=1e-6)
    for a, b in zip(openmp[2], pool[2], strict=True):
        np.testing.assert_array_equal(a[1], b[1])  # the same support
        np.testing.assert_allclose(a[2], b[2], rtol=1e-5, atol=1e-6)


def test_openmp_team_follows_the_model(gomp, monkeypatch):
    # a second model (other arrays) gets its own team; the first model's steps are unchanged
    from ksparse.kernels import _cpu

    monkeypatch.setattr(_cpu, "threads_for", lambda N, d, H: 2)
    results = {}
    for openmp in (False, True):
        monkeypatch.setattr(_cpu, "OPENMP", openmp)
        first, second = _model(0), _model(1)
        outs = []
        for _ in range(2):
            outs += _steps(*first, [32]) + _steps(*second, [32])
        results[openmp] = (first, second, outs)
    for a, b in zip(results[True][:2], results[False][:2], strict=True):
        _assert_identical((*a, []), (*b, []))
    for u, w in zip(results[True][2], results[False][2], strict=True):
        for p, q in zip(u, w, strict=True):
            np.testing.assert_array_equal(p, q)


def test_openmp_steps_from_two_threads_at_once(gomp, monkeypatch):
    # one thread holds the team; the other steps on the pool meanwhile: both as if run alone
    from ksparse.kernels import _cpu

    monkeypatch.setattr(_cpu, "threads_for", lambda N, d, H: 2)
    monkeypatch.setattr(_cpu, "OPENMP", False)
    expected = [_steps(*_model(s), [48] * 30, seed=s) for s in (0, 1)]
    monkeypatch.setattr(_cpu, "OPENMP", True)
    got = [None, None]

    def run(s):
        got[s] = _steps(*_model(s), [48] * 30, seed=s)

    threads = [threading.Thread(target=run, args=(s,)) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for s in (0, 1):
        for u, w in zip(got[s], expected[s], strict=True):
            for p, q in zip(u, w, strict=True):
                np.testing.assert_array_equal(p, q)


def test_float64_keeps_to_the_pool(gomp):
    params, velocity = _model(0)
    params = {n: p.astype(np.float64, order="F") for n, p in params.items()}
    WT, b = params["W"].T, params["b"]
    assert gomp.team_for(2, 10, 3, WT, WT, b, b, params["b_prime"]) is None


def _child_step(x):
    """In a forked child: whether the OpenMP path is refused, and a step's loss on two threads."""
    from ksparse.kernels import _cpu, _gomp

    _cpu.threads_for = lambda N, d, H: 2
    params, velocity = _model(0)
    refused = _gomp.team_for(2, 64, 7, params["W"].T, params["W"].T, params["b"], params["b"], None) is None
    return refused, _cpu.train_step_(x, params, velocity, 7, np.float32(0.05), np.float32(0.9))[0]


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork here")
def test_forked_child_keeps_to_the_pool(gomp, monkeypatch):
    # GNU OpenMP is not fork-safe: a child of a process that used it must not call it (it would hang)
    from ksparse.kernels import _cpu

    monkeypatch.setattr(_cpu, "threads_for", lambda N, d, H: 2)
    x = np.random.default_rng(5).random((64, 50), dtype=np.float32)
    params, velocity = _model(0)
    E = _cpu.train_step_(x, params, velocity, 7, np.float32(0.05), np.float32(0.9))[0]
    assert gomp._TEAMS  # the parent used OpenMP
    with multiprocessing.get_context("fork").Pool(1) as pool:
        refused, E_child = pool.apply_async(_child_step, (x,)).get(timeout=120)
    assert refused and E_child == E


def test_choice_takes_the_fastest_path_and_probes_the_others():
    # the first path until another is measured; then the lowest median of recent seconds per row,
    # with every PROBE-th step on another path, in turn
    from ksparse.kernels import _choice

    choice, paths = _choice.Choice(), ("openmp", "pool", "serial")
    picks = [choice.pick(paths) for _ in range(2 * _choice.PROBE)]
    assert set(picks[:-1]) - {picks[_choice.PROBE - 1]} == {"openmp"}
    assert {picks[_choice.PROBE - 1], picks[-1]} == {"pool", "serial"}  # both probed, in turn
    for _ in range(_choice.RECENT):
        choice.record("openmp", 2.0, 64)
        choice.record("pool", 1.5, 64)
        choice.record("serial", 1.0, 64)  # the serial path is the fastest now
    picks = [choice.pick(paths) for _ in range(2 * _choice.PROBE)]
    assert picks.count("serial") == len(picks) - 2
    for _ in range(_choice.RECENT):
        choice.record("pool", 0.5, 64)
    assert choice.pick(paths) == "pool" and choice.pick(("serial",)) == "serial"


def test_every_path_gives_the_same_step(gomp, monkeypatch):
    # OpenMP, the pool and the ranges one after the other in one thread: the same numbers
    from ksparse.kernels import _choice

    results = []
    for path in ("openmp", "pool", "serial"):
        monkeypatch.setattr(_choice.Choice, "pick", lambda self, paths, path=path: path)
        results.append(_run(monkeypatch, True, 2, sizes=[64, 40, 64], pre_bias=True))
    _assert_identical(results[0], results[1])
    _assert_identical(results[0], results[2])


def test_libgomp_loaded_with_a_short_spin_and_the_environment_restored():
    # GOMP_SPINCOUNT is set only while libgomp loads, and a user's own setting is left alone
    import os
    import subprocess
    import sys

    code = ("import os; from ksparse.kernels import _gomp; ok = _gomp._libgomp() is not None; "
            "print(ok, os.environ.get('GOMP_SPINCOUNT'))")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    if out.stdout.split()[0] != "True":
        pytest.skip("libgomp cannot be loaded here")
    assert out.stdout.split()[1] == "None"
    env["GOMP_SPINCOUNT"] = "12345"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[1] == "12345"


def test_team_does_not_keep_a_dropped_model(gomp, monkeypatch):
    # the team holds weak references to the model's arrays and goes when W goes
    import gc
    import weakref

    from ksparse.kernels import _cpu

    monkeypatch.setattr(_cpu, "threads_for", lambda N, d, H: 2)
    params, velocity = _model(0)
    _steps(params, velocity, [32])
    team = weakref.ref(gomp._TEAMS[2])
    W = weakref.ref(params["W"])
    del params, velocity
    gc.collect()
    assert W() is None and team() is None and 2 not in gomp._TEAMS


def test_small_products_run_on_one_blas_thread(monkeypatch):
    # below PARALLEL_WORK the step runs in one thread, and so does BLAS (a woken BLAS pool cost
    # more than it saved, and on a busy machine a fit on small data took ten times as long)
    from threadpoolctl import threadpool_info, threadpool_limits

    from ksparse.kernels import _cpu

    _cpu._blas_libraries.cache_clear()  # every BLAS loaded by now (the list is kept from the first step)
    seen = []
    matmul = np.matmul

    def spy(*args, **kw):
        seen.append({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})
        return matmul(*args, **kw)

    params, velocity = _model(0)
    with threadpool_limits(limits=2, user_api="blas"):
        monkeypatch.setattr(np, "matmul", spy)
        _steps(params, velocity, [16])  # 16 x 50 x 300 multiply-adds: far below PARALLEL_WORK
        monkeypatch.setattr(np, "matmul", matmul)
        assert seen and all(s == {1} for s in seen)
        assert all(p["num_threads"] == 2 for p in threadpool_info() if p["user_api"] == "blas")  # restored
