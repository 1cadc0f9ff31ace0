"""KSparseAutoencoder: scikit-learn's estimator checks, pipelines, persistence and resume."""

import os
import pickle
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import ksparse
from ksparse import KSparseAutoencoder
from ksparse.backend import gpu_available
from ksparse.datasets import load_digits
from ksparse.errors import ComplexDataError
from ksparse.training.loop import TrainingDiverged

pytestmark = pytest.mark.usefixtures("one_blas_thread")

SMALL = {"n_hidden": 32, "k": 4, "alpha": 1.0, "k_start": 16, "max_iter": 4, "batch_size": 64,
         "random_state": 0}


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def X(digits):
    return digits.X_train[:400]


@pytest.fixture(scope="module")
def fitted(X):
    return KSparseAutoencoder(**SMALL).fit(X)


# At the defaults a user gets: the checks feed unscaled data such as N(100, 1), which the
# stored data scale (``scale_``) makes as easy to learn as any other.
@parametrize_with_checks([KSparseAutoencoder(), KSparseAutoencoder(center=True)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_estimator_exported_lazily_from_package():
    assert ksparse.KSparseAutoencoder is KSparseAutoencoder
    assert ksparse.__version__ == "0.2.0"
    with pytest.raises(AttributeError):
        ksparse.NoSuchThing  # noqa: B018


# -- pipelines --------------------------------------------------------------------------------
def test_pipeline_with_logistic_regression_on_digits(digits):
    pipe = make_pipeline(
        KSparseAutoencoder(n_hidden=100, k=10, k_start=40, alpha=2.0, max_iter=5, random_state=0),
        LogisticRegression(max_iter=1000),
    )
    pipe.fit(digits.X_train, digits.y_train)
    assert pipe.score(digits.X_test, digits.y_test) > 0.9
    assert pipe[:-1].get_feature_names_out()[0] == "ksparseautoencoder0"


def test_grid_search_over_a_pipeline(digits):
    pipe = make_pipeline(KSparseAutoencoder(n_hidden=48, k=6, k_start=24, max_iter=3, batch_size=32,
                                            random_state=0),
                         LogisticRegression(max_iter=300))
    search = GridSearchCV(pipe, {"ksparseautoencoder__alpha": [1.0, 2.0]}, cv=2)
    search.fit(digits.X_train[:600], digits.y_train[:600])
    assert search.best_params_["ksparseautoencoder__alpha"] in (1.0, 2.0)
    assert search.best_estimator_[0].alpha == search.best_params_["ksparseautoencoder__alpha"]
    assert search.score(digits.X_test, digits.y_test) > 0.8


def test_grid_search_by_score_prefers_larger_k(X):
    params = dict(SMALL, max_iter=20, batch_size=16)  # trained enough for k to matter (2x the MSE at k=1)
    search = GridSearchCV(KSparseAutoencoder(**params), {"k": [1, 8]}, cv=2).fit(X)
    assert search.best_params_ == {"k": 8}
    assert search.best_score_ < 0


# -- fitted attributes and the three maps -----------------------------------------------------
def test_fit_sets_attributes(fitted, X):
    assert fitted.W_.shape == (64, 32) and fitted.W_.dtype == np.float32
    assert fitted.components_.shape == (32, 64)
    np.testing.assert_array_equal(fitted.components_, fitted.W_.T)
    assert fitted.n_iter_ == 4
    assert fitted.b_.shape == (32,) and fitted.b_prime_.shape == (64,)
    assert fitted.n_features_in_ == 64
    assert [h["epoch"] for h in fitted.history_] == [1, 2, 3, 4]
    assert [h["k"] for h in fitted.history_] == [16, 10, 4, 4]
    assert fitted.state_.epoch == 4


def test_unfitted_attributes_raise():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        KSparseAutoencoder().W_  # noqa: B018


@pytest.mark.parametrize("alpha, kept", [(1.0, 4), (1.5, 6), (3.0, 12)])
def test_transform_keeps_round_alpha_k_units(fitted, X, alpha, kept):
    h = fitted.set_params(alpha=alpha).transform(X)
    fitted.set_params(alpha=1.0)
    u = (X / fitted.scale_ - fitted.b_prime_).astype(np.float32)  # D9 on the scaled input
    z = u @ fitted.W_ + fitted.b_
    assert h.shape == (400, 32) and h.dtype == np.float32
    assert ((h != 0).sum(axis=1) == kept).all()
    np.testing.assert_allclose(h[h != 0], z[h != 0], rtol=1e-5, atol=1e-6)


def test_transform_alpha_k_above_n_hidden_raises(fitted, X):
    with pytest.raises(ValueError, match=r"alpha\*k <= n_hidden .*= 32.*lower k or alpha, or raise n_hidden"):
        fitted.set_params(alpha=9.0).transform(X)
    with pytest.raises(ValueError, match="alpha must be a finite number >= 1, got nan"):
        fitted.set_params(alpha=float("nan")).transform(X)
    fitted.set_params(alpha=1.0)


def test_transform_wrong_n_features_raises(fitted, X):
    with pytest.raises(ValueError, match="features"):
        fitted.transform(X[:, :10])


def test_inverse_transform_is_the_decoder(fitted, X):
    h = fitted.transform(X)
    np.testing.assert_allclose(fitted.inverse_transform(h),
                               (h @ fitted.W_.T + fitted.b_prime_) * fitted.scale_, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="n_hidden = 32 columns"):
        fitted.inverse_transform(h[:, :5])


def test_score_is_negative_mse_per_element(fitted, X):
    x_hat = fitted.inverse_transform(fitted.transform(X))
    assert fitted.score(X) == pytest.approx(-np.mean((x_hat - X) ** 2), rel=1e-5)
    untrained = KSparseAutoencoder(**dict(SMALL, max_iter=1, lr=0.0)).fit(X)  # lr 0: the initial weights
    assert untrained.score(X) < fitted.score(X) < 0


def test_fit_is_reproducible_and_random_state_none_uses_global_rng(X):
    a = KSparseAutoencoder(**dict(SMALL, max_iter=1)).fit(X)
    b = KSparseAutoencoder(**dict(SMALL, max_iter=1)).fit(X)
    assert np.array_equal(a.W_, b.W_)
    params = dict(SMALL, max_iter=1, random_state=None)
    np.random.seed(3)
    c = KSparseAutoencoder(**params).fit(X)
    np.random.seed(3)
    d = KSparseAutoencoder(**params).fit(X)
    assert np.array_equal(c.W_, d.W_)


def test_float64_dtype(X):
    est = KSparseAutoencoder(**dict(SMALL, max_iter=1, dtype="float64")).fit(X)
    assert est.W_.dtype == np.float64 and est.transform(X).dtype == np.float64


# -- partial_fit, resume, persistence -----------------------------------------------------------
def test_partial_fit_max_iter_times_equals_fit(fitted, X):
    est = KSparseAutoencoder(**SMALL)
    for _ in range(SMALL["max_iter"]):
        est.partial_fit(X)
    assert np.array_equal(est.W_, fitted.W_)
    assert est.history_ == fitted.history_


def test_partial_fit_past_max_iter_holds_k_and_uses_new_params(X):
    est = KSparseAutoencoder(**dict(SMALL, max_iter=2))
    est.partial_fit(X).partial_fit(X)
    est.set_params(lr=0.005, k=3).partial_fit(X)
    default = ksparse.training.loop.LR_SCALED  # min(1, d / k) = 1 for d = 64, k <= 16
    assert [(h["k"], h["lr"]) for h in est.history_] == [(16, default), (4, default), (3, 0.005)]
    with pytest.raises(ValueError, match="n_hidden changed"):
        est.set_params(n_hidden=40).partial_fit(X)
    with pytest.raises(ValueError, match="device changed|device 'gpu' needs"):
        est.set_params(n_hidden=32, device="gpu").partial_fit(X)


def test_fit_resume_from_equals_uninterrupted(fitted, X, tmp_path):
    path = tmp_path / "half.npz"
    half = KSparseAutoencoder(**SMALL).partial_fit(X).partial_fit(X)
    half.save(path)
    resumed = KSparseAutoencoder(**SMALL).fit(X, resume_from=path)
    assert np.array_equal(resumed.W_, fitted.W_)  # bit-exact on CPU
    assert np.array_equal(resumed.b_, fitted.b_) and np.array_equal(resumed.b_prime_, fitted.b_prime_)
    assert resumed.history_ == fitted.history_


def test_fit_resume_from_other_hyperparameters_raises(fitted, tmp_path):
    path = tmp_path / "m.npz"
    fitted.save(path)
    with pytest.raises(ValueError, match="k must equal the checkpoint's 4 to resume it"):
        KSparseAutoencoder(**dict(SMALL, k=5)).fit(np.ones((3, 64)), resume_from=path)
    with pytest.raises(ValueError, match="alpha must equal the checkpoint's 1.0"):
        KSparseAutoencoder(**dict(SMALL, alpha=2.0)).fit(np.ones((3, 64)), resume_from=path)


def test_save_load_round_trip(fitted, X, tmp_path):
    path = tmp_path / "m.npz"
    fitted.save(path)
    assert os.listdir(tmp_path) == ["m.npz"]
    loaded = KSparseAutoencoder.load(path)
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    assert loaded.score(X) == fitted.score(X)
    assert loaded.get_params() == fitted.get_params()
    loaded.set_params(max_iter=5).fit(X, resume_from=path)
    assert loaded.state_.epoch == 5


def test_save_into_a_folder_and_load_of_a_folder_name_the_folder(fitted, tmp_path, monkeypatch):
    (tmp_path / "w").mkdir()
    monkeypatch.chdir(tmp_path / "w")
    with pytest.raises(OSError, match=r"'\.' is a folder; give the name of a file"):
        fitted.save(".")  # was EBUSY, renaming a temporary file made in the parent folder
    fitted.save("m.npz")
    with pytest.raises(ValueError, match=r"'\.' is a folder; give the path of a model.npz"):
        KSparseAutoencoder.load(".")
    os.mkdir("run")
    fitted.save(os.path.join("run", "model.npz"))
    with pytest.raises(ValueError, match=r"'run' is a folder; give the model file in it, run/model.npz"):
        KSparseAutoencoder.load("run")
    assert sorted(os.listdir(tmp_path / "w")) == ["m.npz", "run"] and os.listdir(tmp_path) == ["w"]


@pytest.mark.parametrize("where, words", [("folder", "is a folder; give the name of a file"),
                                          ("file/ckpt.npz", "'.*file' is a file, not a folder")])
def test_unwritable_checkpoint_path_is_refused_before_the_first_epoch(X, tmp_path, where, words):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_bytes(b"x")
    epochs = []
    est = KSparseAutoencoder(**SMALL, checkpoint_path=tmp_path / where, checkpoint_every=1,
                             callback=epochs.append)
    with pytest.raises(OSError, match=f"checkpoint_path.*{words}"):
        est.fit(X)
    assert epochs == [] and sorted(os.listdir(tmp_path)) == ["file", "folder"]  # was: after an epoch's work


def test_pickle_round_trip(fitted, X):
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(X), fitted.transform(X))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip", b"\x93NUMPY garbage"])
def test_load_corrupt_file_raises(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable ksparse model file"):
        KSparseAutoencoder.load(path)


def test_checkpoint_path_and_every(X, tmp_path):
    path = tmp_path / "ckpt.npz"
    epochs_on_disk = []
    est = KSparseAutoencoder(**SMALL, checkpoint_path=path, checkpoint_every=2,
                             callback=lambda r: epochs_on_disk.append(
                                 KSparseAutoencoder.load(path).state_.epoch if path.exists() else 0))
    est.fit(X)
    assert epochs_on_disk == [0, 2, 2, 4]
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_diverging_training_raises_and_keeps_last_good_state(X, tmp_path):
    path = tmp_path / "ckpt.npz"
    est = KSparseAutoencoder(**dict(SMALL, lr=0.002), checkpoint_path=path).partial_fit(X)
    est.set_params(lr=1e4, bias_lr_ratio=1.0, checkpoint_every=1)  # D13 off: the biases diverge
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        with np.errstate(all="ignore"):
            for _ in range(20):
                est.partial_fit(X)
    assert all(np.isfinite(p).all() for p in (est.W_, est.b_, est.b_prime_))
    on_disk = KSparseAutoencoder.load(path)
    assert on_disk.state_.epoch == est.state_.epoch >= 1
    np.testing.assert_array_equal(on_disk.W_, est.W_)


@pytest.mark.parametrize("params, error", [
    ({"k": 0}, ValueError), ({"k": 40}, ValueError), ({"alpha": 0.5}, ValueError),
    ({"alpha": 9.0}, ValueError), ({"device": "tpu"}, ValueError), ({"k": 2.5}, TypeError),
])
def test_fit_bad_hyperparameters_raise(X, params, error):
    with pytest.raises(error):
        KSparseAutoencoder(**dict(SMALL, **params)).fit(X)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_fit_nan_inf_raises(X, bad):
    Xb = X.copy()
    Xb[0, 0] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        KSparseAutoencoder(**SMALL).fit(Xb)


@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")
def test_gpu_estimator_matches_cpu_in_float64(X, tmp_path):
    params = dict(SMALL, max_iter=2, dtype="float64")
    cpu = KSparseAutoencoder(**params).fit(X)
    gpu = KSparseAutoencoder(**params, device="gpu").fit(X)
    assert isinstance(gpu.W_, np.ndarray)
    np.testing.assert_allclose(gpu.W_, cpu.W_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gpu.transform(X), cpu.transform(X), rtol=1e-8, atol=1e-10)
    assert gpu.score(X) == pytest.approx(cpu.score(X), rel=1e-8)
    gpu.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(KSparseAutoencoder.load(tmp_path / "m.npz").W_, gpu.W_)


def test_center_encodes_and_reconstructs_around_the_training_mean(X, tmp_path):
    from ksparse.kernels.encode import encode

    est = KSparseAutoencoder(**SMALL, center=True, dtype="float64").fit(X)
    mean = X.mean(axis=0)
    np.testing.assert_array_equal(est.state_.x_mean, mean)
    u = (X - mean) / est.scale_ - est.b_prime_
    np.testing.assert_allclose(est.transform(X), encode(u, est.W_, est.b_, est.k, est.alpha), rtol=1e-12)
    zeros = np.zeros((2, SMALL["n_hidden"]))
    np.testing.assert_allclose(est.inverse_transform(zeros),
                               np.tile(est.b_prime_ * est.scale_ + mean, (2, 1)))
    est.save(tmp_path / "c.npz")
    back = KSparseAutoencoder.load(tmp_path / "c.npz")
    assert back.center is True
    np.testing.assert_array_equal(back.transform(X), est.transform(X))


# -- the parameters come from the config ------------------------------------------------------
def test_parameters_are_the_config_fields_with_its_defaults():
    import dataclasses

    from ksparse.config import AutoencoderConfig
    from ksparse.estimators.classifier import KSparseClassifier

    params = KSparseAutoencoder().get_params()
    fields = {f.name: f.default for f in dataclasses.fields(AutoencoderConfig)}
    assert {n: params[n] for n in fields} == fields
    assert set(params) - set(fields) == {"device", "checkpoint_path", "checkpoint_every", "callback",
                                         "progress"}
    assert KSparseAutoencoder().random_state == KSparseClassifier().random_state == 0
    assert "max_iter : an integer >= 1, default 100" in KSparseAutoencoder.__doc__


@pytest.mark.parametrize("params, words", [
    ({"alpha": float("inf")}, "alpha must be a finite number >= 1, got inf"),
    ({"k_start": -1}, "k_start must be an integer >= 1, got -1"),
    ({"momentum": 2.5}, "momentum must be a finite number in [0, 1), got 2.5"),
    ({"max_iter": True}, "max_iter must be an integer >= 1, got True"),
    ({"random_state": -3}, "random_state must be an integer >= 0, got -3"),
])
def test_fit_bad_parameter_names_the_one_parameter(X, params, words):
    with pytest.raises(ValueError) as info:
        KSparseAutoencoder(**dict(SMALL, **params)).fit(X)
    assert str(info.value) == words


def test_fit_resume_with_larger_max_iter_continues_the_schedules(X, tmp_path):
    params = dict(SMALL, lr_final=0.001)
    first = KSparseAutoencoder(**params).fit(X)
    first.save(tmp_path / "m.npz")
    more = KSparseAutoencoder(**dict(params, max_iter=6)).fit(X, resume_from=tmp_path / "m.npz")
    assert more.n_iter_ == 6 and more.history_[:4] == first.history_
    assert [(r["k"], r["lr"]) for r in more.history_[4:]] == [(4, pytest.approx(0.001))] * 2
    with pytest.raises(ValueError, match="max_iter must be >= the 4 epochs already run"):
        KSparseAutoencoder(**dict(params, max_iter=3)).fit(X, resume_from=tmp_path / "m.npz")


# -- one input check for every method (issue: state that disagrees with the parameters) ------
def _fitted_on_frame():
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(0).random((60, 6))
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(6)])
    est = KSparseAutoencoder(n_hidden=10, k=2, k_start=4, max_iter=2, random_state=0).fit(frame)
    return est, frame


def test_every_method_keeps_pandas_column_names_without_warning():
    est, frame = _fitted_on_frame()
    assert list(est.feature_names_in_) == list(frame.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "X does not have valid feature names" would fail here
        s = est.score(frame)
        h = est.transform(frame)
        est.inverse_transform(h)
        est.partial_fit(frame)
    assert s < 0


def test_score_refuses_a_frame_with_other_column_names():
    est, frame = _fitted_on_frame()
    with pytest.raises(ValueError, match="feature names"):
        est.score(frame.rename(columns={"pixel0": "other"}))


@pytest.mark.parametrize("method", ["fit", "partial_fit", "transform", "score", "inverse_transform"])
def test_every_method_refuses_complex_input_with_one_message(method):
    X = np.random.default_rng(0).random((30, 5))
    est = KSparseAutoencoder(n_hidden=8, k=2, k_start=4, max_iter=1, random_state=0).fit(X)
    bad = (est.transform(X) if method == "inverse_transform" else X) + 1j
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ComplexDataError, match="Complex data not supported"):
            getattr(est, method)(bad)


@pytest.mark.parametrize("name, value", [("center", True), ("n_hidden", 9), ("dtype", "float64")])
def test_partial_fit_refuses_a_parameter_fixed_by_the_first_call(name, value):
    X = np.random.default_rng(0).random((30, 5))
    est = KSparseAutoencoder(n_hidden=8, k=2, k_start=4, max_iter=3, random_state=0).partial_fit(X)
    before = est.W_.copy()
    est.set_params(**{name: value})
    with pytest.raises(ValueError, match=f"{name} changed from .* since the model was built; call fit"):
        est.partial_fit(X)
    assert np.array_equal(est.W_, before) and est.n_iter_ == 1


def test_partial_fit_with_center_changed_back_does_not_subtract_a_stale_mean():
    X = np.random.default_rng(0).random((30, 5)) + 5.0
    est = KSparseAutoencoder(n_hidden=8, k=2, k_start=4, max_iter=3, center=True, random_state=0)
    est.partial_fit(X)
    est.set_params(center=False)
    with pytest.raises(ValueError, match="center changed from True to False"):
        est.partial_fit(X)


def test_both_estimators_are_exported_from_the_package_top_level():
    from ksparse import KSparseAutoencoder as A
    from ksparse import KSparseClassifier as C
    from ksparse.estimators.autoencoder import KSparseAutoencoder
    from ksparse.estimators.classifier import KSparseClassifier

    assert (A, C) == (KSparseAutoencoder, KSparseClassifier)
    assert set(ksparse.__all__) >= {"KSparseAutoencoder", "KSparseClassifier"}


def test_values_beyond_float32_squares_train_like_data_in_0_1(X):
    # 255e18: the squares overflow float32, yet the scale s (formed in float64) is finite and the
    # model learns the same in relative terms (scale-free training)
    x01 = X.astype(np.float32)
    big = x01 * np.float32(255e18)
    small = KSparseAutoencoder(**SMALL).fit(x01)
    large = KSparseAutoencoder(**SMALL).fit(big)
    assert np.isfinite(large.scale_) and large.scale_ == pytest.approx(255e18 * small.scale_, rel=1e-5)
    assert large.history_[-1]["fvu"] == pytest.approx(small.history_[-1]["fvu"], rel=1e-3)
    assert large.score(big) == pytest.approx(small.score(x01) * 255e18 ** 2, rel=1e-3)


def test_values_whose_squares_overflow_float64_say_the_scale_cannot_be_formed(X):
    with pytest.raises(ValueError, match="too large to form the data scale s.*divide it by a constant"):
        KSparseAutoencoder(**SMALL).fit(X * 1e200)


@pytest.mark.parametrize("method", ["fit", "partial_fit", "transform", "score", "inverse_transform"])
def test_nan_and_1d_input_are_named_as_the_command_line_names_them(fitted, X, method):
    bad = X.copy()
    bad[7, 5] = np.inf
    if method == "inverse_transform":
        bad = fitted.transform(X)
        bad[7, 5] = np.nan
    est = KSparseAutoencoder(**SMALL) if method in ("fit", "partial_fit") else fitted
    name = "codes" if method == "inverse_transform" else "X"
    # was scikit-learn's 'Input X contains infinity ...' / '... HistGradientBoostingClassifier ...'
    with pytest.raises(ValueError, match=rf"^{name} contains NaN or inf: \w+ at row 7, column 5; clean or"):
        getattr(est, method)(bad)
    with pytest.raises(ValueError, match=rf"^{name} must be 2-D .*got 1-D shape \({bad.shape[1]},\)\. "
                                         rf"Reshape your data: one sample is {name}.reshape\(1, -1\)$"):
        getattr(est, method)(bad[0])  # was scikit-learn's message, which prints the whole row


@pytest.mark.parametrize("random_state", [np.random.default_rng(0), "a", 1.5])
def test_random_state_of_another_type_says_what_it_accepts_and_the_fix(X, random_state):
    # was check_random_state's "... cannot be used to seed a numpy.random.RandomState instance"
    with pytest.raises(TypeError, match=r"^random_state must be an integer >= 0, a numpy.random.RandomState "
                                        r"or None, got .*; pass an integer seed, e.g. random_state=0"):
        KSparseAutoencoder(**dict(SMALL, random_state=random_state)).fit(X)
    from ksparse import KSparseClassifier

    with pytest.raises(TypeError, match="^random_state must be an integer"):
        KSparseClassifier(random_state=random_state).fit(X[:20], np.arange(20) % 2)
