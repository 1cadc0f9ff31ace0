"""KSparseClassifier and the fine-tuning loop: freezing, selection, digits, bad input, sklearn checks."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from ksparse.datasets import load_digits
from ksparse.estimators.classifier import KSparseClassifier
from ksparse.nn.supervised import hidden_names
from ksparse.training.finetune import (
    error_rate,
    finetune,
    finetune_stage,
    init_network,
    keep_counts,
    pretrain_stack,
    stage_firsts,
)

CFG = {"max_iter": 2, "lr": 0.5, "lr_final": 0.01, "momentum": 0.25, "batch_size": 16, "random_state": 0}


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Small products run fastest, and disturb the other test runs least, on one thread."""
    with threadpool_limits(1):
        yield


def small_problem(seed=0, N=60, d=8, C=3, sizes=(12, 10)):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, d))
    y = rng.integers(0, C, N)
    encoders = [(rng.normal(size=(a, b)), rng.normal(size=b)) for a, b in zip((d,) + sizes[:-1], sizes,
                                                                                 strict=True)]
    params = init_network(d, C, sizes, encoders, 0.1, rng, "float64")
    return x, y, params, [4, 3]


def test_stage_firsts_layerwise_order():
    assert stage_firsts(2) == [3, 2, 1]
    assert stage_firsts(1) == [2, 1]
    assert stage_firsts(2, layerwise=False) == [1]


@pytest.mark.parametrize("first, frozen", [(3, ["W1", "b1", "W2", "b2"]), (2, ["W1", "b1"]), (1, [])])
def test_finetune_stage_freezes_layers_below_first_bit_identically(first, frozen):
    x, y, params, n_keep = small_problem()
    before = {n: a.copy() for n, a in params.items()}
    finetune_stage(params, x, y, n_keep, first, CFG)
    for name in params:
        if name in frozen:
            assert params[name].tobytes() == before[name].tobytes(), name
        else:
            assert not np.array_equal(params[name], before[name]), name


def test_finetune_runs_every_stage_in_order():
    x, y, params, n_keep = small_problem(1)
    history = finetune(params, x, y, n_keep, CFG, stage_epochs=[1, 2, 3])
    assert [r["first_layer"] for r in history] == [3, 2, 2, 1, 1, 1]
    assert [r["stage"] for r in history] == [1, 2, 2, 3, 3, 3]
    with pytest.raises(ValueError, match="3 fine-tuning stages"):
        finetune(params, x, y, n_keep, CFG, stage_epochs=[1, 2])


def test_finetune_stage_keeps_epoch_of_lowest_validation_error():
    x, y, params, n_keep = small_problem(2)
    xv, yv = x[:30] + 0.5, y[:30]
    history = finetune_stage(params, x, y, n_keep, 1, dict(CFG, max_iter=6), xv, yv)
    errors = [r["val_error"] for r in history]
    assert error_rate(xv, yv, params, n_keep) == min(errors)


def test_finetune_stage_raises_on_divergence():
    from ksparse.training.loop import TrainingDiverged

    x, y, params, n_keep = small_problem(3)
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        finetune_stage(params, x * 1e150, y, n_keep, 1, dict(CFG, lr=1e150))


def test_a_diverged_stage_restarts_at_half_the_rate_and_equals_that_stage_run_from_its_start(monkeypatch):
    # the first try of stage 2 diverges (simulated after it has trained, so that the restart must
    # undo its updates and its draws of the minibatch order); the run then equals one made at half
    # the rates in stage 2 from the start
    from ksparse.training import finetune as ft
    from ksparse.training.loop import TrainingDiverged

    x, y, params, n_keep = small_problem(5)
    expected = {n: a.copy() for n, a in params.items()}
    real = ft.finetune_stage
    rng = np.random.default_rng(CFG["random_state"])
    real(expected, x, y, n_keep, 3, ft.check_finetune_config(CFG), rng=rng, stage=1)
    real(expected, x, y, n_keep, 2, ft.check_finetune_config(dict(CFG, lr=0.25, lr_final=0.005)), rng=rng,
         stage=2)
    real(expected, x, y, n_keep, 1, ft.check_finetune_config(CFG), rng=rng, stage=3)
    tries = []

    def first_try_of_stage_2_diverges(params, x, y, n_keep, first, cfg, *args, **kwargs):
        history = real(params, x, y, n_keep, first, cfg, *args, **kwargs)
        tries.append((first, cfg.lr))
        if tries == [(3, 0.5), (2, 0.5)]:
            raise TrainingDiverged("fine-tuning diverged in stage 2, epoch 2 (loss nan)", None)
        return history

    monkeypatch.setattr(ft, "finetune_stage", first_try_of_stage_2_diverges)
    with pytest.warns(RuntimeWarning, match="stage 2 diverged at lr=0.5; restarting .* at lr=0.25"):
        history = ft.finetune(params, x, y, n_keep, CFG)
    assert tries == [(3, 0.5), (2, 0.5), (2, 0.25), (1, 0.5)]
    np.testing.assert_allclose([r["lr"] for r in history if r["stage"] == 2], [0.25, 0.005])
    for name in params:
        np.testing.assert_array_equal(params[name], expected[name], err_msg=name)


def test_a_stage_that_diverges_at_every_restart_raises_and_says_so():
    from ksparse.training.loop import TrainingDiverged

    x, y, params, n_keep = small_problem(3)
    with pytest.warns(RuntimeWarning, match="restarting"), \
            pytest.raises(TrainingDiverged, match="restarted 3 times, each at half the rate before"):
        finetune(params, x * 1e150, y, n_keep, dict(CFG, lr=1e150), layerwise=False)


def test_pretrain_stack_trains_on_codes_of_the_layer_below():
    x = np.random.default_rng(4).random((50, 8))
    states = pretrain_stack(x, [12, 10], k=3, alpha=2, config={"max_iter": 2, "batch_size": 16})
    assert states[0].params["W"].shape == (8, 12)
    assert states[1].params["W"].shape == (12, 10)


def test_init_network_copies_encoders_and_checks_shapes():
    W, b = np.ones((8, 5)), np.zeros(5)
    params = init_network(8, 3, [5], [(W, b)], dtype="float64")
    assert set(params) == set(hidden_names(1)) | {"W_out", "b_out"}
    np.testing.assert_array_equal(params["W1"], W)
    assert params["W1"] is not W
    with pytest.raises(ValueError, match="expected"):
        init_network(8, 3, [6], [(W, b)])


def test_keep_counts_checks_alpha_k():
    assert keep_counts([100, 50], 10, 3) == [30, 30]
    with pytest.raises(ValueError, match="exceeds"):
        keep_counts([20], 10, 3)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_classifier_beats_chance_on_digits(digits):
    clf = KSparseClassifier(n_hidden=100, k=10, alpha=2, pretrain_max_iter=5, max_iter=8,
                            random_state=0).fit(digits.X_train, digits.y_train)
    assert clf.score(digits.X_test, digits.y_test) > 0.85  # chance is 0.1
    proba = clf.predict_proba(digits.X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert clf.n_stages_ == 2 and len(clf.pretrain_history_) == 1
    assert clf.n_iter_ == 16 == len(clf.history_)  # 8 epochs in each of the 2 stages
    assert clf.params_["W1"].shape == (64, 100)  # an int n_hidden is one hidden layer


def test_classifier_deep_and_without_pretraining_on_digits(digits):
    X, y = digits.X_train, digits.y_train
    deep = KSparseClassifier(n_hidden=(80, 80), k=10, alpha=2, pretrain_max_iter=10,
                             max_iter=[2, 3, 4], validation_fraction=0.2).fit(X, y)
    assert deep.n_stages_ == 3 and all("val_error" in r for r in deep.history_)
    assert deep.score(digits.X_test, digits.y_test) > 0.8
    scratch = KSparseClassifier(n_hidden=(80,), k=10, alpha=2, pretrain=False,
                                max_iter=8).fit(X, y)
    assert scratch.n_stages_ == 1 and scratch.pretrain_history_ == []
    assert scratch.score(digits.X_test, digits.y_test) > 0.8


def test_classifier_uses_given_encoders(digits):
    rng = np.random.default_rng(0)
    enc = [(rng.normal(0, 0.1, (64, 30)), np.zeros(30))]
    clf = KSparseClassifier(n_hidden=(30,), k=5, alpha=2, encoders=enc, max_iter=[3, 0])
    clf.fit(digits.X_train, digits.y_train)
    np.testing.assert_array_equal(clf.params_["W1"], enc[0][0].astype("float32"))  # stage 2 ran 0 epochs
    with pytest.raises(ValueError, match="one per hidden layer"):
        clf.set_params(n_hidden=(30, 30)).fit(digits.X_train, digits.y_train)


def test_classifier_relu_with_dropout_and_input_noise_on_digits(digits):
    from ksparse.training.baselines import fit_baseline

    X, y = digits.X_train, digits.y_train
    ae = fit_baseline(X, "dropout", {"n_hidden": 60, "max_iter": 3, "lr": 0.001})
    enc = [(ae.params["W"], ae.params["b"])]
    clf = KSparseClassifier(n_hidden=60, hidden="relu", encoders=enc, p_input=0.2, p_hidden=0.5,
                            max_iter=10, layerwise=False).fit(X, y)
    assert clf.n_keep_ == [None] and clf.n_stages_ == 1
    assert clf.score(digits.X_test, digits.y_test) > 0.85
    same = KSparseClassifier(**clf.get_params()).fit(X, y)  # the noise is drawn under the seed
    np.testing.assert_array_equal(same.params_["W1"], clf.params_["W1"])
    with pytest.raises(ValueError, match="hidden='relu' pre-trains nothing: give encoders"):
        KSparseClassifier(hidden="relu").fit(X, y)
    with pytest.raises(ValueError, match="hidden must be 'ksparse' or 'relu'"):
        KSparseClassifier(hidden="tanh").fit(X, y)
    with pytest.raises(ValueError, match="p_hidden"):
        KSparseClassifier(hidden="relu", pretrain=False, p_hidden=1.0).fit(X, y)


SMALL = {"n_hidden": (16,), "k": 3, "alpha": 2, "pretrain_max_iter": 2, "pretrain_lr": 1e-5,
         "max_iter": 10, "batch_size": 16, "lr": 0.5}


@pytest.mark.parametrize("X, y, match", [
    (np.zeros((10, 3)), np.arange(9) % 2, "^y has 9 labels but X has 10 rows; give one label per row of X$"),
    (np.zeros(10), np.arange(10) % 2, r"^X must be 2-D \(n_samples, n_features\), got 1-D shape \(10,\)\. "
     r"Reshape your data: one sample is X.reshape\(1, -1\)$"),  # was scikit-learn's, printing all of X
    (np.zeros((10, 3)), np.zeros((10, 2)), r"^y must be 1-D \(n_samples,\), one class label per row of X, "
     r"got shape \(10, 2\)$"),
    (np.zeros((10, 3)), None, "^this estimator requires y to be passed, but the target y is None; give one"),
    (np.zeros((10, 3)), np.ones(10), "1 class"),
    (np.full((10, 3), np.nan), np.arange(10) % 2, "^X contains NaN or inf: nan at row 0, column 0 .*; clean"),
    (np.ones((10, 3)) + 1j, np.arange(10) % 2, "^Complex data not supported: X holds complex numbers; pass"),
])
def test_classifier_rejects_bad_input(X, y, match):
    with pytest.raises(ValueError, match=match):
        KSparseClassifier(**SMALL).fit(X, y)
    if X.ndim == 1:  # X_val and predict: the same one line
        with pytest.raises(ValueError, match=match.replace("X", "X_val").replace(r"\(10,\)", r"\(4,\)")):
            KSparseClassifier(**SMALL).fit(np.zeros((10, 3)), y, X_val=X[:4], y_val=y[:4])


def test_classifier_names_the_first_nan_in_validation_data_and_in_predict(digits):
    X, y = digits.X_train[:200], digits.y_train[:200]
    bad = X[:20].copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="^X_val contains NaN or inf: nan at row 3, column 2"):
        KSparseClassifier(**SMALL).fit(X, y, X_val=bad, y_val=y[:20])
    clf = KSparseClassifier(**dict(SMALL, max_iter=1)).fit(X, y)
    with pytest.raises(ValueError, match="^X contains NaN or inf: nan at row 3, column 2"):
        clf.predict(bad)


def test_classifier_predict_and_validation_refuse_complex(digits):
    from ksparse.errors import ComplexDataError

    X, y = digits.X_train[:200], digits.y_train[:200]
    with pytest.raises(ComplexDataError, match="X_val holds complex numbers"):
        KSparseClassifier(**SMALL).fit(X, y, X_val=X[:20] + 1j, y_val=y[:20])
    clf = KSparseClassifier(**dict(SMALL, max_iter=1)).fit(X, y)
    with pytest.raises(ComplexDataError, match="X holds complex numbers"):
        clf.predict(X + 1j)


def test_classifier_rejects_bad_settings():
    X, y = np.random.default_rng(0).random((20, 4)), np.arange(20) % 2
    with pytest.raises(ValueError, match=r"alpha\*k <= n_hidden is required .*alpha = 2.0 and k = 10"):
        KSparseClassifier(**dict(SMALL, k=10, alpha=2)).fit(X, y)
    with pytest.raises(ValueError, match="pretrain_max_iter must be an integer >= 1, got -1"):
        KSparseClassifier(**dict(SMALL, pretrain_max_iter=-1)).fit(X, y)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 0, got -2"):
        KSparseClassifier(**dict(SMALL, max_iter=[3, -2])).fit(X, y)
    with pytest.raises(ValueError, match="n_hidden must be a positive integer"):
        KSparseClassifier(**dict(SMALL, n_hidden=(16, 0))).fit(X, y)
    with pytest.raises(ValueError, match="momentum"):
        KSparseClassifier(**dict(SMALL, momentum=1.5)).fit(X, y)
    with pytest.raises(ValueError, match="X_val and y_val"):
        KSparseClassifier(**SMALL).fit(X, y, X_val=X)


# At the defaults a user gets, unscaled N(100, 1) data included (the inputs are standardized).
@parametrize_with_checks([KSparseClassifier()])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_classifier_refit_is_idempotent_and_checks_features(digits):
    from sklearn.exceptions import NotFittedError

    clf = KSparseClassifier(**SMALL)
    with pytest.raises(NotFittedError):
        clf.predict(digits.X_test)
    first = clf.fit(digits.X_train, digits.y_train).predict_proba(digits.X_test)
    assert clf.n_features_in_ == 64
    np.testing.assert_array_equal(clf.fit(digits.X_train, digits.y_train).predict_proba(digits.X_test), first)
    with pytest.raises(ValueError, match="features"):
        clf.predict(digits.X_test[:, :10])
