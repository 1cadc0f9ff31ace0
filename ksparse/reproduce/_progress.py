"""What ``ksparse reproduce`` shows while it runs: the ``ksparse.reproduce`` logger on stderr.

The targets say what they do through :mod:`logging` (the logger ``ksparse.reproduce``), as the
library does; :func:`shown` draws it on stderr as ``ksparse train`` draws its progress: a tqdm
bar over each model's epochs and one line per other message (a model loaded from the cache, a
row or figure finished). ``--quiet`` (:func:`quiet`) shows none of it. Records carry what the
bars need in their ``extra`` fields:

- ``model`` and ``epochs``: a model starts training for ``epochs`` epochs (a new bar);
- ``at``: the model resumed at that epoch; ``epoch``: it finished that epoch (the bar moves,
  the message becomes the bar's postfix);
- ``done``: the model is trained (its bar closes, the message is shown as a line); a bar also
  closes when it reaches its total; ``stopped``: the model stopped early (its bar closes where it is).

Fine-tuning (``table3``, ``sweep``) shows a bar per stage the same way, its postfix the epoch's
validation error (:class:`ksparse.reproduce.table3.FinetuneProgress`).
"""

import contextlib
import logging
import sys

LOGGER = "ksparse.reproduce"


class BarHandler(logging.Handler):
    """Show records of :data:`LOGGER` on ``sys.stderr`` (looked up when shown): bars and lines."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.bar = None

    def emit(self, record):
        from tqdm import tqdm

        try:
            message = record.getMessage()
            if getattr(record, "epochs", None) is not None:
                self._close()
                self.bar = tqdm(total=record.epochs, desc=getattr(record, "model", "training"), unit="epoch",
                                file=sys.stderr, dynamic_ncols=True, leave=True)
                return
            if self.bar is not None and getattr(record, "at", None) is not None:
                self.bar.n = record.at
                self.bar.refresh()
            if self.bar is not None and getattr(record, "epoch", None) is not None:
                self.bar.n = record.epoch
                self.bar.set_postfix_str(message[:70], refresh=True)
                if self.bar.total is not None and self.bar.n >= self.bar.total:
                    self._close()  # its last epoch: the bar stays as a line
                return
            if getattr(record, "done", False):
                self._close(finished=True)
            if getattr(record, "stopped", False):
                self._close()
            tqdm.write(message, file=sys.stderr)
        except Exception:  # a closed stream, say: as logging's own handlers do
            self.handleError(record)

    def _close(self, finished=False):
        if self.bar is not None:
            if finished:
                self.bar.n = self.bar.total or self.bar.n
                self.bar.refresh()
            self.bar.close()
            self.bar = None

    def close(self):
        self._close()
        super().close()


@contextlib.contextmanager
def shown():
    """Inside the block, the INFO records of :data:`LOGGER` are drawn on stderr (:class:`BarHandler`)."""
    logger = logging.getLogger(LOGGER)
    handler, level = BarHandler(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(level)


def quiet():
    """``--quiet``: no progress (warnings still show). :func:`shown` restores the level at its end."""
    logging.getLogger(LOGGER).setLevel(logging.WARNING)


def wrote(paths, results=None):
    """The closing line of a target: ``wrote A, B and N result files in RESULTS``.

    ``paths`` are the files the run wrote; those in the folder ``results`` are counted, the
    others named (a single result file is named too).
    """
    import os

    paths = list(dict.fromkeys(paths))
    inside = [p for p in paths if results is not None
              and os.path.dirname(os.path.abspath(p)) == os.path.abspath(results)]
    named = [p for p in paths if p not in inside]
    if len(inside) == 1:
        named, inside = named + inside, []
    parts = named + ([f"{len(inside)} result files in {results}"] if inside else [])
    text = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] if parts else "nothing"
    return f"wrote {text}"
