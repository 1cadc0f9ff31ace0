"""ksparse.testing: the gradient checker, run over the registry of every pair in ksparse.nn."""

import inspect

import numpy as np
import pytest

from ksparse.nn import baselines, layers, supervised
from ksparse.nn.layers import encode_backward, encode_forward, ksparse_step
from ksparse.testing import REGISTRY, check_grad, numeric_grad, relative_error
from ksparse.testing.pairs import kink_gap

TOLERANCE = 1e-7  # relative error; a wrong factor or sign gives O(1)


@pytest.mark.parametrize("case", REGISTRY, ids=lambda c: c.name)
def test_check_grad_every_registered_pair(case):
    result = check_grad(*case.build())
    assert any(e is not None for e in result.errors)
    assert result.max_error < TOLERANCE, f"{case.name}: relative errors {result.errors}"


def test_registry_covers_every_pair_and_step_in_nn():
    covered = {f for case in REGISTRY for f in case.covers}
    for module in (layers, supervised, baselines):
        for name, f in inspect.getmembers(module, inspect.isfunction):
            if f.__module__ == module.__name__ and name.endswith(("_forward", "_backward", "_step")):
                assert f in covered, f"{module.__name__}.{name} has no case in ksparse.testing.pairs.REGISTRY"


def test_registry_has_shapes_with_more_hidden_units_than_inputs():
    names = [c.name for c in REGISTRY]
    for pair in ("encode", "decode", "select_k3", "ksparse_step_k3", "sparse_layer", "ae_step_dropout_relu"):
        assert any(n.startswith(pair) and n.endswith("_d3_H12") for n in names), pair


def test_check_grad_catches_a_wrong_backward():
    rng = np.random.default_rng(0)
    inputs = (rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=5))

    def half_db(dz, cache):
        dx, dW, db = encode_backward(dz, cache)
        return dx, dW, db / 2

    result = check_grad(encode_forward, half_db, inputs)
    assert result.errors[0] < TOLERANCE and result.errors[1] < TOLERANCE
    assert result.errors[2] == pytest.approx(1 / 3, rel=1e-4) and result.max_error == result.errors[2]


def test_check_grad_rejects_a_backward_of_the_wrong_form():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="2 gradients for 1 inputs"):
        check_grad(lambda x: (x * 2, None), lambda dout, c: (dout, dout), [x])
    with pytest.raises(ValueError, match="shape"):
        check_grad(lambda x: (x * 2, None), lambda dout, c: dout[0], [x])


def test_check_grad_works_in_float64_and_leaves_inputs_alone():
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    seen = []

    def forward(v):
        seen.append(v.dtype)
        return v ** 3, v

    result = check_grad(forward, lambda dout, v: 3 * v ** 2 * dout, [x])
    assert set(seen) == {np.dtype(np.float64)} and result.max_error < TOLERANCE
    assert x.dtype == np.float32 and x[0, 0] == -1


def test_numeric_grad_and_relative_error():
    v = np.array([1.0, 2.0])
    np.testing.assert_allclose(numeric_grad(lambda: float((v ** 2).sum()), v), [2.0, 4.0], rtol=1e-8)
    assert v.tolist() == [1.0, 2.0]
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([1.0]), np.array([-1.0])) == 1.0


@pytest.mark.parametrize("shape", [(6, 10, 8, 3), (5, 4, 15, 4), (3, 5, 9, 9)])
def test_ksparse_step_matches_torch_autograd(shape):
    """Sec. 2.2 steps 1-3 with torch.topk and autograd, in float64: the same loss and gradients."""
    torch = pytest.importorskip("torch")
    N, d, H, k = shape
    rng = np.random.default_rng(N * d * H)
    x, W, b, b_prime = (rng.normal(size=s) for s in ((N, d), (d, H), H, d))
    assert kink_gap(x @ W + b, k) > 1e-6  # torch.topk and supp_k pick the same units
    E, grads, _ = ksparse_step(x, W, b, b_prime, k)
    t = {n: torch.tensor(a, dtype=torch.float64, requires_grad=True)
         for n, a in (("W", W), ("b", b), ("b_prime", b_prime))}
    z = torch.tensor(x) @ t["W"] + t["b"]
    idx = torch.topk(z, k, dim=1).indices
    z_k = torch.zeros_like(z).scatter(1, idx, z.gather(1, idx))
    x_hat = z_k @ t["W"].T + t["b_prime"]
    loss = ((x_hat - torch.tensor(x)) ** 2).sum() / N
    loss.backward()
    assert float(E) == pytest.approx(loss.item(), rel=1e-12)
    for name in t:
        np.testing.assert_allclose(grads[name], t[name].grad.numpy(), rtol=1e-10, atol=1e-12)
