"""The registry of every forward/backward pair and step function in :mod:`ksparse.nn`.

Each :class:`GradCase` builds ``(forward, backward, inputs)`` for
:func:`ksparse.testing.check_grad`, in float64, on inputs drawn away from every kink
(top-k ties, ReLU's zero). Shapes include H > d. A pair or step added to ``ksparse.nn``
gets its cases here; ``tests/test_testing.py`` fails while one is missing.
"""

import dataclasses
import functools
import math

import numpy as np

from ksparse.nn import baselines, layers, supervised

MARGIN = 1e-3  # smallest distance of an input to a kink, far above check_grad's eps
SHAPES = [(5, 10, 6), (4, 3, 12)]  # (N, d, H): H < d and H > d


@dataclasses.dataclass(frozen=True)
class GradCase:
    """One gradient check: ``build() -> (forward, backward, inputs)``.

    ``covers`` names the library functions the case checks (for the registry's coverage).
    """

    name: str
    covers: tuple
    build: object = dataclasses.field(repr=False)


def kink_gap(z, k):
    """Smallest gap, over the rows of z, between the k-th and (k+1)-th largest entries."""
    if k >= z.shape[1]:
        return math.inf
    s = -np.sort(-z, axis=1)
    return float((s[:, k - 1] - s[:, k]).min())


def _draw(rng, make, gap, tries=200):
    """``make(rng)`` until ``gap(drawn) > MARGIN``; raise when no draw qualifies."""
    for _ in range(tries):
        drawn = make(rng)
        if gap(drawn) > MARGIN:
            return drawn
    raise AssertionError("no draw far enough from the kinks; change the case's shape or seed")


def _normal(rng, *shapes):
    return [rng.normal(size=s) for s in shapes]


def _xWb(rng, N, d, H, k=None, with_b_prime=False):
    """x (N, d), W (d, H), b (H,) [, b_prime (d,)], with z = x W + b at least MARGIN from
    a top-k tie when ``k`` is given."""
    shapes = [(N, d), (d, H), H] + ([d] if with_b_prime else [])
    gap = (lambda a: math.inf) if k is None else (lambda a: kink_gap(a[0] @ a[1] + a[2], k))
    return _draw(rng, lambda r: _normal(r, *shapes), gap)


def _encode(shape, params_only=False):
    inputs = _xWb(np.random.default_rng(sum(shape)), *shape)
    if params_only:
        return layers.encode_forward, lambda dz, c: (None, *baselines.encode_params_backward(dz, c)), inputs
    return layers.encode_forward, layers.encode_backward, inputs


def _decode(shape):
    N, d, H = shape
    rng = np.random.default_rng(sum(shape))
    z_k = rng.normal(size=(N, H)) * (rng.random((N, H)) < 0.5)
    return layers.decode_forward, layers.decode_backward, [z_k, *_normal(rng, (d, H), d)]


def _select(shape, k):
    N, _, H = shape
    rng = np.random.default_rng(sum(shape) + k)
    z = _draw(rng, lambda r: r.normal(size=(N, H)), lambda z: kink_gap(z, k))
    return lambda z: layers.select_forward(z, k), layers.select_backward, [z]


def _mse():
    return layers.mse_forward, layers.mse_backward, _normal(np.random.default_rng(1), (4, 3), (4, 3))


def _ksparse_step(shape, k, pre_bias=False):
    """The composite step; with ``pre_bias`` (D9) z = (x - b') W + b is kept off the kinks."""
    rng = np.random.default_rng(sum(shape) + k)
    N, d, H = shape
    if pre_bias:
        inputs = _draw(rng, lambda r: _normal(r, (N, d), (d, H), H, d),
                       lambda a: kink_gap((a[0] - a[3]) @ a[1] + a[2], k))
    else:
        inputs = _xWb(rng, *shape, k=k, with_b_prime=True)
    return _step_case(functools.partial(layers.ksparse_step, pre_bias=pre_bias), inputs, k)


def _pre_encode(shape):
    inputs = _xWb(np.random.default_rng(sum(shape)), *shape, with_b_prime=True)
    return layers.pre_encode_forward, layers.pre_encode_backward, inputs


def _dead_units(rng, H, n_dead):
    dead = np.zeros(H, bool)
    dead[rng.choice(H, n_dead, replace=False)] = True
    return dead


def _auxk(shape, k_aux, c_aux=0.25):
    """D10 alone on (z, W, e); e is a constant target, so it gets no gradient."""
    N, d, H = shape
    rng = np.random.default_rng(sum(shape) + k_aux)
    dead = _dead_units(rng, H, max(k_aux + 1, H // 2))
    inputs = _draw(rng, lambda r: _normal(r, (N, H), (d, H), (N, d)),
                   lambda a: kink_gap(np.where(dead, a[0], -np.inf), k_aux))

    def backward(dE, cache):
        return (*layers.auxk_backward(dE, cache), None)

    return lambda z, W, e: layers.auxk_forward(z, W, e, dead, k_aux, c_aux), backward, inputs


def _ksparse_step_auxk(shape, k, k_aux, c_aux=0.5):
    """D9 and D10 through the composite step. Its gradient is that of E + c_aux E_aux with
    the residual e = x - x_hat held at its value for the given parameters (D10's
    stop-gradient), so the forward here holds e fixed after its first call."""
    N, d, H = shape
    rng = np.random.default_rng(sum(shape) + 7 * k_aux)
    dead = _dead_units(rng, H, max(k_aux + 1, H // 2))

    def gap(a):
        z = (a[0] - a[3]) @ a[1] + a[2]
        return min(kink_gap(z, k), kink_gap(np.where(dead, z, -np.inf), k_aux))

    inputs = _draw(rng, lambda r: _normal(r, (N, d), (d, H), H, d), gap)
    fixed = {}

    def forward(x, W, b, b_prime):
        z, _ = layers.pre_encode_forward(x, W, b, b_prime)
        x_hat, _ = layers.decode_forward(layers.select_forward(z, k)[0], W, b_prime)
        e = fixed.setdefault("e", x - x_hat)
        E = layers.mse_forward(x_hat, x)[0] + layers.auxk_forward(z, W, e, dead, k_aux, c_aux)[0]
        return E, layers.ksparse_step(x, W, b, b_prime, k, True, dead, k_aux, c_aux)[1]

    def backward(dE, grads):
        return None, dE * grads["W"], dE * grads["b"], dE * grads["b_prime"]

    return forward, backward, inputs


def _step_case(step, inputs, k):
    """A step ``(x, W, b, b_prime, k) -> (E, grads, ...)`` as a pair: E forward, dE * grads back."""
    def forward(x, W, b, b_prime):
        E, grads = step(x, W, b, b_prime, k)[:2]
        return E, grads

    def backward(dE, grads):
        return None, dE * grads["W"], dE * grads["b"], dE * grads["b_prime"]

    return forward, backward, inputs


def _sparse_layer(shape, n_keep=3):
    inputs = _xWb(np.random.default_rng(sum(shape)), *shape, k=n_keep)
    return (lambda x, W, b: supervised.sparse_layer_forward(x, W, b, n_keep),
            supervised.sparse_layer_backward, inputs)


def _softmax_ce():
    rng = np.random.default_rng(2)
    s, y = rng.normal(size=(5, 4)), rng.integers(0, 4, 5)
    return lambda s: supervised.softmax_ce_forward(s, y), supervised.softmax_ce_backward, [s]


NETWORK_NAMES = ["W1", "b1", "W2", "b2", "W_out", "b_out"]


def _network_case(first, composed, N=6, d=4, sizes=(12, 7), n_classes=3, n_keep=(3, 2), noisy=False):
    """Two hidden layers (H1 > d) and the softmax, layers below ``first`` frozen: the pairs
    chained by hand, or (``composed``) :func:`ksparse.nn.supervised.network_step`. Layers
    whose ``n_keep`` is None are ReLU layers (S5); ``noisy`` adds S6's masks on the input
    of layer ``first`` and on every hidden output."""
    rng = np.random.default_rng(first + 10 * noisy)
    dims = [d, *sizes, n_classes]
    y = rng.integers(0, n_classes, N)
    masks = {l: baselines.dropout_mask((N, dims[l]), 0.5, rng, np.float64)
             for l in range(first - 1, len(sizes) + 1)} if noisy else None

    def make(r):
        params = {}
        for l, name in enumerate(("1", "2", "_out")):
            params["W" + name] = r.normal(size=(dims[l], dims[l + 1]))
            params["b" + name] = r.normal(size=dims[l + 1])
        return r.normal(size=(N, d)), params

    def gap(drawn):
        h, params = drawn
        gaps = []
        for l, keep in enumerate(n_keep, 1):
            if masks is not None and l - 1 in masks:
                h = h * masks[l - 1]
            z = h @ params[f"W{l}"] + params[f"b{l}"]
            gaps.append(np.abs(z).min() if keep is None else kink_gap(z, keep))
            h = np.maximum(z, 0) if keep is None else layers.select_forward(z, keep)[0]
        return min(gaps)

    x, params = _draw(rng, make, gap)
    x = _below(x, params, n_keep, first)
    names = NETWORK_NAMES[2 * (first - 1):]

    def forward(x, *values):
        p = dict(params, **dict(zip(names, values, strict=True)))
        if composed:
            return supervised.network_step(x, y, p, list(n_keep), first, masks)
        s, cache = supervised.network_forward(x, p, list(n_keep), first, masks)
        E, ce_cache = supervised.softmax_ce_forward(s, y)
        return E, (cache, ce_cache)

    def backward(dE, cache):
        if composed:
            grads = {n: dE * g for n, g in cache.items()}
        else:
            grads = supervised.network_backward(supervised.softmax_ce_backward(dE, cache[1]), cache[0])
        return (None, *(grads[n] for n in names))

    return forward, backward, [x, *(params[n] for n in names)]


def _below(x, params, n_keep, first):
    """The input of layer ``first``: x through the frozen (clean) layers below it (S1/S5)."""
    for l in range(1, first):
        x = supervised.hidden_layer_forward(x, params[f"W{l}"], params[f"b{l}"], n_keep[l - 1])[0]
    return x


def _relu_layer(shape):
    rng = np.random.default_rng(sum(shape) + 5)
    inputs = _draw(rng, lambda r: _normal(r, shape[:2], shape[1:], shape[2]),
                   lambda a: np.abs(a[0] @ a[1] + a[2]).min())  # ReLU's kink at 0 stays far away
    return (lambda x, W, b: supervised.hidden_layer_forward(x, W, b, None),
            supervised.relu_layer_backward, inputs)


def _activation(forward, backward):
    z = np.random.default_rng(3).normal(size=(4, 6))
    return forward, backward, [np.sign(z) * (np.abs(z) + 0.1)]  # ReLU's kink at 0 stays far away


def _dropout():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(5, 7))
    mask = baselines.dropout_mask(a.shape, 0.5, rng, a.dtype)
    return lambda a: baselines.dropout_forward(a, mask), baselines.dropout_backward, [a]


def _ae_case(shape, kind, activation):
    """B1-B3 with fixed masks; for ReLU every pre-activation at least MARGIN from 0."""
    N, d, H = shape
    rng = np.random.default_rng(N * H)
    p_in, p_hid = (baselines.KINDS[kind][p] for p in ("p_input", "p_hidden"))
    in_mask = baselines.dropout_mask((N, d), p_in, rng, np.float64) if p_in else None
    hid_mask = baselines.dropout_mask((N, H), p_hid, rng, np.float64) if p_hid else None
    x_in = (lambda x: x * in_mask) if in_mask is not None else (lambda x: x)
    gap = (lambda a: np.abs(x_in(a[0]) @ a[1] + a[2]).min()) if activation == "relu" else (lambda a: 1.0)
    inputs = _draw(rng, lambda r: _normal(r, (N, d), (d, H), H, d), gap)

    def step(x, W, b, b_prime, k):
        return baselines.ae_step(x, W, b, b_prime, in_mask, hid_mask, activation)

    return _step_case(step, inputs, None)


def _case(name, covers, build, *args, **kwargs):
    return GradCase(name, covers, functools.partial(build, *args, **kwargs))


def _registry():
    L, S, B = layers, supervised, baselines
    cases = [_case("mse", (L.mse_forward, L.mse_backward), _mse),
             _case("softmax_ce", (S.softmax_ce_forward, S.softmax_ce_backward), _softmax_ce),
             _case("relu", (B.relu_forward, B.relu_backward), _activation, B.relu_forward, B.relu_backward),
             _case("sigmoid", (B.sigmoid_forward, B.sigmoid_backward), _activation, B.sigmoid_forward,
                   B.sigmoid_backward),
             _case("dropout", (B.dropout_forward, B.dropout_backward), _dropout)]
    for shape in SHAPES:
        tag = "N{}_d{}_H{}".format(*shape)
        cases += [_case(f"encode_{tag}", (L.encode_forward, L.encode_backward), _encode, shape),
                  _case(f"encode_params_{tag}", (B.encode_params_backward,), _encode, shape, True),
                  _case(f"decode_{tag}", (L.decode_forward, L.decode_backward), _decode, shape),
                  _case(f"sparse_layer_{tag}", (S.sparse_layer_forward, S.sparse_layer_backward),
                        _sparse_layer, shape),
                  _case(f"relu_layer_{tag}", (S.relu_layer_forward, S.relu_layer_backward,
                                              S.hidden_layer_forward), _relu_layer, shape)]
        cases += [_case(f"pre_encode_{tag}", (L.pre_encode_forward, L.pre_encode_backward),
                        _pre_encode, shape)]
        for k_aux in (1, 2):
            cases += [_case(f"auxk_kaux{k_aux}_{tag}", (L.auxk_forward, L.auxk_backward), _auxk,
                            shape, k_aux),
                      _case(f"ksparse_step_auxk_kaux{k_aux}_{tag}", (L.ksparse_step,), _ksparse_step_auxk,
                            shape, 2, k_aux)]
        for k in (1, 3, shape[2]):
            cases += [_case(f"select_k{k}_{tag}", (L.select_forward, L.select_backward), _select, shape, k),
                      _case(f"ksparse_step_k{k}_{tag}", (L.ksparse_step,), _ksparse_step, shape, k),
                      _case(f"ksparse_step_pre_bias_k{k}_{tag}", (L.ksparse_step,), _ksparse_step, shape, k,
                            True)]
        cases += [_case(f"ae_step_{kind}_{act}_{tag}", (B.ae_step,), _ae_case, shape, kind, act)
                  for kind in sorted(B.KINDS) for act in B.ACTIVATIONS]
    for first in (1, 2, 3):
        cases += [_case(f"network_first{first}", (S.network_forward, S.network_backward),
                        _network_case, first, False),
                  _case(f"network_step_first{first}", (S.network_step,), _network_case, first, True)]
        for n_keep in ((None, None), (3, None)):  # S5 layers, and S1 under S5, with S6's masks
            tag = "_".join("relu" if n is None else f"keep{n}" for n in n_keep)
            cases += [_case(f"network_noisy_{tag}_first{first}", (S.network_forward, S.network_backward),
                            _network_case, first, False, n_keep=n_keep, noisy=True),
                      _case(f"network_step_noisy_{tag}_first{first}", (S.network_step,), _network_case,
                            first, True, n_keep=n_keep, noisy=True)]
    return cases


REGISTRY = _registry()  # builders only: nothing is drawn until a case's build() is called
