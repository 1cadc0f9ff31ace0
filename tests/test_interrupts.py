"""ksparse.interrupts: SIGTERM raised like Ctrl-C inside the block, the old handler back after; and
``ksparse encode`` stopped by either at the next block, whatever its output form."""

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


# -- encode: every output form stops at the next block -----------------------------------------------------
@pytest.mark.parametrize("form, name", [("dense", "H.npy"), ("sparse", "H.npz"), ("topk", "H.npz")])
@pytest.mark.parametrize("signum, code, word, earlier", [(signal.SIGINT, 130, "interrupted", False),
                                                         (signal.SIGTERM, 143, "terminated", True)])
def test_a_signal_during_encode_stops_at_the_next_block_and_leaves_no_file(tmp_path, monkeypatch, capsys,
                                                                           form, name, signum, code, word,
                                                                           earlier):
    """The codes are computed while the file is written; a signal must not wait for the last block
    (it did for --form dense: the whole write ran with signals held)."""
    import numpy as np

    import ksparse.estimators.codes as codes
    from ksparse.cli import main
    from ksparse.estimators.autoencoder import KSparseAutoencoder

    x = np.random.default_rng(0).random((64, 8))
    np.save(tmp_path / "X.npy", x)
    KSparseAutoencoder(n_hidden=6, k=2, max_iter=1).fit(x).save(tmp_path / "model.npz")
    out = tmp_path / name
    if earlier:  # --overwrite of earlier codes: they stay as they were
        out.write_bytes(b"earlier codes")
    blocks, iter_codes = [], codes.iter_codes

    def eight_blocks(state, X, alpha, output="dense", block_rows=None, **options):
        for lo, block in iter_codes(state, X, alpha, output, block_rows=8, **options):
            blocks.append(lo)
            if len(blocks) == 2:
                os.kill(os.getpid(), signum)  # arrives while the second of eight blocks is made
            yield lo, block

    monkeypatch.setattr(codes, "iter_codes", eight_blocks)
    argv = ["encode", str(tmp_path / "model.npz"), str(tmp_path / "X.npy"), str(out), "--form", form]
    assert main(argv + ["--overwrite"] * earlier) == code
    assert capsys.readouterr().err.strip() == f"ksparse: {word}"
    assert blocks == [0, 8]  # no block after the signal was made
    assert (out.read_bytes() == b"earlier codes") if earlier else not out.exists()
    assert sorted(os.listdir(tmp_path)) == sorted(["X.npy", "model.npz"] + [name] * earlier)  # no temp file
