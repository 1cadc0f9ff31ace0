"""The ``ksparse`` command: ``train``, ``encode``, ``info`` and ``reproduce``, a thin layer over
:class:`ksparse.estimators.autoencoder.KSparseAutoencoder`.

The options of ``train`` are generated from :class:`ksparse.config.AutoencoderConfig` (one per
field, with the estimator's defaults). Bad input (a wrong option, answered with the closest valid
ones by :class:`ksparse.argparsing.HintParser`, bad data, a corrupt model
file, an output that would replace an input or an earlier model, an output folder that
cannot be written, an option that --paper would ignore, --resume on data of another scale) ends
with a one-line ``ksparse: error: ...`` on stderr and exit code 2, before any file is written. A
diverged run ends the same way after saving its last good epoch (``summary.json`` status
``diverged``); a run that finished no new epoch leaves the model file as it was. ``reproduce``
refuses the same way to replace an earlier run's result files, tables or figures unless given
--resume (continue that run) or --overwrite. Advice names
options as flags (``--lr 0.05``, ``--no-paper``). Ctrl-C (SIGINT) and SIGTERM save the last
finished epoch atomically and exit with 130 and 143 (before any epoch: run the same command
again); interrupted after training, ``train`` still writes its summary. Whenever a run that did
not finish saved a model, summary.json describes that model (its ``status``) and no filters.png
of an earlier one remains; with --checkpoint-every that holds after each checkpoint too (a run
killed outright) and once the finished model is saved, before the evaluation (``trained;
evaluating``), and --resume writes a summary that disagrees with the checkpoint again. --resume
keeps the run options that are not model settings (:data:`ksparse.runfiles.RUN_OPTIONS`),
recorded in OUT/data.json, unless given again; a fresh run refuses another run's data.json.
``encode`` stops at the next block on either signal and leaves no OUTPUT. Output to a reader that
has gone (``2>&1 | head -1``) is dropped silently: ``train``, ``encode`` and ``reproduce`` still
finish, save and exit with their own code; ``info``, whose product is what it prints, ends quietly
with exit code 141 once stdout's reader has gone.
"""

import os
import re
import select
import shlex
import sys
import time
import warnings

import numpy as np

from ksparse import __version__
from ksparse.argparsing import HintParser
from ksparse.config import AutoencoderConfig, ConfigError, add_arguments, flag, given
from ksparse.interrupts import terminate_as_interrupt
from ksparse.io import check_folder_name, path_argument
from ksparse.kernels.encode import alpha_k
from ksparse.runfiles import (
    UserError,
    check_encode_names,
    check_encode_output,
    check_not_inputs,
    check_outputs,
    check_paper,
    fill_data_options,
    image_shape,
    progress_bar,
    read_dataset,
    read_encode_input,
    record_data,
)
from ksparse.runsummary import (
    rebuild_stale_summary,
    remove_stale_filters,
    summary_at_checkpoints,
    unfinished_run_files,
)
from ksparse.streams import progress_streams


class _Reported(KeyboardInterrupt):
    """An interrupt whose message (what was saved) has been printed already."""


class _Parser(HintParser):
    def report(self, message):  # one "ksparse: error:" line, like every other bad input
        raise UserError(message)  # an unknown option names the closest ones (ksparse.argparsing)


def build_parser():
    """The argument parser of ``ksparse`` and its subcommands."""
    parser = _Parser(prog="ksparse", description="k-sparse autoencoders (Makhzani & Frey, arXiv:1312.5663).")
    parser.add_argument("--version", action="version", version=f"ksparse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    tr = sub.add_parser("train", help="train a k-sparse autoencoder; write model, filters, summary",
                        description="Fit a KSparseAutoencoder (Sec. 2.2) and write model.npz, filters.png, "
                        "summary.json and data.json (the data and run options, for --resume) to --out. The "
                        "model's options have the estimator's names and defaults.")
    add_arguments(tr.add_argument_group("model and training (ksparse.config.AutoencoderConfig)"),
                  AutoencoderConfig)
    run = tr.add_argument_group("data and run")
    run.add_argument("--dataset", default=None, type=path_argument,
                     help="registered name (digits, mnist, cifar10-patches, "
                     "norb) or a .npy/.npz path, one sample per row; an .npz of X_train, y_train, X_test, "
                     "y_test adds logistic-regression test errors (default: digits; on --resume, the "
                     "run's own, recorded in OUT/data.json, like --data-dir and --image-shape)")
    run.add_argument("--data-dir", default=None, type=path_argument,
                     help="folder of the real data sets (default: $KSPARSE_DATA, else ~/.cache/ksparse; "
                     "on --resume, the folder the run read, recorded in OUT/data.json)")
    run.add_argument("--image-shape", default=None, metavar="HxW[xC]",
                     help="draw filters.png as images of this shape (default: the data set's, if any)")
    run.add_argument("--device", choices=("cpu", "gpu"), default=None,
                     help="where to train (default: cpu; on --resume, the run's own)")
    run.add_argument("--out", default=os.path.join("runs", "ksparse"), type=path_argument,
                     help="output folder (default: runs/ksparse)")
    run.add_argument("--resume", nargs="?", const=True, default=None, type=path_argument,
                     metavar="CHECKPOINT",
                     help="continue from CHECKPOINT (default: OUT/model.npz). The run keeps every setting of "
                     "the checkpoint, only --max-iter may change; the k and lr schedules continue where "
                     "they were. The data must be of the kind the model was trained on (its spread within "
                     "a factor 10)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the model already in --out (without it, train refuses to overwrite one)")
    run.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                     help="also write OUT/model.npz every N epochs (default: 0, only at the end). On "
                     "--resume, this option, --no-logreg, --quiet and --device default to the run's own, "
                     "recorded in OUT/data.json")
    run.add_argument("--no-logreg", action="store_true", default=None,
                     help="skip the logistic-regression test errors")
    run.add_argument("--logreg", dest="no_logreg", action="store_false", default=None,
                     help="compute them (on --resume of a run given --no-logreg)")
    run.add_argument("--quiet", action="store_true", default=None, help="no progress output")
    run.add_argument("--no-quiet", dest="quiet", action="store_false", default=None,
                     help="show progress (on --resume of a run given --quiet)")
    enc = sub.add_parser("encode", help="write the alpha*k features of a data matrix",
                         description="Write features h = supp_{alpha k}(W^T x + b) (Sec. 2.2) of each row of "
                         "INPUT to OUTPUT: KSparseAutoencoder.transform, block by block (a .npy INPUT is "
                         "read through a memory map, the codes are written as they come).")
    enc.add_argument("model", metavar="MODEL", type=path_argument,
                     help="model file written by `ksparse train` (model.npz)")
    enc.add_argument("input", metavar="INPUT", type=path_argument,
                     help=".npy or .npz matrix, one sample per row")
    enc.add_argument("output", metavar="OUTPUT", type=path_argument,
                     help="where to write the codes: .npy for --form dense, "
                     ".npz for sparse (scipy.sparse.load_npz reads it) and topk (arrays index, value)")
    enc.add_argument("--form", choices=("dense", "sparse", "topk"), default="dense",
                     help="dense (N, n_hidden) array; sparse CSR with alpha*k entries per row; or topk: "
                     "(N, alpha*k) column indices and values (default: dense)")
    enc.add_argument("--alpha", type=float, default=None, help="multiplier of k (default: the model's alpha)")
    enc.add_argument("--coefficients", choices=("encoder", "least_squares"), default=None,
                     help="the kept units' values: encoder (W^T x + b, Sec. 2.2) or least_squares (refit on "
                     "that support to reconstruct x best, Eq. 3) (default: the model's coefficients)")
    enc.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT (without it, "
                     "encode refuses to write over any file)")
    enc.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                     help="where to compute (default: cpu)")
    info = sub.add_parser("info", help="describe a model file", description="Print a model's shape, "
                          "settings, epochs run, last-epoch metrics and the ksparse version that wrote it.")
    info.add_argument("model", metavar="MODEL", type=path_argument,
                      help="model file written by `ksparse train` (model.npz)")
    sub.add_parser("reproduce", add_help=False, help="reproduce the paper's tables and figures "
                   "(`ksparse reproduce --help` lists them and their options)")
    return parser


def _estimator(args, options, model_path):
    """A KSparseAutoencoder from the options, or from the checkpoint's settings on --resume."""
    from ksparse.estimators.autoencoder import KSparseAutoencoder

    run = {"device": args.device, "checkpoint_path": model_path, "checkpoint_every": args.checkpoint_every}
    if args.resume is None:
        check_paper(options)
        AutoencoderConfig.from_dict(options)  # every option checked before the data is read
        return KSparseAutoencoder(**options, **run), None
    path = model_path if args.resume is True else args.resume
    try:
        est = KSparseAutoencoder.load(path, args.device)
    except ValueError as e:
        if "device" not in args.run_from or not str(e).startswith("device 'gpu'"):
            raise
        raise UserError(f"{e} (the run's --device gpu, recorded in its data.json); to resume it here, "
                        "give --device cpu") from None
    return est.set_params(**options, **run), path


def _check_run(est, resume, x, args):
    """Before any output: the settings fit the data (features, memory; on --resume the checkpoint)."""
    from ksparse.training.loop import extend
    from ksparse.training.memory import check_memory

    if resume is None:
        check_memory(x.shape[1], est.n_hidden, est.batch_size, est.dtype, args.device)
    else:  # raises what fit would: other features, a changed setting, --max-iter below the epochs run
        try:
            extend(est.state_.copy(), x.shape[1], config=est._config())
        except ValueError as e:
            if "features" not in str(e):
                raise
            raise UserError(_other_features(e, args, resume)) from None


def _other_features(e, args, resume):
    """The message for --resume on data of another number of features: where that data came from
    (the default, the run's record, or --dataset) decides the fix."""
    if args.data_defaulted:
        return (f"{e}: no --dataset was given and {resume}'s folder records none, so the default "
                f"{args.dataset!r} was loaded; pass the run's --dataset (and --data-dir)")
    if "dataset" in args.data_from:
        return f"{e} ({args.dataset!r}, recorded by the run); give the data it was trained on with --dataset"
    return (f"{e} ({args.dataset!r}); resume on the data the model was trained on (leave out --dataset "
            "to use the one the run recorded), or train a new model into another --out")


def _as_flags(text, resume):
    """The advice of the library (``lr=0.01``, ``paper=False``) in the command line's words."""
    names = set(AutoencoderConfig.names())

    def say(m):
        name, value = m.group(1), m.group(2)
        if name not in names:
            return m.group(0)
        if value in ("True", "False"):
            return flag(name) if value == "True" else "--no-" + flag(name)[2:]
        return f"{flag(name)} {value}"

    text = re.sub(r"\b([a-z_]+)=([^\s,;)]+)", say, text)
    return text.replace("(without resuming)", "into a new --out (without --resume)") if resume else text


def _fit(est, x, resume, model_path, args, bar):
    """Fit; on divergence or Ctrl-C save the last finished epoch, if this run finished one, and
    say so (on its own line: the progress ``bar`` is closed first)."""
    from ksparse.training.loop import TrainingDiverged

    start = est.state_.epoch if resume is not None else 0
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            return est.fit(x, resume_from=resume)
    except (TrainingDiverged, KeyboardInterrupt) as e:
        if bar:
            bar[0].close()
        state = getattr(e, "state", None)
        again = shlex.join(args.argv)  # nothing new saved: the same command again
        kept = (f"no new epoch had finished, so {resume} is unchanged" if resume is not None
                else "no epoch had finished, so no model was saved")
        if state is not None and state.epoch > start:
            est.save(model_path)
            kept = f"the last good state (epoch {state.epoch}) is in {model_path}"
            again = shlex.join(["ksparse", "train", "--out", args.out, "--resume"])  # data.json: the data
            diverged = isinstance(e, TrainingDiverged)
            then = _as_flags(str(e), resume is not None) if diverged else f"continue with: {again}"
            unfinished_run_files(est, args, "diverged" if diverged else _stopped(args),
                                  f"the model is epoch {state.epoch} of max_iter = {est.max_iter}; {then}")
        if isinstance(e, TrainingDiverged):
            raise UserError(f"{_as_flags(str(e), resume is not None)}; {kept}") from None
        verb = "continue with" if state is not None and state.epoch > start else "run it again with"
        print(f"ksparse: {_stopped(args)}; {kept}; {verb}: {again}", file=sys.stderr)
        raise _Reported() from None


def _stopped(args):
    """'interrupted' (Ctrl-C) or 'terminated' (SIGTERM), from the signal that arrived."""
    received = getattr(args, "received", None)
    return "terminated" if received is not None and received.exit_code == 143 else "interrupted"


def _missing_folders(path):
    """The folders of ``path`` that do not exist yet, innermost first."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def cmd_train(args):
    """``ksparse train``: fit, then write model.npz, filters.png and summary.json to --out.

    Every check comes before any work, the cheap ones first: --out not a file, the options,
    --image-shape, no output over an input, the data, the run's fit to the data (memory; on
    --resume the checkpoint), and last whether --out already holds a model.
    """
    from ksparse import summary

    started = time.perf_counter()
    if args.overwrite and args.resume is not None:  # one replaces the model, the other continues it
        raise UserError("--overwrite and --resume contradict each other (replace the model or continue "
                        "it); give one of them")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError(f"--out {args.out!r} is a file; give a folder")
    check_folder_name(args.out)
    model_path = os.path.join(args.out, "model.npz")
    fill_data_options(args)
    est, resume = _estimator(args, given(args, AutoencoderConfig), model_path)
    if args.image_shape is not None:
        image_shape(args.image_shape)
    check_not_inputs(args, model_path)
    ds, x, shape = read_dataset(args)
    _check_run(est, resume, x, args)
    check_outputs(args, model_path)
    if summary.labels_note(ds) is not None and not args.no_logreg:
        print(f"ksparse: note: {summary.labels_note(ds)}", file=sys.stderr)
    done = est.state_.epoch if resume is not None else 0
    if resume is not None:
        rebuild_stale_summary(args, est, resume, model_path)
    callback, progress, bar = progress_bar(args, est, x.shape[0])
    est.set_params(callback=summary_at_checkpoints(callback, args, model_path), progress=progress)
    created, fit_started = _missing_folders(args.out), time.perf_counter()
    undo = record_data(args, model_path)
    try:
        _fit(est, x, resume, model_path, args, bar)
    except BaseException:
        undo()  # a run that saved no model leaves data.json as it was
        for folder in created:  # leave no trace of a run that saved nothing: the folders it made
            if not os.listdir(folder):
                os.rmdir(folder)
        raise
    finally:
        if bar:
            bar[0].close()
    if resume is not None and done >= est.max_iter:
        print(f"ksparse: note: {resume} has run all {est.max_iter} epochs; nothing to train (raise "
              "--max-iter to continue); the summary is written again", file=sys.stderr)
    record = {"train_time_s": time.perf_counter() - fit_started, "history": est.history_}
    again = shlex.join(["ksparse", "train", "--out", args.out, "--resume"])
    unfinished_run_files(est, args, "trained; evaluating", f"the model is finished (epoch {est.n_iter_} of "
                         f"max_iter = {est.max_iter}) and was being evaluated; if no run is going on, it "
                         f"was stopped without a word (killed) before the evaluation ended; evaluate it "
                         f"with: {again}")
    try:
        _evaluate(est, ds, x, shape, args, record)
    except KeyboardInterrupt:  # the model is saved; keep what the evaluation had found
        status = f"trained; evaluation {_stopped(args)}"
        record = {**summary.unfinished_summary(est, shlex.join(args.argv), args.device, status,
                                               "the evaluation did not finish"), **record}
        record.update(interrupted=f"{_stopped(args)} during the post-training evaluation",
                      wall_time_s=time.perf_counter() - started)
        if record["filters"] is None:  # not drawn by this run
            remove_stale_filters(args)
        summary.write_json(os.path.join(args.out, "summary.json"), record)
        print(f"ksparse: {_stopped(args)} after training; the model is in {model_path} and "
              f"{os.path.join(args.out, 'summary.json')} holds what was measured", file=sys.stderr)
        raise _Reported() from None
    record.update(status="finished", wall_time_s=time.perf_counter() - started)
    summary.write_json(os.path.join(args.out, "summary.json"), record)
    print(f"wrote {args.out}/model.npz, filters.png, summary.json, data.json: {summary.brief(record)}")
    return 0


def _evaluate(est, ds, x, shape, args, record):
    """Fill ``record`` with the run summary, filters.png and the logistic regressions, in place."""
    from ksparse import summary

    record.update(summary.run_summary(est, ds, x, shlex.join(args.argv), args.device, shape))
    record["filters"] = summary.draw_filters(est, ds, shape, os.path.join(args.out, "filters.png"))
    say = None if args.quiet else (lambda text: print(text + "...", file=sys.stderr))
    record["logistic_regression"] = ({"note": "skipped: --no-logreg"} if args.no_logreg
                                     else summary.logreg_errors(ds, est, say))


def cmd_encode(args):
    """``ksparse encode MODEL INPUT OUTPUT``: write ``transform(INPUT)`` block by block."""
    from ksparse.estimators.autoencoder import KSparseAutoencoder
    from ksparse.estimators.codes import save_codes

    check_encode_names(args.model, args.input, args.output, args.form)
    est = KSparseAutoencoder.load(args.model, args.device)
    x = read_encode_input(args.input)
    if x.shape[1] != est.n_features_in_:
        raise UserError(f"{args.model} expects {est.n_features_in_} features per row, but {args.input} has "
                        f"{x.shape[1]}")
    if args.alpha is not None:  # checked by the config's rule for alpha; the model's k and n_hidden are fixed
        try:
            est.set_params(alpha=est.state_.config.replace(alpha=args.alpha).alpha)
        except ConfigError as e:
            if e.field != "alpha":
                raise UserError(_option_error(e)) from None
            if e.among is not None:  # alpha*k > H: k and n_hidden are the model's, only --alpha is given
                rule = e.rule.format_map({n: (f"--alpha {v!r}" if n == "alpha" else f"{n} = {v!r}")
                                          for n, v in e.among.items()})
                raise UserError(f"{rule}; lower --alpha (k and n_hidden are the model's)") from None
            raise UserError(f"--alpha {e.rule}, got {e.value!r}; give a finite --alpha >= 1 (the model's "
                            f"is {est.alpha:g})") from None  # below 1, not finite
    check_encode_output(args.model, args.input, args.output, args.form, args.overwrite)  # last: exists?
    ak = alpha_k(est.k, est.alpha, est.n_hidden)
    coefficients = args.coefficients or est.coefficients
    save_codes(args.output, est.state_, x, est.alpha, args.form, coefficients)
    print(f"wrote {args.output}: {x.shape[0]} x {est.n_hidden} codes ({args.form}, {coefficients} "
          f"coefficients), {ak} nonzero per row")
    return 0


def cmd_info(args):
    """``ksparse info MODEL``: what the model is and how it was trained."""
    from ksparse import summary
    from ksparse.estimators.autoencoder import KSparseAutoencoder

    print(f"{args.model}: " + "\n  ".join(summary.describe(KSparseAutoencoder.load(args.model))))
    return 0


def cmd_reproduce(argv, received=None):
    """``ksparse reproduce ...``: hand the remaining arguments to :mod:`ksparse.reproduce`; on Ctrl-C
    or SIGTERM say what is kept and the command that continues (the same, with --resume)."""
    try:
        from ksparse.reproduce import main as reproduce_main

        return int(reproduce_main(list(argv)) or 0)
    except KeyboardInterrupt:
        if not argv or argv[0] in ("report", "-h", "--help"):
            raise
        kept = [a for a in argv if a != "--overwrite"]  # the rerun continues what this one wrote
        again = shlex.join(["ksparse", "reproduce", *kept, *([] if "--resume" in kept else ["--resume"])])
        stopped = "terminated" if received is not None and received.exit_code == 143 else "interrupted"
        print(f"ksparse: {stopped}; continue with: {again} ({_resume_does(argv[0])})", file=sys.stderr)
        raise _Reported() from None
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("ksparse"):
            raise
        raise UserError(f"`ksparse reproduce` is not available in this install: {e}") from None


def _resume_does(target):
    """What ``ksparse reproduce TARGET --resume`` does with a stopped run, as the Ctrl-C message says it."""
    pretrain = ("continues each k-sparse autoencoder's training from its last finished epoch (other models "
                "train again)")
    if target in ("fig1", "fig3", "fig4"):
        return f"it {pretrain} and draws the figure again"
    return f"it skips the rows already written and {pretrain}"


def _fail(message):
    print("ksparse: error: " + " ".join(str(message).split()), file=sys.stderr)
    return 2


def _option_error(e):
    """A ConfigError of the estimator as the command line says it: ``--k-start must be ...``."""
    return e.text(flag, lambda name, value: f"{flag(name)} {value!r}")  # a rule between options: each one


def main(argv=None):
    """Entry point of the ``ksparse`` console script; returns the exit code."""
    from ksparse.training.loop import TrainingInterrupted

    argv = sys.argv[1:] if argv is None else list(argv)
    files_are_the_product = bool(argv) and argv[0] in ("train", "encode", "reproduce")
    with terminate_as_interrupt() as received, progress_streams(stdout=files_are_the_product), \
            warnings.catch_warnings():
        warnings.showwarning = _note  # the library's warnings as one-line notes
        try:
            code = _run(argv, received)
            sys.stdout.flush()  # here, not at exit: a closed pipe is then found below
            return code
        except KeyboardInterrupt as e:
            if not isinstance(e, (TrainingInterrupted, _Reported)):  # those said what was saved
                print(f"ksparse: {'terminated' if received.exit_code == 143 else 'interrupted'}",
                      file=sys.stderr)
            return received.exit_code
        except BrokenPipeError:  # `ksparse info ... | head -1`: the reader has gone (stdout is not wrapped)
            return _stdout_closed()


def _note(message, category, filename, lineno, file=None, line=None):
    """Show a warning from the library as one line, ``ksparse: note: MESSAGE``, on stderr."""
    print(f"ksparse: note: {message}", file=sys.stderr)


#: the exit code when the reader of stdout has gone: 128 + SIGPIPE, what the shell reports for a
#: program that SIGPIPE ended (Python ignores SIGPIPE, so it gets BrokenPipeError instead)
EXIT_PIPE_CLOSED = 141


def _stdout_gone():
    """True when stdout is a pipe whose reader has closed it (poll's POLLERR), or cannot be polled."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):
        return True


def _stdout_closed():
    """Say nothing more and exit quietly once stdout's reader has gone (the Python docs' recipe for
    SIGPIPE: point stdout at devnull, so that the flush at exit does not fail again)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (replaced in-process)
        pass
    finally:
        os.close(devnull)
    return EXIT_PIPE_CLOSED


def _run(argv, received):
    """Parse ``argv`` and run the command; bad input becomes one ``ksparse: error:`` line and 2."""
    from ksparse.training.loop import TrainingDiverged

    try:
        if argv and argv[0] == "reproduce":
            return cmd_reproduce(argv[1:], received)
        args = build_parser().parse_args(argv)
        args.argv, args.received = ["ksparse", *argv], received
        return {"train": cmd_train, "encode": cmd_encode, "info": cmd_info}[args.command](args)
    except SystemExit as e:  # argparse: --help or --version (0)
        return e.code if isinstance(e.code, int) else _fail(e.code)
    except ConfigError as e:
        return _fail(e if argv[:1] == ["reproduce"] else _option_error(e))
    except BrokenPipeError as e:  # stdout's reader has gone: main() exits quietly; another pipe: an error
        if _stdout_gone():
            raise
        return _fail(e)
    except (ValueError, TypeError, OSError, UserError, TrainingDiverged) as e:
        return _fail(e)


if __name__ == "__main__":
    sys.exit(main())
