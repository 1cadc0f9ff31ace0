"""Table 3 (Sec. 4.5-4.6): k-sparse networks fine-tuned on MNIST; Table 4's path for small NORB.

Five rows, each a :class:`ksparse.estimators.classifier.KSparseClassifier`; the k-sparse rows'
hidden layers keep their alpha k largest units (Sec. 4.5):

- ``no_pretrain``: one hidden layer from N(0, sigma^2), all of it trained at once;
- ``dropout``, ``denoising``: one ReLU hidden layer (S5) from the encoder of a dropout (50%
  hidden) or denoising (20% input dropout) autoencoder (:mod:`ksparse.nn.baselines`, the models
  of Table 1's baselines), fine-tuned in one stage with the same noise (S6, Sec. 4.5);
- ``shallow``: one hidden layer from a k-sparse autoencoder, fine-tuned in one stage, all
  layers at once (Sec. 4.5 stages only the deep network);
- ``deep``: two hidden layers from greedily stacked autoencoders (the second trained on the
  alpha k codes of the first), fine-tuned layer-wise (Sec. 4.6: softmax, then layer 2 and
  softmax, then everything).

Every stage follows Sec. 4.2.2's supervised schedule (momentum 0.25, lr falling linearly
from 1 to 0.001) and keeps the epoch of lowest validation error. MNIST uses the 50k/10k/10k
split, k = 25, alpha = 3, 1000 units per layer; NORB (Table 4) uses k = 150, alpha = 2,
4000 units and needs the small NORB files, which the loader reads from ``--data-dir``.

``ksparse reproduce table3 --profile quick|paper --out DIR [--seeds 0 1 2] [--resume]`` writes
one result file per row and seed into ``--results`` (default ``DIR/results``, see
:mod:`ksparse.reproduce._runs`), and ``DIR/table3.md`` and ``DIR/table3.json`` for this run;
the autoencoders are cached (and checkpointed every epoch) in ``--cache`` (default
``DIR/models``), the first one shared with ``table1`` when the settings match.
"""

import hashlib
import json
import logging
import os
import time

import numpy as np

from ksparse.config import FinetuneConfig
from ksparse.reproduce import _common, _progress, _runs

log = logging.getLogger("ksparse.reproduce")

# key, label, the paper's test error in percent: Table 3 (MNIST) and Table 4 (NORB)
ROWS = {
    "mnist": [("no_pretrain", "Without pre-training", 1.60),
              ("dropout", "Shallow dropout AE + F.T. (50% hidden)", 1.05),
              ("denoising", "Denoising AE + F.T. (20% input dropout)", 1.20),
              ("shallow", "k-sparse AE + F.T. (k = 25)", 1.08),
              ("deep", "Deep k-sparse AE + F.T. (layer-wise pre-training)", 0.97)],
    "norb": [("no_pretrain", "Without pre-training", 12.7),
             ("shallow", "Shallow k-sparse AE + F.T. (k = 150)", 7.8),
             ("deep", "Deep k-sparse AE + F.T. (k = 150, layer-wise pre-training)", 7.4)],
}
# the comparison rows: the baseline autoencoder they start from, and the noise of their fine-tuning
NOISY = {"dropout": {"p_input": 0.0, "p_hidden": 0.5}, "denoising": {"p_input": 0.2, "p_hidden": 0.0}}
ROWS["digits"] = [(key, label, float("nan")) for key, label, _ in ROWS["mnist"]]

# Per data set: Sec. 4.4-4.6 (k, alpha, units) and the unsupervised lr of Sec. 4.2.2.
# The paper's supervised NORB schedule is cut off in the text; the MNIST one is used.
DATASETS = {
    "mnist": {"k": 25, "alpha": 3.0, "n_hidden": 1000, "lr": 0.01},
    "norb": {"k": 150, "alpha": 2.0, "n_hidden": 4000, "lr": 0.0001},
    "digits": {"k": 25, "alpha": 3.0, "n_hidden": 1000, "lr": 0.01},
}

# Per profile: autoencoder epochs (layer 1, layer 2), fine-tuning epochs per stage, schedule.
# The paper's supervised schedule is FinetuneConfig's default (Sec. 4.2.2).
_SUPERVISED = FinetuneConfig()


def _ft_epochs(no_pretrain, shallow, deep):
    """Fine-tuning epochs per stage of every row; the comparison rows fine-tune as long as ``shallow``."""
    return {"no_pretrain": (no_pretrain,), "dropout": (shallow,), "denoising": (shallow,),
            "shallow": (shallow,), "deep": tuple(deep)}


PAPER = {"ae_epochs": (5000, 5000), "ft_epochs": _ft_epochs(200, 200, (200, 200, 200)),
         "ft_lr": _SUPERVISED.lr, "ft_lr_final": _SUPERVISED.lr_final,
         "ft_momentum": _SUPERVISED.momentum, "n_train": None}
# quick: the paper's schedule with short runs. The start lr: the paper's 1, which
# `ksparse reproduce sweep` chose on validation error for the shallow k-sparse and the dropout
# rows (docs/results.md); the deep network 0.5, the lower validation error of 0.3 and 0.5 in
# every seed on the whole training set (lr 1 diverged in its last stage; docs/results.md)
QUICK = dict(PAPER, ae_epochs=(15, 8), ft_lr={"no_pretrain": 1.0, "dropout": 1.0, "denoising": 1.0,
                                              "shallow": 1.0, "deep": 0.5},
             ft_epochs=_ft_epochs(30, 30, (5, 8, 15)))
_LONG_LR = dict(QUICK["ft_lr"], deep=0.3)
PROFILES = {
    "paper": PAPER,
    "quick": QUICK,
    # long: quick with more epochs (what fits in about an hour on one busy core)
    # (the deep network from 0.3: at 0.5 it diverged in seed 1's last stage; docs/results.md)
    "long": dict(QUICK, ae_epochs=(80, 30), ft_epochs=_ft_epochs(60, 50, (10, 20, 40)), ft_lr=_LONG_LR),
    # budget: the autoencoders of table1's budget profile, fine-tuning as long
    "budget": dict(QUICK, ae_epochs=(200, 60), ft_epochs=_ft_epochs(60, 50, (10, 20, 40)), ft_lr=_LONG_LR),
    # smoke: the paper's schedule for seconds, on a smaller network
    "smoke": dict(PAPER, ae_epochs=(2, 2), n_train=600, n_hidden=100, k=10,
                  ft_epochs=_ft_epochs(3, 3, (2, 2, 2))),
}


# Table 1's settings, in every profile through _common's, that no row of table3 or sweep reads:
# a result file that differs only in them was made with this run's settings (logreg_C: the
# classifier's single C of result files up to commit 33e56ad)
UNREAD = (*_common.CLASSIFIER, "logreg_C", "rbm_epochs", "rbm_lr", "n_patches", "patch_epochs")


def settings(profile, dataset):
    """The merged settings of a profile and a data set (the smoke profile shrinks the network)."""
    base = _common.PROFILES.get(profile, _common.PROFILES["quick"])
    prof = {**base, **DATASETS[dataset], **PROFILES[profile]}
    prof["ksparse_epochs"] = prof["ae_epochs"][0]
    return prof


def load_split(dataset, data_dir, n_train, seed=0):
    """(train, val, test) pairs (X, y): MNIST 50k/10k/10k, digits, or NORB with a validation hold-out."""
    if dataset != "norb":
        _, train, val, test = _common.load_mnist_split(dataset, data_dir, n_train)
        return train, val, test
    from sklearn.model_selection import train_test_split

    from ksparse.datasets import load_dataset

    ds = load_dataset("norb", data_dir=data_dir)
    X, y = ds.X_train, ds.y_train
    if ds.X_val is not None:
        val = (ds.X_val, ds.y_val)
    else:  # hold out a sixth of the training set, stratified when every class allows it
        stratify = y if np.bincount(y).min() >= 2 else None
        X, Xv, y, yv = train_test_split(X, y, test_size=1 / 6, random_state=seed, stratify=stratify)
        val = (Xv, yv)
    if n_train:
        X, y = X[:n_train], y[:n_train]
    return (X, y), val, (ds.X_test, ds.y_test)


def pretrain(args, prof, X, deep, seed=0):
    """Layer 1 (cached, shared with table1) and, for ``deep``, layer 2 on layer 1's alpha k codes.

    Both are checkpointed every epoch; ``args.resume`` continues a stopped one.

    Returns
    -------
    encoders : list of (W, b)
    infos : list of dict
        Each autoencoder's info (:func:`ksparse.reproduce._common.cached_model`): training
        time as measured when it was trained, epochs, per-epoch history.
    """
    from ksparse.kernels.encode import encode

    paper = not args.defaults
    arrays, info1 = _common.ksparse_model(args.cache, X, prof["k"], prof, args.dataset, seed,
                                          callback=_epochs_of("AE 1"),
                                          center=args.center, resume=args.resume, paper=paper)
    # z = x W_enc + b_enc on raw x: the centring (W^T (x - m) + b = W^T x + (b - W^T m)) and,
    # with the library's defaults, the data scale and D9's pre-encoder bias folded in
    W, b = arrays["W_enc"], arrays["b_enc"]
    encoders, infos = [(W, b)], [info1]
    if not deep:
        return encoders, infos
    codes = encode(X, W, b, prof["k"], prof["alpha"])
    config = _common.autoencoder_config(prof, prof["k"], prof["ae_epochs"][1], seed + 1, alpha=prof["alpha"],
                                        **({} if paper else {"paper": False, "lr": None})).to_dict()
    settings2 = dict(config, method="ksparse-layer2", data=args.dataset, n=len(X),
                     below=hashlib.sha1(W.tobytes() + b.tobytes()).hexdigest()[:10])
    name = f"ksparse2-k{prof['k']}{'' if paper else 'd'}-{args.dataset}"
    arrays2, info2 = _common.cached_model(
        args.cache, name, settings2, lambda stem: _common.train_autoencoder(
            codes, config, stem, args.resume, _epochs_of("AE 2")), data=codes)
    return encoders + [(arrays2["W_enc"], arrays2["b_enc"])], infos + [info2]


def pretrain_baseline(args, prof, X, key, seed=0):
    """The encoder of Table 1's dropout or denoising autoencoder (``key``), cached, trained for
    as many epochs as the k-sparse layer 1. Returns ``([(W, b)], [info])``."""
    kind = {"dropout": "dropout", "denoising": "denoising"}[key]
    arrays, info = _common.baseline_model(args.cache, X, kind, dict(prof, ae_epochs=prof["ae_epochs"][0]),
                                          args.dataset, seed,
                                          callback=_epochs_of(f"AE {kind}"))
    return [(arrays["W"], arrays["b"])], [info]


def encoders_for(args, prof, X, key, seed, made):
    """The encoders ``[(W, b), ...]`` and pre-training infos of row ``key`` (None and [] without
    pre-training); ``made`` (a dict) keeps what this seed already trained or loaded."""
    if key == "no_pretrain":
        return None, []
    if key in NOISY:
        if key not in made:
            made[key] = pretrain_baseline(args, prof, X, key, seed)
        return made[key]
    n = 2 if key == "deep" else 1
    if len(made.get("ksparse", ((), ()))[0]) < n:
        made["ksparse"] = pretrain(args, prof, X, key == "deep", seed)
    encoders, infos = made["ksparse"]
    return encoders[:n], infos[:n]


def _epochs_of(label):
    """A pre-training callback that logs each epoch's record (the model's progress bar)."""
    return lambda r: log.info("%s %s", label, _brief(r), extra=_common.at_epoch(r))


def _brief(record):
    return _common.epoch_text(record)  # in words, not the record's field names


def classifier(key, prof, encoders, seed, lr=None):
    """The unfitted network of row ``key``: its layers, schedule and noise (``lr``: the start
    lr, default the profile's). The deep network is fine-tuned layer-wise (Sec. 4.6), the other
    rows in one stage, all layers at once; the dropout and denoising rows have a ReLU hidden
    layer (S5) and train with their noise (S6)."""
    from ksparse.estimators.classifier import KSparseClassifier

    n_layers = 2 if key == "deep" else 1
    return KSparseClassifier(
        n_hidden=(prof["n_hidden"],) * n_layers, k=prof["k"], alpha=prof["alpha"],
        pretrain=False, encoders=None if key == "no_pretrain" else encoders[:n_layers],
        max_iter=list(prof["ft_epochs"][key]), lr=_for_row(prof["ft_lr"], key) if lr is None else lr,
        lr_final=prof["ft_lr_final"], momentum=prof["ft_momentum"], batch_size=prof["batch_size"],
        sigma=prof["sigma"], layerwise=key == "deep", random_state=seed,
        paper=True,  # raw inputs, the pixels the encoders were trained on (no standardisation)
        hidden="relu" if key in NOISY else "ksparse", **NOISY.get(key, {}),
        callback=FinetuneProgress(key if lr is None else f"{key} lr {lr:g}", prof["ft_epochs"][key]))


class FinetuneProgress:
    """A fine-tuning callback that shows a bar per stage on stderr (:mod:`._progress`), its
    postfix the epoch's validation error, loss and lr. ``epochs``: the epochs of each stage;
    :meth:`open` ``(1)`` before the fit starts the first stage's bar, and each stage's last
    epoch opens the next one's (a stage restarted at half the rates gets a new bar)."""

    def __init__(self, label, epochs):
        self.label, self.epochs, self.fresh = label, list(epochs), False

    def open(self, stage):
        n_stages = len(self.epochs)
        name = f"fine-tuning {self.label}" + (f" stage {stage}/{n_stages}" if n_stages > 1 else "")
        log.info("%s", name, extra={"model": name, "epochs": self.epochs[stage - 1]})
        self.fresh = True

    def __call__(self, record):
        stage = record["stage"]
        if record["epoch"] == 1 and not self.fresh:  # a stage restarted (or not opened before the fit)
            self.open(stage)
        self.fresh = False
        shown = [f"val error {100 * record['val_error']:.2f}%"] if "val_error" in record else []
        log.info("%s", ", ".join(shown + [f"loss {record['loss']:.4g}", f"lr {record['lr']:.3g}"]),
                 extra=_common.at_epoch(record))
        if record["epoch"] == self.epochs[stage - 1] and stage < len(self.epochs):
            self.open(stage + 1)


def fit_shown(clf, *data):
    """``clf.fit(*data)`` with the first stage's bar open from its start (:class:`FinetuneProgress`)."""
    if isinstance(clf.callback, FinetuneProgress):
        clf.callback.open(1)
    return clf.fit(*data)


def run_row(key, prof, data, encoders, seed):
    """Fine-tune one row's network (:func:`classifier`); return its record (errors, epochs, wall time)."""
    (X, y), (Xv, yv), (Xt, yt) = data
    clf = classifier(key, prof, encoders, seed)
    start = time.perf_counter()
    fit_shown(clf, X, y, Xv, yv)
    seconds = time.perf_counter() - start
    last = [r for r in clf.history_ if r["stage"] == clf.n_stages_]
    return {**row_label(key, prof), "test_error": float(1.0 - clf.score(Xt, yt)),
            "val_error": min(r["val_error"] for r in last), "finetune_seconds": seconds,
            "ft_epochs": list(prof["ft_epochs"][key]), "ft_lr": _for_row(prof["ft_lr"], key),
            "ft_lr_final": prof["ft_lr_final"], "ft_momentum": prof["ft_momentum"],
            "n_stages": clf.n_stages_, "history": clf.history_, **NOISY.get(key, {})}


def row_label(key, prof):
    """``{"key", "label", "paper_test_error"}`` of a row."""
    label, paper = next((label, paper) for k, label, paper in ROWS[prof["dataset"]] if k == key)
    return {"key": key, "label": label, "paper_test_error": paper / 100}


def _for_row(value, key):
    """A setting that is either one value for all rows or a dict keyed by row."""
    return value[key] if isinstance(value, dict) else value


def _parser():
    p = _common.parser("table3", __doc__.splitlines()[0])
    for action in p._actions:  # this target also has the "long" profile
        if action.dest == "profile":
            action.choices = sorted(set(action.choices) | set(PROFILES))
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist",
                   help="mnist: Table 3; norb: Table 4 (needs the small NORB files); digits: smoke tests")
    p.add_argument("--rows", default="no_pretrain,shallow,deep", help="comma-separated subset of rows")
    p.add_argument("--n-train", type=int, default=None, help="use only the first N training samples")
    p.add_argument("--center", action="store_true",
                   help="pre-train the first autoencoder on mean-subtracted inputs (not in the paper); "
                   "the mean is folded into the first layer's bias, so the network reads raw inputs")
    p.add_argument("--defaults", action="store_true",
                   help="pre-train the autoencoders with the library's defaults (data scale, D9's "
                   "pre-encoder bias, resampling of dead units; not the paper's), as Table 1's k25d row; "
                   "their encoders, scale and biases folded in, read raw inputs")
    p.add_argument("--ft-lr", type=float, default=None,
                   help="initial fine-tuning learning rate for every row (default: the profile's)")
    p.add_argument("--ft-epochs", type=int, default=None,
                   help="fine-tuning epochs of every stage of every row (default: the profile's; "
                   "the paper's: 200)")
    return p


def _model_record(info):
    from ksparse.reproduce.table1 import thin

    return {"epochs": info.get("epochs"), "seconds": info["seconds"], "file": info.get("file"),
            "settings": info.get("settings"), "resumed_at": info.get("resumed_at", 0),
            "history": thin(info.get("history"))}


def _tag(args):
    """The profile part of the result files' names: the profile and the options that change the rows."""
    return (args.profile + ("-centred" if args.center else "") + ("-defaults" if args.defaults else "")
            + (f"-lr{args.ft_lr:g}" if args.ft_lr else "")
            + (f"-ft{args.ft_epochs}" if args.ft_epochs else ""))


def outputs(args, keys, tables=True):
    """The files a run writes: one result file per row and seed, and (``tables``) OUT/table3.md and .json."""
    return ([_runs.result_path(args.results, "table3", _tag(args), key, seed) for seed in args.seeds
             for key in keys] + [os.path.join(args.out, name) for name in ("table3.md", "table3.json")
                                                               if tables])


def run_seed(args, argv, prof, keys, arrays, data, seed, data_sha1=None):
    """All rows of one seed: pre-train (or load) the autoencoders, fine-tune, write one file per row
    (``data_sha1``: the :func:`~ksparse.reproduce._common.data_fingerprint` of ``arrays``)."""
    tag = _tag(args)
    out, made = [], {}
    for key in keys:
        path = _runs.result_path(args.results, "table3", tag, key, seed)
        done = _runs.finished(path) if args.resume else None
        if done is not None:
            log.info("%s seed %d: kept %s", key, seed, path)
            out.append(json.load(open(path)))
            continue
        meta = dict(_runs.run_meta("table3", argv, tag, seed), settings=prof, data=data, center=args.center,
                    pretrain_defaults=args.defaults, data_sha1=data_sha1)
        start = time.perf_counter()
        row_encoders, row_infos = encoders_for(args, prof, arrays[0][0], key, seed, made)
        record = run_row(key, prof, arrays, row_encoders, seed)
        record["pretrain"] = [] if key == "no_pretrain" else [_model_record(i) for i in row_infos]
        meta["seconds"] = time.perf_counter() - start
        _runs.write_result(path, meta, record)
        log.info("table3 %s seed %d: test error %.4f, val error %.4f, %.0f s; wrote %s", key, seed,
                 record["test_error"], record["val_error"], meta["seconds"], path)
        out.append({"meta": meta, "result": record})
    return out


def main(argv):
    """``ksparse reproduce table3 [--profile P] --out DIR [--seeds S ...] [--rows R] [--resume]``."""
    args = _parser().parse_args(argv)
    keys = args.rows.split(",")
    known = [k for k, _, _ in ROWS[args.dataset]]
    if set(keys) - set(known):
        raise ValueError(f"unknown rows {sorted(set(keys) - set(known))}; choose from {known}")
    if args.defaults and args.center:
        raise ValueError("--defaults and --center are two ways to pre-train; give one (the defaults "
                         "already shift the inputs by a learned pre-encoder bias)")
    if args.ft_epochs is not None and args.ft_epochs < 1:
        raise ValueError(f"--ft-epochs must be at least 1, got {args.ft_epochs}")
    _common.finish_args(args, lambda a: outputs(a, keys))  # last of the checks: files in the way
    prof = dict(settings(args.profile, args.dataset), dataset=args.dataset)
    if args.ft_lr is not None:
        prof["ft_lr"] = args.ft_lr
    if args.ft_epochs is not None:
        prof["ft_epochs"] = {k: (args.ft_epochs,) * len(v) for k, v in prof["ft_epochs"].items()}
    arrays = load_split(args.dataset, args.data_dir, args.n_train or prof["n_train"], 0)
    data = {"dataset": args.dataset, "n_train": len(arrays[0][0]), "n_val": len(arrays[1][0]),
            "n_test": len(arrays[2][0]), "val_split": _common.VAL_SPLIT if args.dataset == "mnist"
            else "digits: first quarter" if args.dataset == "digits" else "a stratified sixth (seed 0)"}
    data_sha1 = _common.data_fingerprint(*arrays[0], *arrays[1], *arrays[2])
    record = os.path.join(args.out, "table3.json")
    _common.check_resume(args, outputs(args, keys, tables=False),
                         {"settings": prof, "data": data, "data_sha1": data_sha1, "center": args.center,
                          "pretrain_defaults": args.defaults, "profile": _tag(args)},
                         UNREAD, records={os.path.join(args.out, "table3.md"): record, record: record})
    results = []
    for seed in args.seeds:
        results += run_seed(args, argv, prof, keys, arrays, data, seed, data_sha1)
    from ksparse.reproduce import report

    table = report.table3(results)
    _runs.write_text(record, json.dumps(results, indent=1, default=_runs.jsonable))  # first: it records
    _runs.write_text(os.path.join(args.out, "table3.md"), table)                   # the .md's settings
    print(table)
    print(_progress.wrote(outputs(args, keys), args.results))
    return 0
