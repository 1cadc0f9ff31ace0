"""Run every CPU benchmark and rewrite docs/benchmarks.md (about 20 minutes on 2 quiet cores).

    python -m benchmarks.run_all [--quick] [--threads 2] [--data-dir DIR] [--only step,compile]

Results go to docs/benchmarks.json; the page and docs/figures/bench_*.png are drawn from
it, with the GPU section that ``python -m benchmarks.gpu`` stored there, if any.
"""

import os
import time
import traceback

from benchmarks import common
from ksparse.io import atomic_write
from ksparse.plots import save_figure

FIGURES = os.path.join(common.ROOT, "docs", "figures")
PAGE = os.path.join(common.ROOT, "docs", "benchmarks.md")


def _method(case, prefix):
    return next((m for n, m in case["methods"].items() if n.startswith(prefix)), None)


# Issue 13's targets for the float32 step, as a multiple of one product of the same shape.
STEP_TARGETS = {(128, 1000): 1.8, (128, 4000): 1.5, (1024, 4000): 1.3}
FIT_TARGET, TORCH_TARGET = 1.1, 4.0


def _verdict(ok, busy):
    """'yes' or '**no**', qualified when the figure comes from a busy machine."""
    word = "yes" if ok else "**no**"
    return f"{word} (busy machine: not a verdict)" if busy else word


def step_targets(step):
    """Issue 13's targets against an epoch-block step run: [(target, measured, met)]."""
    from benchmarks.step import FIT, FIT_STEP, PASS, STEP

    out = []
    cases = {(c["threads"], c["N"], c["H"]): c for c in step["cases"]}
    for (t, N, H), c in sorted(cases.items()):
        m = c["methods"]
        limit = STEP_TARGETS.get((N, H))
        floor = 1 + m[PASS]["ms"] / m["one product x @ W"]["ms"]
        if limit:
            r = m[STEP]["ratio"]
            out.append((f"{t} thread(s), batch {N}, H={H}: step at most {limit}× one product (floor "
                        f"{floor:.2f}×)", f"{r:.2f}×", _verdict(r <= limit, c["busy"])))
        if "PyTorch TopK" in m:
            speed = m["PyTorch TopK"]["ms"] / m[STEP]["ms"]
            # the step this target asks for, as a multiple of one product, against the floor
            needed = m["PyTorch TopK"]["ratio"] / TORCH_TARGET
            below = " (below the floor)" if needed < floor else ""
            out.append((f"{t} thread(s), batch {N}, H={H}: at least {TORCH_TARGET:g}× PyTorch TopK's speed "
                        f"(a step of at most {needed:.2f}× one product{below}; floor {floor:.2f}×)",
                        f"{speed:.2f}×", _verdict(speed >= TORCH_TARGET, c["busy"])))
        if "own_steps_s" in m[FIT]:  # its own steps, clocked inside the fit (benchmarks/step.py)
            fit = m[FIT]["epoch_over_own_steps"]
            out.append((f"{t} thread(s), batch {N}, H={H}: fit epoch at most {FIT_TARGET}× the sum of its "
                        "steps (clocked inside the fit)", f"{fit:.2f}×",
                        _verdict(fit <= FIT_TARGET, c["busy"])))
        elif FIT_STEP in m:
            fit = m[FIT]["epoch_s"] / m[FIT_STEP]["epoch_s"]
            out.append((f"{t} thread(s), batch {N}, H={H}: fit epoch at most {FIT_TARGET}× the sum of its "
                        "steps", f"{fit:.2f}×", _verdict(fit <= FIT_TARGET, c["busy"])))
        one = cases.get((1, N, H))
        if t > 1 and one:
            gain = one["methods"][STEP]["ms"] / m[STEP]["ms"]
            out.append((f"batch {N}, H={H}: {t} threads not slower than 1", f"{gain:.2f}× faster",
                        _verdict(gain >= 1.0, c["busy"] or one["busy"])))
    return out


def _yes(ok):
    return "yes" if ok else "**no**"


def gpu_targets(gpu):
    """Issue 16's targets against a GPU run: [(target, measured, met)]."""
    out = []
    for c in gpu["step"]:
        r, t = c["methods"]["ksparse step"]["ratio"], c["methods"]["PyTorch CUDA TopK"]["ratio"]
        shape = f"batch {c['N']}, H={c['H']}, k={c['k']}"
        if (c["N"], c["H"]) == (4096, 16384):
            out.append((f"GPU step, {shape}: at most 2.5× one cuBLAS product", f"{r:.2f}×", _yes(r <= 2.5)))
        out.append((f"GPU step, {shape}: faster than PyTorch CUDA TopK", f"{t / r:.2f}× its speed",
                    _yes(t > r)))
    for c in gpu["topk"]:
        if c["H"] == 16384:
            sort = c["methods"]["full sort (argsort)"]["ratio"]
            out.append((f"GPU top-k, batch {c['N']}, H={c['H']}, k={c['k']}: faster than a full sort",
                        f"{sort:.1f}× faster", _yes(sort > 1)))
    train = gpu["train"]
    if "speedup_over_cpu" in train:
        out.append(("GPU training on MNIST: at least 50× the CPU's samples per second",
                    f"{train['speedup_over_cpu']:.1f}×", _yes(train["speedup_over_cpu"] >= 50)))
    return out


def targets(results):
    """The issues' targets, checked against the stored figures: [(target, figure, met)]."""
    out = step_targets(results["step"]) if results.get("step", {}).get("cases") else []
    if out and "threads" not in results["step"]["cases"][0]:
        out = []  # a step section from before the epoch benchmark
    c = results.get("compile")
    if c:
        figure = c["compile_cpu_s"] if c["busy"] else c["compile_wall_s"]
        out.append(("first run after an install: at most 3 s compiling",
                    f"{c['compile_wall_s']:.1f} s wall, {c['compile_cpu_s']:.1f} s CPU",
                    _yes(figure <= 3.0) + " (judged by the CPU time: busy machine)" * c["busy"]))
    lz = results.get("lazy")
    if lz and lz.get("cases"):
        for c in lz["cases"]:
            pays = c["lazy_over_plain"] < 1
            out.append((f"{c['threads']} thread(s), batch {c['N']}, H={c['H']}: lazy momentum used "
                        "automatically where it pays", f"lazy / plain {c['lazy_over_plain']:.2f}×, auto: "
                        + ("lazy" if c["auto_lazy"] else "plain"),
                        _verdict(c["auto_lazy"] == pays, c["busy"])))
    enc = results.get("encode")
    if enc:
        for c in enc["cases"]:
            r = c["methods"]["scikit-learn orthogonal_mp_gram"]["ratio"]
            out.append((f"encoding, H={c['H']}: at least 100× faster than scikit-learn OMP",
                        f"{r:.0f}×", _yes(r >= 100)))
    out += dictionary_targets(results.get("dictionary"))
    if results.get("gpu") and "train" in results["gpu"]:
        out += gpu_targets(results["gpu"])
    return out


def dictionary_targets(dct, baseline="scikit-learn MiniBatchDictionaryLearning"):
    """Issue 11: ksparse's test error (its own encoder) at or below MiniBatchDictionaryLearning's
    at every budget; and the same for ksparse's dictionary coded by OMP, as the baseline is. []
    for a section from before ksparse used its whole budget."""
    if not dct or "ksparse_runs" not in dct:
        return []
    out, theirs = [], dct["at_budget"][baseline]
    for name, what in (("ksparse", "ksparse's test MSE (its own encoder)"),
                       ("ksparse, least-squares coefficients",
                        "ksparse's test MSE (its encoder's support, least-squares coefficients, Eq. 3)"),
                       ("ksparse dictionary, OMP codes", "ksparse's dictionary with OMP codes")):
        if name not in dct["at_budget"]:  # a section from before that row existed
            continue
        mine = dct["at_budget"][name]
        figure = ", ".join(f"{float(b):.3g} s: {mine[b]:.4f} vs "
                           + ("—" if theirs[b] is None else f"{theirs[b]:.4f}") for b in mine)
        met = all(theirs[b] is None or mine[b] <= theirs[b] for b in mine)
        out.append((f"dictionary, equal time: {what} at or below MiniBatchDictionaryLearning's at every "
                    "budget", figure, _yes(met)))
    return out


def plot_steps(step, path):
    """Bars: each method's time per batch over one product, per case (epoch blocks, medians)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cases = step["cases"]
    names = [n for n in ("ksparse (numba)", "ksparse (NumPy/SciPy)", "dense masked step", "PyTorch TopK")
             if n in cases[0]["methods"]]
    labels = [f"{c['threads']} thr.\nN={c['N']}\nH={c['H']}" + ("\nbusy" if c["busy"] else "") for c in cases]
    fig, ax = plt.subplots(figsize=(max(6, 1.0 * len(cases) + 2), 4))
    width = 0.8 / len(names)
    for i, n in enumerate(names):
        ax.bar(np.arange(len(cases)) + i * width - 0.4 + width / 2,
               [c["methods"][n]["ratio"] for c in cases], width, label=n)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(cases)), labels, fontsize=7)
    ax.set_ylabel("time per batch / one product x @ W")
    ax.set_title(f"Training step incl. momentum update, epoch blocks, d=784, k={step['k']}, float32")
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def _machine(m):
    pools = "; ".join(f"{p['internal_api']} {p['version']} ({p['architecture']}, {p['num_threads']} threads, "
                      f"{p['filepath']})" for p in m["thread_pools"])
    versions = ", ".join(f"{n} {v}" for n, v in m["versions"].items() if v)
    return (f"- CPU: {m['cpu']}, {m['cores']} cores; {m['platform']}; Python {m['python']}\n"
            f"- Thread pools: {pools}\n- Versions: {versions}\n- Run: {m['date']}")


def _load(section):
    start = tuple(round(x, 2) for x in section["machine"]["loadavg"])
    end = tuple(round(x, 2) for x in section["loadavg_after"])
    return f"load average (1, 5, 15 min) at the start {start}, at the end {end}"


def _dictionary_notes(dct):
    """How each method of the dictionary section trains and codes the test set (Markdown bullets)."""
    if "ksparse_runs" not in dct:
        return []
    walls = ", ".join(f"{name} {s:.0f} s" for name, s in dct.get("wall_s", {}).items())
    return ["- ksparse: the library's defaults, one run per budget, each using its whole budget (the "
            "first epoch is timed, the k schedule spans the epochs expected to fit, epochs go on while "
            "another fits); test codes from its own encoder, the k largest of x W_enc + b_enc, decoded "
            "as (z W^T + b') s. \"least-squares coefficients\": the same support, its values refit by "
            "least squares (Eq. 3, `coefficients=\"least_squares\"`). \"OMP codes\": batch OMP with k "
            "atoms on the same unit-normed dictionary, coding x - s b'.",
            "- MiniBatchDictionaryLearning (`partial_fit`, batches of 256, evaluated every tenth of a "
            "pass) and K-SVD (one iteration per call): test codes by OMP with k atoms; one run each, "
            "scored at each budget by its best evaluation within it.",
            f"- wall time of each method's whole section, evaluations included: {walls}."]


def write_page(results, page=None, figures=None):
    """Rewrite docs/benchmarks.md (or ``page``) and the figures (in ``figures``) from the results."""
    from benchmarks import compile as compile_bench
    from benchmarks import dictionary, encode, gpu, lazy, step

    page, figures = page or PAGE, figures or FIGURES
    os.makedirs(figures, exist_ok=True)
    text = ["# Benchmarks", "",
            "Written by `python -m benchmarks.run_all` (CPU) and `python -m benchmarks.gpu` (GPU) from",
            "`docs/benchmarks.json`; every figure below comes from those scripts. Each ratio is the",
            "median over interleaved rounds of (method time / baseline time) within the same round,",
            "after warm-up. The CPU is shared: a load average above the core count means other",
            "processes competed for it, and the figures of such a run are distorted (multi-threaded",
            "BLAS and numba suffer most, so the product and the ksparse step slow down more than",
            "single-threaded peers). Rerun `python -m benchmarks.run_all` on a quiet machine to refresh.", ""]
    text += ["## How the step is computed", "",
             "`ksparse.kernels.fast.fast_train_step_` (the training default) does one BLAS product",
             "z = x W + b (D1); everything else touches only the k active columns of each sample. W",
             "is kept column-major, so the column W[:, j] of an active unit is one contiguous row of",
             "W^T. With numba (`ksparse.kernels._cpu`), a step has three phases, each split into one",
             "range per thread and run on the same threads: (0) the BLAS product of every sample",
             "with the range's units (BLAS on one thread in each: W is read once a step); (1) rows:",
             "per sample of the range the bias, an exact top-k",
             "(on order-preserving integer keys: a strided sample gives a threshold that a few more",
             "than k entries pass; bisection on counts among those finds the k-th largest; the same",
             "selection as the encoder's), the decode, the residual and dz on Gamma",
             "while those k rows of W^T are in cache (D2-D6); (2) units, after a counting sort of",
             "the support by unit: dW[:, j] and db_j accumulated in a buffer of d numbers and",
             "applied at once with Eq. (11), so W and its velocity are each read and written once",
             "(D7, D8, update); the units are cut into ranges of equal work. Velocities below the",
             "smallest normal float are stored as 0 (subnormal arithmetic is many times slower on some",
             "CPUs; docs/subnormal.md). Since BLAS runs on one",
             "thread inside each range, its own thread pool is never woken and never spins on the",
             "cores the other phases need. In float32 on two or more threads each phase is one",
             "OpenMP parallel region (`ksparse.kernels._gomp`: GNU libgomp's `GOMP_parallel` through",
             "ctypes, a compiled callback per thread calling numpy's own `cblas_sgemm`), so no",
             "Python thread is woken and no GIL is handed over; without libgomp, in float64 and in a",
             "forked child a Python thread pool runs the same kernels on the same ranges, with",
             "results equal bit for bit. Without numba a NumPy/SciPy path (CSR products)",
             "computes the same numbers. Tests hold both, and the split over threads, to",
             "`ksparse.nn.layers.ksparse_step` at rtol 1e-10 in float64. `fit` runs the same fused",
             "step with D9 (u = x - b'; W db summed while each column is updated) and resamples dead",
             "units from the step's own residual and the column norms the update leaves, with no",
             "second product. The encoder splits each block's product and top-k over the same",
             "threads in the same way.", ""]
    text += ["## Targets", ""]
    text += [common.table(["target", "measured", "met"], targets(results)), ""]
    s = results.get("step")
    if s and s.get("cases") and "threads" in s["cases"][0]:
        plot_steps(s, os.path.join(figures, "bench_step.png"))
        text += ["## Training step over whole epochs (CPU)", "", _machine(s["machine"]),
                 f"- load average (1, 5, 15 min) at the start {tuple(s['machine']['loadavg'])}, "
                 f"at the end {tuple(s['loadavg_after'])}; {s['seconds']:.0f} s in all",
                 f"- {s['images']} MNIST training images per epoch, float32, d = {s['d']}, k = {s['k']}, "
                 f"lr = {s['lr']}, momentum = {s['momentum']}, {s['rounds']} rounds; 1 and "
                 f"{max(c['threads'] for c in s['cases'])} threads in every pool (threadpoolctl for both "
                 "OpenBLAS copies, numba, torch); every step includes the momentum update.", "",
                 step.report(s), "", "![step ratios](figures/bench_step.png)", ""]
    lz = results.get("lazy")
    if lz and lz.get("cases"):
        text += ["## Lazy momentum (CPU)", "", _machine(lz["machine"]), f"- {_load(lz)}",
                 "- Command: `python -m benchmarks.lazy` (or `python -m benchmarks.run_all --only lazy`).",
                 "", lazy.report(lz), ""]
    c = results.get("compile")
    if c:
        text += ["## Compile time (CPU)", "", _machine(c["machine"]), "", compile_bench.report(c), ""]
    e = results.get("encode")
    if e:
        text += ["## Encoding (CPU)", "", _machine(e["machine"]), f"- {_load(e)}",
                 f"- MNIST dictionaries learned by ksparse on {e['n_train']} training images; "
                 f"k = {e['k']}; {e['threads']} threads.", "", encode.report(e), ""]
    dct = results.get("dictionary")
    if dct:
        dictionary.plot(dct, os.path.join(figures, "bench_dictionary.png"))
        text += ["## Dictionary learning (CPU)", "", _machine(dct["machine"]), f"- {_load(dct)}",
                 f"- {dct['n_train']} MNIST training images, H = {dct['H']}, k = {dct['k']}, "
                 f"budgets of up to {dct['budget_s']:g} s of training per method on "
                 f"{dct.get('threads')} thread(s), measured by the "
                 + ("process's CPU time (on one thread, the wall time on an idle core; evaluations "
                    "off the clock)" if dct.get("clock") == "cpu" else "wall clock")
                 + f"; test MSE per pixel ([0, 1] pixels) on {dct['n_eval']} test images, every code "
                 f"with k = {dct['k']} non-zeros.", *_dictionary_notes(dct), "",
                 dictionary.report(dct), "", "![error against time](figures/bench_dictionary.png)", ""]
    if results.get("failed"):
        text += ["## Sections that failed in the last run", "",
                 "Their figures above, if any, come from an earlier run (see each section's date):", ""]
        text += [f"- {name}: `{error}`" for name, error in results["failed"].items()] + [""]
    from ksparse.kernels._cpu import PARALLEL_WORK

    text += ["## Notes and limits", "",
             "- On a busy machine a two-thread BLAS product of batch 128 takes many times its idle",
             "  time (its threads poll for work and wait for each other), while the ksparse step,",
             "  which calls BLAS on one thread per range, suffers much less: ratios to the product",
             "  from a busy machine understate the step and are marked as such above.",
             f"- A step runs in the calling thread when its product has fewer than "
             f"2^{PARALLEL_WORK.bit_length() - 1} multiply-adds",
             "  (`ksparse.kernels._cpu.PARALLEL_WORK`): handing a range to another thread costs tens",
             "  of microseconds.",
             "- The floor column is one product plus one pass over W and its velocity, each in its own",
             "  block. Lazy momentum for the units outside a batch's support (v <- m^s v and",
             "  W <- W + v (m + ... + m^s) after s idle steps, `ksparse.kernels.lazy`) skips that pass",
             "  for idle units but needs their current W in the next product D1: it computes",
             "  x W + (x V) diag(m + ... + m^s), a second product in place of the pass. Where that pays",
             "  is measured in the section 'Lazy momentum' above (when `python -m benchmarks.lazy` has run).",
             "- OMP is timed on a subset of the test images (it takes milliseconds per image); ratios",
             "  are per image. scikit-learn's `orthogonal_mp_gram` copies the Gram matrix for every",
             "  signal, which dominates at H = 4000.",
             "- Dictionary learning uses H = 256 so that the reference K-SVD finishes iterations within",
             "  the budget; ksparse trains with its library defaults there (only H and k set).",
             "- The CUDA kernels (`ksparse.kernels._cupy`) compile with NVRTC for float32 and float64",
             "  but have not run on a GPU yet; the GPU tests and `python -m benchmarks.gpu` check them.",
             ""]
    text += ["## GPU", ""]
    if results.get("gpu"):
        g = results["gpu"]
        text += [_machine(g["machine"]), f"- took {g['seconds']:.0f} s", "", gpu.report(g), ""]
    else:
        text += ["Not measured yet: no GPU was available. `python -m benchmarks.gpu` on a CUDA machine",
                 "runs every GPU check and benchmark in one go and fills this section.", ""]
    atomic_write(page, lambda f: f.write("\n".join(text).encode()))
    return page


def main(argv=None):
    args = common.parse_args(__doc__, argv)
    from benchmarks import compile as compile_bench
    from benchmarks import dictionary, encode, lazy, step

    t0 = time.perf_counter()
    results = common.load_results()
    results.pop("step_1thread", None)  # folded into "step" (1 and 2 threads)
    runs = (("compile", lambda quick, threads: compile_bench.run(), {}),
            ("step", step.run, {"data_dir": args.data_dir}),
            ("lazy", lazy.run, {"data_dir": args.data_dir}),
            ("encode", encode.run, {"data_dir": args.data_dir}),
            ("dictionary", dictionary.run, {"data_dir": args.data_dir}))
    only = set(args.only.split(",")) if args.only else {name for name, _, _ in runs}
    failed = {}
    for name, run, kwargs in (r for r in runs if r[0] in only):
        t = time.perf_counter()
        try:
            results[name] = run(args.quick, args.threads, **kwargs)
        except Exception as e:  # one broken section must not cost the others: say so, keep going
            traceback.print_exc()
            failed[name] = f"{type(e).__name__}: {e}"
            continue
        results[name]["seconds"] = time.perf_counter() - t
        print(f"{name}: {results[name]['seconds']:.0f} s", flush=True)
        if not args.no_save:
            common.save_results(name, results[name], drop=("step_1thread",))
    results["failed"] = failed
    if not args.no_save:
        common.save_results("failed", failed)
        print("wrote", write_page(results))
    print(f"total {time.perf_counter() - t0:.0f} s")
    return results


if __name__ == "__main__":
    main()
