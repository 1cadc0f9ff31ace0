"""``ksparse reproduce sweep``: the fine-tuning learning rate of Table 3's rows, chosen on validation.

Sec. 4.2.2 starts the supervised MNIST schedule at lr = 1 (momentum 0.25, lr falling linearly
to 0.001) and says that validation selects the hyper-parameters. This target fine-tunes each
row of :mod:`ksparse.reproduce.table3` once per start lr in ``--lrs`` and records the lowest
validation error of each, never the test error (the test images are not even loaded). A
cheap proxy: the autoencoders are the profile's (trained on all training images, cached and
shared with ``table3`` when the code and settings match), the fine-tuning uses the first
``--ft-n-train`` training images and ``--ft-epochs`` epochs per stage.

``ksparse reproduce sweep --profile quick --rows shallow,no_pretrain --lrs 0.1 0.3 1 --out DIR``
writes ``sweep-PROFILE-ROW-seedS.json`` (``PROFILE-ftE`` with ``--ft-epochs E``) per row and
seed into ``--results``: for each lr the validation error per epoch, its minimum, and whether
the run diverged; ``chosen_lr`` is the lr of the lowest validation error. ``--resume`` keeps the
rows this same code already wrote with these settings (``--lrs``, ``--ft-n-train``, ``--dataset``
are in the file, not in its name: a file of other settings is refused).
``ksparse reproduce report`` tabulates them.
"""

import logging
import time

from ksparse.reproduce import _common, _progress, _runs, table3

log = logging.getLogger("ksparse.reproduce")


def _parser():
    p = _common.parser("sweep", __doc__.splitlines()[0])
    for action in p._actions:
        if action.dest == "profile":
            action.choices = sorted(set(action.choices) | set(table3.PROFILES))
    p.add_argument("--dataset", choices=("mnist", "digits"), default="mnist",
                   help="mnist: Table 3's data; digits: scikit-learn's small set, for smoke tests")
    p.add_argument("--rows", default="no_pretrain,shallow", help="comma-separated rows of table3")
    p.add_argument("--lrs", type=float, nargs="+", default=[0.1, 0.3, 1.0], help="start lrs to try")
    p.add_argument("--ft-n-train", type=int, default=10000,
                   help="fine-tune on the first N training images (the autoencoders use all)")
    p.add_argument("--defaults", action="store_true",
                   help="the autoencoders of `table3 --defaults` (the library's defaults, not the paper's)")
    p.add_argument("--ft-epochs", type=int, default=None,
                   help="fine-tuning epochs of every stage (default: the profile's)")
    return p


def sweep_row(key, prof, data, encoders, seed, lrs):
    """Fine-tune row ``key`` once per lr; return ``[{"lr", "val_error", "diverged", "history"}]``."""
    from ksparse.training.loop import TrainingDiverged

    (X, y), (Xv, yv) = data
    runs = []
    for lr in lrs:
        clf = table3.classifier(key, prof, encoders, seed, lr=lr)
        try:
            table3.fit_shown(clf, X, y, Xv, yv)
        except TrainingDiverged as e:
            log.info("%s lr %g: %s", key, lr, e, extra={"stopped": True})
            runs.append({"lr": lr, "val_error": None, "diverged": True, "history": []})
            continue
        last = [r for r in clf.history_ if r["stage"] == clf.n_stages_]
        runs.append({"lr": lr, "val_error": min(r["val_error"] for r in last), "diverged": False,
                     "history": [{n: r[n] for n in ("stage", "epoch", "lr", "loss", "val_error")}
                                 for r in clf.history_]})
        log.info("%s lr %g: val error %.4f", key, lr, runs[-1]["val_error"])
    return runs


def _tag(args):
    """The profile part of the result files' names: the profile, --defaults and --ft-epochs."""
    return (args.profile + ("-defaults" if args.defaults else "")
            + ("" if args.ft_epochs is None else f"-ft{args.ft_epochs}"))


def outputs(args, keys):
    """The result files a run writes: one per row and seed."""
    return [_runs.result_path(args.results, "sweep", _tag(args), key, seed) for seed in args.seeds
            for key in keys]


def main(argv):
    """``ksparse reproduce sweep [--profile P] --out DIR [--rows R] [--lrs LR ...] [--seeds S ...]``."""
    args = _parser().parse_args(argv)
    keys = args.rows.split(",")
    known = [k for k, _, _ in table3.ROWS["mnist"]]
    if set(keys) - set(known):
        raise ValueError(f"unknown rows {sorted(set(keys) - set(known))}; choose from {known}")
    args.center = False
    _common.finish_args(args, lambda a: outputs(a, keys))
    prof = dict(table3.settings(args.profile, args.dataset), dataset=args.dataset)
    if args.ft_epochs is not None:
        prof["ft_epochs"] = {k: (args.ft_epochs,) * len(v) for k, v in prof["ft_epochs"].items()}
    _, (X, y), val, _ = _common.load_mnist_split(args.dataset, args.data_dir, prof["n_train"])
    n_ft = min(args.ft_n_train or len(X), len(X))
    split = _common.VAL_SPLIT if args.dataset == "mnist" else "digits: first quarter"
    data = {"dataset": args.dataset, "n_train": len(X), "n_finetune": n_ft, "n_val": len(val[0]),
            "n_test": 0, "val_split": split}
    data_sha1 = _common.data_fingerprint(X, y, *val)
    _common.check_resume(args, outputs(args, keys), {"settings": prof, "data": data, "lrs": list(args.lrs),
                                                     "pretrain_defaults": args.defaults,
                                                     "data_sha1": data_sha1, "profile": _tag(args)},
                         table3.UNREAD)
    for seed in args.seeds:
        made = {}
        for key in keys:
            path = _runs.result_path(args.results, "sweep", _tag(args), key, seed)
            record = _runs.finished(path) if args.resume else None
            if record is not None:
                log.info("%s seed %d: kept %s", key, seed, path)
            else:
                record = _sweep(args, argv, prof, key, seed, (X, y), val, n_ft, made, data, path, data_sha1)
            print(f"{key} seed {seed}: " + ", ".join(
                f"lr {r['lr']:g}: " + ("diverged" if r["diverged"] else f"{100 * r['val_error']:.2f}%")
                for r in record["runs"]) + f"; chosen {record['chosen_lr']}")
    print(_progress.wrote(outputs(args, keys), args.results))
    return 0


def _sweep(args, argv, prof, key, seed, train, val, n_ft, made, data, path, data_sha1):
    """Pre-train (or load) row ``key``'s encoders, fine-tune once per lr, write and return its record."""
    meta = dict(_runs.run_meta("sweep", argv, _tag(args), seed), settings=prof, data=data,
                pretrain_defaults=args.defaults, data_sha1=data_sha1)
    start = time.perf_counter()
    X, y = train
    encoders, infos = table3.encoders_for(args, prof, X, key, seed, made)
    runs = sweep_row(key, prof, ((X[:n_ft], y[:n_ft]), val), encoders, seed, args.lrs)
    meta["seconds"] = time.perf_counter() - start
    finite = [r for r in runs if not r["diverged"]]
    best = min(finite, key=lambda r: r["val_error"]) if finite else None
    record = {**table3.row_label(key, prof), "lrs": list(args.lrs), "runs": runs,
              "chosen_lr": None if best is None else best["lr"], "ft_epochs": list(prof["ft_epochs"][key]),
              "pretrain_epochs": [i.get("epochs") for i in infos]}
    _runs.write_result(path, meta, record)
    return record
