"""Progress output whose reader may go away: ``ksparse train ... 2>&1 | head -1``.

Python ignores SIGPIPE, so a write to a pipe whose reader has closed it raises
:class:`BrokenPipeError` wherever the write happens: in a progress bar in the middle of an
epoch, in a note before the evaluation, in the last "wrote ..." line. For a command whose
product is files (``train``, ``encode``, ``reproduce``) that must not decide the outcome:
:func:`progress_streams` makes such a stream drop what it can no longer deliver, silently,
and the command finishes, saves and exits with its own code.
"""

import contextlib
import os
import sys


class DropWhenClosed:
    """A text stream that forwards to ``stream`` until its reader has gone, then drops every write.

    Each write is flushed at once, so that a closed pipe is found at the write that fails (not in
    the flush at exit). Once found, the stream's file descriptor is pointed at ``os.devnull``
    (the Python docs' recipe for SIGPIPE), so that text still buffered is dropped at exit too.
    Other attributes (``fileno``, ``isatty``, ``encoding``) are the stream's own.

    Parameters
    ----------
    stream : text file object, e.g. ``sys.stderr``
    """

    def __init__(self, stream):
        self.stream = stream
        self.reader_gone = False

    def write(self, text):
        if not self.reader_gone:
            try:
                self.stream.write(text)
                self.stream.flush()
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self):
        if not self.reader_gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self):
        self.reader_gone = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError, AttributeError):  # a stream without a file descriptor
            pass
        finally:
            os.close(devnull)

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextlib.contextmanager
def progress_streams(stdout=True, stderr=True):
    """Inside the block, ``sys.stdout`` and/or ``sys.stderr`` are :class:`DropWhenClosed` wrappers.

    Parameters
    ----------
    stdout, stderr : bool
        Which of the two to wrap. Leave ``stdout`` alone for a command whose product is what it
        prints (``ksparse info``): there a closed stdout ends the command (exit code 141).
    """
    saved = sys.stdout, sys.stderr
    if stdout:
        sys.stdout = DropWhenClosed(sys.stdout)
    if stderr:
        sys.stderr = DropWhenClosed(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
