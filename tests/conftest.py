"""Shared fixtures: the numba kernels compiled once per session, inputs with a wide top-k gap,
one BLAS thread. Gradient checks use :func:`ksparse.testing.check_grad` (tests/test_testing.py)."""

import json
import signal

import numpy as np
import pytest


def _gapped_problem(seed=0, N=5, d=10, H=6, gap=0.5):
    """float64 (x, W, b, b_prime) whose z = x W + b has all entries of a row ``gap`` apart.

    Each row of z is a random permutation of ``gap * (arange(H) + 1/3 - H/2)``, so for every k the k-th and
    (k+1)-th largest entries differ by ``gap`` (far more than the step size of the differences).
    Needs d >= H: then W has full column rank and x = (z - b) pinv(W) solves x W = z - b.
    """
    assert d >= H, "the exact construction needs d >= H"
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, H))
    b = rng.normal(size=H)
    b_prime = rng.normal(size=d)
    z = np.stack([(rng.permutation(H) + 1 / 3) * gap for _ in range(N)]) - gap * H / 2  # none is 0
    x = (z - b) @ np.linalg.pinv(W)
    return x, W, b, b_prime


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_raises_keyboard_interrupt():
    """Give SIGINT Python's own handler for the session when it arrived ignored.

    A shell starts a background job (``pytest &``, ``nohup``) with SIGINT ignored, and Python
    then installs no KeyboardInterrupt handler: the tests that send Ctrl-C to the process or
    to a ``ksparse`` child (which inherits the ignored disposition, not a Python handler)
    would wait for a signal that never comes. The library keeps whatever it was started with.
    """
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(scope="session", autouse=True)
def numba_kernels_compiled():
    """Compile (or load from numba's cache) every kernel of ksparse.kernels.fast once, for
    float32 and float64, before the first test: ``pytest --durations`` then shows this as
    the setup of the first test and the tests' own cost everywhere else."""
    from ksparse.kernels import fast

    if not fast.has_numba():
        return
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x, W = rng.normal(size=(4, 3)).astype(dtype), rng.normal(size=(3, 5)).astype(dtype)
        b, b_prime = np.zeros(5, dtype), np.zeros(3, dtype)
        fast.fast_step(x, W, b, b_prime, 2, kernel="numba")
        params = {"W": W, "b": b, "b_prime": b_prime}
        fast.fast_train_step_(x, params, {n: np.zeros_like(a) for n, a in params.items()}, 2, 0.1, 0.9,
                              kernel="numba")
        fast.supp_k(x, 2, kernel="numba")


@pytest.fixture
def gapped_problem():
    """``gapped_problem(seed, N, d, H, gap)`` -> (x, W, b, b_prime) in float64."""
    return _gapped_problem


@pytest.fixture
def one_blas_thread():
    """Run a test with one BLAS thread: tests use small arrays, and on a busy machine
    several BLAS threads per process slow them down many times over."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def rewrite_model(path, out=None, **changes):
    """Write the model file at ``path`` to ``out`` (default: in place) with some arrays, or
    ``meta`` fields, replaced: how the tests make invalid model files."""
    with np.load(path) as data:
        arrays = dict(data)
    meta = json.loads(str(arrays["meta"][()]))
    meta.update(changes.pop("meta", {}))
    arrays.update(changes, meta=np.array(json.dumps(meta)))
    np.savez(path if out is None else out, **arrays)


@pytest.fixture
def ctrl_c_at_call(monkeypatch):
    """``ctrl_c_at_call(owner, name, n)``: ``owner.name`` raises KeyboardInterrupt on its n-th call
    (the calls before it run the real function), as Ctrl-C in the n-th epoch would."""

    def patch(owner, name, n):
        real, calls = getattr(owner, name), []

        def interrupted(*args, **kwargs):
            calls.append(1)
            if len(calls) == n:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, interrupted)

    return patch


@pytest.fixture
def small_mnist(tmp_path, monkeypatch):
    """A folder holding a tiny MNIST-like set (4x4 images; 10,200 training images, so that the
    10,000 of the validation split leave 200) under mnist/, its md5s made the ones expected;
    downloading fails the test."""
    import gzip
    import hashlib

    import ksparse.datasets.mnist as mnist
    from tests.test_datasets_mnist import idx_bytes

    rng = np.random.default_rng(0)
    arrays = {"train_images": rng.integers(0, 256, (10200, 4, 4)), "train_labels": rng.integers(0, 10, 10200),
              "test_images": rng.integers(0, 256, (50, 4, 4)), "test_labels": rng.integers(0, 10, 50)}
    folder = tmp_path / "data"
    (folder / "mnist").mkdir(parents=True)
    for role, array in arrays.items():
        raw = idx_bytes(array)
        (folder / "mnist" / (mnist.FILES[role] + ".gz")).write_bytes(gzip.compress(raw, mtime=0))
        monkeypatch.setitem(mnist.MD5, mnist.FILES[role], hashlib.md5(raw).hexdigest())
    monkeypatch.setattr(mnist, "_download", lambda *a, **k: pytest.fail("downloaded MNIST"))
    return folder
