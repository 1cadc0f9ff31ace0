"""The support-only step (ksparse.kernels.fast) is held to the plain pairs (ksparse.nn.layers)."""

import multiprocessing
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ksparse.backend import gpu_available
from ksparse.kernels import fast
from ksparse.nn import layers
from ksparse.nn.layers import ksparse_step
from ksparse.nn.optim import sgd_momentum_

KERNELS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    not fast.has_numba(), reason="numba is not installed (the `fast` extra)"))]
# (N, d, H, k): k = H, k = 1, H > d, H < d, a single sample
SHAPES = [(16, 12, 30, 30), (16, 12, 30, 1), (33, 20, 200, 25), (9, 40, 7, 3), (1, 5, 11, 4)]


def _problem(N, d, H, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, d)).astype(dtype)
    W = rng.normal(size=(d, H)).astype(dtype)
    return x, W, rng.normal(size=H).astype(dtype), rng.normal(size=d).astype(dtype)


def _assert_same_support(Gamma, Gamma_ref):
    np.testing.assert_array_equal(np.sort(Gamma, axis=1), np.sort(Gamma_ref, axis=1))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("order", ["C", "F"])
def test_fast_step_equals_layers(kernel, shape, order, one_blas_thread):
    x, W, b, b_prime = _problem(*shape[:3])
    W = np.asarray(W, order=order)
    E_ref, grads_ref, Gamma_ref = ksparse_step(x, W, b, b_prime, shape[3])
    E, grads, Gamma = fast.fast_step(x, W, b, b_prime, shape[3], kernel=kernel)
    _assert_same_support(Gamma, Gamma_ref)
    assert Gamma.shape == (shape[0], shape[3])
    np.testing.assert_allclose(E, E_ref, rtol=1e-10)
    for name in ("W", "b", "b_prime"):
        assert grads[name].shape == grads_ref[name].shape
        assert grads[name].dtype == np.float64
        scale = np.abs(grads_ref[name]).max()
        np.testing.assert_allclose(grads[name], grads_ref[name], rtol=1e-10, atol=1e-13 * scale)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("shape", SHAPES)
def test_fast_train_step_equals_eq11(kernel, shape, one_blas_thread):
    x, W, b, b_prime = _problem(*shape[:3], seed=1)
    k, lr, momentum = shape[3], 0.05, 0.9
    rng = np.random.default_rng(2)
    params = {"W": W, "b": b, "b_prime": b_prime}
    velocity = {n: rng.normal(size=p.shape) for n, p in params.items()}
    ref_params = {n: p.copy() for n, p in params.items()}
    ref_velocity = {n: v.copy() for n, v in velocity.items()}
    for _ in range(2):  # the second call runs on the column-major layout of the first
        E_ref, grads, Gamma_ref = ksparse_step(x, *ref_params.values(), k)
        sgd_momentum_(ref_params, grads, ref_velocity, lr, momentum)
        E, Gamma = fast.fast_train_step_(x, params, velocity, k, lr, momentum, kernel=kernel)
        _assert_same_support(Gamma, Gamma_ref)
        np.testing.assert_allclose(E, E_ref, rtol=1e-10)
        for name in params:
            np.testing.assert_allclose(params[name], ref_params[name], rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(velocity[name], ref_velocity[name], rtol=1e-10, atol=1e-13)
    assert params["W"].flags.f_contiguous and velocity["W"].flags.f_contiguous


@pytest.mark.skipif(not fast.has_numba(), reason="numba is not installed (the `fast` extra)")
@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("shape", SHAPES)
def test_split_over_threads_equals_layers(shape, n_threads, monkeypatch, one_blas_thread):
    # rows and units cut into n ranges, each on its own thread (more threads than rows for N = 1)
    from ksparse.kernels import _cpu

    monkeypatch.setattr(_cpu, "threads_for", lambda N, d, H: n_threads)
    x, W, b, b_prime = _problem(*shape[:3], seed=9)
    k, lr, momentum = shape[3], 0.05, 0.9
    E_ref, grads_ref, Gamma_ref = ksparse_step(x, W, b, b_prime, k)
    E, grads, Gamma = fast.fast_step(x, W, b, b_prime, k, kernel="numba")
    _assert_same_support(Gamma, Gamma_ref)
    np.testing.assert_allclose(E, E_ref, rtol=1e-10)
    for name in ("W", "b", "b_prime"):
        np.testing.assert_allclose(grads[name], grads_ref[name], rtol=1e-10,
                                   atol=1e-13 * np.abs(grads_ref[name]).max())
    _assert_same_support(fast.supp_k(x @ W + b, k, kernel="numba"), Gamma_ref)
    params = {"W": W.copy(), "b": b.copy(), "b_prime": b_prime.copy()}
    velocity = {n: np.full_like(p, 0.01) for n, p in params.items()}
    ref_params = {n: p.copy() for n, p in params.items()}
    ref_velocity = {n: v.copy() for n, v in velocity.items()}
    sgd_momentum_(ref_params, grads_ref, ref_velocity, lr, momentum)
    fast.fast_train_step_(x, params, velocity, k, lr, momentum, kernel="numba")
    for name in params:
        np.testing.assert_allclose(params[name], ref_params[name], rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(velocity[name], ref_velocity[name], rtol=1e-10, atol=1e-13)


@pytest.mark.skipif(not fast.has_numba(), reason="numba is not installed (the `fast` extra)")
def test_split_step_restores_the_blas_thread_count(monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    from ksparse.kernels import _cpu

    monkeypatch.setattr(_cpu, "threads_for", lambda N, d, H: 2)
    x, W, b, b_prime = _problem(20, 10, 30)
    with threadpool_limits(limits=2, user_api="blas"):
        fast.fast_step(x, W, b, b_prime, 3, kernel="numba")
        assert all(p["num_threads"] == 2 for p in threadpool_info() if p["user_api"] == "blas")


def _split_loss(x, W, b, b_prime):
    """The loss of the compiled step split over two threads (run in a forked child)."""
    from ksparse.kernels import _cpu

    _cpu.threads_for = lambda N, d, H: 2
    return fast.fast_step(x, W, b, b_prime, 3, kernel="numba")[0]


@pytest.mark.skipif(not fast.has_numba(), reason="numba is not installed (the `fast` extra)")
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork here")
def test_split_step_runs_in_a_forked_child(monkeypatch):
    # the parent's thread pool does not survive a fork: the child must make its own, not wait forever
    from ksparse.kernels import _cpu

    monkeypatch.setattr(_cpu, "threads_for", lambda N, d, H: 2)
    x, W, b, b_prime = _problem(20, 10, 30)
    E = _split_loss(x, W, b, b_prime)  # starts the parent's pool
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_split_loss, (x, W, b, b_prime)).get(timeout=120) == E


@pytest.mark.parametrize("kernel", KERNELS)
def test_fast_step_float32_matches_layers(kernel, one_blas_thread):
    # mostly negative z: an order-preserving key that mishandles the sign would pick the wrong units
    x, W, b, b_prime = _problem(40, 30, 300, np.float32, seed=3)
    b -= 3
    E_ref, grads_ref, Gamma_ref = ksparse_step(x, W, b, b_prime, 7)
    E, grads, Gamma = fast.fast_step(x, W, b, b_prime, 7, kernel=kernel)
    _assert_same_support(Gamma, Gamma_ref)
    assert grads["W"].dtype == np.float32 and np.asarray(E).dtype == np.float32
    np.testing.assert_allclose(E, E_ref, rtol=1e-5)
    for name in ("W", "b", "b_prime"):
        np.testing.assert_allclose(grads[name], grads_ref[name], rtol=2e-4,
                                   atol=1e-5 * np.abs(grads_ref[name]).max())


def _support_of(z, k, kernel):
    """Gamma of z itself, through the step: W = I and b = 0 make z = x."""
    H = z.shape[1]
    eye = np.eye(H, dtype=z.dtype)
    return fast.fast_step(z, eye, np.zeros(H, z.dtype), np.zeros(H, z.dtype), k, kernel=kernel)[2]


@settings(max_examples=40, deadline=None)
@given(
    dtype=st.sampled_from([np.float32, np.float64]),
    rows=st.lists(st.lists(st.sampled_from([-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0]), min_size=70,
                           max_size=70), min_size=1, max_size=4),
    k=st.integers(1, 70),
    kernel=st.sampled_from(["numba"] if fast.has_numba() else ["numpy"]),
)
def test_support_is_exact_top_k_with_ties(dtype, rows, k, kernel):
    z = np.array(rows, dtype=dtype)
    Gamma = _support_of(z, k, kernel)
    assert Gamma.shape == (z.shape[0], k)
    for row, g in zip(z, Gamma, strict=True):
        assert len(set(g.tolist())) == k and g.min() >= 0 and g.max() < z.shape[1]
        np.testing.assert_array_equal(np.sort(row[g]), np.sort(row)[-k:])


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_supp_k_equals_layers(kernel, dtype):
    z = np.random.default_rng(8).normal(size=(40, 500)).astype(dtype) - 1
    for k in (1, 25, 64, 499, 500):
        Gamma = fast.supp_k(z, k, kernel=kernel)
        assert Gamma.shape == (40, k)
        _assert_same_support(Gamma, layers.supp_k(z, k))
    with pytest.raises(ValueError, match="k must satisfy"):
        fast.supp_k(z, 501)


@pytest.mark.parametrize("kernel", KERNELS)
def test_support_stays_valid_with_nan(kernel):
    z = np.random.default_rng(4).normal(size=(3, 200))
    z[0, ::3] = np.nan
    z[1] = np.nan
    Gamma = _support_of(z, 10, kernel)
    for g in Gamma:
        assert len(set(g.tolist())) == 10 and g.min() >= 0 and g.max() < 200


@pytest.mark.parametrize("kernel", KERNELS)
def test_fast_step_allocates_no_extra_n_by_h_array(kernel, one_blas_thread):
    N, d, H, k = 512, 10, 4000, 5
    x, W, b, b_prime = _problem(N, d, H)
    W = np.asfortranarray(W)
    fast.fast_step(x, W, b, b_prime, k, kernel=kernel)  # compile first
    tracemalloc.start()
    fast.fast_step(x, W, b, b_prime, k, kernel=kernel)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    z_bytes, dW_bytes = N * H * 8, d * H * 8
    # z, dW and O(N d + N k + H) besides; one more (N, H) float array would exceed this
    assert peak < z_bytes + 2 * dW_bytes + 0.5 * z_bytes


def test_fast_step_rejects_bad_input():
    x, W, b, b_prime = _problem(4, 3, 5)
    with pytest.raises(ValueError, match="k must satisfy"):
        fast.fast_step(x, W, b, b_prime, 6)
    with pytest.raises(ValueError, match="k must satisfy"):
        fast.fast_step(x, W, b, b_prime, 0)
    with pytest.raises(ValueError, match="matching d"):
        fast.fast_step(x[:, :2], W, b, b_prime, 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        fast.fast_step(x, W.astype(int), b, b_prime, 2)
    with pytest.raises(ValueError, match="kernel must be one of"):
        fast.fast_step(x, W, b, b_prime, 2, kernel="fortran")


def test_training_uses_the_fast_step_and_matches_the_plain_one(one_blas_thread):
    from ksparse.training.loop import default_step, fit
    from ksparse.training.steps import AutoencoderStep

    assert isinstance(default_step(), AutoencoderStep) and default_step().kernel == "auto"
    x = np.random.default_rng(5).random((60, 16))
    config = {"n_hidden": 24, "k": 4, "k_start": 12, "max_iter": 3, "batch_size": 16,
              "dtype": "float64", "lr": 0.05}
    fast_state = fit(x, config)
    plain_state = fit(x, config, step=AutoencoderStep(kernel="plain"))
    for name in ("W", "b", "b_prime"):
        np.testing.assert_allclose(fast_state.params[name], plain_state.params[name], rtol=1e-8, atol=1e-12)
    for r_fast, r_plain in zip(fast_state.history, plain_state.history, strict=True):
        assert r_fast["loss"] == pytest.approx(r_plain["loss"], rel=1e-10)


@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("shape", SHAPES)
def test_cupy_fast_step_equals_layers(shape):
    from ksparse.backend import to_device, to_numpy

    x, W, b, b_prime = _problem(*shape[:3], seed=6)
    E_ref, grads_ref, Gamma_ref = ksparse_step(x, W, b, b_prime, shape[3])
    dev = [to_device(a, "gpu") for a in (x, np.asfortranarray(W), b, b_prime)]
    E, grads, Gamma = fast.fast_step(*dev, shape[3])
    _assert_same_support(to_numpy(Gamma), Gamma_ref)
    np.testing.assert_allclose(float(E), E_ref, rtol=1e-10)
    for name in ("W", "b", "b_prime"):
        np.testing.assert_allclose(to_numpy(grads[name]), grads_ref[name], rtol=1e-10,
                                   atol=1e-13 * np.abs(grads_ref[name]).max())
    params = {"W": dev[1], "b": dev[2], "b_prime": dev[3]}
    velocity = {n: p * 0 for n, p in params.items()}
    fast.fast_train_step_(dev[0], params, velocity, shape[3], 0.1, 0.9)
    np.testing.assert_allclose(to_numpy(params["W"]), W - 0.1 * grads_ref["W"], rtol=1e-10, atol=1e-13)


@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cupy_topk_is_exact_with_ties(dtype):
    from ksparse.backend import to_device, to_numpy
    from ksparse.kernels import _cupy as _cupy_kernels

    rng = np.random.default_rng(7)
    z = rng.choice([-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0], size=(50, 300)).astype(dtype)
    z[:10] = rng.normal(size=(10, 300))
    for k in (1, 7, 150, 300):
        Gamma = to_numpy(_cupy_kernels.topk(to_device(z, "gpu"), to_device(np.zeros(300, dtype), "gpu"), k))
        for row, g in zip(z, Gamma, strict=True):
            assert len(set(g.tolist())) == k
            np.testing.assert_array_equal(np.sort(row[g]), np.sort(row)[-k:])


@pytest.mark.skipif(not fast.has_numba(), reason="numba is not installed (the `fast` extra)")
def test_small_steps_leave_the_numba_thread_count_alone():
    import numba

    before = numba.get_num_threads()
    x, W, b, b_prime = _problem(4, 3, 5)
    fast.fast_step(x, W, b, b_prime, 2, kernel="numba")
    fast.supp_k(x, 2, kernel="numba")
    assert numba.get_num_threads() == before


def _near_subnormal_model(dtype, N=40, d=30, H=60, seed=3):
    # velocities just above the smallest normal number: one step at m = 0.9 takes every unit
    # off the support (zero gradient) below it
    rng = np.random.default_rng(seed)
    tiny = np.finfo(dtype).tiny
    x = rng.random((N, d)).astype(dtype)
    params = {"W": np.asfortranarray(0.1 * rng.standard_normal((d, H)).astype(dtype)),
              "b": np.zeros(H, dtype), "b_prime": np.zeros(d, dtype)}
    velocity = {n: np.asfortranarray(np.full(p.shape, 1.05 * tiny, dtype)) for n, p in params.items()}
    return x, params, velocity


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_momentum_stores_subnormal_velocities_as_zero(dtype):
    tiny = np.finfo(dtype).tiny
    p, v = {"w": np.ones(4, dtype)}, {"w": np.array([1.05, -1.05, 2.0, 1.05], dtype) * tiny}
    sgd_momentum_(p, {"w": np.array([0, 0, 0, -1e-3], dtype)}, v, lr=0.1, momentum=0.9)
    assert v["w"][0] == 0 and v["w"][1] == 0  # 0.945 tiny: subnormal, stored as 0
    assert v["w"][2] == dtype(0.9) * dtype(2 * tiny)  # 1.8 tiny: normal, kept
    assert v["w"][3] == dtype(0.1) * dtype(1e-3) + dtype(0.9) * dtype(1.05 * tiny)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("openmp", [False, True])
def test_every_fused_update_stores_subnormal_velocities_as_zero(kernel, n_threads, openmp, monkeypatch,
                                                               one_blas_thread):
    # the units off the support: the plain update's 0, in the same place, on every path (pool,
    # serial, OpenMP region, NumPy), and every other entry as the plain update has it
    from ksparse.kernels import _choice, _cpu

    if kernel == "numpy" and (n_threads > 1 or openmp):
        pytest.skip("one NumPy path")
    monkeypatch.setattr(_cpu, "threads_for", lambda N, d, H: n_threads)
    monkeypatch.setattr(_cpu, "OPENMP", openmp and _cpu.OPENMP)
    monkeypatch.setattr(_choice.Choice, "pick", lambda self, paths: paths[0])
    x, params, velocity = _near_subnormal_model(np.float32)
    _, ref_params, ref_velocity = _near_subnormal_model(np.float32)
    E, grads, Gamma = ksparse_step(x, ref_params["W"], ref_params["b"], ref_params["b_prime"], 5)
    sgd_momentum_(ref_params, grads, ref_velocity, 0.01, 0.9)
    fast.fast_train_step_(x, params, velocity, 5, 0.01, 0.9, kernel=kernel)
    off = np.setdiff1d(np.arange(params["W"].shape[1]), Gamma)
    assert off.size > 0
    assert np.all(velocity["W"][:, off] == 0) and np.all(ref_velocity["W"][:, off] == 0)
    tiny = np.finfo(np.float32).tiny
    for name in params:
        assert not np.any((velocity[name] != 0) & (np.abs(velocity[name]) < tiny)), name
        np.testing.assert_allclose(velocity[name], ref_velocity[name], rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(params[name], ref_params[name], rtol=1e-5, atol=1e-7)


@pytest.mark.skipif(not fast.has_numba(), reason="numba is not installed (the `fast` extra)")
def test_lazy_momentum_stores_subnormal_velocities_as_zero():
    from ksparse.kernels.lazy import LazyMomentum

    x, params, velocity = _near_subnormal_model(np.float32)
    lazy = LazyMomentum(params["W"].shape[1], 0.9)
    for _ in range(3):  # idle units: V m^s in closed form, below the smallest normal
        lazy.step_(x, params, velocity, 5, 0.0, 0.9)
    lazy.materialize_(params, velocity)
    tiny = np.finfo(np.float32).tiny
    assert np.any(velocity["W"] == 0)
    assert not np.any((velocity["W"] != 0) & (np.abs(velocity["W"]) < tiny))
