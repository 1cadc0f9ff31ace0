"""SIGTERM handled like Ctrl-C: the one place that turns a termination signal into an exception.

``timeout``, batch schedulers and ``kill`` send SIGTERM, whose default action ends the
process with nothing saved. Inside :func:`terminate_as_interrupt` it raises
:class:`Terminated` (a ``KeyboardInterrupt``), so the code that saves the last finished
epoch on Ctrl-C runs for both, and the caller can exit with the conventional code.
"""

import contextlib
import signal
import threading

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal number


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised wherever the main thread was, like Ctrl-C's KeyboardInterrupt."""


class Received:
    """Which signal ended the run: ``signum`` is SIGINT (the default) or SIGTERM."""

    def __init__(self):
        self.signum = signal.SIGINT

    @property
    def exit_code(self):
        """The conventional exit status, 128 + the signal number: 130 or 143."""
        return EXIT_CODES[self.signum]


@contextlib.contextmanager
def terminate_as_interrupt():
    """Within the block, SIGTERM raises :class:`Terminated`; yields a :class:`Received`.

    Outside the main thread (where Python cannot set handlers) nothing changes. The
    previous handler is restored on exit.
    """
    received = Received()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        received.signum = signal.SIGTERM
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)
