"""Dictionary learning: ksparse training against scikit-learn and K-SVD at equal wall time.

    python -m benchmarks.dictionary [--quick] [--threads 1]

writes the ``dictionary`` section of docs/benchmarks.json and rewrites docs/benchmarks.md.

On 10,000 MNIST training images, each method learns H = 256 atoms for a budget of wall time,
and is scored by the MSE per pixel, in the data's units ([0, 1] pixels), of the first 1,000
MNIST test images coded with k = 25 non-zeros:

- ksparse: :func:`ksparse.training.loop.fit` with the library's defaults (only H and k set),
  one run per budget (B/10, B/3 and B), each using its whole budget: the first epoch is timed,
  the schedules span the epochs expected to fit, and epochs go on while another fits
  (:func:`ksparse_budget_run`). Test codes by its own encoder, the k largest of
  x W_enc + b_enc, decoded as (z_k W^T + b') s; as a second row, the same support with the
  values of Eq. 3 (``coefficients="least_squares"``: the least-squares fit of x - s b' by those
  k atoms); as a third, batch OMP with k atoms on the same (unit-normed) dictionary, coding
  x - s b';
- scikit-learn ``MiniBatchDictionaryLearning``: ``partial_fit`` over minibatches, codes by
  OMP with k non-zeros (``transform_algorithm="omp"``);
- ``reference.ksvd.ksvd``: approximate K-SVD (Rubinstein et al. 2008), one iteration per
  call, codes by batch OMP with k non-zeros.

The two baselines have no schedule, so one run each, evaluated at geometrically spaced
times (after an iteration, off the clock), gives their error at every budget: the best
evaluation within it. Evaluations never count as training time.
"""

import os
import time

import numpy as np

from benchmarks import common
from benchmarks.encode import mnist
from ksparse.plots import save_figure

H, K = 256, 25
LSQ = "ksparse, least-squares coefficients"  # the row of coefficients="least_squares" (Eq. 3)


# The clock of every budget: the process's CPU time. With one thread in every pool it is the
# wall time the run would take on an idle core, and it does not count the time other
# processes of a shared machine take from this one (the wall time is recorded beside it).
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def _clocked(train_once, evaluate, budget_s, growth=1.25, clock=time.process_time):
    """Call ``train_once`` until ``budget_s`` of training time or until it returns False;
    evaluate at geometrically spaced times, off the clock.

    Returns ([(seconds, error or tuple of errors)], number of training calls).
    """
    curve, spent, next_eval, calls = [], 0.0, 0.0, 0
    while spent < budget_s:
        t0 = clock()
        more = train_once()
        spent += clock() - t0
        calls += 1
        if spent >= next_eval or more is False or spent >= budget_s:
            curve.append((spent, evaluate()))
            next_eval = spent * growth
        if more is False:
            break
    return curve, calls


def spend(run_epoch, budget_s, clock=time.process_time, after=None):
    """Call ``run_epoch()`` while one more epoch, as long as the last one took, fits in ``budget_s``.

    The first epoch always runs. ``after(seconds spent)`` is called after each epoch, off
    the clock (for evaluations). Returns (epochs run, seconds spent); ``clock`` is injectable
    so that a test can drive the loop without timing anything.
    """
    spent, last, epochs = 0.0, 0.0, 0
    while epochs == 0 or spent + last <= budget_s:
        t0 = clock()
        run_epoch()
        last = clock() - t0
        spent += last
        epochs += 1
        if after is not None:
            after(spent)
    return epochs, spent


def ksparse_budget_run(X, budget_s, config=None, device="cpu", clock=time.process_time, after=None):
    """Train ksparse with its defaults for ``budget_s`` seconds: as many epochs as the budget holds.

    Its first epoch does not depend on the run's length (k = k_start, the starting lr), so it
    is run first and timed; the schedules (k falling over half the run, Sec. 4.2.1) then span
    the ``budget_s / first epoch`` epochs expected to fit, and epochs go on, at the final k
    once past them, while another fits (:func:`spend`).

    Returns
    -------
    state : TrainState
    epochs : int
    seconds : float
        Training time spent, at most ``budget_s`` unless the first epoch alone took longer.
    """
    from ksparse.training.loop import fit

    config = dict({"n_hidden": H, "k": K}, **(config or {}))  # the defaults otherwise
    box = {"state": None}

    def run_epoch():
        if box["state"] is None:  # the run's length is unknown yet: long enough that epoch 0 is k_start's
            box["state"] = fit(X, dict(config, max_iter=10**6), epochs=1, device=device)
        else:
            state = box["state"]
            box["state"] = fit(X, None, state=state, epochs=1, device=device,
                               max_iter=max(state.schedule_length, state.epoch + 1))

    def after_epoch(spent):
        state = box["state"]
        if state.epoch == 1:  # the schedules span the epochs expected to fit
            state.schedule_length = max(1, int(budget_s / spent))
            state.config = state.config.replace(max_iter=state.schedule_length)
        if after is not None:
            after(state, spent)

    epochs, seconds = spend(run_epoch, budget_s, clock, after_epoch)
    return box["state"], epochs, seconds


def ksparse_errors(state, X_eval):
    """Test MSE per pixel (data units) of a ksparse model: its own encoder (k units,
    ``supp_k(x W_enc + b_enc)``, decoded with D3 times s), the same support with Eq. 3's
    least-squares values (``coefficients="least_squares"``), and batch OMP with k atoms on its
    unit-normed dictionary (coding x - s b', then adding s b' back)."""
    from ksparse.estimators.codes import decode_codes, encode_rows
    from ksparse.kernels.encode import encode
    from ksparse.training.loop import encoder_params
    from reference.omp import batch_omp

    W_enc, b_enc = encoder_params(state)
    x_hat = decode_codes(state, encode(X_eval.astype(W_enc.dtype), W_enc, b_enc, K))
    own = np.mean((np.asarray(x_hat, dtype=np.float64) - X_eval) ** 2)
    codes = encode_rows(state, X_eval, 1.0, "topk", coefficients="least_squares")
    lsq = np.mean((np.asarray(decode_codes(state, codes), dtype=np.float64) - X_eval) ** 2)
    W = np.asarray(state.params["W"], dtype=np.float64)
    W = W / np.maximum(np.linalg.norm(W, axis=0), 1e-12)
    shift = state.scale * np.asarray(state.params["b_prime"], dtype=np.float64)
    if state.x_mean is not None:
        shift = shift + state.x_mean
    z = batch_omp(X_eval - shift, W, K)[0]
    return float(own), float(lsq), float(np.mean((z @ W.T + shift - X_eval) ** 2))


def ksparse_runs(X, X_eval, marks, device="cpu", clock=time.process_time):
    """ksparse at equal wall time: one run per budget in ``marks``, each spending its whole
    budget (:func:`ksparse_budget_run`). The longest run is also evaluated after every epoch,
    off the clock, for the curves.

    Returns
    -------
    runs : list of dict
        Per budget: ``budget_s``, ``epochs``, ``seconds`` (training time spent),
        ``schedule_length``, and the test MSE of its own encoder (``own``), with least-squares
        coefficients (``lsq``) and of OMP codes (``omp``).
    curves : (own, lsq, omp)
        [(seconds, error)] of the longest run, at geometrically spaced times and at its end.
    """
    from ksparse.training.loop import fit

    fit(X[:256], {"n_hidden": H, "k": K, "max_iter": 1}, device=device)  # compile the kernels, off the clock
    runs, own, lsq, omp, points = [], [], [], [], []

    def evaluate(state, t):  # the longest run's curve at geometrically spaced times, off the clock
        if not points or t >= 1.25 * points[-1][0]:
            points.append((t, ksparse_errors(state, X_eval)))

    for b in sorted(marks):
        points.clear()
        state, epochs, spent = ksparse_budget_run(X, b, device=device, clock=clock,
                                                  after=evaluate if b == max(marks) else None)
        if b == max(marks) and (not points or points[-1][0] != spent):
            points.append((spent, ksparse_errors(state, X_eval)))  # the run's end is on the curve
        errors = points[-1][1] if b == max(marks) else ksparse_errors(state, X_eval)
        runs.append({"budget_s": b, "epochs": epochs, "seconds": spent,
                     "schedule_length": state.schedule_length, "own": errors[0], "lsq": errors[1],
                     "omp": errors[2]})
        own, lsq, omp = ([(t, e[i]) for t, e in points] for i in range(3))
    return runs, (own, lsq, omp)


def sklearn_curve(X, X_eval, budget_s, batch_size=256, clock=time.process_time, chunks=10):
    from sklearn.decomposition import MiniBatchDictionaryLearning

    model = MiniBatchDictionaryLearning(n_components=H, batch_size=batch_size, transform_algorithm="omp",
                                        transform_n_nonzero_coefs=K, random_state=0)
    X64 = X.astype(np.float64)
    order = np.random.default_rng(0).permutation(X.shape[0])

    starts = np.array_split(np.arange(0, X.shape[0], batch_size), chunks)
    box = {"chunk": 0}

    def train_once():  # a tenth of a pass over the data, so that small budgets see it too
        for s in starts[box["chunk"] % chunks]:
            model.partial_fit(X64[order[s:s + batch_size]])
        box["chunk"] += 1

    def evaluate():
        return float(np.mean((model.transform(X_eval) @ model.components_ - X_eval) ** 2))

    return _clocked(train_once, evaluate, budget_s, clock=clock)


def ksvd_curve(X, X_eval, budget_s, clock=time.process_time):
    from reference.ksvd import ksvd
    from reference.omp import batch_omp

    X64 = X.astype(np.float64)
    box = {"W": None, "iteration": 0}

    def train_once():
        box["W"] = ksvd(X64, H, K, n_iter=1, W0=box["W"], approximate=True,
                        random_state=box["iteration"]).W
        box["iteration"] += 1

    def evaluate():
        return float(np.mean((batch_omp(X_eval, box["W"], K)[0] @ box["W"].T - X_eval) ** 2))

    return _clocked(train_once, evaluate, budget_s, clock=clock)


def at_budget(curve, budget_s):
    """The error reached within ``budget_s`` seconds of training (None if no evaluation yet)."""
    done = [e for t, e in curve if t <= budget_s]
    return min(done) if done else None


def run(quick=False, threads=2, data_dir=None, clock="cpu"):
    common.set_threads(threads)
    X, X_test = mnist(10000 if not quick else 3000, 1000, data_dir)
    X_eval = X_test.astype(np.float64)
    budget = 8.0 if quick else 40.0
    marks = [budget / 10, budget / 3, budget]
    results = {"machine": common.machine(), "threads": threads, "H": H, "k": K, "n_train": X.shape[0],
               "n_eval": X_eval.shape[0], "budget_s": budget, "clock": clock, "wall_s": {}}
    tick = CLOCKS[clock]

    def timed(name, fn, *args, **kw):  # each method's whole wall time, evaluations included
        t0 = time.perf_counter()
        out = fn(*args, clock=tick, **kw)
        results["wall_s"][name] = time.perf_counter() - t0
        return out

    runs, (own, lsq, omp) = timed("ksparse", ksparse_runs, X, X_eval, marks)
    mbdl, ksvd = "scikit-learn MiniBatchDictionaryLearning", "K-SVD (reference, approximate)"
    curve, calls = timed(mbdl, sklearn_curve, X, X_eval, budget)
    others = {mbdl: (curve, calls / 10), ksvd: timed(ksvd, ksvd_curve, X, X_eval, budget)}
    results["ksparse_runs"] = runs
    results["curves"] = {"ksparse": own, LSQ: lsq, "ksparse dictionary, OMP codes": omp,
                         **{name: curve for name, (curve, _) in others.items()}}
    results["training_calls"] = {"ksparse": [r["epochs"] for r in runs], LSQ: [r["epochs"] for r in runs],
                                 "ksparse dictionary, OMP codes": [r["epochs"] for r in runs],
                                 **{name: calls for name, (_, calls) in others.items()}}
    results["at_budget"] = {"ksparse": {f"{r['budget_s']:g}": r["own"] for r in runs},
                            LSQ: {f"{r['budget_s']:g}": r["lsq"] for r in runs},
                            "ksparse dictionary, OMP codes": {f"{r['budget_s']:g}": r["omp"] for r in runs},
                            **{name: {f"{b:g}": at_budget(c, b) for b in marks}
                               for name, (c, _) in others.items()}}
    results["loadavg_after"] = list(os.getloadavg())
    return results


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in results["curves"].items():
        t, e = zip(*curve, strict=True)
        longest = " (the longest run)" if name.startswith("ksparse") else ""
        ax.plot(t, e, marker="o", ms=3, label=name + longest)
    for key, name in (("own", "ksparse"), ("lsq", LSQ), ("omp", "ksparse dictionary, OMP codes")):
        runs = [r for r in results.get("ksparse_runs", []) if key in r]
        ax.plot([r["seconds"] for r in runs], [r[key] for r in runs], "*", ms=10, ls="none",
                label=f"{name}: one run per budget" if runs else None)
    ax.set_xscale("log")
    ax.set_xlabel("training time (s, %s clock)" % ("CPU" if results.get("clock") == "cpu" else "wall"))
    ax.set_ylabel("test MSE per pixel (k = %d)" % results["k"])
    ax.set_title(f"MNIST, {results['n_train']} images, H = {results['H']}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def report(results):
    marks = list(next(iter(results["at_budget"].values())))
    rows = [[name] + [("—" if v is None else f"{v:.4f}") for v in d.values()]
            + [calls_text(results["training_calls"][name])] for name, d in results["at_budget"].items()]
    header = (["method"] + [f"error within {float(m):.3g} s" for m in marks]
              + ["epochs (ksparse: per budget), passes (scikit-learn) or iterations (K-SVD)"])
    return common.table(header, rows)


def calls_text(calls):
    """Epochs or iterations run: one number, or one per budget (ksparse's own runs)."""
    return ", ".join(map(str, calls)) if isinstance(calls, list) else calls


def main(argv=None):
    args = common.parse_args(__doc__, argv)
    results = run(args.quick, args.threads, args.data_dir)
    print(report(results))
    if not args.no_save:
        from benchmarks import run_all

        common.save_results("dictionary", results)
        run_all.write_page(common.load_results())  # docs/benchmarks.md and its figures
    return results


if __name__ == "__main__":
    main()
