"""The files of a command-line run: reading ``--dataset`` and ``encode``'s INPUT, and checking,
before any work, that no output replaces an input or (unasked) an earlier model and that every
output folder can be written. :mod:`ksparse.cli` parses and prints; this module decides.
"""

import json
import os
import shlex
import sys

import numpy as np

from ksparse.config import PAPER_OFF, flag
from ksparse.io import check_codes_name, check_parent, check_writable, same_file


class UserError(Exception):
    """Bad input found by the command itself; reported like ValueError."""


def read_dataset(args):
    """The data set, its checked training matrix and the image shape to draw filters with.

    A ``.npy`` path is read by rows through a memory map (:class:`ksparse.blockio.NpyRows`),
    never loaded whole; its rows are checked block by block as training reads them.
    """
    from ksparse.blockio import NpyRows
    from ksparse.datasets import Dataset, load_dataset
    from ksparse.training.loop import check_data
    from ksparse.training.stream import check_rows

    if args.dataset.lower().endswith(".npy") and os.path.isfile(args.dataset):
        x = check_rows(NpyRows(args.dataset), name=args.dataset)
        ds = Dataset(os.path.basename(args.dataset), x, None, image_shape=None)  # no guess from the width
    else:
        ds = load_dataset(args.dataset, data_dir=args.data_dir)
        own = args.dataset.endswith((".npy", ".npz"))  # a user's file is named by its path
        x = check_data(ds.X_train, name=args.dataset if own else f"the training data of {args.dataset!r}")
        if own and ds.X_test is not None:  # an .npz of X_train, y_train, X_test, y_test
            ds.X_test = check_data(ds.X_test, name=f"{args.dataset}'s X_test")
    if args.image_shape is None:
        return ds, x, ds.image_shape
    shape = image_shape(args.image_shape)
    if int(np.prod(shape)) != x.shape[1]:
        raise UserError(f"--image-shape {args.image_shape} holds {int(np.prod(shape))} values; "
                        f"the data has {x.shape[1]} features per row")
    return ds, x, shape


def check_paper(options):
    """Refuse an option that --paper would override (e.g. --step-bound): it would be ignored."""
    if not options.get("paper"):
        return
    for name in PAPER_OFF:
        value = options.get(name)
        if value is True or (name == "b_prime_init" and value is not None) or (name == "c_aux" and value):
            given_as = flag(name) if value is True else f"{flag(name)} {value}"
            raise UserError(f"{given_as} has no effect with --paper (the paper's setting turns it off); "
                            f"drop {flag(name)}, or drop --paper to use it")


def check_not_inputs(args, model_path):
    """Before reading anything: no output of the run replaces an input (--dataset, --resume's file)."""
    outputs = [model_path] + [os.path.join(args.out, n) for n in ("filters.png", "summary.json")]
    inputs = [("--dataset", args.dataset)]
    if isinstance(args.resume, str):
        inputs.append(("--resume", args.resume))
    for option, path in inputs:
        for out in outputs:
            if same_file(path, out) and not (option == "--resume" and out == model_path):
                raise UserError(f"{option} {path} would be overwritten by this run's {out}; "
                                "choose another --out")


def check_outputs(args, model_path):
    """The last check before work, once the options and the data are known good: no earlier model
    is replaced unasked, and --out can be written."""
    check_not_inputs(args, model_path)
    if args.resume is None and os.path.exists(model_path) and not args.overwrite:
        raise UserError(f"{model_path} already holds a model; add --overwrite to replace it "
                        "(or --resume to continue it)")
    if args.resume is None and not args.overwrite:  # an earlier run's files without its model
        earlier = [n for n in ("summary.json", "filters.png") if os.path.exists(os.path.join(args.out, n))]
        if earlier:
            raise UserError(f"--out {args.out} already holds {' and '.join(earlier)} of an earlier run (and "
                            "no model.npz); add --overwrite to replace them, or give another --out")
    _check_data_json(args, model_path)
    if (args.resume not in (None, True) and os.path.exists(model_path)
            and not (same_file(args.resume, model_path)
                     or os.path.abspath(args.resume) == os.path.abspath(model_path))):
        raise UserError(f"{model_path} already holds a model of another run, which continuing {args.resume} "
                        f"there would replace; give another --out, or continue {model_path} itself "
                        "(--resume without a path)")
    check_writable(args.out)


def _check_data_json(args, model_path):
    """Unless --overwrite: an OUT/data.json beside no model this run continues belongs to another
    run (or is not ours); refuse to write over it, unless it already says what this run would."""
    path = os.path.join(args.out, "data.json")
    continued = args.resume is not None and os.path.exists(model_path)
    if args.overwrite or continued or not os.path.lexists(path):
        return
    try:
        with open(path) as f:
            if json.load(f) == data_record(args):  # the same run started again: nothing is lost
                return
    except (OSError, ValueError):
        pass
    fix = ("give another --out (--overwrite replaces it, but not with --resume)" if args.resume is not None
           else "add --overwrite to replace it, or give another --out")
    raise UserError(f"--out {args.out} already holds data.json of an earlier run (and no model.npz of "
                    f"this run); {fix}")


def image_shape(text):
    """``--image-shape`` HxW[xC] as a tuple of 2 or 3 ints; UserError when it is not one."""
    try:
        shape = tuple(int(s) for s in text.lower().replace(",", "x").split("x"))
    except ValueError:
        shape = ()
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise UserError(f"--image-shape must look like 28x28 or 32x32x3, got {text!r}")
    return shape


def check_encode_names(model, input, output, form):
    """Before reading anything: OUTPUT is neither MODEL nor INPUT, not a folder, named for ``form``."""
    for option, path in (("MODEL", model), ("INPUT", input)):
        if same_file(path, output) or os.path.abspath(path) == os.path.abspath(output):
            raise UserError(f"OUTPUT {output} is the {option} file and would be overwritten; "
                            "choose another OUTPUT")
    check_codes_name(output, form, "OUTPUT", "--form {}")  # the suffix of the form; not a folder


def check_encode_output(model, input, output, form, overwrite=False):
    """The last check before work (the model, INPUT and --alpha known good): the names
    (:func:`check_encode_names`), OUTPUT's folder writable, and, unless ``overwrite``, OUTPUT not an
    existing file (an earlier model or earlier codes)."""
    check_encode_names(model, input, output, form)
    if os.path.lexists(output) and not overwrite:
        raise UserError(f"OUTPUT {output} already exists; add --overwrite to replace it, or choose "
                        "another OUTPUT")
    check_parent(output, "OUTPUT")


def read_encode_input(path):
    """INPUT of ``encode``: a .npy read by rows through a memory map, or a loaded .npz."""
    from ksparse.blockio import NpyRows
    from ksparse.datasets import load_matrix
    from ksparse.training.loop import check_data
    from ksparse.training.stream import check_rows

    if path.lower().endswith(".npy") and os.path.isfile(path):
        return check_rows(NpyRows(path), name=path)
    ds = load_matrix(path)
    if ds.X_test is not None:  # encode one matrix: which of the two is not a guess to make
        raise UserError(f"INPUT {path} holds a train/test split (X_train, X_test); encode one matrix at "
                        "a time: save the one to encode alone, e.g. numpy.save('X_test.npy', X_test)")
    return check_data(ds.X_train, name=path)


def progress_bar(args, est, n_rows):
    """A tqdm bar over the samples of all epochs to run (``progress``), with the last epoch's
    metrics (``callback``); it opens on the first minibatch."""
    from tqdm import tqdm

    bar = []

    def progress(rows):
        if not bar:
            done = est.state_.epoch if resumed[0] else 0
            bar.append(tqdm(total=est.max_iter * n_rows, initial=done * n_rows, desc="training",
                            unit="sample", unit_scale=True, file=sys.stderr, disable=args.quiet,
                            dynamic_ncols=True))
        bar[0].update(rows)

    def callback(record):
        if bar:
            bar[0].set_postfix({"epoch": record["epoch"], "loss": f"{record['loss']:.4g}",  # D4
                                "dead in epoch": f"{100 * record['dead_fraction']:.1f}%", "k": record["k"]},
                               refresh=False)
    resumed = [args.resume is not None]
    return callback, progress, bar


#: the data options of ``train``, recorded in OUT/data.json so that --resume reads the same data
DATA_OPTIONS = ("dataset", "data_dir", "image_shape")
DEFAULT_DATASET = "digits"
#: the run options of ``train`` that are not model settings, with their defaults: recorded in
#: OUT/data.json beside the data options, so that --resume runs as the original command did
RUN_OPTIONS = {"checkpoint_every": 0, "no_logreg": False, "quiet": False, "device": "cpu"}


def _stat(path):
    try:
        st = os.stat(path)
        return st.st_mtime_ns, st.st_size, st.st_ino
    except OSError:
        return None


def record_data(args, model_path):
    """Write the run's data options to OUT/data.json (atomically), for a later --resume; return
    ``undo()``, which puts the earlier data.json back (or removes it) unless ``model_path`` changed.

    A file given as --dataset is recorded by its absolute path (a resume may start elsewhere). For a
    data set read from the data folder (mnist, cifar10-patches, norb) the folder read is recorded,
    by its absolute path, wherever it came from (--data-dir, $KSPARSE_DATA or the default), so that
    a resume reads the same files whatever its environment.
    """
    from ksparse.io import atomic_write

    path, model = os.path.join(args.out, "data.json"), _stat(model_path)
    data = data_record(args)
    try:
        with open(path, "rb") as f:
            before = f.read()
    except OSError:
        before = None
    text = json.dumps(data, indent=1).encode()
    atomic_write(path, lambda f: f.write(text))

    def undo():
        if _stat(model_path) != model:
            return
        if before is None:
            os.remove(path)
        else:
            atomic_write(path, lambda f: f.write(before))
    return undo


def data_record(args):
    """What :func:`record_data` writes to OUT/data.json: the data options (files and folders by
    their absolute paths) and the run options (:data:`RUN_OPTIONS`), a dict."""
    from ksparse.datasets import BUNDLED, REGISTRY, data_dir

    data = {name: getattr(args, name) for name in DATA_OPTIONS}
    if os.path.isfile(args.dataset):
        data["dataset"] = os.path.abspath(args.dataset)
    if args.dataset in REGISTRY and args.dataset not in BUNDLED:  # the folder the data was read from
        data["data_dir"] = os.path.abspath(data_dir(args.data_dir))
    elif args.data_dir:  # a resume may start elsewhere: the folder by its absolute path too
        data["data_dir"] = os.path.abspath(args.data_dir)
    return dict(data, **{name: getattr(args, name) for name in RUN_OPTIONS})


def recorded_run(folder):
    """The run options (:data:`RUN_OPTIONS`) a run in ``folder`` recorded in data.json; {} for a run
    of an earlier version, which recorded none."""
    try:
        with open(os.path.join(folder, "data.json")) as f:
            data = json.load(f)
        return {k: data[k] for k in RUN_OPTIONS if k in data and isinstance(data[k], type(RUN_OPTIONS[k]))}
    except (OSError, ValueError, TypeError):
        return {}


def recorded_data(folder):
    """The data options a run in ``folder`` recorded: data.json, else summary.json's command line
    (runs of earlier versions); {} when neither says."""
    try:
        with open(os.path.join(folder, "data.json")) as f:
            data = json.load(f)
        return {k: data[k] for k in DATA_OPTIONS if k in data}
    except (OSError, ValueError, TypeError):
        pass
    try:
        with open(os.path.join(folder, "summary.json")) as f:
            words = shlex.split(json.load(f)["command"])
    except (OSError, ValueError, TypeError, KeyError):
        return {}
    found = {}
    for name in DATA_OPTIONS:
        option = flag(name)
        for word, after in zip(words, words[1:] + [None], strict=True):
            if word == option and after is not None:
                found[name] = after
            elif word.startswith(option + "="):
                found[name] = word.split("=", 1)[1]
    return found


def _check_recorded_paths(args, folder):
    """A data file or data folder the run recorded (and --resume would read) that is gone: it moved,
    so say where the path came from and how to give the data again (not a download into a folder
    made anew)."""
    from ksparse.datasets import BUNDLED, REGISTRY

    where = "data.json" if os.path.isfile(os.path.join(folder, "data.json")) else "summary.json"
    path = args.data_from.get("dataset")
    if path is not None and path.endswith((".npy", ".npz")) and not os.path.exists(path):
        raise UserError(f"the run recorded --dataset {path!r} (in {os.path.join(folder, where)}), which no "
                        f"longer exists; if the data moved, give it again: {shlex.join(args.argv)} "
                        "--dataset NEWPATH")
    path, name = args.data_from.get("data_dir"), args.dataset
    if path and name in REGISTRY and name not in BUNDLED and not os.path.isdir(path):
        raise UserError(f"the run read {name} from the data folder {path!r} (recorded in "
                        f"{os.path.join(folder, where)}), which no longer exists; if the data folder moved, "
                        f"give it again: {shlex.join(args.argv)} --data-dir NEWFOLDER (a resume reads the "
                        "recorded folder, not KSPARSE_DATA)")


def fill_data_options(args):
    """On --resume, take the data and run options not given on the command line from the run's
    folder; the others keep their defaults. Sets ``args.data_from`` to the data options filled in
    and ``args.run_from`` to the run options (dicts)."""
    args.data_from, args.run_from = {}, {}
    if args.resume is not None:
        folder = args.out if args.resume is True else os.path.dirname(os.path.abspath(args.resume))
        args.data_from = {k: v for k, v in recorded_data(folder).items() if getattr(args, k) is None}
        args.run_from = {k: v for k, v in recorded_run(folder).items() if getattr(args, k) is None}
        for name, value in {**args.data_from, **args.run_from}.items():
            setattr(args, name, value)
        _check_recorded_paths(args, folder)
    for name, default in RUN_OPTIONS.items():  # not given, not recorded (or no --resume)
        if getattr(args, name) is None:
            setattr(args, name, default)
    args.data_defaulted = args.dataset is None
    if args.dataset is None:
        args.dataset = DEFAULT_DATASET
