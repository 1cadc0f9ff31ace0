"""What a person reads about a model uses the quantities' words and units, not the record's field
names: ``ksparse info`` (also of a model file whose records lack fields), the line ``train`` ends
with, and the progress lines of ``train`` and ``reproduce``."""

import json
import re

import numpy as np
import pytest
from conftest import rewrite_model

from ksparse import summary
from ksparse.cli import main
from ksparse.estimators.autoencoder import KSparseAutoencoder
from ksparse.reproduce._common import epoch_text

X = np.random.default_rng(0).random((120, 16))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A model of the defaults (scale, resampling, step bound: every field recorded) and its path."""
    path = tmp_path_factory.mktemp("summary") / "model.npz"
    est = KSparseAutoencoder(n_hidden=20, k=4, k_start=8, max_iter=2).fit(X)
    est.save(path)
    return est, path


def _info(path, capsys):
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    return [line for line in out.splitlines() if "settings: --" not in line]  # settings: the options


def _raw_names(record):
    """The record's field names that are not words (``dead_window``, ``fvu``, ``mse``)."""
    return [n for n in record if "_" in n or n in ("fvu", "mse")]


def test_every_field_of_an_epoch_record_has_words():
    est = KSparseAutoencoder(n_hidden=20, k=4, k_start=8, max_iter=1, c_aux=0.03).fit(X)
    assert set(est.history_[-1]) - {"epoch"} <= set(summary.EPOCH_FIELDS)


def test_info_says_each_quantity_in_words_with_its_unit(model, capsys):
    est, path = model
    lines = _info(path, capsys)
    text = "\n".join(lines)
    for name in _raw_names(est.history_[-1]):
        assert not re.search(rf"\b{name}\b", text), (name, text)
    last = est.history_[-1]
    window = -(-100 * 20 // 4)  # T = 100 H / k samples by default
    dead = f"dead units (no support in the last T = {window} samples): {100 * last['dead_window']:.1f}%"
    assert dead in text
    assert f"dead units (no support during the epoch): {100 * last['dead_fraction']:.1f}%" in text
    assert f"fraction of variance unexplained (FVU): {100 * last['fvu']:.1f}%" in text
    assert f"units resampled so far: {last['resampled']}" in text
    assert "last epoch (epoch 2):" in text


def test_info_of_an_older_model_says_what_it_did_not_record(model, tmp_path, capsys):
    _, path = model
    meta = json.loads(str(np.load(path)["meta"][()]))
    old = [{n: v for n, v in r.items() if n in ("loss", "epoch", "k", "lr")} for r in meta["history"]]
    rewrite_model(path, tmp_path / "old.npz", meta={"history": old, "tracker": None})
    text = "\n".join(_info(tmp_path / "old.npz", capsys))
    assert "dead units (no support in the last T = 500 samples): not recorded" in text
    assert "fraction of variance unexplained (FVU): not recorded" in text
    assert "reconstruction error per sample" in text and "nan" not in text
    rewrite_model(path, tmp_path / "none.npz", meta={"history": []})
    assert "last epoch: none (no epoch has run)" in "\n".join(_info(tmp_path / "none.npz", capsys))


def test_train_and_reproduce_progress_lines_use_words(model):
    est, _ = model
    last = est.history_[-1]
    record = {"n_iter": 2, "score": -0.1, "last_epoch": last, "wall_time_s": 1.0, "logistic_regression": {},
              "config": est.state_.config.to_dict()}
    finetune = {"stage": 1, "first_layer": 1, "epoch": 3, "loss": 0.2, "lr": 0.5, "val_error": 0.01}
    for line in (summary.brief(record), epoch_text(last), epoch_text(finetune)):
        assert not any(re.search(rf"\b{n}\b", line) for n in [*_raw_names(last), *_raw_names(finetune)]), line
    assert "FVU (fraction of variance unexplained)" in summary.brief(record)
    assert "validation error 1.00%" in epoch_text(finetune)
