"""Smoke tests of the benchmark scripts' pieces (no timing is asserted)."""

import json

import numpy as np
import pytest

from benchmarks import common, run_all, step
from ksparse.kernels import fast


def test_ratios_are_per_round_medians():
    times = {"base": np.array([1.0, 2.0, 4.0]), "other": np.array([2.0, 4.0, 8.0])}
    res = common.ratios(times, "base")
    assert res["other"]["ratio"] == pytest.approx(2.0)
    assert res["base"]["ratio"] == pytest.approx(1.0)
    assert res["other"]["ms"] == pytest.approx(4000.0)


def test_others_share_is_a_fraction_of_the_machine():
    before = common.cpu_snapshot()
    sum(i * i for i in range(200000))  # this process's own work is not counted as others'
    share = common.others_share(before, common.cpu_snapshot())
    assert 0.0 <= share <= 1.0
    fake = common.others_share((10.0, 1.0, 0.0), (12.0, 2.0, 1.0))  # 2 s busy, 1 s ours, 1 s wall
    assert fake == pytest.approx(min(1.0, 1.0 / (common.os.cpu_count() or 1)))


def test_epoch_batches_cover_the_data_once():
    X = np.arange(50, dtype=np.float32).reshape(25, 2)
    batches = step.batches_of(X, 8)
    assert [len(b) for b in batches] == [8, 8, 8, 1]
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)[:, 0]), X[:, 0])


@pytest.mark.skipif(not fast.has_numba(), reason="the epoch benchmark times the numba kernels")
def test_epoch_case_runs_every_method_and_reports(monkeypatch, one_blas_thread):
    monkeypatch.setattr(step, "D", 12)
    X = np.random.default_rng(0).random((40, 12)).astype(np.float32)
    case = step.run_case(X, 16, 30, threads=1, rounds=2, with_torch=False)
    assert set(case["methods"]) >= {step.PRODUCT, step.PASS, step.STEP, step.CLOCKED, step.FIT, step.FIT_STEP}
    assert all(m["rounds"] == 2 and m["ms"] > 0 for m in case["methods"].values())
    fit = case["methods"][step.FIT]
    assert fit["fit_s"] > fit["epoch_s"] > 0 and fit["first_epoch_s"] > 0
    assert fit["epoch_s"] > fit["own_steps_s"] > 0  # its steps, clocked inside the epoch
    assert set(case["phases_ms"]) == set(step.PHASES) and all(v > 0 for v in case["phases_ms"].values())
    results = {"cases": [case, dict(case, threads=2, busy=True)], "busy_share": 0.1, "k": step.K}
    text = step.report(results)
    assert "**busy**" in text and "epoch / its steps" in text and "epoch / block's steps" in text
    rows = run_all.step_targets(json.loads(json.dumps(results)))
    assert any("not slower than 1" in t for t, _, _ in rows)
    assert all(ok.endswith("(busy machine: not a verdict)") for t, _, ok in rows if t.startswith("2 "))


def test_step_targets_compare_with_the_issue():
    def case(threads, ms_step, busy=False):
        methods = {step.PRODUCT: {"ms": 1.0, "ratio": 1.0}, step.PASS: {"ms": 0.1},
                   step.STEP: {"ms": ms_step, "ratio": ms_step, "epoch_s": ms_step},
                   step.FIT: {"epoch_s": 1.05 * ms_step}, step.FIT_STEP: {"epoch_s": ms_step},
                   "PyTorch TopK": {"ms": 8.0, "ratio": 8.0}}
        return {"threads": threads, "N": 128, "H": 1000, "methods": methods, "busy": busy}

    rows = run_all.step_targets({"cases": [case(1, 1.7), case(2, 1.9)]})
    assert ("1 thread(s), batch 128, H=1000: step at most 1.8× one product (floor 1.10×)", "1.70×",
            "yes") in rows
    assert ("2 thread(s), batch 128, H=1000: step at most 1.8× one product (floor 1.10×)", "1.90×",
            "**no**") in rows
    assert ("batch 128, H=1000: 2 threads not slower than 1", "0.89× faster", "**no**") in rows
    # the target as the step it asks for (PyTorch's 8x a product / 4), against the floor
    assert ("1 thread(s), batch 128, H=1000: at least 4× PyTorch TopK's speed (a step of at most 2.00× one "
            "product; floor 1.10×)", "4.71×", "yes") in rows
    slow = case(1, 1.7)
    slow["methods"]["PyTorch TopK"] = {"ms": 4.0, "ratio": 4.0}
    below = run_all.step_targets({"cases": [slow]})
    assert ("1 thread(s), batch 128, H=1000: at least 4× PyTorch TopK's speed (a step of at most 1.00× one "
            "product (below the floor); floor 1.10×)", "2.35×", "**no**") in below
    assert ("1 thread(s), batch 128, H=1000: fit epoch at most 1.1× the sum of its steps", "1.05×",
            "yes") in rows
    own = case(2, 1.9)
    own["methods"][step.FIT].update(own_steps_s=1.0, epoch_over_own_steps=1.12)
    assert ("2 thread(s), batch 128, H=1000: fit epoch at most 1.1× the sum of its steps (clocked inside the "
            "fit)", "1.12×", "**no**") in run_all.step_targets({"cases": [own]})


def test_page_is_written_from_the_results(tmp_path, monkeypatch, one_blas_thread):
    monkeypatch.setattr(run_all, "PAGE", str(tmp_path / "benchmarks.md"))
    monkeypatch.setattr(run_all, "FIGURES", str(tmp_path / "figures"))
    monkeypatch.setattr(step, "D", 12)
    X = np.random.default_rng(1).random((32, 12)).astype(np.float32)
    case = step.run_case(X, 16, 30, threads=1, rounds=1, with_torch=False)
    results = {"step": {"machine": common.machine(), "images": 32, "d": 12, "k": step.K, "lr": step.LR,
                        "momentum": step.MOMENTUM, "rounds": 1, "busy_share": 0.1, "cases": [case],
                        "loadavg_after": common.loadavg(), "seconds": 1.0}}
    page = open(run_all.write_page(results)).read()
    assert "## Training step over whole epochs (CPU)" in page and "epoch / its steps" in page
    assert (tmp_path / "figures" / "bench_step.png").exists()


def test_gpu_benchmark_dry_run_takes_every_path_on_the_cpu(one_blas_thread):
    # --dry-run: fake MNIST files, the CPU reference, every section on NumPy and torch CPU,
    # the targets and the page, all in a temporary folder (docs/ stays untouched)
    pytest.importorskip("torch")
    from benchmarks import gpu

    before = open(run_all.PAGE).read() if common.os.path.exists(run_all.PAGE) else None
    results = gpu.main(["--dry-run"])
    assert results["tests"]["returncode"] == 0
    assert all(p["ok"] for p in results["parity_float64"])
    for section in ("step", "topk"):
        assert results[section] and all(m["ms"] > 0 for c in results[section] for m in c["methods"].values())
    assert results["train"]["epochs"] >= 1 and results["train"]["max_rel_loss_diff"] < 1e-5
    assert set(results["dictionary"]["at_budget"]) >= {"ksparse (CPU, dry run)"}
    rows = run_all.gpu_targets(results)
    assert any("faster than PyTorch CUDA TopK" in t for t, _, _ in rows)
    assert "Card: **CPU, dry run**" in gpu.report(results)
    assert (open(run_all.PAGE).read() if before is not None else None) == before


def test_compile_target_reads_cpu_seconds_on_a_busy_machine():
    from benchmarks import compile as compile_bench

    fake = {"cold": {"wall": 20.0, "cpu": 3.4}, "warm": {"wall": 18.0, "cpu": 1.0}, "compile_wall_s": 2.0,
            "compile_cpu_s": 2.4, "busy": True}
    rows = run_all.targets({"compile": fake})
    assert rows == [("first run after an install: at most 3 s compiling", "2.0 s wall, 2.4 s CPU",
                     "yes (judged by the CPU time: busy machine)")]
    assert run_all.targets({"compile": dict(fake, busy=False, compile_wall_s=3.5)})[0][2] == "**no**"
    assert "2.4 s of CPU" in compile_bench.report(fake)


def test_run_all_reports_a_failing_section_and_goes_on(monkeypatch):
    from benchmarks import compile as compile_bench

    def broken():
        raise ValueError("this section is broken")

    monkeypatch.setattr(compile_bench, "run", broken)
    results = run_all.main(["--only", "compile", "--no-save"])
    assert results["failed"] == {"compile": "ValueError: this section is broken"}


def _clock(epoch_s):
    """A fake clock for :func:`benchmarks.dictionary.spend`, read twice per epoch (start, end):
    each epoch takes ``epoch_s`` seconds, and nothing is timed."""
    calls = iter(range(10**6))
    return lambda: epoch_s * ((next(calls) + 1) // 2)


def test_spend_runs_epochs_while_another_fits_in_the_budget():
    from benchmarks.dictionary import spend

    seen = []
    assert spend(lambda: None, 7.0, _clock(2.0), after=seen.append) == (3, 6.0)  # a 4th would end at 8
    assert seen == [2.0, 4.0, 6.0]
    assert spend(lambda: None, 1.0, _clock(2.0)) == (1, 2.0)  # the first epoch always runs


def test_ksparse_budget_run_spans_its_schedule_over_the_budget():
    from benchmarks.dictionary import ksparse_budget_run

    X = np.random.default_rng(0).random((200, 16)).astype(np.float32)
    state, epochs, seconds = ksparse_budget_run(X, 9.0, {"n_hidden": 20, "k": 3}, clock=_clock(2.0))
    assert (epochs, seconds, state.epoch, state.schedule_length) == (4, 8.0, 4, 4)
    assert state.history[0]["k"] == 20 and state.history[-1]["k"] == 3  # k_start (capped at H) to k
    longer, epochs, _ = ksparse_budget_run(X, 9.0, {"n_hidden": 20, "k": 3, "k_start": 10}, clock=_clock(4.0))
    assert (epochs, longer.schedule_length) == (2, 2) and [h["k"] for h in longer.history] == [10, 3]


def test_dictionary_target_needs_ksparse_at_or_below_the_baseline_at_every_budget():
    base = "scikit-learn MiniBatchDictionaryLearning"
    dct = {"ksparse_runs": [], "at_budget": {"ksparse": {"4": 0.011, "40": 0.0085},
                                             "ksparse dictionary, OMP codes": {"4": 0.0084, "40": 0.0087},
                                             base: {"4": None, "40": 0.0086}}}
    [(what, figure, met), (_, omp, omp_met)] = run_all.dictionary_targets(dct)
    assert figure == "4 s: 0.0110 vs —, 40 s: 0.0085 vs 0.0086" and met == "yes" and "own encoder" in what
    assert omp == "4 s: 0.0084 vs —, 40 s: 0.0087 vs 0.0086" and omp_met == "**no**"
    dct["at_budget"][base]["4"] = 0.0099
    assert run_all.dictionary_targets(dct)[0][2] == "**no**"
    assert run_all.dictionary_targets({"at_budget": {}}) == []  # a section from the fixed-epoch protocol


def test_fig3_variants_are_valid_configs_and_the_report_says_which_diverged():
    from benchmarks import fig3_variants as fv
    from ksparse.reproduce._common import QUICK, autoencoder_config

    for _, changes, _ in fv.VARIANTS.values():
        changes = fv.resolve(changes, 8.4)
        autoencoder_config(QUICK, 50, changes.pop("max_iter", 20), 0, **changes)
    assert fv.resolve({"lr": "s2", "bias_lr_ratio": "1/s2"}, 10.0) == {"lr": 1.0, "bias_lr_ratio": 0.01}
    ok = {"what": "w", "history": [{"fvu": 0.12, "dead_fraction": 0.0, "resampled": 3}],
          "seconds": {"wall": 90.0, "cpu": 40.0}, "n_used_filters": 1000,
          "fraction_below_1st_percentile_of_random_spread": 0.845,
          "fraction_above_99th_percentile_of_random_selectivity": 0.68}
    bad = {"what": "v", "history": [{"resampled": 2706}] * 3, "diverged": "nan"}
    table = fv.report({"variants": {"old": ok, "defaults": bad}})  # words: VARIANTS', else the record's
    assert "| old | w | 1 | 0.1200 | 0.000 | 3 | 90 s (40 s) | 1000 | 84.5% / 68.0% |" in table
    assert f"| defaults | {fv.VARIANTS['defaults'][0]} | diverged in epoch 4 |" in table


def test_lazy_benchmark_case_and_its_targets(monkeypatch, one_blas_thread):
    from benchmarks import lazy

    monkeypatch.setattr(lazy, "STEPS", 3)
    X = np.random.default_rng(2).random((40, step.D)).astype(np.float32)
    case = lazy.run_case(X, 4, 300, threads=1, rounds=1)
    assert set(case["methods"]) == {lazy.PLAIN, lazy.LAZY, lazy.PRODUCT}
    assert case["lazy_over_plain"] > 0 and case["auto_lazy"] == lazy.lazy.lazy_pays(4, 300, step.K)
    results = {"cases": [case], "steps": 3, "d": step.D, "k": step.K, "rounds": 1, "max_batch": 0,
               "max_support": 0.1}
    assert "lazy / plain" in lazy.report(results)
    assert case["finite"] and case["lr"] == lazy.batch_lr(4) == step.LR * 4 / 128
    assert "diverged" in lazy.report(dict(results, cases=[dict(case, finite=False)]))
    rows = run_all.targets({"lazy": results})
    assert len(rows) == 1 and "lazy momentum used automatically" in rows[0][0]


def test_bias_rate_runs_a_ratio_and_reports_divergence(one_blas_thread):
    from benchmarks import bias_rate
    from ksparse.datasets import load_dataset

    X = load_dataset("digits").X_train[:300]
    record = bias_rate.run(X, {"max_iter": 2, "n_hidden": 50, "k": 5}, None, 0.1)
    assert record["ratio"] == 0.1 and record["epochs"] == 2 and np.isfinite(record["fvu"])
    text = bias_rate.report({"data": {"digits": [record, {"ratio": 1.0, "diverged": "nan", "epochs": 3}]}})
    assert "diverged in epoch 4" in text and f"{record['fvu']:.4f}" in text


def test_fig3_trace_curvature_of_b_prime_is_2_without_columns_and_grows_with_parallel_ones():
    # D4's Hessian in b' is 2 (I - W_G W_G^T)^2 under D9: 2 with W = 0, 2 (1 - mu)^2 for parallel columns
    from benchmarks.fig3_trace import curvature

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6))
    p = {"W": np.zeros((6, 8)), "b": np.zeros(8), "b_prime": np.zeros(6)}
    assert curvature(x, p, 3, "b_prime") == pytest.approx(2.0, rel=1e-6)
    e = np.eye(6)[0]
    p = {"W": np.tile(e[:, None], (1, 8)), "b": np.ones(8), "b_prime": np.zeros(6)}  # all active: mu = 8
    assert curvature(x, p, 8, "b_prime") == pytest.approx(2 * (1 - 8) ** 2, rel=1e-6)


def test_save_part_writes_the_json_and_its_page_after_each_part(tmp_path):
    path, res = str(tmp_path / "x.json"), {}
    page = lambda r: "parts: " + ",".join(sorted(r))  # noqa: E731
    common.save_part(path, res, "a", {"v": np.float32(0.5)}, "python -m benchmarks.x", 1, page)
    common.save_part(path, res, "b", {"v": 2}, "python -m benchmarks.x", 2, page)
    data = json.load(open(path))
    assert data["a"]["v"] == 0.5 and data["b"]["threads"] == 2
    assert data["a"]["command"] == "python -m benchmarks.x"
    assert (tmp_path / "x.md").read_text() == "parts: a,b"


def test_fig3_variants_by_activity_splits_every_unit_into_one_band():
    from benchmarks import fig3_variants as fv

    rng = np.random.default_rng(0)
    W = rng.normal(size=(64, 40))
    W[:, 0] = 0.0
    W[27, 0] = 1.0  # one pixel: localised
    Z = rng.normal(size=(500, 40)) + np.linspace(0, 3, 40)  # later units win more often
    bands = fv.by_activity(W, (8, 8), Z, k=5)
    assert sum(b["units"] for b in bands) == 40 and bands[0]["band"][0] < bands[-1]["band"][0]
    assert all(0 <= b["localised"] <= 1 and 0 <= b["oriented"] <= 1 for b in bands)
    page = fv.activity_table({"variants": {"v": {"by_activity": bands}}})
    assert "in Gamma on [0, 0.02) of the patches" in page
