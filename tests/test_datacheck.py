"""ksparse.training.datacheck: continuing training on data of another scale, and data too large
for the training dtype, are refused before any update with one message that says what to do."""

import numpy as np
import pytest

from ksparse import KSparseAutoencoder
from ksparse.cli import main
from ksparse.datasets import load_digits
from ksparse.training.datacheck import HEADROOM, check_representable

pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.fixture(scope="module")
def X():
    return load_digits().X_train  # the digits in [0, 1]: pixels / 16


def _snapshot(est):
    s = est.state_
    return ({n: np.array(a) for n, a in s.params.items()}, {n: np.array(a) for n, a in s.velocity.items()},
            s.config, s.epoch, len(s.history), s.scale)


def test_partial_fit_on_data_of_another_scale_is_refused_and_the_model_kept(X):
    est = KSparseAutoencoder(random_state=0)
    for _ in range(3):
        est.partial_fit(X)
    before = _snapshot(est)
    with pytest.raises(ValueError) as info:
        est.partial_fit(X * 255)  # raw 0-255 pixels after pixels in [0, 1]
    text = str(info.value)
    assert "255 times" in text and "preprocessing" in text, text
    assert "learning rate" not in text  # the advice of a divergence pointed the wrong way
    after = _snapshot(est)
    for name, a in before[0].items():
        np.testing.assert_array_equal(after[0][name], a)
    for name, a in before[1].items():
        np.testing.assert_array_equal(after[1][name], a)
    assert after[2:] == before[2:]  # config, epoch, history, scale
    est.partial_fit(X)  # the same data goes on
    assert est.n_iter_ == 4


def test_partial_fit_on_smaller_data_is_refused_too(X):
    est = KSparseAutoencoder(random_state=0).partial_fit(X * 255)
    with pytest.raises(ValueError, match=r"255 times|0\.00392 times"):
        est.partial_fit(X)


def test_the_first_partial_fit_takes_any_scale(X):
    assert KSparseAutoencoder(random_state=0).partial_fit(X * 255).n_iter_ == 1


def test_fit_on_data_near_the_float32_maximum_is_refused(X):
    big = (X * 3e38).astype(np.float32)
    with pytest.raises(ValueError, match="too large for float32") as info:
        KSparseAutoencoder(random_state=0).fit(big)
    assert "divide it by 1e+39" in str(info.value)
    with pytest.raises(ValueError, match="too large for float32"):
        KSparseAutoencoder(random_state=0).partial_fit(big)


def test_float64_training_takes_float64_data_near_float32s_maximum(X):
    big = X * 3e38
    est = KSparseAutoencoder(dtype="float64", max_iter=2, random_state=0).fit(big)
    assert np.isfinite(est.score(big)) and np.isfinite(est.transform(big)).all()
    with pytest.raises(ValueError, match="too large for float32"):  # float32 rows are divided in float32
        KSparseAutoencoder(dtype="float64", random_state=0).fit(big.astype(np.float32))


def test_check_representable_limit_is_the_dtypes_largest_over_the_headroom():
    largest = float(np.finfo(np.float32).max)
    ok = largest / HEADROOM / 2
    check_representable((np.zeros(3), ok ** 2), "float32")
    with pytest.raises(ValueError, match="too large for float32"):
        check_representable((np.zeros(3), (2 * ok) ** 2 * 1.01), "float32")
    with pytest.raises(ValueError, match="too large for float32"):  # a mean far from 0, a small spread
        check_representable((np.full(3, largest / 2), 1.0), "float32")
    with pytest.raises(ValueError, match="overflow float64"):
        check_representable((np.zeros(3), float("inf")), "float64")


def test_cli_train_on_data_near_the_float32_maximum_is_one_error(tmp_path, capsys, X):
    np.save(tmp_path / "big.npy", (X * 3e38).astype(np.float32))
    out = tmp_path / "run"
    code = main(["train", "--dataset", str(tmp_path / "big.npy"), "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 2, (stdout, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ksparse: error: "), err
    assert "too large for float32" in lines[0] and "divide it by" in lines[0]
    assert "overflow encountered" not in err and "Traceback" not in err
    assert not out.exists()  # no model, no summary saying "finished"
