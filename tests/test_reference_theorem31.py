"""reference.theorem31 and reference.learned: the experiment runs, checks Thm 3.1, and fails loudly."""

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from reference.frames import two_ortho
from reference.learned import evaluate, load_mnist_subset
from reference.theorem31 import Theorem31Violation, check_theorem, main, planted_codes, recovery


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def test_planted_codes_have_the_asked_dynamic_range():
    z = planted_codes(40, 30, 5, 0.25, np.random.default_rng(0))
    assert np.all(np.count_nonzero(z, axis=1) == 5)
    assert np.all(z.max(axis=1) == 1.0)
    assert np.all(np.where(z > 0, z, np.inf).min(axis=1) == 0.25)


def test_recovery_is_perfect_on_an_orthonormal_basis():
    W = np.eye(16)
    rec = recovery(W, planted_codes(20, 16, 4, 0.1, np.random.default_rng(1)), 4, 10)
    assert rec["one_step"].all() and rec["iti"].all() and rec["omp"].all()


def test_smoke_run_writes_table_and_small_figures(tmp_path):
    assert main(["--profile", "smoke", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "theorem31.md").read_text()
    assert "| two-ortho | 64 | 128 | 0.1250 | 4 | 1 | 1 | holds | 100.0% |" in text
    pngs = sorted(os.listdir(tmp_path / "figures"))
    assert pngs == ["theorem31_recovery_vs_k.png", "theorem31_recovery_vs_rho.png"]
    assert all(os.path.getsize(tmp_path / "figures" / p) < 150_000 for p in pngs)


def test_check_theorem_fails_loudly():
    row = {"dict": "two-ortho", "d": 64, "k": 2, "r": 1.0, "holds": True, "one_step": 1.0}
    check_theorem([row], [])
    with pytest.raises(Theorem31Violation, match="violated"):
        check_theorem([dict(row, one_step=0.99)], [])
    with pytest.raises(Theorem31Violation, match="violated"):
        check_theorem([row], ["two-ortho d=64 k=2 r=1.0: 1 of 50 missed"])
    with pytest.raises(Theorem31Violation, match="vacuous"):
        check_theorem([dict(row, holds=False)], [])


def test_evaluate_agrees_with_iti_when_the_encoder_is_the_first_step():
    rng = np.random.default_rng(3)
    W = 2.0 * two_ortho(64)  # free column norms, as after training; mu = 1/8
    b_prime = rng.normal(size=64)
    b = -(b_prime @ W)  # c = b + W^T b' = 0: the encoder is ITI's first step
    z = planted_codes(30, 128, 2, 1.0, rng)
    x = z @ W.T + b_prime
    out = evaluate(x, {"W": W, "b": b, "b_prime": b_prime}, 2, max_iter=20)
    assert out["agree_ae_first"] == 1.0 and out["agree_ae_iti"] == 1.0 and out["agree_first_iti"] == 1.0
    assert out["mu"] == pytest.approx(0.125) and out["thm_holds"] == 1.0  # rho = 0.5
    assert out["err_iti"] < 1e-20 and out["err_omp"] < 1e-20 and out["err_ae_lstsq"] < 1e-20
    assert out["err_ae"] > 0  # the autoencoder's own values W^T x + b are not least squares


@pytest.mark.skipif(not os.environ.get("KSPARSE_DATA"), reason="needs KSPARSE_DATA (real MNIST)")
def test_load_mnist_subset_reads_real_data():
    x = load_mnist_subset(os.environ["KSPARSE_DATA"], 20)
    assert x.shape == (20, 784) and x.dtype == np.float64 and 0 <= x.min() and x.max() <= 1
