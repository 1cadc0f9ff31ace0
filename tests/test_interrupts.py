"""ksparse.interrupts: SIGTERM raised like Ctrl-C inside the block, the old handler back after."""

import os
import signal
import time

import pytest

from ksparse.interrupts import Terminated, terminate_as_interrupt


def _wait_for_signal():
    for _ in range(200):  # the handler runs between bytecodes, well within this
        time.sleep(0.01)
    raise AssertionError("no signal arrived")


def test_sigterm_inside_the_block_raises_terminated_with_exit_code_143():
    with pytest.raises(Terminated) as info:
        with terminate_as_interrupt() as received:
            os.kill(os.getpid(), signal.SIGTERM)
            _wait_for_signal()
    assert isinstance(info.value, KeyboardInterrupt)  # the Ctrl-C path saves the last epoch
    assert received.signum == signal.SIGTERM and received.exit_code == 143


def test_ctrl_c_inside_the_block_keeps_exit_code_130():
    with pytest.raises(KeyboardInterrupt) as info:
        with terminate_as_interrupt() as received:
            os.kill(os.getpid(), signal.SIGINT)
            _wait_for_signal()
    assert not isinstance(info.value, Terminated)
    assert received.signum == signal.SIGINT and received.exit_code == 130


def test_previous_sigterm_handler_is_restored():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda s, f: seen.append(s))
    try:
        with terminate_as_interrupt():
            assert signal.getsignal(signal.SIGTERM) is not previous
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(200):
            if seen:
                break
            time.sleep(0.01)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
