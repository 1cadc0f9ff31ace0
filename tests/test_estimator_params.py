"""The estimators' run parameters: accepted values work, anything else is refused up front
(a ConfigError naming the parameter and what it accepts), never deep in training."""

import numpy as np
import pytest

from ksparse import KSparseAutoencoder
from ksparse.config import ConfigError
from ksparse.estimators.classifier import KSparseClassifier

X = np.random.default_rng(0).random((200, 16))


@pytest.mark.parametrize("progress", [True, False, None, np.bool_(False)])
def test_progress_true_false_none(progress, capsys):
    ae = KSparseAutoencoder(progress=progress, max_iter=2).fit(X)
    assert ae.n_iter_ == 2
    assert ("sample" in capsys.readouterr().err) == bool(progress)


def test_progress_callable_gets_every_sample():
    rows = []
    KSparseAutoencoder(progress=rows.append, max_iter=2).fit(X)
    assert sum(rows) == 2 * X.shape[0]


@pytest.mark.parametrize("name, value, words", [
    ("progress", "yes", ["progress", "True", "callable"]),
    ("progress", 1.5, ["progress", "None"]),
    ("callback", 3, ["callback", "callable"]),
    ("checkpoint_path", 5, ["checkpoint_path", "path"]),
])
def test_autoencoder_refuses_before_training(name, value, words, monkeypatch):
    import ksparse.training.loop

    monkeypatch.setattr(ksparse.training.loop, "fit", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(ConfigError) as e:
        KSparseAutoencoder(**{name: value}).fit(X)
    assert e.value.field == name
    for word in words:
        assert word in str(e.value)


@pytest.mark.parametrize("name, value", [("callback", "print"), ("layerwise", "no"), ("pretrain", 2),
                                         ("paper", "yes")])
def test_classifier_refuses_before_training(name, value):
    with pytest.raises(ConfigError) as e:
        KSparseClassifier(**{name: value}).fit(X, np.arange(200) % 3)
    assert e.value.field == name
