"""The training loop: validation, initialisation, schedules in the history, loss, divergence."""

import numpy as np
import pytest

from ksparse.datasets import load_digits
from ksparse.nn.layers import ksparse_step
from ksparse.training import loop as train

pytestmark = pytest.mark.usefixtures("one_blas_thread")

SMALL = {"n_hidden": 64, "k": 8, "k_start": 32, "max_iter": 5, "random_state": 0}


@pytest.fixture(scope="module")
def digits():
    return load_digits().X_train


# -- check_data ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_data_nan_inf_raises(bad):
    x = np.ones((3, 2))
    x[1, 1] = bad
    with pytest.raises(ValueError, match=r"NaN or inf: -?(nan|inf) at row 1, column 1;"):
        train.check_data(x)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), ()])
def test_check_data_wrong_ndim_raises(shape):
    with pytest.raises(ValueError, match="must be 2-D"):
        train.check_data(np.ones(shape))


@pytest.mark.parametrize("shape", [(0, 3), (3, 0)])
def test_check_data_empty_raises(shape):
    with pytest.raises(ValueError, match="empty"):
        train.check_data(np.ones(shape))


def test_check_data_strings_raise_type_error():
    with pytest.raises(TypeError, match="numbers"):
        train.check_data(np.array([["a", "b"]]))


def test_check_data_accepts_ints_and_lists():
    assert train.check_data([[1, 2], [3, 4]]).shape == (2, 2)


# -- check_config -------------------------------------------------------------------------
@pytest.mark.parametrize("config, match", [
    ({"k": 0}, "k must be an integer >= 1, got 0"),
    ({"n_hidden": 10, "k": 11}, "k <= n_hidden is required .*k = 11 > n_hidden = 10"),
    ({"n_hidden": 10, "k": 5, "alpha": 0.5}, "alpha must be a finite number >= 1, got 0.5"),
    ({"n_hidden": 10, "k": 5, "alpha": 3.0}, r"alpha\*k <= n_hidden .*lower k or alpha, or raise n_hidden"),
    ({"n_hidden": 10, "k": 5, "alpha": float("inf")}, "alpha must be a finite number >= 1, got inf"),
    ({"dtype": "float16"}, "dtype"),
    ({"momentum": 1.0}, "momentum"),
    ({"lr": -1.0}, "lr"),
    ({"n_hidden": 0}, "n_hidden"),
    ({"bogus": 1}, "unknown AutoencoderConfig options"),
])
def test_check_config_bad_values_raise(config, match):
    with pytest.raises(ValueError, match=match):
        train.check_config(config)


def test_check_config_non_integer_k_raises_type_error():
    with pytest.raises(TypeError, match="k must be an integer"):
        train.check_config({"k": 2.5})


def test_check_config_fills_defaults():
    assert train.check_config({}) == train.DEFAULTS
    assert train.check_config({"k": 7}) == train.DEFAULTS.replace(k=7)


def test_default_lr_keeps_the_step_per_sample_of_batch_64_up_to_128():
    cfg = train.DEFAULTS  # lr=None, k=20, batch 64
    lr = {b: train.effective_lr(cfg.replace(batch_size=b), 784) for b in (8, 32, 64, 96, 128, 512)}
    assert lr[64] == lr[32] == train.LR_SCALED and lr[8] == train.LR_SCALED / 4  # below 32: linear
    assert lr[96] / 96 == lr[128] / 128 == lr[64] / 64  # 64 to 128: the same step per sample
    assert lr[512] == lr[128] == 2 * train.LR_SCALED  # capped above 128
    assert train.effective_lr(cfg.replace(batch_size=128), 10) == 2 * train.LR_SCALED * 10 / 20  # d < k
    assert train.effective_lr(cfg.replace(batch_size=128, paper=True), 784) == train.LR_PAPER


# -- initialisation -----------------------------------------------------------------------
def test_init_params_gaussian_sigma_and_zero_biases():
    p = train.init_params(200, 300, 0.05, np.random.default_rng(0), "float64")
    assert p["W"].shape == (200, 300) and p["W"].dtype == np.float64
    assert abs(p["W"].std() - 0.05) < 0.002 and abs(p["W"].mean()) < 0.002
    assert not p["b"].any() and not p["b_prime"].any()


def test_new_state_same_seed_same_weights():
    cfg = {"n_hidden": 7, "k": 2, "random_state": 3}
    a, b = train.new_state(5, cfg), train.new_state(5, cfg)
    assert np.array_equal(a.params["W"], b.params["W"])
    assert a.params["W"].dtype == np.float32 and a.epoch == 0


# -- the loop -----------------------------------------------------------------------------
def test_fit_lowers_the_loss_on_digits(digits):
    state0 = train.new_state(digits.shape[1], SMALL)
    E0 = float(ksparse_step(digits.astype(np.float32), *state0.params.values(), SMALL["k"])[0])
    state = train.fit(digits, SMALL)
    losses = [h["loss"] for h in state.history]
    assert losses[-1] < 0.5 * E0
    assert all(a > b for a, b in zip(losses, losses[1:], strict=False))
    assert state.history[-1]["fvu"] < 0.6  # better than the mean image (0.51 measured)


def test_fit_history_records_schedule_and_metrics(digits):
    state = train.fit(digits[:200], dict(SMALL, lr_final=0.001))
    h = state.history
    assert [r["epoch"] for r in h] == [1, 2, 3, 4, 5]
    assert [r["k"] for r in h] == [32, 20, 8, 8, 8]
    assert h[0]["lr"] == pytest.approx(train.LR_SCALED) and h[-1]["lr"] == pytest.approx(0.001)
    paper = train.fit(digits[:200], dict(SMALL, max_iter=1, paper=True)).history
    assert paper[0]["lr"] == pytest.approx(train.LR_PAPER)
    for r in h:
        assert r["mse"] == pytest.approx(r["loss"] / digits.shape[1])
        assert 0.0 <= r["dead_fraction"] <= 1.0


def test_fit_float64_on_request(digits):
    state = train.fit(digits[:100], dict(SMALL, max_iter=1, dtype="float64"))
    assert all(p.dtype == np.float64 for p in state.params.values())


def test_fit_same_seed_is_deterministic(digits):
    a = train.fit(digits[:300], dict(SMALL, max_iter=2))
    b = train.fit(digits[:300], dict(SMALL, max_iter=2))
    assert np.array_equal(a.params["W"], b.params["W"])


def test_fit_epochs_runs_part_of_the_schedule(digits):
    cfg = dict(SMALL, max_iter=4)
    whole = train.fit(digits[:300], cfg)
    part = train.fit(digits[:300], cfg, epochs=1)
    assert part.epoch == 1
    part = train.fit(digits[:300], state=part, epochs=3)
    assert [r["k"] for r in part.history] == [r["k"] for r in whole.history]
    assert np.array_equal(part.params["W"], whole.params["W"])


def test_fit_dead_fraction_counts_units_never_selected():
    # k = 1, H = 10, one minibatch of x and 2x (the paper's setting: b starts at 0, no pre-bias):
    # both select the same unit, so exactly one unit is ever in Gamma.
    x = np.array([[1.0, 1, 1, 1], [2, 2, 2, 2]])
    state = train.fit(x, {"n_hidden": 10, "k": 1, "k_start": 1, "max_iter": 1, "paper": True})
    assert state.history[0]["dead_fraction"] == pytest.approx(0.9)


def test_fit_callback_sees_every_epoch(digits):
    seen = []
    train.fit(digits[:100], dict(SMALL, max_iter=3), callback=seen.append)
    assert [r["epoch"] for r in seen] == [1, 2, 3]


def test_fit_resumed_state_with_wrong_d_raises(digits):
    state = train.new_state(64, SMALL)
    with pytest.raises(ValueError, match="expects 64 features"):
        train.fit(digits[:, :10], state=state)


def test_fit_diverging_raises_with_last_good_state(digits, tmp_path):
    path = tmp_path / "model.npz"
    state = train.fit(digits[:200], dict(SMALL, max_iter=1, lr=0.002), checkpoint_path=path)
    state.config = state.config.replace(lr=1e4)  # blow up from epoch 2 on
    finished = []
    with pytest.raises(train.TrainingDiverged, match="diverged at epoch") as info:
        with np.errstate(all="ignore"):
            train.fit(digits[:200], state=state, max_iter=20, checkpoint_path=path,
                      checkpoint_every=1, callback=finished.append)
    last = info.value.state
    assert last.epoch == len(finished) + 1 < 20
    assert all(np.isfinite(p).all() for p in last.params.values())
    on_disk = train.load_state(path)  # the last good checkpoint, not the NaN one
    assert on_disk.epoch == last.epoch
    assert np.array_equal(on_disk.params["W"], last.params["W"])


# -- center: subtract the training mean -------------------------------------------------
def test_fit_center_equals_training_on_mean_subtracted_data(digits):
    x = digits[:300]
    a = train.fit(x, dict(SMALL, max_iter=3, center=True, paper=True))
    b = train.fit(x - x.mean(axis=0), dict(SMALL, max_iter=3, paper=True))
    np.testing.assert_array_equal(a.x_mean, x.mean(axis=0))
    assert b.x_mean is None
    assert np.array_equal(a.params["W"], b.params["W"])
    assert np.array_equal(train.centered(x, a), x - x.mean(axis=0))
    assert train.centered(x, b) is x
    scaled = train.fit(x, dict(SMALL, max_iter=1, center=True))  # the defaults also divide by s
    np.testing.assert_allclose(train.centered(x, scaled), (x - x.mean(axis=0)) / scaled.scale)


def test_center_survives_save_load_and_resume(digits, tmp_path):
    x = digits[:300]
    whole = train.fit(x, dict(SMALL, max_iter=4, center=True))
    half = train.fit(x, dict(SMALL, max_iter=4, center=True), epochs=2)
    train.save_state(tmp_path / "m.npz", half)
    loaded = train.load_state(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.x_mean, half.x_mean)
    assert loaded.config.center is True
    resumed = train.fit(x, state=loaded)
    assert np.array_equal(resumed.params["W"], whole.params["W"])
    other = train.fit(x[:10] + 0.1, state=train.load_state(tmp_path / "m.npz"))
    np.testing.assert_array_equal(other.x_mean, whole.x_mean)  # kept, not recomputed from new data
    with pytest.raises(ValueError, match="mean lies"):  # data of another kind: refused, as on --resume
        train.fit(x[:10] + 5.0, state=train.load_state(tmp_path / "m.npz"))


def test_check_config_center_must_be_bool():
    with pytest.raises(TypeError, match="center"):
        train.check_config({"center": "yes"})


# -- resume: the run keeps its settings; the schedules continue where they were ------------
def test_fit_extended_on_resume_continues_the_schedules(digits, tmp_path):
    cfg = dict(SMALL, max_iter=4, lr_final=0.001)
    whole = train.fit(digits[:300], cfg)
    train.save_state(tmp_path / "m.npz", whole)
    more = train.fit(digits[:300], state=train.load_state(tmp_path / "m.npz"), max_iter=6)
    assert more.epoch == 6 and more.schedule_length == 4 and more.config.max_iter == 6
    assert more.history[:4] == whole.history
    # epochs 5 and 6 run at the final k and lr; the lr does not jump back up
    assert [(r["k"], r["lr"]) for r in more.history[4:]] == [(8, pytest.approx(0.001))] * 2
    train.save_state(tmp_path / "more.npz", more)
    assert train.load_state(tmp_path / "more.npz").schedule_length == 4


def test_fit_resume_with_same_max_iter_equals_uninterrupted(digits):
    cfg = dict(SMALL, max_iter=4, lr_final=0.001)
    whole = train.fit(digits[:300], cfg)
    part = train.fit(digits[:300], cfg, epochs=2)
    part = train.fit(digits[:300], state=part)
    assert part.history == whole.history
    assert np.array_equal(part.params["W"], whole.params["W"])


def test_fit_resume_rejects_other_settings_and_too_small_max_iter(digits):
    state = train.fit(digits[:100], dict(SMALL, max_iter=2))
    with pytest.raises(ValueError, match="k must equal the checkpoint's 8 to resume it"):
        train.fit(digits[:100], dict(SMALL, k=3), state=state)
    assert train.fit(digits[:100], dict(SMALL, max_iter=3), state=state).epoch == 3
    with pytest.raises(ValueError, match="max_iter must be >= the 3 epochs already run, got 1"):
        train.fit(digits[:100], state=state, max_iter=1)


def test_load_state_reads_a_checkpoint_written_by_0_1_0(digits, tmp_path):
    from ksparse.training.checkpoint import save_checkpoint

    state = train.fit(digits[:100], dict(SMALL, max_iter=1))
    old = state.config.to_dict()
    old["n_epochs"], old["seed"] = old.pop("max_iter"), old.pop("random_state")
    save_checkpoint(tmp_path / "old.npz", state.params, state.velocity,
                    {"config": old, "epoch": 1, "rng_state": state.rng_state, "history": state.history,
                     "x_mean": None})
    loaded = train.load_state(tmp_path / "old.npz")
    assert loaded.config == state.config and loaded.schedule_length == 1 and loaded.epoch == 1
