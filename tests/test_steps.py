"""The step contract (ksparse.training.steps) and the one epoch loop (ksparse.training.epoch)."""

import ast
import pathlib

import numpy as np
import pytest

from ksparse.kernels import fast
from ksparse.nn.layers import ksparse_step
from ksparse.nn.optim import sgd_momentum_
from ksparse.nn.supervised import network_step
from ksparse.training.epoch import index_blocks, minibatches, run_epoch
from ksparse.training.finetune import init_network
from ksparse.training.steps import (
    AutoencoderStep,
    BaselineStep,
    NetworkStep,
    Step,
    StepOutput,
    StepSettings,
)

KERNELS = ["plain", "numpy", pytest.param("numba", marks=pytest.mark.skipif(
    not fast.has_numba(), reason="numba is not installed (the `fast` extra)"))]
ROOT = pathlib.Path(__file__).resolve().parents[1] / "ksparse"


def _autoencoder(N=24, d=10, H=30, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, d))
    params = {"W": rng.normal(size=(d, H)), "b": rng.normal(size=H), "b_prime": rng.normal(size=d)}
    velocity = {n: rng.normal(size=p.shape) for n, p in params.items()}
    return x, params, velocity


def _copy(d):
    return {n: a.copy() for n, a in d.items()}


@pytest.mark.parametrize("kernel", KERNELS)
def test_autoencoder_step_call_is_forward_backward_then_eq11(kernel, one_blas_thread):
    x, params, velocity = _autoencoder()
    ref_p, ref_v = _copy(params), _copy(velocity)
    settings = StepSettings(lr=0.05, momentum=0.9, k=4)
    step = AutoencoderStep(kernel)
    for _ in range(2):
        out = step((x,), params, velocity, settings)
        E, grads, Gamma = ksparse_step(x, ref_p["W"], ref_p["b"], ref_p["b_prime"], 4)
        sgd_momentum_(ref_p, grads, ref_v, 0.05, 0.9)
        np.testing.assert_allclose(out.loss, E, rtol=1e-10)
        np.testing.assert_array_equal(np.sort(out.active, axis=1), np.sort(Gamma, axis=1))
        for n in params:
            np.testing.assert_allclose(params[n], ref_p[n], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(velocity[n], ref_v[n], rtol=1e-10, atol=1e-12)
    assert step.name == "ksparse" and step.kernel == kernel


def test_autoencoder_step_forward_backward_writes_nothing():
    x, params, _ = _autoencoder()
    before = _copy(params)
    out, grads = AutoencoderStep("numpy").forward_backward((x,), params, StepSettings(0.1, 0.9, k=3))
    assert isinstance(out, StepOutput) and set(grads) == {"W", "b", "b_prime"}
    for n in params:
        np.testing.assert_array_equal(params[n], before[n])


def test_autoencoder_step_rejects_an_unknown_kernel():
    with pytest.raises(ValueError, match="kernel must be one of"):
        AutoencoderStep("fortran")


def test_network_step_updates_only_the_trainable_layers():
    rng = np.random.default_rng(1)
    params = init_network(8, 3, [12, 10], rng=rng, dtype="float64")
    h1 = rng.normal(size=(20, 12))  # the input of layer 2
    y = rng.integers(0, 3, 20)
    step = NetworkStep([4, 3], first=2)
    velocity = {n: np.zeros_like(params[n]) for n in ("W2", "b2", "W_out", "b_out")}
    frozen, ref = _copy({n: params[n] for n in ("W1", "b1")}), _copy(params)
    out = step((h1, y), params, velocity, StepSettings(lr=0.5, momentum=0.0))
    E, grads = network_step(h1, y, ref, [4, 3], first=2)
    assert float(out.loss) == pytest.approx(float(E)) and out.active is None
    for n in frozen:
        np.testing.assert_array_equal(params[n], frozen[n])
    for n in velocity:
        np.testing.assert_allclose(params[n], ref[n] - 0.5 * grads[n], rtol=1e-12)


def test_network_step_noise_is_s6_with_fresh_masks_repeatable_under_the_seed():
    rng = np.random.default_rng(3)
    params = init_network(8, 3, [12], rng=rng, dtype="float64")
    x, y = rng.normal(size=(20, 8)), rng.integers(0, 3, 20)
    step = NetworkStep([None], p_input=0.2, p_hidden=0.5, random_state=7)
    masks = step.masks(x, params)
    assert set(masks) == {0, 1} and masks[0].shape == (20, 8) and masks[1].shape == (20, 12)
    assert set(np.unique(masks[0])) <= {0.0, 1 / 0.8} and set(np.unique(masks[1])) <= {0.0, 2.0}
    out, grads = step.forward_backward((x, y), params, StepSettings(0.1, 0.0))
    E, expected = network_step(x, y, params, [None], 1, NetworkStep([None], p_input=0.2, p_hidden=0.5,
                                                                     random_state=7).masks(x, params))
    assert float(out.loss) != pytest.approx(float(E))  # the step drew new masks after the first
    again = NetworkStep([None], p_input=0.2, p_hidden=0.5, random_state=7)
    again.masks(x, params)
    E2, grads2 = again.forward_backward((x, y), params, StepSettings(0.1, 0.0))
    assert float(E2.loss) == float(out.loss)  # the same seed, the same masks
    for n in grads:
        np.testing.assert_array_equal(grads[n], grads2[n])
    clean = NetworkStep([None])
    assert clean.masks(x, params) is None
    with pytest.raises(ValueError, match="p_hidden must satisfy 0 <= p_hidden < 1"):
        NetworkStep([None], p_hidden=1.0)


def test_baseline_step_reports_units_that_fired():
    x, params, velocity = _autoencoder(seed=2)
    params["b"][:5] = -100.0  # units 0-4 never fire
    out = BaselineStep("relu")((x,), params, velocity, StepSettings(0.0, 0.0))
    assert out.active.ndim == 1 and not set(range(5)) & set(out.active.tolist())


def test_index_blocks_cover_a_permutation_with_a_short_last_block():
    blocks = list(index_blocks(10, 4, np.random.default_rng(0)))
    assert [len(b) for b in blocks] == [4, 4, 2]
    assert sorted(np.concatenate(blocks).tolist()) == list(range(10))
    again = list(index_blocks(10, 4, np.random.default_rng(0)))
    assert all(np.array_equal(a, b) for a, b in zip(blocks, again, strict=True))


def test_minibatches_keep_arrays_aligned_by_rows():
    x = np.arange(20).reshape(10, 2)
    y = np.arange(10) * 10
    for xb, yb in minibatches((x, y), index_blocks(10, 3, np.random.default_rng(1))):
        np.testing.assert_array_equal(xb[:, 0] * 5, yb)


class Recording(Step):
    """A step that reports fixed numbers: loss = first entry of each row, one metric, one unit."""

    name = "recording"

    def forward_backward(self, batch, params, settings):
        (x,) = batch
        return StepOutput(x[:, 0].mean(), np.array([int(x[0, 1])]), {"twice": 2 * x[:, 0].mean()}), {}


def test_run_epoch_weights_losses_by_rows_and_counts_dead_units():
    x = np.stack([np.arange(7.0), np.zeros(7)], axis=1)
    x[:, 1] = [0, 0, 0, 0, 2, 2, 2]  # blocks of 4 and 3 rows, in order: units 0 and 2 fire
    batches = minibatches((x,), [np.arange(4), np.arange(4, 7)])
    record = run_epoch(Recording(), batches, {}, {}, StepSettings(0.1, 0.9), n_hidden=4)
    assert record["loss"] == pytest.approx(3.0)  # the mean of 0..6, not the mean of the two means
    assert record["twice"] == pytest.approx(6.0)
    assert record["dead_fraction"] == pytest.approx(0.5)


def test_run_epoch_with_no_rows_says_so():
    with pytest.raises(ValueError, match="no rows"):
        run_epoch(Recording(), [], {}, {}, StepSettings(0.1, 0.9))


def _calls(path, name):
    tree = ast.parse(path.read_text())
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and (
        getattr(n.func, "attr", None) == name or getattr(n.func, "id", None) == name)]


def _momentum_products(path):
    """Products and in-place products with a name containing 'momentum' (Eq. 11's m v)."""
    names = lambda n: {getattr(m, "id", getattr(m, "attr", "")) for m in ast.walk(n)}  # noqa: E731
    return [n for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, (ast.BinOp, ast.AugAssign)) and isinstance(n.op, ast.Mult)
            and any("momentum" in name for name in names(n))]


def test_no_module_restates_the_epoch_loop_or_eq11():
    """Minibatch orders are drawn in training/epoch.py only; Eq. (11) is written in
    nn/optim.py and, fused, in the compiled kernels (held to it by tests/test_fast.py)."""
    training = [p for p in (ROOT / "training").glob("*.py")]
    drawing = {p.name for p in training if _calls(p, "permutation")}
    assert drawing == {"epoch.py"}
    restating = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.py") if _momentum_products(p)}
    assert restating <= {"nn/optim.py", "kernels/_numba.py", "kernels/_cupy.py"}
