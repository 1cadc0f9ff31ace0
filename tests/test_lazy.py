"""Lazy momentum (ksparse.kernels.lazy) is held to the plain update, Eq. (11) on every unit."""

import copy

import numpy as np
import pytest

from ksparse.kernels.fast import has_numba
from ksparse.nn.layers import ksparse_step
from ksparse.nn.optim import sgd_momentum_

pytestmark = pytest.mark.skipif(not has_numba(), reason="lazy momentum needs numba (the `fast` extra)")


def _problem(seed=0, N=4, d=9, H=60):
    rng = np.random.default_rng(seed)
    params = {"W": np.asfortranarray(rng.normal(0, 0.3, (d, H))), "b": rng.normal(0, 0.1, H),
              "b_prime": rng.normal(0, 0.1, d)}
    velocity = {n: rng.normal(0, 0.05, a.shape) for n, a in params.items()}
    velocity["W"] = np.asfortranarray(velocity["W"])
    return rng.normal(size=(12, N, d)), params, velocity


def _assert_close(got, want):
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("pre_bias", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_lazy_momentum_equals_the_plain_update(pre_bias, n_threads, monkeypatch, one_blas_thread):
    from ksparse.kernels import _cpu
    from ksparse.kernels.lazy import LazyMomentum

    monkeypatch.setattr(_cpu, "threads_for", lambda N, d, H: n_threads)
    batches, params, velocity = _problem()
    want_p, want_v = copy.deepcopy(params), copy.deepcopy(velocity)
    lazy, lr, m, k = LazyMomentum(60, 0.9), 0.02, 0.9, 3
    came_back = False
    for x in batches:
        E_want, grads, Gamma_want = ksparse_step(x, *want_p.values(), k, pre_bias=pre_bias)
        sgd_momentum_(want_p, grads, want_v, lr, m)
        idle = lazy.t - lazy.last
        E, Gamma, _ = lazy.step_(x, params, velocity, k, lr, m, pre_bias=pre_bias)
        came_back |= bool((idle[np.unique(Gamma)] >= 2).any())
        assert np.array_equal(np.sort(Gamma, axis=1), np.sort(Gamma_want, axis=1))
        np.testing.assert_allclose(E, E_want, rtol=1e-10)
        np.testing.assert_allclose(lazy.norms2(params["W"]), (want_p["W"] ** 2).sum(axis=0), rtol=1e-9)
        p, v, state = copy.deepcopy((params, velocity, lazy))  # what a checkpoint would save now
        state.materialize_(p, v)
        _assert_close(p, want_p)
        _assert_close(v, want_v)
    assert came_back and (lazy.t - lazy.last).max() >= 3  # units went idle and came back
    lazy.materialize_(params, velocity)
    _assert_close(params, want_p)
    _assert_close(velocity, want_v)
    assert lazy.t == 0 and not lazy.last.any()


def test_lazy_momentum_refuses_a_changed_momentum():
    from ksparse.kernels.lazy import LazyMomentum

    batches, params, velocity = _problem(1)
    state = LazyMomentum(60, 0.9)
    state.step_(batches[0], params, velocity, 3, 0.02, 0.9)
    with pytest.raises(ValueError, match="momentum changed"):
        state.step_(batches[1], params, velocity, 3, 0.02, 0.5)


def test_fit_with_lazy_momentum_saves_the_plain_model(tmp_path):
    # a whole fit (D9, resampling of dead units) and its checkpoint, lazy against plain, float64
    from ksparse.training.loop import fit, load_state
    from ksparse.training.remedies import DeadTracker, RemedyStep

    x = np.random.default_rng(3).normal(size=(96, 8))
    config = {"n_hidden": 40, "k": 3, "batch_size": 4, "max_iter": 2, "dtype": "float64", "dead_window": 24}
    states = {}
    for lazy in (False, True):
        step = RemedyStep(DeadTracker(40, 24), lazy=lazy)
        states[lazy] = fit(x, config, step=step, checkpoint_path=str(tmp_path / f"{lazy}.npz"))
        assert step._lazy is None  # materialised at the end of each epoch
    assert states[True].history[-1]["resampled"] > 0
    for lazy in (False, True):
        saved = load_state(str(tmp_path / f"{lazy}.npz"))
        for store in ("params", "velocity"):
            for name, want in getattr(states[False], store).items():
                np.testing.assert_allclose(getattr(saved, store)[name], want, rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose([h["loss"] for h in states[True].history],
                               [h["loss"] for h in states[False].history], rtol=1e-9)
