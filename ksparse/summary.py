"""What ``ksparse train`` records about a fitted :class:`~ksparse.estimators.autoencoder.KSparseAutoencoder`:
the filter image and ``summary.json`` (versions, command, data set, settings, the estimator's
metrics and, for labelled data, logistic-regression test errors on its features).

Every number comes from the estimator: :meth:`~ksparse.estimators.autoencoder.KSparseAutoencoder.score`,
``transform`` and the per-epoch records of ``history_`` (D4, FVU, dead fraction).
"""

import datetime
import json
import os
import warnings

import numpy as np

from ksparse import __version__
from ksparse.config import PAPER_OFF
from ksparse.io import atomic_write
from ksparse.kernels.encode import alpha_k

CLASSIFIER = "sklearn LogisticRegression(max_iter=1000), fit on the training set, scored on the test set"


def logreg_errors(ds, est, progress=None):
    """Test error of logistic regression on ``est.transform`` features and on the raw inputs.

    Parameters
    ----------
    ds : ksparse.datasets.Dataset
        With labels and a test split; otherwise a note says the step was skipped.
    est : fitted KSparseAutoencoder
    progress : callable, optional
        Called as ``progress(text)`` before each of the two fits (they take seconds to minutes).

    Returns
    -------
    dict
    """
    if labels_note(ds) is not None:
        return {"note": "skipped: " + labels_note(ds)}
    if ds.y_train is None or ds.X_test is None or ds.y_test is None:
        return {"note": "skipped: the data set has no labelled test split"}
    from sklearn.linear_model import LogisticRegression

    def error(what, train, test):
        if progress is not None:
            progress(f"logistic regression on {what} ({train.shape[0]} x {train.shape[1]})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = LogisticRegression(max_iter=1000).fit(train, ds.y_train)
        return float(1.0 - clf.score(test, ds.y_test))

    n_active = alpha_k(est.k, est.alpha, est.n_hidden)
    features = error(f"the {n_active}-sparse features", est.transform(ds.X_train), est.transform(ds.X_test))
    return {"features_test_error": features, "raw_test_error": error("the raw inputs", ds.X_train, ds.X_test),
            "n_active_features": n_active, "n_features": est.n_hidden, "classifier": CLASSIFIER}


def labels_note(ds):
    """Why labels given without a test split are not used (a data file of X and y), or None."""
    if ds.y_train is None or ds.X_test is not None:
        return None
    from ksparse.datasets import SPLIT_HOW

    return (f"{ds.name} holds labels y but no test split, which the test error of logistic regression "
            f"needs; store the split as {SPLIT_HOW} and pass d.npz")


def draw_filters(est, ds, image_shape, path):
    """Write the filters of largest norm to ``path``: images of ``image_shape``, else bar charts."""
    from ksparse.plots import filter_grid

    filter_grid(est.W_, image_shape, path, title=f"{ds.name}: filters of largest norm, k = {est.k}")
    return "images" if image_shape else "bars (the data has no image shape; see --image-shape)"


def run_summary(est, ds, x, command, device, image_shape=None):
    """The record of a run: versions, command line, time, data set, settings and metrics.

    ``x`` is the training matrix; ``score`` is ``est.score(x)`` (minus the MSE per element with
    alpha k units), ``last_epoch`` the last record of ``est.history_``.
    """
    return {
        "ksparse_version": __version__, "numpy_version": np.__version__, "command": command,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dataset": {"name": ds.name, "shape": list(x.shape), "image_shape": image_shape,
                    "test_shape": None if ds.X_test is None else list(np.shape(ds.X_test))},
        "config": est.state_.config.to_dict(), "device": device, "n_iter": est.n_iter_,
        "last_epoch": est.history_[-1] if est.history_ else None, "score": est.score(x),
    }


def unfinished_summary(est, command, device, status, note):
    """The record of a run that saved its model without finishing (Ctrl-C, SIGTERM, divergence):
    what the saved model is (settings, epochs run, per-epoch history) and ``status``; no score, no
    filters (the evaluation did not run), ``note`` says what to do next.
    """
    return {
        "status": status, "ksparse_version": __version__, "numpy_version": np.__version__, "command": command,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": est.state_.config.to_dict(), "device": device, "n_iter": est.n_iter_,
        "max_iter": est.max_iter, "last_epoch": est.history_[-1] if est.history_ else None,
        "history": est.history_, "filters": None, "note": note,
    }


def brief(record):
    """One line of a :func:`run_summary` record (with ``logistic_regression`` and ``wall_time_s``)."""
    last, lr = record["last_epoch"] or {}, record["logistic_regression"]
    epochs = f"{record['n_iter']} epoch{'' if record['n_iter'] == 1 else 's'}"
    cfg = record["config"]  # score reconstructs from alpha k units (transform's), not training's k
    units = alpha_k(cfg["k"], cfg["alpha"], cfg["n_hidden"])
    line = (f"{epochs}, score {record['score']:.4g} (minus the MSE per element, from the alpha k = {units} "
            "largest units)")
    if last:
        line += (f", last epoch: FVU (fraction of variance unexplained) {_percent(last['fvu'])}, dead units "
                 f"(no support during the epoch) {_percent(last['dead_fraction'])}")
    line += f"; {record['wall_time_s']:.1f} s in all"  # the whole run, the evaluation included
    if "features_test_error" in lr:
        line += (f"; logistic regression test error {lr['features_test_error']:.2%} on the "
                 f"{lr['n_active_features']}-sparse features vs {lr['raw_test_error']:.2%} on raw inputs")
    return line


def describe(est):
    """Lines that say what a fitted (or loaded) estimator is and how it was trained, each quantity
    in its standard words with its unit (:data:`EPOCH_FIELDS`); a nested line starts with two spaces."""
    state, last = est.state_, (est.history_[-1] if est.history_ else {})
    ignored = PAPER_OFF if state.config.paper else ()  # so that the line is a command train accepts
    settings = " ".join(_option(n, v) for n, v in state.config.to_dict().items()
                        if v is not None and n not in ignored)
    return [f"written by ksparse {state.written_by or 'an unknown version'}",
            f"shape: {est.n_features_in_} features -> {est.n_hidden} hidden units (W: {est.W_.shape})",
            f"k = {est.k}, alpha = {est.alpha:g} ({alpha_k(est.k, est.alpha, est.n_hidden)} units per "
            "feature vector)",
            f"epochs run: {est.n_iter_} of max_iter = {est.max_iter} (the k and lr schedules span "
            f"{state.schedule_length})",
            _k_schedule(state.config),
            _bias_ratio(state),
            *last_epoch_lines(last, dead_window(state, est.n_features_in_), state.written_by),
            f"settings: {settings}"]


def _percent(value):
    return f"{100 * value:.1f}%"


def _number(value):
    return f"{value:.4g}"


def _count(value):
    return f"{int(value)}"


#: each field of an epoch's record (``history_``): its words, with the unit, and how its value is
#: shown; ``ksparse info`` prints them in this order (``{T}``: the dead-unit window in samples)
EPOCH_FIELDS = {
    "loss": ("reconstruction error per sample (D4, in the data's units squared)", _number),
    "mse": ("mean squared error per element (D4 / d, in the data's units squared)", _number),
    "fvu": ("fraction of variance unexplained (FVU)", _percent),
    "dead_window": ("dead units (no support in the last T = {T} samples)", _percent),
    "dead_fraction": ("dead units (no support during the epoch)", _percent),
    "resampled": ("units resampled so far", _count),
    "bounded": ("minibatches whose step size D11 capped", _percent),
    "k": ("k (units kept per sample in training)", _count),
    "lr": ("learning rate", _number),
}
#: the fields every model of this version records; an older file that lacks one says so
ALWAYS = ("loss", "fvu", "dead_window", "dead_fraction")


def last_epoch_lines(last, window, written_by):
    """``ksparse info``'s lines of the last epoch's record ``last`` (an empty dict: none run),
    each field in :data:`EPOCH_FIELDS`'s words; ``window`` is T in samples (None: unknown)."""
    if not last:
        return ["last epoch: none (no epoch has run)"]
    lines = [f"last epoch (epoch {last['epoch']}):" if "epoch" in last else "last epoch:"]
    for name, (words, show) in EPOCH_FIELDS.items():
        words = words.format(T=window if window is not None else "?")
        value = last.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            lines.append(f"  {words}: {show(value)}")
        elif name in ALWAYS:
            by = written_by or "an older version"
            lines.append(f"  {words}: not recorded (a model file of ksparse {by})")
    others = {n: v for n, v in last.items() if n not in EPOCH_FIELDS and n != "epoch"}
    lines += [f"  {n} (a step's own measure): {v:.4g}" if isinstance(v, float) else f"  {n}: {v}"
              for n, v in others.items()]
    return lines


def dead_window(state, d):
    """T, the samples within which a unit is dead when in no support: the tracker's, else the one
    the settings give (:func:`ksparse.training.loop.remedies_in_force`)."""
    tracker = state.tracker or {}
    if isinstance(tracker.get("window"), int):
        return tracker["window"]
    from ksparse.training.loop import remedies_in_force

    return remedies_in_force(state.config, d)["dead_window"]


def _bias_ratio(state):
    """D13's ratio of the biases' learning rate to W's, as training ran it (docs/equations.md)."""
    ratio, given = state.bias_ratio, state.config.bias_lr_ratio
    if ratio is None:  # not trained yet, or written before the ratio was saved
        ratio = 1.0 if state.config.paper else given
    why = ("1 under paper=True" if state.config.paper else "bias_lr_ratio" if given is not None
           else "lambda_1 of the training data, bias_lr_ratio None")
    return f"biases' learning rate: {'unknown' if ratio is None else f'{ratio:.3g}'} times lr ({why})"


def _k_schedule(cfg):
    """The k schedule as training runs it: k_start capped at n_hidden and raised to k (Sec. 4.2.1)."""
    start = max(min(cfg.k_start, cfg.n_hidden), cfg.k)
    how = "capped at n_hidden" if cfg.k_start > cfg.n_hidden else "raised to k"
    why = "" if start == cfg.k_start else f" (k_start = {cfg.k_start} {how})"
    return f"k schedule: {start} -> {cfg.k} over {cfg.k_fraction:g} of the epochs{why}"


def _option(name, value):
    """``--name value`` as ``ksparse train`` takes it back (``--name`` / ``--no-name`` for a flag)."""
    flag = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{flag}" if value else f"--no-{flag}"
    return f"--{flag} {value}"


def write_json(path, record):
    """Write ``record`` as indented JSON, atomically; NumPy scalars become numbers."""
    text = json.dumps(record, indent=2, default=lambda o: o.item() if hasattr(o, "item") else list(o))
    atomic_write(os.fspath(path), lambda f: f.write(text.encode() + b"\n"))
