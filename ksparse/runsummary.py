"""summary.json and filters.png of a ``ksparse train`` run that has not finished: whenever the run
has saved a model it did not finish (Ctrl-C, SIGTERM, divergence, a checkpoint of --checkpoint-every
N while it goes on), summary.json describes that model (``status``, epochs run, history) and no
filters.png of an earlier model remains; --resume writes a summary that disagrees with its
checkpoint (a run killed between the two writes) again from the checkpoint.
"""

import json
import os
import shlex
import sys


def unfinished_run_files(est, args, status, note):
    """After a run saved a model it did not finish: summary.json describes that model (``status``,
    epochs run), and no filters.png of an earlier model (or an earlier epoch) remains beside it."""
    from ksparse import summary

    summary.write_json(os.path.join(args.out, "summary.json"), summary.unfinished_summary(
        est, shlex.join(args.argv), args.device, status,
        note + "; filters.png, the score and the test errors are written when a run finishes"))
    remove_stale_filters(args)


def summary_at_checkpoints(callback, args, model_path):
    """``callback`` and, with --checkpoint-every N, after each checkpoint: summary.json describes the
    model just written (read back from ``model_path``), so that a run killed (SIGKILL) leaves no
    summary or filters.png of an earlier state beside its checkpoint."""
    if not args.checkpoint_every:
        return callback

    def each(record):
        callback(record)
        if record["epoch"] % args.checkpoint_every == 0:
            _checkpoint_summary(args, model_path, "running", f"written at the checkpoint of epoch "
                                f"{record['epoch']} (--checkpoint-every {args.checkpoint_every}) while "
                                "the run went on; if no run is going on, it was stopped without a word "
                                "(killed)")
    return each


def _checkpoint_summary(args, model_path, status, why):
    """Write summary.json (and remove filters.png) for the model in ``model_path``, read back."""
    from ksparse.estimators.autoencoder import KSparseAutoencoder

    est = KSparseAutoencoder.load(model_path)
    again = shlex.join(["ksparse", "train", "--out", args.out, "--resume"])
    unfinished_run_files(est, args, status, f"the model is epoch {est.n_iter_} of max_iter = "
                          f"{est.max_iter}, {why}; continue with: {again}")


def rebuild_stale_summary(args, est, resume, model_path):
    """On --resume of OUT/model.npz: when summary.json describes another state than the checkpoint
    (a run killed between its checkpoint and its summary, or by an older version), write it again
    from the checkpoint before any work, and say so."""
    from ksparse.io import same_file

    if not same_file(resume, model_path):
        return
    path = os.path.join(args.out, "summary.json")
    try:
        with open(path) as f:
            old = json.load(f)
        last = old.get("last_epoch") or {}
        if old.get("n_iter") == est.n_iter_ and last.get("loss") == (est.history_ or [{}])[-1].get("loss"):
            return
        said = f"described epoch {old.get('n_iter')}, not"
    except (OSError, ValueError, TypeError, AttributeError):
        said = "was missing, beside" if not os.path.lexists(path) else "was unreadable, beside"
    _checkpoint_summary(args, model_path, "stopped", "found by --resume: the run that wrote it was "
                        "stopped without a word (killed) after this checkpoint")
    print(f"ksparse: note: {path} {said} the checkpoint's epoch {est.n_iter_}; written "
          "again from the checkpoint", file=sys.stderr)


def remove_stale_filters(args):
    """Remove OUT/filters.png: this run did not draw it, so it shows another model."""
    try:
        os.remove(os.path.join(args.out, "filters.png"))
    except FileNotFoundError:
        pass
