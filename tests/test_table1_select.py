"""Table 1's classifier protocol (``ksparse.reproduce.table1.select``): the choice is made on the
validation split alone, over a grid that grows past the edge where the best pair sits."""

import numpy as np
import pytest

from ksparse.reproduce import _common
from ksparse.reproduce import table1 as t1

PROF = dict(_common.PROFILES["quick"])  # the protocol of quick, long, budget and paper


def test_grow_extends_a_half_decade_C_grid_and_repeats_the_alpha_step():
    assert t1.grow([1.0, 3.0, 10.0, 30.0, 100.0], True, True) == 300.0
    assert t1.grow([1.0, 3.0, 10.0, 30.0, 100.0, 300.0], True, True) == 1000.0
    assert t1.grow([1.0, 3.0, 10.0], False, True) == pytest.approx(0.3)
    assert t1.grow([1.0, 10.0], True, True) == 100.0  # one value per decade: the ratio repeated
    assert t1.grow([1, 2, 3, 4, 5, 6, 8], True, False) == 10
    assert t1.grow([2, 3], False, False) == 1


def test_every_profile_but_smoke_fits_the_classifier_the_same_way():
    for name, prof in _common.PROFILES.items():
        if name != "smoke":
            assert {n: prof[n] for n in _common.CLASSIFIER} == _common.CLASSIFIER, name
    assert PROF["select_n"] is None and PROF["logreg_max_iter"] == 1000


def _fake(monkeypatch, val, test):
    """Features that carry alpha; a logreg whose errors are val(alpha, C) and test(alpha, C)."""
    calls = []

    def logreg(F_train, y, evals, C, max_iter, seed=0, sparse=False):
        alpha = float(F_train[0, 0])
        calls.append((alpha, C, len(F_train)))
        errors = [val(alpha, C), test(alpha, C)][:len(evals)]
        return errors, {"wall": 0.0, "cpu": 0.0, "n_iter": 1, "converged": True}

    monkeypatch.setattr(_common, "logreg", logreg)
    feats = lambda Z, alpha=1: np.full((len(Z), 2), 1.0 if alpha is None else alpha)  # noqa: E731
    split = (np.zeros((20, 3)), np.arange(20) % 2)
    return feats, split, calls


def test_select_chooses_by_validation_never_by_test(monkeypatch):
    # validation prefers alpha 3, C 10; test would prefer alpha 5, C 1
    feats, split, calls = _fake(monkeypatch, lambda a, C: abs(a - 3) + abs(np.log10(C) - 1),
                                lambda a, C: abs(a - 5) + abs(np.log10(C)))
    trials, full = t1.select("k25", feats, PROF, split, [split, split], 0)
    assert (full[0]["alpha"], full[0]["C"]) == (3, 10.0) and not full[0]["grid"]["at_edge"]
    assert len(trials) == len(PROF["alphas"]) * len(PROF["logreg_Cs"])  # interior: the grid did not grow
    assert all(n == len(split[0]) for _, _, n in calls)  # every fit on all training samples
    assert len(calls) == len(trials)  # the whole-split choice is not refit


def test_select_ties_go_to_the_first_pair_in_grid_order(monkeypatch):
    feats, split, _ = _fake(monkeypatch, lambda a, C: 0.0 if a in (3, 4) and C in (3.0, 10.0) else 1.0,
                            lambda a, C: 0.5)
    _, full = t1.select("k25d", feats, PROF, split, [split], 0)
    assert (full[0]["alpha"], full[0]["C"]) == (3, 3.0) and full[0]["test_error"] is None


def test_select_grows_the_C_grid_past_its_edge_until_the_best_is_inside(monkeypatch):
    feats, split, _ = _fake(monkeypatch, lambda a, C: abs(a - 3) + abs(np.log10(C) - np.log10(300)),
                            lambda a, C: 0.5)
    trials, full = t1.select("k25c", feats, PROF, split, [split], 0)
    assert full[0]["C"] == 300.0 and full[0]["grid"]["Cs"][-2:] == [300.0, 1000.0]
    assert not full[0]["grid"]["at_edge"]
    assert len(trials) == len(PROF["alphas"]) * (len(PROF["logreg_Cs"]) + 2)


def test_select_grows_at_most_grid_steps_and_says_the_choice_is_at_the_edge(monkeypatch):
    feats, split, _ = _fake(monkeypatch, lambda a, C: abs(a - 3) - np.log10(C), lambda a, C: 0.5)
    _, full = t1.select("k25", feats, PROF, split, [split], 0)
    grid = full[0]["grid"]
    assert len(grid["Cs"]) == len(PROF["logreg_Cs"]) + PROF["grid_steps"]
    assert full[0]["C"] == grid["Cs"][-1] == 3000.0 and grid["at_edge"]


def test_select_grows_alpha_but_never_past_n_hidden_over_k(monkeypatch):
    feats, split, _ = _fake(monkeypatch, lambda a, C: -a + abs(np.log10(C) - 1), lambda a, C: 0.5)
    prof = dict(PROF, grid_steps=50)
    _, full = t1.select("k25", feats, prof, split, [split], 0)
    assert full[0]["alpha"] == max(full[0]["grid"]["alphas"]) == 40  # 40 k = 1000 = n_hidden
    _, full = t1.select("k25", feats, PROF, split, [split], 0)
    assert full[0]["grid"]["alphas"][-3:] == [10, 12, 14]  # grid_steps = 3 past 8
    # alpha 1 is the grid's floor: a best alpha of 1 does not grow the grid downwards
    feats, split, _ = _fake(monkeypatch, lambda a, C: a + abs(np.log10(C) - 1), lambda a, C: 0.5)
    _, full = t1.select("k25", feats, PROF, split, [split], 0)
    assert full[0]["alpha"] == 1 and full[0]["grid"]["alphas"][0] == 1


def test_select_on_a_subset_refits_the_choice_and_alpha_3_on_all_samples(monkeypatch):
    # the fit sees C_fit = C len(train) / select_n = 4 C: the best fit, C_fit = 40, is C = 10
    feats, split, calls = _fake(monkeypatch, lambda a, C: abs(a - 2) + abs(np.log10(C) - np.log10(40)),
                                lambda a, C: 0.5)
    _, full = t1.select("k25", feats, dict(PROF, select_n=5), split, [split], 0)
    assert [(f["alpha"], f["C"], f["n_fit"]) for f in full] == [(2, 10.0, 20), (3, 10.0, 20)]
    assert {n for _, _, n in calls[:-2]} == {5}
    assert [c for _, c, _ in calls[-2:]] == [10.0, 10.0]  # the refits at C itself


def test_logreg_reports_whether_lbfgs_converged():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = (X[:, 0] + 0.3 * rng.standard_normal(200) > 0).astype(int)
    errors, info = _common.logreg(X, y, [(X, y)], 1.0, 1000)
    assert info["converged"] and info["n_iter"] < 1000 and errors[0] < 0.2
    with _no_warning():
        _, info = _common.logreg(X, y, [(X, y)], 1.0, 1)
    assert not info["converged"] and info["n_iter"] == 1


class _no_warning:
    """The ConvergenceWarning is recorded in the result, not shown."""

    def __enter__(self):
        import warnings

        self.ctx = warnings.catch_warnings(record=True)
        self.caught = self.ctx.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self.ctx.__exit__(*exc)
        assert not self.caught


def test_the_former_protocol_of_the_benchmark_sweeps_alpha_at_C_10_then_C(monkeypatch):
    from benchmarks import table1_classifier as bench

    # validation: alpha 2 is best at C = 10, C = 100 at alpha 2; the joint grid would choose (4, 0.1)
    def val(a, C):
        return 0.0 if (a, C) == (4, 0.1) else abs(a - 2) + abs(np.log10(C) - 2) / 10

    feats, split, calls = _fake(monkeypatch, val, lambda a, C: 0.5)
    quick = bench.BEFORE["before, quick (10,000 images, 200 iterations)"]
    _, record = bench.coordinate("k25", feats, quick, split, [split, split], 0)
    assert (record["alpha"], record["C"], record["n_fit"]) == (2, 100.0, 20)
    assert [a for a, C, _ in calls[:4]] == [1, 2, 3, 4] and {C for _, C, _ in calls[:4]} == {10.0}
    assert record["n_fits"] == 4 + 3 + 1 and record["converged"]
