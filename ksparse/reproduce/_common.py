"""Shared machinery of the reproduce targets: profiles, data, cached models, features, classifiers.

Models are cached in ``--cache`` (default ``OUT/models``) as ``.npz`` files named after the
method and the data set, with a key of the training settings, the data's fingerprint
(:func:`data_fingerprint`) and the code version, the settings and wall time inside, so that
``table1``, ``fig1`` and ``fig4`` run with the same ``--out`` train each model once.
"""

import hashlib
import json
import logging
import os
import time

import numpy as np

from ksparse.argparsing import HintParser
from ksparse.config import AutoencoderConfig
from ksparse.io import atomic_write, check_folder_name, check_writable, path_argument
from ksparse.reproduce import _progress as progress
from ksparse.reproduce import _runs

log = logging.getLogger("ksparse.reproduce")

# Sec. 4.2.2's unsupervised settings, the base of every profile: the k-sparse models are
# trained with these fields of AutoencoderConfig (any field not named in a profile keeps its
# value here); ``k``, ``max_iter`` and ``random_state`` are set per row and run
SEC_4_2_2 = AutoencoderConfig(n_hidden=1000, k=25, alpha=1.0, k_start=100, max_iter=5000, batch_size=128,
                              lr=0.01, momentum=0.9, sigma=0.01, paper=True)  # raw inputs, no remedies
AE_OPTIONS = ("n_hidden", "k_start", "batch_size", "lr", "momentum", "sigma")
EPOCHS = ("ksparse_epochs", "ae_epochs", "rbm_epochs", "patch_epochs")

# Table 1's classifier (table1.select), the same in every profile but smoke: lbfgs logistic
# regression fit on all training images (select_n None) for every (alpha, C) of the grid, the grid
# grown past an edge where the best pair sits on it (at most grid_steps times per edge). Before
# (result files up to commit 33e56ad): alpha in (1, 2, 3, 4) at C = 10, then C in (0.1, 1, 10, 100)
# at that alpha, fit on 10,000 images with at most 200 iterations in quick, long and budget, on all
# 50,000 with 1000 in paper; docs/table1_classifier.md compares the two
CLASSIFIER = {"logreg_max_iter": 1000, "logreg_Cs": (1.0, 3.0, 10.0, 30.0, 100.0),
              "alphas": (1, 2, 3, 4, 5, 6, 8), "select_n": None, "grid_steps": 3}
# Per profile: network size, epochs per model family, optimizer (Sec. 4.2.2) and classifier.
PAPER = {**{n: getattr(SEC_4_2_2, n) for n in AE_OPTIONS}, "ksparse_epochs": SEC_4_2_2.max_iter,
         "ae_epochs": 5000, "rbm_epochs": 5000, "patch_epochs": 5000, "n_patches": 1000000,
         "ae_lr": 0.001, "rbm_lr": 0.01, "n_train": None, **CLASSIFIER}
# quick: the paper's settings with short runs (about 12 CPU-minutes), the same classifier
QUICK = dict(PAPER, ksparse_epochs=20, ae_epochs=6, rbm_epochs=3, patch_epochs=20, n_patches=100000,
             rbm_lr=0.05)
PROFILES = {
    "paper": PAPER,
    "quick": QUICK,
    # long: quick with three times the epochs, the longest run our shared CPUs allowed
    "long": dict(QUICK, **{n: 3 * QUICK[n] for n in EPOCHS}),
    # budget: 200 k-sparse epochs, about an hour of wall time per model on the busy 2-core machine
    "budget": dict(QUICK, ksparse_epochs=200, ae_epochs=60, rbm_epochs=30, patch_epochs=200),
    # smoke: quick shrunk to seconds, for the end-to-end tests (k_start < n_hidden: never dense)
    "smoke": dict(QUICK, n_hidden=100, k_start=50, batch_size=64, ksparse_epochs=2, ae_epochs=2,
                  rbm_epochs=1, patch_epochs=2, n_patches=2000, n_train=600, logreg_max_iter=50,
                  logreg_Cs=(1.0, 3.0, 10.0), alphas=(1, 2), select_n=300, grid_steps=1),
}


def autoencoder_config(prof, k, max_iter, seed, **changes):
    """The AutoencoderConfig of a k-sparse model of profile ``prof``: :data:`SEC_4_2_2` with the
    profile's options (:data:`AE_OPTIONS`), ``k``, ``max_iter`` epochs and seed ``seed``."""
    options = dict({n: prof[n] for n in AE_OPTIONS}, k=k, max_iter=max_iter, random_state=seed)
    return SEC_4_2_2.replace(**dict(options, **changes))  # ``changes`` may override the profile


class Parser(HintParser):
    """argparse with ``ksparse train``'s house style: a bad option is one ``ksparse: error:`` line
    (a ``ValueError`` the command line prints) and exit code 2, not the usage and argparse's line;
    an unknown one names the closest valid options (:mod:`ksparse.argparsing`). The description
    (a module docstring's first line) is shown without its reST markup."""

    def __init__(self, *args, description=None, **kwargs):
        super().__init__(*args, description=description and description.replace("``", "`"), **kwargs)

    def report(self, message):
        if "--help` lists the options" not in message:
            message = f"{message} (`{self.prog} --help` lists the options)"
        raise ValueError(message)


def parser(prog, description, profile_default="quick", **kwargs):
    """The options every target takes: --profile, --out, --results, --data-dir, --cache, --seeds, --resume
    (``kwargs`` go to the parser)."""
    p = Parser(prog=f"ksparse reproduce {prog}", description=description, **kwargs)
    p.add_argument("--profile", choices=sorted(PROFILES), default=profile_default,
                   help="quick: 20 k-sparse epochs; long: 60; budget: 200; paper: Sec. 4.2.2 "
                   f"(5000 epochs); smoke: seconds, for tests (default: {profile_default})")
    p.add_argument("--out", required=True, type=path_argument, help="output folder (created)")
    p.add_argument("--results", default=None, type=path_argument,
                   help="folder for the per-run JSON files (default: OUT/results); "
                   "`ksparse reproduce report` makes the docs' tables from them")
    p.add_argument("--data-dir", default=None, type=path_argument,
                   help="data folder (default: $KSPARSE_DATA, else ~/.cache/ksparse; with --resume, the "
                   "folder the run read, recorded in OUT/data.json)")
    p.add_argument("--cache", default=None, type=path_argument,
                   help="folder of trained models (default: OUT/models)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="S",
                   help="one run per seed (default: 0); the seed sets the initial weights and the "
                   "minibatch order, not the validation split")
    p.add_argument("--seed", type=int, default=None, help="the same as --seeds S")
    p.add_argument("--resume", action="store_true",
                   help="continue a stopped run: each k-sparse autoencoder's training from its checkpoint "
                   "in the cache (other models train again); table1, table3 and sweep skip the rows whose "
                   "result file this same code already wrote, the figures are drawn again. A result file, "
                   "table or figure made with other settings or data (another --dataset, option, data "
                   "folder's files, or profile since changed) is refused, never kept nor replaced")
    p.add_argument("--quiet", action="store_true",
                   help="no progress on stderr (a bar per model's epochs, a line per model loaded and per "
                   "row or figure finished); the closing 'wrote ...' line still goes to stdout")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the result files, tables and figures an earlier run wrote for these rows "
                   "and seeds (without it or --resume, a run whose files exist is refused); the models in "
                   "--cache are reused either way")
    return p


def finish_args(args, outputs=None, resume_does=None):
    """Create the output, results and cache folders and set ``args.seeds``; on ``--resume`` without
    ``--data-dir`` read the data folder the run recorded (:func:`record_data_dir`); return the
    profile's settings.

    ``outputs(args)`` lists the files the run will write (known once ``args.results`` and
    ``args.seeds`` are set): unless ``--resume`` or ``--overwrite``, any of them that exists is
    refused before any folder or file is made (:func:`check_overwrite`, ``resume_does`` saying
    what --resume does with them).
    """
    if args.seed is not None and args.seeds is not None:
        raise ValueError("give --seed S or --seeds S1 S2 ..., not both")
    if args.overwrite and args.resume:  # one replaces the earlier run's files, the other continues the run
        raise ValueError("--overwrite and --resume contradict each other (replace the earlier run's files or "
                         "continue that run); give one of them")
    args.seeds = args.seeds or [0 if args.seed is None else args.seed]
    if args.quiet:
        progress.quiet()
    if min(args.seeds) < 0:  # a seed of the initial weights and of the split's shuffles: numpy wants >= 0
        raise ValueError(f"--seeds must be integers >= 0, got {min(args.seeds)}; give seeds such as 0 1 2")
    args.seed = args.seeds[0]
    if args.resume and args.data_dir is None and args.dataset != "digits":
        args.data_dir = recorded_data_dir(args.out)
        args.unrecorded = args.data_dir is None  # a run of older code, or another --out: check_resume says so
    args.cache = args.cache or os.path.join(args.out, "models")
    args.results = args.results or os.path.join(args.out, "results")
    for option, folder in (("--out", args.out), ("--cache", args.cache), ("--results", args.results)):
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise ValueError(f"{option} {folder!r} is a file; give a folder")
        check_folder_name(folder, option)
    if outputs is not None:
        check_overwrite(args, outputs(args), resume_does)
    if args.dataset != "digits" and not (args.resume or args.overwrite):
        check_data_json(args)
    for option, folder in (("--out", args.out), ("--cache", args.cache), ("--results", args.results)):
        check_writable(folder, option)  # before any training: a folder that cannot be made or written
    for folder in (args.out, args.cache, args.results):
        path = os.path.abspath(folder)
        while not os.path.exists(path):  # remembered, so that a failed run can remove them
            MADE_FOLDERS.append(path)
            path = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
    if args.dataset != "digits":  # the other data sets are read from the data folder
        record_data_dir(args)
    return dict(PROFILES[args.profile])


def check_overwrite(args, paths, resume_does=None):
    """Raise ValueError, unless ``args.resume`` or ``args.overwrite``, when any of ``paths`` (the
    files a run will write) exists: a second run into the same folders replaced an earlier run's
    result files and figures unasked. The message names the files (the first three and how many
    more), --resume (which ``resume_does``: by default, keeps the rows already written) and
    --overwrite. ``ksparse train`` refuses an existing model the same way."""
    if args.resume or args.overwrite:
        return
    existing = [p for p in dict.fromkeys(paths) if os.path.lexists(p)]
    if not existing:
        return
    named = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
    does = resume_does or "it keeps the rows whose result file this code already wrote and runs the others"
    own = os.path.abspath(args.results) == os.path.abspath(os.path.join(args.out, "results"))
    raise ValueError(f"an earlier run's files are in the way: {named} already exist; add --resume to "
                     f"continue that run ({does}), or --overwrite to replace them, or give another "
                     + ("--out" if own else "--out and --results"))


def check_resume(args, paths, expected, ignore=(), records=None):
    """On ``--resume``, raise ValueError when any of ``paths`` (the result files the run writes) or
    of ``records`` (``{path: record}``: the run's tables and figures in OUT, each with the JSON
    that records its settings, itself for a table's or figure's JSON) that exists was made with
    settings other than ``expected`` (:func:`_runs.differences`, which skips the settings named in
    ``ignore``): the run would keep it as finished, or replace it, as if it were its own. A table
    or figure whose record is missing cannot be told apart from another run's: refused too.

    The message names the file, the settings that differ, the command that made it (which
    continues that run) and the ways forward: another ``--out`` (and ``--results``), or
    ``--overwrite`` to replace it. Call it before any training. When it passes and OUT/data.json
    did not say which data folder the run read (:func:`finish_args`), it says which one is read.
    """
    if not args.resume:
        return
    records = dict(records or {})
    own = os.path.abspath(args.results) == os.path.abspath(os.path.join(args.out, "results"))
    for path in dict.fromkeys([*paths, *records]):
        if not os.path.lexists(path):
            continue
        record = records.get(path, path)
        folders = "--out" if own or path in records else "--out and --results"
        if not os.path.isfile(record):
            raise ValueError(f"--resume cannot tell with what settings {path} was made: {record}, which "
                             "records them, is missing; move it away, or give another --out, or add "
                             "--overwrite (instead of --resume) to replace it")
        differ = _runs.differences(record, expected, ignore)
        if not differ:
            continue
        command = _runs.command_of(record)
        shown = "; ".join(differ[:4]) + (f"; and {len(differ) - 4} more" if len(differ) > 4 else "")
        if any(line.startswith("data_sha1:") for line in differ) and args.dataset != "digits":
            from ksparse.datasets import data_dir  # other values read: say from where

            shown += (f"; this run reads {os.path.abspath(data_dir(args.data_dir))}, give the run's own data "
                      "folder with --data-dir")
        made = path if record == path else f"{path} ({record})"
        raise ValueError(f"--resume would mix settings: {made} was made with other settings than this run's "
                         f"({shown}); to continue that run, give its own options"
                         + (f" ({command})" if command else "") + f", or to keep it give another {folders}"
                         + ", or add --overwrite (instead of --resume) to replace it")
    if getattr(args, "unrecorded", False):  # once the run's files are known to fit: what it reads
        _unrecorded_note(args.out)


MADE_FOLDERS = []  # folders finish_args created
DATA_RECORD = []  # (OUT/data.json, its bytes before or None, the run's folders, their files then)


def remove_made_folders():
    """After a failed run: put back the data.json :func:`record_data_dir` wrote if the run wrote
    nothing else, then remove the folders :func:`finish_args` created that are still empty."""
    for path, before, folders, files in DATA_RECORD:
        if _files(folders, path) != files:
            continue
        if before is None:
            os.remove(path)
        else:
            atomic_write(path, lambda f, before=before: f.write(before))
    DATA_RECORD.clear()
    for path in sorted(MADE_FOLDERS, key=len, reverse=True):  # deepest first
        if os.path.isdir(path) and not os.listdir(path):
            os.rmdir(path)
    MADE_FOLDERS.clear()


def _files(folders, but):
    """{path: (mtime, size)} of the files under ``folders`` but ``but``: what a run has written."""
    found, but = {}, os.path.abspath(but)
    for top in folders:
        for root, _, names in os.walk(top):
            for path in (os.path.abspath(os.path.join(root, name)) for name in names):
                try:
                    if path != but:
                        found[path] = (os.stat(path).st_mtime_ns, os.stat(path).st_size)
                except OSError:  # gone meanwhile
                    continue
    return found


def _data_json(args):
    """OUT/data.json's path and the bytes :func:`record_data_dir` writes there."""
    from ksparse.datasets import data_dir

    path = os.path.join(args.out, "data.json")
    return path, json.dumps({"data_dir": os.path.abspath(data_dir(args.data_dir))}, indent=1).encode()


def check_data_json(args):
    """Raise ValueError when OUT/data.json exists and says other than what this run would record
    (an earlier run's, which its --resume reads, or not ours): a run without --resume or
    --overwrite replaced it silently."""
    path, text = _data_json(args)
    try:
        with open(path, "rb") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        return
    except OSError:
        pass
    raise ValueError(f"an earlier run's {path} is in the way (it does not record the data folder this run "
                     "reads); add --resume to continue that run, or --overwrite to replace it, or give "
                     "another --out")


def record_data_dir(args):
    """Write the data folder this run reads (``--data-dir``, else ``$KSPARSE_DATA``, else
    ~/.cache/ksparse; by its absolute path) to OUT/data.json, where ``--resume`` finds it: a run
    continued in another environment reads the same files (or says the folder has gone)."""
    path, text = _data_json(args)
    try:
        with open(path, "rb") as f:
            before = f.read()
    except OSError:
        before = None
    if text != before:
        folders = (args.out, args.cache, args.results)
        DATA_RECORD.append((path, before, folders, _files(folders, path)))
        atomic_write(path, lambda f: f.write(text))


def recorded_data_dir(out):
    """The data folder a run into ``out`` recorded (:func:`record_data_dir`), or None.

    Raises
    ------
    ValueError
        When that folder no longer exists, naming it and ``--data-dir``.
    """
    path = os.path.join(out, "data.json")
    try:
        with open(path) as f:
            folder = json.load(f)["data_dir"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(folder, str):
        return None
    if not os.path.isdir(folder):
        raise ValueError(f"the run read its data from the folder {folder!r} (recorded in {path}), which no "
                         "longer exists; if the data folder moved, give it again with --data-dir NEWFOLDER "
                         "(a resume reads the recorded folder, not KSPARSE_DATA)")
    return folder


def _unrecorded_note(out):
    """One ``ksparse: note:`` line: OUT/data.json does not say which data folder the resumed run read."""
    import sys

    from ksparse.datasets import data_dir

    folder = os.path.abspath(data_dir(None))
    source = "$KSPARSE_DATA" if os.environ.get("KSPARSE_DATA") else "the default folder"
    print(f"ksparse: note: {os.path.join(out, 'data.json')} does not record the data folder the run read "
          f"(runs before it was written do not); reading {folder} ({source}); give the run's own folder with "
          "--data-dir if it read another (result files and models of other data are refused or trained "
          "again, never mixed in)", file=sys.stderr)


# Sec. 4.1: "We randomly separate the training set into 50,000 training cases and 10,000
# cases for validation." One fixed random split for every run and seed.
VAL_SPLIT = {"kind": "random", "n_val": 10000, "seed": 0}


def load_mnist_split(dataset, data_dir, n_train=None, split="random"):
    """Train/validation/test matrices and labels: MNIST's 50k/10k/10k, or digits split 3 ways.

    Parameters
    ----------
    split : {"random", "last"}
        MNIST's validation images: a random 10,000 of the 60,000 training images, drawn
        with ``np.random.default_rng(VAL_SPLIT["seed"])`` (Sec. 4.1), or the last 10,000 (the
        loader's default). Both splits keep the file's order within each part.
    n_train : int, optional
        Keep only the first ``n_train`` training samples (after the split).
    """
    from ksparse.datasets import load_dataset

    if dataset == "mnist":
        if split not in ("random", "last"):
            raise ValueError(f"split must be 'random' or 'last', got {split!r}")
        ds = load_dataset("mnist", data_dir=data_dir, n_train=None if split == "random" else n_train)
        if split == "random":
            X = np.concatenate([ds.X_train, ds.X_val])  # the training file in its order
            y = np.concatenate([ds.y_train, ds.y_val])
            order = np.random.default_rng(VAL_SPLIT["seed"]).permutation(len(X))
            val_idx, train_idx = np.sort(order[:VAL_SPLIT["n_val"]]), np.sort(order[VAL_SPLIT["n_val"]:])
            train_idx = train_idx[:n_train] if n_train else train_idx
            ds.X_train, ds.y_train, ds.X_val, ds.y_val = X[train_idx], y[train_idx], X[val_idx], y[val_idx]
        return ds, (ds.X_train, ds.y_train), (ds.X_val, ds.y_val), (ds.X_test, ds.y_test)
    if dataset != "digits":
        raise ValueError(f"dataset must be 'mnist' or 'digits', got {dataset!r}")
    ds = load_dataset("digits")
    n_val = len(ds.X_train) // 4
    Xtr, ytr = ds.X_train[n_val:], ds.y_train[n_val:]
    if n_train:
        Xtr, ytr = Xtr[:n_train], ytr[:n_train]
    return ds, (Xtr, ytr), (ds.X_train[:n_val], ds.y_train[:n_val]), (ds.X_test, ds.y_test)


def data_fingerprint(*arrays):
    """SHA-1 (hex) of the arrays' dtypes, shapes and bytes: the identity of the data read.

    Made of the values only, not of paths or file times, so that a moved copy of the same data
    has the same fingerprint and a folder whose files differ has another.
    """
    digest = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def _key(settings):
    """Ten hex digits of the settings (with the data's fingerprint) and the code version
    (:func:`ksparse.reproduce._runs.code_key`)."""
    keyed = dict(settings, code=_runs.code_key())
    return hashlib.sha1(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:10]


def cached_model(cache, name, settings, train_fn, *, data):
    """Load ``name`` from ``cache`` when its settings, data and code version match, else train and save it.

    Parameters
    ----------
    settings : dict
        The training settings; the key (and the settings kept in the file) add ``data_sha1``,
        the :func:`data_fingerprint` of ``data``.
    train_fn : callable
        ``train_fn(stem) -> arrays`` or ``-> (arrays, info)``: trains the model; ``stem`` is
        ``CACHE/NAME-KEY``, a prefix for its checkpoint files. ``info`` may hold ``epochs``,
        ``history`` and ``seconds`` (a resumed run measures its own time).

    Returns
    -------
    arrays : dict of name -> ndarray
    info : dict
        ``seconds`` (``{"wall": s, "cpu": s}``, measured when the model was trained; the
        process CPU time counts every BLAS thread), ``epochs`` and ``history`` when the
        trainer gave them, ``code`` (the code version that trained it) and ``file``.
    """
    data = data if isinstance(data, tuple) else (data,)
    settings = dict(settings, data_sha1=data_fingerprint(*data))  # a model of other data is another model
    path = os.path.join(cache, f"{name}-{_key(settings)}.npz")
    if os.path.isfile(path):
        with np.load(path, allow_pickle=False) as f:
            info = json.loads(str(f["meta"]))
            arrays = {n: f[n] for n in f.files if n != "meta"}
        log.info("loaded %s from %s", name, path)
        return arrays, dict(info, file=os.path.basename(path))
    epochs = settings.get("max_iter", settings.get("n_iter"))
    log.info("training %s", name, extra={"model": f"training {name}", "epochs": epochs})
    start, cpu = time.perf_counter(), time.process_time()
    out = train_fn(path[:-len(".npz")])
    arrays, info = out if isinstance(out, tuple) else (out, {})
    seconds = {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu}
    info = dict({"seconds": seconds, "epochs": None, "history": None}, **info, settings=settings,
                code=_runs.code_version())
    meta = json.dumps(info, default=_runs.jsonable)
    atomic_write(path, lambda f: np.savez(f, meta=np.array(meta), **arrays))
    log.info("trained %s: %s epochs in %.1f s, cached in %s", name, info["epochs"], seconds["wall"], path,
             extra={"done": True})
    return arrays, dict(info, file=os.path.basename(path))


def train_autoencoder(X, config, stem, resume=False, callback=None):
    """Train a k-sparse autoencoder (fast step), checkpointed after every epoch at ``STEM.ckpt.npz``.

    With ``resume`` and a checkpoint on disk, training continues from it (same parameters,
    velocities, epoch and minibatch RNG as the stopped run); otherwise it starts afresh.
    The checkpoint is removed once the run is finished.

    Returns
    -------
    arrays : dict
        ``W``, ``b``, ``b_prime`` (and ``x_mean`` when ``config["center"]``), and the encoder
        for raw inputs ``W_enc``, ``b_enc`` (:func:`ksparse.training.loop.encoder_params`).
    info : dict
        ``epochs``, ``history`` (one record per epoch), ``seconds`` (summed over the
        finished epochs of every session) and ``resumed_at`` (the epoch resumed from, or 0).
    """
    from ksparse.training.loop import encoder_params, fit, load_state

    ckpt, times = stem + ".ckpt.npz", stem + ".ckpt-times.json"
    state = load_state(ckpt) if resume and os.path.isfile(ckpt) else None
    if state is None:
        for path in (ckpt, times):
            if os.path.isfile(path):
                os.remove(path)
    else:
        log.info("resuming %s at epoch %d of %d", ckpt, state.epoch, state.config.max_iter,
                 extra={"at": state.epoch})
    resumed_at = 0 if state is None else state.epoch
    clock = _runs.EpochClock(times)
    report = callback or epoch_log(f"k={config['k']}")

    def tick(record):
        clock.tick(record["epoch"])
        report(record)

    # D1-D8 on the support only
    state = fit(X, config if state is None else None, state=state, callback=tick, checkpoint_path=ckpt,
                checkpoint_every=1)
    arrays = {n: np.asarray(a) for n, a in state.params.items()}
    arrays["W_enc"], arrays["b_enc"] = encoder_params(state)  # z = x W_enc + b_enc on raw x
    if state.x_mean is not None:
        arrays["x_mean"] = state.x_mean
    info = {"epochs": state.epoch, "history": state.history, "seconds": clock.total(state.epoch),
            "resumed_at": resumed_at}
    for path in (ckpt, times):
        os.remove(path)
    return arrays, info


def ksparse_model(cache, X, k, prof, dataset, seed=0, callback=None, center=False, resume=False,
                  paper=True):
    """Train (or load) a k-sparse autoencoder with the profile's Sec. 4.2.2 settings (fast step).

    With ``center`` the inputs are mean-subtracted (``ksparse.training.loop.centered``) and the
    arrays include ``x_mean``. ``paper=True`` (the reproductions' default) is the paper's model on
    the raw inputs; ``paper=False`` the library's defaults (data scale, D9, resampling, and
    their default rate instead of the profile's lr). Returns ``(arrays, info)`` as
    :func:`cached_model`.
    """
    # paper=False: the library's defaults (data scale, D9, resampling) and their own default rate
    config = autoencoder_config(prof, k, prof["ksparse_epochs"], seed, center=center,
                                **({} if paper else {"paper": False, "lr": None})).to_dict()
    settings = dict(config, method="ksparse", data=dataset, n=len(X))
    name = f"ksparse-k{k}{'c' if center else ''}{'' if paper else 'd'}-{dataset}"
    return cached_model(cache, name, settings,
                        lambda stem: train_autoencoder(X, config, stem, resume, callback), data=X)


def baseline_model(cache, X, kind, prof, dataset, seed=0, callback=None):
    """Train (or load) one of :data:`ksparse.nn.baselines.KINDS` with the profile's settings."""
    from ksparse.training.baselines import fit_baseline

    config = {"n_hidden": prof["n_hidden"], "max_iter": prof["ae_epochs"], "lr": prof["ae_lr"],
              "momentum": prof["momentum"], "sigma": prof["sigma"], "batch_size": prof["batch_size"],
              "random_state": seed}
    settings = dict(config, method=kind, data=dataset, n=len(X))

    def train(stem):
        state = fit_baseline(X, kind, config, callback=callback or epoch_log(kind), random_state=seed)
        arrays = {n: np.asarray(a) for n, a in state.params.items()}
        return arrays, {"epochs": config["max_iter"], "history": getattr(state, "history", None)}

    return cached_model(cache, f"{kind}-{dataset}", settings, train, data=X)


def epoch_log(name):
    """A fit callback that logs each epoch's record (shown as the model's bar, :mod:`._progress`)."""
    def callback(record):
        log.info("%s %s", name, epoch_text(record), extra=at_epoch(record))
    return callback


def epoch_text(record):
    """An epoch's record (an autoencoder's or a fine-tuning stage's) in words, not its field names:
    ``epoch 3: loss 0.1432, dead in epoch 0.1%, k 20``; the fields it lacks are left out."""
    where = f"stage {record['stage']} " if "stage" in record else ""
    parts = [f"loss {record['loss']:.4g}"] if "loss" in record else []
    if "dead_fraction" in record:  # units in no support during the epoch
        parts.append(f"dead in epoch {100 * record['dead_fraction']:.1f}%")
    if "k" in record:
        parts.append(f"k {record['k']}")
    if "stage" in record and "lr" in record:
        parts.append(f"lr {record['lr']:.4g}")
    if "val_error" in record:
        parts.append(f"validation error {100 * record['val_error']:.2f}%")
    return f"{where}epoch {record.get('epoch', '?')}: " + ", ".join(parts)


def at_epoch(record):
    """The ``extra`` of a log record that reports a finished epoch of a model (:mod:`._progress`)."""
    return {"epoch": record.get("epoch")}


def rbm_model(cache, X, prof, dataset, seed=0):
    """Train (or load) scikit-learn's BernoulliRBM with as many hidden units as the autoencoders."""
    from sklearn.neural_network import BernoulliRBM

    settings = {"method": "rbm", "n_components": prof["n_hidden"], "learning_rate": prof["rbm_lr"],
                "n_iter": prof["rbm_epochs"], "batch_size": 100, "data": dataset, "n": len(X), "seed": seed}

    def train(stem):
        rbm = BernoulliRBM(n_components=prof["n_hidden"], learning_rate=prof["rbm_lr"], batch_size=100,
                           n_iter=prof["rbm_epochs"], random_state=seed).fit(X)
        arrays = {"components": rbm.components_, "intercept_hidden": rbm.intercept_hidden_}
        return arrays, {"epochs": prof["rbm_epochs"]}

    return cached_model(cache, f"rbm-{dataset}", settings, train, data=X)


def rbm_features(X, arrays):
    """Hidden-unit probabilities of the RBM, sigmoid(X W^T + c) (what ``BernoulliRBM.transform`` gives)."""
    return 1.0 / (1.0 + np.exp(-(X @ arrays["components"].T + arrays["intercept_hidden"])))


def logreg(F_train, y_train, evals, C, max_iter, seed=0, sparse=False):
    """Fit a multinomial logistic regression on frozen features; return errors on each of ``evals``.

    The features are divided by one scalar, the largest absolute training feature; sparsity
    is kept. With ``sparse``, they are passed to scikit-learn as CSR matrices (the k-sparse
    codes: the same fit, fewer operations).

    Returns
    -------
    errors : list of float
        Error rates on ``evals = [(F, y), ...]``.
    info : dict
        ``{"wall": s, "cpu": s}`` of the fit and the predictions, ``n_iter`` (lbfgs iterations)
        and ``converged`` (False when scikit-learn warned that lbfgs stopped at ``max_iter``;
        the warning is recorded here, not shown).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    scale = float(np.abs(F_train).max()) or 1.0
    prep = _csr if sparse else np.asarray
    start, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
        clf.fit(prep(F_train / scale), y_train)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    for w in caught:  # any other warning is shown as usual
        if not issubclass(w.category, ConvergenceWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    errors = [float(np.mean(clf.predict(prep(F / scale)) != y)) for F, y in evals]
    return errors, {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                    "n_iter": int(np.max(clf.n_iter_)), "converged": converged}


def _csr(F):
    from scipy.sparse import csr_matrix

    return csr_matrix(F)


jsonable = _runs.jsonable
