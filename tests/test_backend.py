"""The NumPy/CuPy switch, and NumPy/CuPy parity in float64 (skipped where no GPU is present)."""

import numpy as np
import pytest

from ksparse.backend import check_device, device_of, get_array_module, gpu_available, to_device, to_numpy
from ksparse.kernels.encode import encode
from ksparse.nn.layers import encode_forward, ksparse_step, select_forward
from ksparse.training import loop as train

needs_gpu = pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")


def test_get_array_module_numpy_for_host_arrays():
    assert get_array_module(np.ones(2), np.zeros(3)) is np
    assert get_array_module() is np


def test_to_device_cpu_casts_and_to_numpy_is_identity():
    x = np.arange(6).reshape(2, 3)
    y = to_device(x, "cpu", dtype="float32")
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    assert to_numpy(y) is y
    assert device_of(y) == "cpu"


@pytest.mark.parametrize("device", ["tpu", "GPU", None])
def test_check_device_unknown_name_raises(device):
    with pytest.raises(ValueError, match="device must be one of"):
        check_device(device)


@pytest.mark.skipif(gpu_available(), reason="a GPU is present")
def test_gpu_without_cupy_is_a_clear_error():
    with pytest.raises(ValueError, match="device 'gpu' needs (CuPy|a CUDA GPU)"):
        check_device("gpu")
    with pytest.raises(ValueError, match="device 'gpu' needs"):
        to_device(np.ones(2), "gpu")


def test_missing_gpu_message_gives_the_one_fix_that_applies(monkeypatch):
    import sys
    import types

    import ksparse.backend

    monkeypatch.setattr(ksparse.backend, "gpu_available", lambda: False)
    monkeypatch.setitem(sys.modules, "cupy", None)  # import fails: CuPy is missing
    with pytest.raises(ValueError, match=r"needs CuPy, which is not installed here; install it with"):
        check_device("gpu")
    monkeypatch.setitem(sys.modules, "cupy", types.ModuleType("cupy"))  # CuPy there, no device
    with pytest.raises(ValueError, match=r"needs a CUDA GPU and this machine shows none; use device 'cpu'$"):
        check_device("gpu")


# -- parity, float64 --------------------------------------------------------------------------
def _both(*arrays):
    return arrays, tuple(to_device(a, "gpu") for a in arrays)


@needs_gpu
def test_parity_forward_backward(gapped_problem):
    cpu, gpu = _both(*gapped_problem(seed=11))
    E_c, g_c, G_c = ksparse_step(*cpu, 3)
    E_g, g_g, G_g = ksparse_step(*gpu, 3)
    assert device_of(g_g["W"]) == "gpu"
    np.testing.assert_allclose(float(E_g), float(E_c), rtol=1e-12)
    for n in g_c:
        np.testing.assert_allclose(to_numpy(g_g[n]), g_c[n], rtol=1e-10, atol=1e-12)
    assert (np.sort(to_numpy(G_g), axis=1) == np.sort(G_c, axis=1)).all()
    z_c = select_forward(encode_forward(*cpu[:3])[0], 3)[0]
    z_g = select_forward(encode_forward(*gpu[:3])[0], 3)[0]
    np.testing.assert_allclose(to_numpy(z_g), z_c, rtol=1e-12, atol=1e-12)


@needs_gpu
def test_parity_encode(gapped_problem):
    cpu, gpu = _both(*gapped_problem(seed=12)[:3])
    np.testing.assert_allclose(to_numpy(encode(*gpu, 2, 1.5)), encode(*cpu, 2, 1.5), rtol=1e-12, atol=1e-12)


@needs_gpu
def test_parity_training_steps():
    x = np.random.default_rng(13).random((96, 20))
    cfg = {"n_hidden": 30, "k": 5, "k_start": 10, "max_iter": 3, "batch_size": 32, "dtype": "float64"}
    cpu = train.fit(x, cfg, device="cpu")
    gpu = train.fit(x, cfg, device="gpu")
    assert device_of(gpu.params["W"]) == "gpu"
    for n in cpu.params:
        np.testing.assert_allclose(to_numpy(gpu.params[n]), cpu.params[n], rtol=1e-8, atol=1e-10)
    for h_c, h_g in zip(cpu.history, gpu.history, strict=True):
        assert h_g["loss"] == pytest.approx(h_c["loss"], rel=1e-9)
        assert h_g["dead_fraction"] == h_c["dead_fraction"]
