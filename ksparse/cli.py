"""The ``ksparse`` command: ``train``, ``encode`` and ``reproduce``.

Bad input (a wrong option, bad data, a corrupt model file) and a diverged run end with a
one-line ``ksparse: error: ...`` on stderr and exit code 2; an interrupted run saves its
last finished epoch and exits with 130. Every file is written atomically.
"""

import argparse
import json
import os
import shlex
import sys
import time
import warnings

import numpy as np

from ksparse.io import atomic_write
from ksparse.training.loop import (
    DEFAULTS,
    TrainingDiverged,
    centered,
    check_config,
    check_data,
    fit,
    load_state,
    new_state,
    save_state,
)

# Defaults of `ksparse train`: a short run on the bundled digits (seconds of CPU time) whose
# alpha*k features beat the raw pixels under logistic regression (measured; see README).
CLI_DEFAULTS = dict(DEFAULTS, n_hidden=1000, k=20, alpha=3.0, n_epochs=100, batch_size=64)

# (option, config key, type, help)
TRAIN_OPTIONS = (
    ("--hidden", "n_hidden", int, "number of hidden units H"),
    ("--k", "k", int, "sparsity level k: units kept per sample in training, Sec. 2.2"),
    ("--k-start", "k_start", int, "k of the first epoch, capped at --hidden; k falls linearly "
     "to --k over the first half of the epochs, then holds (Sec. 4.2.1)"),
    ("--alpha", "alpha", float, "features keep alpha*k units (rounded half up), Sec. 2.2; alpha >= 1"),
    ("--epochs", "n_epochs", int, "number of epochs; with --resume, the total to reach"),
    ("--batch-size", "batch_size", int, "minibatch size"),
    ("--lr", "lr", float, "learning rate of SGD with momentum, Eq. (11)"),
    ("--lr-final", "lr_final", float, "learning rate of the last epoch, reached linearly from --lr; "
     "unset keeps --lr constant"),
    ("--momentum", "momentum", float, "momentum of Eq. (11), in [0, 1)"),
    ("--sigma", "sigma", float, "standard deviation of the Gaussian initial weights"),
    ("--seed", "seed", int, "seed of the initial weights and of the minibatch shuffle"),
    ("--dtype", "dtype", str, "floating-point type of the weights and data: float32 or float64"),
)
CLASSIFIER = "sklearn LogisticRegression(max_iter=1000), fit on the training set, scored on the test set"


class UserError(Exception):
    """Bad input found by the command itself; reported like ValueError."""


class Interrupted(Exception):
    """Ctrl-C during training, after the last good state was saved and the user told."""


def build_parser():
    """The argument parser of ``ksparse`` with its three subcommands."""
    parser = argparse.ArgumentParser(
        prog="ksparse", description="k-sparse autoencoders (Makhzani & Frey, arXiv:1312.5663).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_train(sub)
    enc = sub.add_parser("encode", help="write the alpha*k features of a data matrix",
                         description="Write features h = supp_{alpha k}(W^T x + b) (Sec. 2.2) "
                         "of each row of INPUT to OUTPUT (.npy).")
    enc.add_argument("model", metavar="MODEL", help="model file written by `ksparse train` (model.npz)")
    enc.add_argument("input", metavar="INPUT", help=".npy or .npz matrix, one sample per row")
    enc.add_argument("output", metavar="OUTPUT", help="where to write the (N, H) features as .npy")
    enc.add_argument("--alpha", type=float, default=None,
                     help="multiplier of k at encode time (default: the model's alpha)")
    enc.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                     help="where to compute (default: cpu)")
    sub.add_parser("reproduce", add_help=False, help="reproduce the paper's tables and figures "
                   "(`ksparse reproduce --help` lists them)")
    return parser


def _add_train(sub):
    """The ``train`` subcommand and its options; hyperparameters default to None (= not given)."""
    tr = sub.add_parser("train", help="train a k-sparse autoencoder and write model, filters, summary",
                        description="Train a k-sparse autoencoder (Sec. 2.2) and write model.npz, "
                        "filters.png and summary.json to --out.")
    tr.add_argument("--dataset", default="digits", help="registered name (digits, mnist, "
                    "cifar10-patches, norb) or a .npy/.npz path, one sample per row (default: digits)")
    tr.add_argument("--data-dir", default=None, help="folder of the real data sets "
                    "(default: $KSPARSE_DATA, else ~/.cache/ksparse)")
    for flag, key, kind, text in TRAIN_OPTIONS:
        default = CLI_DEFAULTS[key]
        extra = {"choices": ("float32", "float64")} if key == "dtype" else {}
        shown = "constant" if default is None else default
        tr.add_argument(flag, dest=key, type=kind, default=None, metavar=flag[2:].upper().replace("-", "_"),
                        help=f"{text} (default: {shown})", **extra)
    tr.add_argument("--center", action="store_true", default=None,
                    help="subtract the training mean from the inputs (stored in the model; not in the paper, "
                    "keeps more hidden units alive on non-negative data such as pixels)")
    tr.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="where to train (default: cpu)")
    tr.add_argument("--out", default=os.path.join("runs", "ksparse"),
                    help="output folder (default: runs/ksparse)")
    tr.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                    help="continue from CHECKPOINT, or from OUT/model.npz when no path is given; "
                    "the checkpoint's hyperparameters are kept, only --epochs may raise the total")
    tr.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                    help="also write OUT/model.npz every N epochs (default: 0, only at the end)")
    tr.add_argument("--no-logreg", action="store_true",
                    help="skip the logistic-regression test errors in summary.json")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")


def _load_data(name, data_dir):
    """Load a dataset by name or path and check its training matrix."""
    from ksparse.datasets import load_dataset

    ds = load_dataset(name, data_dir=data_dir)
    return ds, check_data(ds.X_train, name=f"the training data of {name!r}")


def _start_state(args, given, d, model_path):
    """A fresh TrainState, or the one to resume; checks d against the data."""
    if args.resume is None:
        return new_state(d, dict(CLI_DEFAULTS, **given), args.device)
    path = model_path if args.resume is True else args.resume
    state = load_state(path, args.device)
    if state.params["W"].shape[0] != d:
        raise UserError(f"{path} was trained on {state.params['W'].shape[0]} features, "
                        f"but {args.dataset!r} has {d}; resume on the same data")
    ignored = sorted(key for key in given if key != "n_epochs" and given[key] != state.config[key])
    if ignored:
        print(f"ksparse: note: resuming keeps the checkpoint's {', '.join(ignored)}", file=sys.stderr)
    return state


def _resume_hint(args):
    words = ["ksparse", "train", "--dataset", args.dataset, "--out", args.out, "--resume"]
    if args.data_dir:
        words[2:2] = ["--data-dir", args.data_dir]
    return " ".join(shlex.quote(w) for w in words)


def _fit(x, state, args, given, model_path):
    """Run :func:`fit` under a tqdm bar; save the last good state on divergence or Ctrl-C."""
    from tqdm import tqdm

    total = given.get("n_epochs", state.config["n_epochs"])
    good = [state.copy()]
    bar = tqdm(total=total, initial=state.epoch, desc="epoch", unit="epoch", file=sys.stderr,
               disable=args.quiet, dynamic_ncols=True)

    def callback(record):
        good[0] = state.copy()
        bar.set_postfix({"loss": f"{record['loss']:.4g}", "dead": f"{record['dead_fraction']:.3f}",
                         "k": record["k"]}, refresh=False)
        bar.update(1)

    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return fit(x, {"n_epochs": total}, state=state, device=args.device, callback=callback,
                       checkpoint_path=model_path, checkpoint_every=args.checkpoint_every)
    except TrainingDiverged as e:
        raise UserError(f"{e}; {_keep(e.state, model_path)}") from None
    except KeyboardInterrupt:
        bar.close()
        print(f"ksparse: interrupted; {_keep(good[0], model_path)}; continue with: {_resume_hint(args)}",
              file=sys.stderr)
        raise Interrupted() from None
    finally:
        bar.close()


def _keep(state, model_path):
    """Save ``state`` if it has a finished epoch; say what is on disk."""
    if state.epoch == 0:
        return "no epoch had finished, so no model was saved"
    save_state(model_path, state)
    return f"the last good state (epoch {state.epoch}) is in {model_path}"


def _metrics(x, params, k):
    """Reconstruction error of the model on ``x`` with k units (D1-D4), and the dead fraction."""
    from ksparse.backend import device_of, to_device, to_numpy
    from ksparse.nn.layers import decode_forward, encode_forward, select_forward

    W = params["W"]
    d, H = W.shape
    used, total = np.zeros(H, bool), 0.0
    for start in range(0, x.shape[0], 4096):
        xb = to_device(x[start:start + 4096], device_of(W), dtype=W.dtype)
        z_k, (Gamma, _) = select_forward(encode_forward(xb, W, params["b"])[0], k)
        x_hat, _ = decode_forward(z_k, W, params["b_prime"])
        total += float(((x_hat - xb) ** 2).sum())
        used[np.unique(to_numpy(Gamma))] = True
    loss = total / x.shape[0]
    variance = float(((x - x.mean(axis=0)) ** 2).sum(axis=1).mean())
    return {"loss": loss, "mse": loss / d, "fvu": loss / variance if variance > 0 else None,
            "dead_fraction": 1.0 - used.sum() / H}


def _features(x, state, alpha):
    """The alpha*k features of ``x`` as a NumPy array, computed in chunks."""
    from ksparse.backend import device_of, to_device, to_numpy
    from ksparse.kernels.encode import encode

    p = state.params
    device = device_of(p["W"])
    x = centered(x, state)
    chunks = [to_numpy(encode(to_device(x[s:s + 4096], device, p["W"].dtype), p["W"], p["b"],
                              state.config["k"], alpha)) for s in range(0, x.shape[0], 4096)]
    return np.concatenate(chunks) if chunks else np.zeros((0, p["W"].shape[1]), p["W"].dtype)


def _logreg(ds, state):
    """Test error of logistic regression on the alpha*k features and on the raw inputs."""
    from ksparse.kernels.encode import alpha_k

    if ds.y_train is None or ds.X_test is None or ds.y_test is None:
        return {"note": "skipped: the data set has no labelled test split"}
    from sklearn.linear_model import LogisticRegression

    def error(train, test):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = LogisticRegression(max_iter=1000).fit(train, ds.y_train)
        return float(1.0 - clf.score(test, ds.y_test))

    X_test = check_data(ds.X_test, name="the test data")
    alpha = state.config["alpha"]
    feats = error(_features(ds.X_train, state, alpha), _features(X_test, state, alpha))
    return {"features_test_error": feats, "raw_test_error": error(ds.X_train, X_test),
            "n_active_features": alpha_k(state.config["k"], alpha, state.config["n_hidden"]),
            "n_features": state.config["n_hidden"], "classifier": CLASSIFIER}


def _draw_filters(ds, state, path):
    from ksparse.plots import filter_grid

    shape = ds.image_shape
    filter_grid(state.params["W"], shape, path,
                title=f"{ds.name}: filters of largest norm, k = {state.config['k']}")
    return "images" if shape else "bars (the data has no image shape)"


def cmd_train(args):
    """``ksparse train``: fit, then write model.npz, filters.png and summary.json to --out."""
    started = time.perf_counter()
    given = {key: getattr(args, key) for _, key, _, _ in TRAIN_OPTIONS if getattr(args, key) is not None}
    if args.center:
        given["center"] = True
    if args.resume is None:
        check_config(dict(CLI_DEFAULTS, **given))
    if args.checkpoint_every < 0:
        raise UserError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError(f"--out {args.out!r} is a file; give a folder")
    ds, x = _load_data(args.dataset, args.data_dir)
    model_path = os.path.join(args.out, "model.npz")
    state = _start_state(args, given, x.shape[1], model_path)
    created = not os.path.isdir(args.out)
    os.makedirs(args.out, exist_ok=True)
    fit_started = time.perf_counter()
    try:
        state = _fit(x, state, args, given, model_path)
    except BaseException:
        if created and not os.listdir(args.out):
            os.rmdir(args.out)  # leave no trace of a run that saved nothing
        raise
    train_s = time.perf_counter() - fit_started
    summary = {"dataset": {"name": ds.name, "n_train": x.shape[0], "d": x.shape[1],
                           "n_test": None if ds.X_test is None else len(ds.X_test),
                           "image_shape": ds.image_shape},
               "hyperparameters": state.config, "device": args.device, "epochs_done": state.epoch}
    summary.update(_metrics(centered(x, state), state.params, state.config["k"]))
    summary["filters"] = _draw_filters(ds, state, os.path.join(args.out, "filters.png"))
    skipped = {"note": "skipped: --no-logreg"}
    summary["logistic_regression"] = skipped if args.no_logreg else _logreg(ds, state)
    summary.update(train_time_s=train_s, wall_time_s=time.perf_counter() - started, history=state.history)
    text = json.dumps(summary, indent=2, default=lambda o: o.item() if hasattr(o, "item") else list(o))
    atomic_write(os.path.join(args.out, "summary.json"), lambda f: f.write(text.encode() + b"\n"))
    _report(args.out, summary)
    return 0


def _report(out, s):
    lr = s["logistic_regression"]
    fvu = "n/a" if s["fvu"] is None else f"{s['fvu']:.4g}"
    line = (f"wrote {out}/model.npz, filters.png, summary.json: mse {s['mse']:.4g} per element, "
            f"fvu {fvu}, dead {s['dead_fraction']:.3f}, {s['wall_time_s']:.1f} s")
    if "features_test_error" in lr:
        line += (f"; logistic regression test error {lr['features_test_error']:.2%} on the "
                 f"{lr['n_active_features']}-sparse features vs {lr['raw_test_error']:.2%} on raw inputs")
    print(line)


def cmd_encode(args):
    """``ksparse encode MODEL INPUT OUTPUT``: write the alpha*k features of INPUT as .npy."""
    from ksparse.datasets import load_matrix
    from ksparse.kernels.encode import alpha_k

    state = load_state(args.model, args.device)
    x = check_data(load_matrix(args.input).X_train, name=args.input)
    d = state.params["W"].shape[0]
    if x.shape[1] != d:
        raise UserError(f"{args.model} expects {d} features per row, but {args.input} has {x.shape[1]}")
    alpha = state.config["alpha"] if args.alpha is None else args.alpha
    n_keep = alpha_k(state.config["k"], alpha, state.config["n_hidden"])
    h = _features(x, state, alpha)
    atomic_write(args.output, lambda f: np.save(f, h))
    print(f"wrote {args.output}: {h.shape[0]} x {h.shape[1]} features, "
          f"{n_keep} nonzero per row")
    return 0


def cmd_reproduce(argv):
    """``ksparse reproduce ...``: hand the remaining arguments to :mod:`ksparse.reproduce`."""
    try:
        from ksparse.reproduce import main as reproduce_main

        return int(reproduce_main(list(argv)) or 0)
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("ksparse"):
            raise
        raise UserError(f"`ksparse reproduce` is not available in this install: {e}") from None


def _fail(message):
    print("ksparse: error: " + " ".join(str(message).split()), file=sys.stderr)
    return 2


def main(argv=None):
    """Entry point of the ``ksparse`` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0] == "reproduce":
            return cmd_reproduce(argv[1:])
        args = build_parser().parse_args(argv)
        return cmd_train(args) if args.command == "train" else cmd_encode(args)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2), already printed
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        return _fail(e.code)
    except (ValueError, TypeError, OSError, UserError, TrainingDiverged) as e:
        return _fail(e)
    except Interrupted:
        return 130
    except KeyboardInterrupt:
        print("ksparse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
