"""Sec. 4.2.1 sparsity schedule and the linear learning-rate decay."""

import pytest

from ksparse.nn.schedule import k_schedule, linear_lr


def test_k_schedule_paper_example_100_to_15_over_first_half():
    ks = [k_schedule(e, 10, 15, k_start=100) for e in range(10)]
    assert ks == [100, 83, 66, 49, 32, 15, 15, 15, 15, 15]
    assert ks[0] == 100 and all(a > b for a, b in zip(ks[:5], ks[1:6], strict=True))


def test_k_schedule_k_start_capped_at_n_hidden():
    assert k_schedule(0, 10, 5, k_start=100, n_hidden=20) == 20
    assert k_schedule(9, 10, 5, k_start=100, n_hidden=20) == 5


def test_k_schedule_k_start_below_k_holds_k():
    assert [k_schedule(e, 4, 30, k_start=10) for e in range(4)] == [30] * 4


def test_k_schedule_fraction_zero_and_one():
    assert [k_schedule(e, 4, 10, k_start=50, fraction=0.0) for e in range(4)] == [10] * 4
    assert [k_schedule(e, 4, 10, k_start=50, fraction=1.0) for e in range(4)] == [50, 40, 30, 20]


def test_k_schedule_holds_past_the_run():
    assert k_schedule(25, 10, 15, k_start=100) == 15


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_k_schedule_bad_fraction_raises(fraction):
    with pytest.raises(ValueError, match="fraction"):
        k_schedule(0, 10, 5, fraction=fraction)


def test_linear_lr_constant_without_final():
    assert [linear_lr(e, 5, 0.1) for e in range(5)] == [0.1] * 5


def test_linear_lr_falls_linearly_to_final_and_holds():
    lrs = [linear_lr(e, 5, 1.0, 0.2) for e in range(7)]
    assert lrs[:5] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    assert lrs[5:] == pytest.approx([0.2, 0.2])


def test_linear_lr_single_epoch_uses_lr():
    assert linear_lr(0, 1, 0.3, 0.01) == 0.3
