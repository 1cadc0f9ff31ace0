"""ksparse.parallel: Dask encoding and the data-parallel step, held to the in-memory, single-process paths."""

import numpy as np
import pytest

from ksparse.kernels.encode import encode
from ksparse.kernels.fast import fast_step
from ksparse.nn.layers import ksparse_step
from ksparse.nn.optim import sgd_momentum_
from ksparse.parallel.data_parallel import DaskDataParallelStep, combine, shard_gradient
from ksparse.training.loop import fit
from ksparse.training.steps import AutoencoderStep, StepSettings

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


def _problem(seed=0, N=640, d=30, H=50):
    rng = np.random.default_rng(seed)
    x = rng.random((N, d))
    params = {"W": rng.normal(0, 0.1, (d, H)), "b": rng.normal(0, 0.01, H), "b_prime": np.zeros(d)}
    return x, params


def test_encode_dask_is_lazy_and_equals_in_memory():
    from ksparse.parallel.dask_encode import encode_dask

    x, p = _problem(N=1000)
    X = da.from_array(x, chunks=(300, 7))
    h = encode_dask(X, p["W"], p["b"], 5, 2.0)
    assert isinstance(h, da.Array) and h.shape == (1000, 50) and h.chunks[0] == (300, 300, 300, 100)
    np.testing.assert_array_equal(h.compute(), encode(x, p["W"], p["b"], 5, 2.0, block_rows=300))
    index, value = encode_dask(X, p["W"], p["b"], 5, 2.0, output="topk")
    assert isinstance(index, da.Array) and index.shape == value.shape == (1000, 10)
    import dask

    index, value = dask.compute(index, value)
    expected = encode(x, p["W"], p["b"], 5, 2.0, output="topk", block_rows=300)
    np.testing.assert_array_equal(index, expected[0])
    np.testing.assert_array_equal(value, expected[1])


def test_encode_dask_rejects_sparse_output():
    from ksparse.parallel.dask_encode import encode_dask

    x, p = _problem(N=10)
    with pytest.raises(ValueError, match="output must be one of"):
        encode_dask(da.from_array(x), p["W"], p["b"], 5, output="sparse")


@pytest.mark.parametrize("n_shards", [1, 2, 3])
def test_shard_gradients_combine_to_the_plain_step(n_shards):
    """Shards' support-only gradients, summed, equal D1-D8 of the whole minibatch (float64)."""
    x, p = _problem(N=64)
    parts = [shard_gradient(s, (p["W"], p["b"], p["b_prime"]), 5, 64) for s in np.array_split(x, n_shards)]
    E, grads, Gamma = combine(parts, p, 64)
    E0, grads0, Gamma0 = ksparse_step(x, p["W"], p["b"], p["b_prime"], 5)
    np.testing.assert_allclose(E, E0, rtol=1e-12)
    for name in grads0:
        np.testing.assert_allclose(grads[name], grads0[name], rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(np.sort(Gamma, axis=1), np.sort(Gamma0, axis=1))


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def test_data_parallel_training_equals_single_process_float64(client):
    """Ten steps on a 2-worker LocalCluster equal ten single-process steps on the same minibatches."""
    x, p = _problem()
    q = {n: a.copy() for n, a in p.items()}
    vp, vq = ({n: np.zeros_like(a) for n, a in p.items()} for _ in range(2))
    step = DaskDataParallelStep(client)
    for start in range(0, 640, 64):
        xb = x[start:start + 64]
        out = step((xb,), p, vp, StepSettings(lr=0.01, momentum=0.9, k=5))
        E1, Gamma1 = out.loss, out.active
        E2, grads, Gamma2 = fast_step(xb, q["W"], q["b"], q["b_prime"], 5)
        sgd_momentum_(q, grads, vq, 0.01, 0.9)
        np.testing.assert_allclose(E1, E2, rtol=1e-12)
        np.testing.assert_array_equal(np.sort(Gamma1, axis=1), np.sort(Gamma2, axis=1))
    for name in p:
        np.testing.assert_allclose(p[name], q[name], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(vp[name], vq[name], rtol=1e-9, atol=1e-14)


def test_fit_with_the_data_parallel_step_equals_single_process_fit(client):
    """ksparse.training.loop.fit with the Dask step: the same run as the plain single-process step."""
    x, _ = _problem(N=300, d=12)
    cfg = {"n_hidden": 20, "k": 4, "k_start": 8, "max_iter": 3, "batch_size": 40, "dtype": "float64"}
    a = fit(x, cfg, step=DaskDataParallelStep(client))
    b = fit(x, cfg, step=AutoencoderStep(kernel="plain"))
    for name in a.params:
        np.testing.assert_allclose(a.params[name], b.params[name], rtol=1e-10, atol=1e-13)
    for ra, rb in zip(a.history, b.history, strict=True):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-10)
        assert ra["dead_fraction"] == rb["dead_fraction"]
