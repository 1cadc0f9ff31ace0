"""Training step over whole epochs of real MNIST batches: ksparse against its floor and peers.

    python -m benchmarks.step [--quick] [--threads 2] [--data-dir DIR] [--images N] [--rounds R]

Every method runs a whole epoch of the same MNIST minibatches (float32, d = 784, k = 25)
in its own block, round after round, on 1 thread and then on ``--threads`` threads in
every pool; figures are per batch, with the median and the fastest of the rounds:

- one product ``x @ W`` (D1's shape, the baseline), and one pass over W and its velocity
  (Eq. (11) with a zero gradient; product + pass is the floor of a step);
- ksparse: ``ksparse.kernels.fast.fast_train_step_``, then the same epoch with its phases
  clocked (rows: product, bias, top-k, decode, dz; grouping by unit; units: gradients and
  update), so that the phases add up to the headline figure;
- ksparse on its NumPy/SciPy kernels; the dense masked step (``ksparse.nn.layers`` and
  Eq. (11)); a PyTorch TopK autoencoder step (torch.topk, scatter, autograd, SGD with
  momentum). These three are several times slower, so their blocks run over the first
  PEER_IMAGES images of the epoch only (still hundreds of steps in a row);
- ``fit`` through ``KSparseAutoencoder`` for two epochs at its defaults (D9, resampling): its
  second epoch (shuffling, copies, dead-unit count, resampling, checks included) against the
  sum of its own steps, clocked inside the fit (``RemedyStep._fused_step``: the kernels of the
  step, without the dead-unit count, resampling and D13's scaling of the biases' steps), and
  against the step ``fit`` runs, timed alone over the same batches. The block's model is not
  the fit's: without resampling most of its units die (about 80 of 4000 active in a batch of
  1024, against about 3000 in the fit), so its step reads fewer columns of W and is faster.

Each block is preceded by untimed steps of its own method for ``common.SETTLE_S`` seconds,
so that it does not start while another method's thread pool still spins (OpenBLAS's
threads poll for about 0.1 s after a product on several threads). Each block records the
share of the machine's CPU time that other processes took
(/proc/stat less this process); a case where it exceeds BUSY_SHARE is marked busy.
"""

import time

import numpy as np

from benchmarks import common
from ksparse.kernels import _cpu, fast, remedies
from ksparse.nn import layers, optim
from ksparse.training.bound import LrCap

D, K, LR, MOMENTUM, SIGMA = 784, 25, 0.01, 0.9, 0.01
SHAPES = [(128, 1000), (128, 4000), (1024, 1000), (1024, 4000)]
PRODUCT, PASS = "one product x @ W", "one pass over W and V"
STEP, CLOCKED = "ksparse (numba)", "ksparse, phases clocked"
FIT = "fit epoch (KSparseAutoencoder)"
FIT_STEP = "ksparse, fit's step (D9, residual kept)"
PEERS = ("ksparse (NumPy/SciPy)", "dense masked step", "PyTorch TopK")
PEER_IMAGES = 10000
PHASES = ("rows: product, bias, top-k, decode, dz", "group by unit", "units: dW, db, update")


def batches_of(X, N, seed=0):
    """One epoch of X in shuffled minibatches of N rows (the last may be smaller), gathered once."""
    order = np.random.default_rng(seed).permutation(X.shape[0])
    return [np.ascontiguousarray(X[order[i:i + N]]) for i in range(0, X.shape[0], N)]


def init_params(H, dtype=np.float32, seed=0):
    """Sec. 4.2.2's initialisation, as training draws it; W column-major as the fast step keeps it."""
    rng = np.random.default_rng(seed)
    return {"W": np.asfortranarray(rng.normal(0.0, SIGMA, (D, H)).astype(dtype)),
            "b": np.zeros(H, dtype), "b_prime": np.zeros(D, dtype)}


def _state(H):
    p = init_params(H)
    return p, {n: np.zeros_like(a) for n, a in p.items()}


def torch_step(x, params, device="cpu"):
    """A TopK autoencoder step in the style of openai/sparse_autoencoder: torch.topk, scatter,
    autograd, and torch.optim.SGD with momentum; tied weights, the same loss D4. Returns
    ``step(x=None)``: one step on ``x`` (a tensor on ``device``), or on the x given here."""
    import torch

    x_default = torch.as_tensor(x, device=device)
    W, b, b_prime = (torch.tensor(np.asarray(params[n]), device=device, requires_grad=True)
                     for n in ("W", "b", "b_prime"))
    opt = torch.optim.SGD([W, b, b_prime], lr=LR, momentum=MOMENTUM)

    def step(xt=None):
        xt = x_default if xt is None else xt
        z = xt @ W + b
        values, index = torch.topk(z, K, dim=1)
        z_k = torch.zeros_like(z).scatter(1, index, values)
        x_hat = z_k @ W.T + b_prime
        loss = ((x_hat - xt) ** 2).sum(dim=1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def step_methods(batches, H, with_torch, profile):
    """{name: per-batch callable}; each method keeps its own state across the batches it sees."""
    W = init_params(H)["W"]
    p_fast, v_fast = _state(H)
    p_d9, v_d9 = _state(H)
    p_prof, v_prof = _state(H)
    p_np, v_np = _state(H)
    p_dense, v_dense = _state(H)
    V_pass = np.zeros_like(W)
    lr, m = np.float32(LR), np.float32(MOMENTUM)

    def dense(x):
        E, grads, Gamma = layers.ksparse_step(x, p_dense["W"], p_dense["b"], p_dense["b_prime"], K)
        optim.sgd_momentum_(p_dense, grads, v_dense, LR, MOMENTUM)

    fns = {
        PRODUCT: lambda x: x @ W,
        PASS: lambda x: _cpu.momentum_pass_(W, V_pass, 0.0),
        STEP: lambda x: fast.fast_train_step_(x, p_fast, v_fast, K, LR, MOMENTUM, "numba"),
        FIT_STEP: lambda x: remedies.remedies_train_step_(x, p_d9, v_d9, K, LR, MOMENTUM, "numba",
                                                          residual=True, pre_bias=True,
                                                          lr_bound=LrCap(LR, MOMENTUM, x.shape[0])),
        CLOCKED: lambda x: _cpu.train_step_(x, p_prof, v_prof, K, lr, m, profile),
        "ksparse (NumPy/SciPy)": lambda x: fast.fast_train_step_(x, p_np, v_np, K, LR, MOMENTUM, "numpy"),
        "dense masked step": dense,
    }
    if with_torch:
        import torch

        step = torch_step(batches[0], init_params(H))
        fns["PyTorch TopK"] = lambda x: step(torch.from_numpy(x))
    return fns


def fit_epochs(N, H, epochs):
    """``run(X)``: fit a fresh KSparseAutoencoder for two epochs on X (k held at K from the start,
    every other option at its default); per fit, ``epochs`` gets the seconds of each epoch (from
    one ``callback`` to the next; the first from the start of ``fit``, its setup included) and
    the seconds the second epoch spent in its steps (``RemedyStep._fused_step``, clocked)."""
    from ksparse.estimators.autoencoder import KSparseAutoencoder
    from ksparse.training.remedies import RemedyStep

    def run(X):
        clock, in_steps, marks = [time.perf_counter()], [0.0], [0.0]
        plain = RemedyStep._fused_step

        def clocked(self, *args):
            t0 = time.perf_counter()
            try:
                return plain(self, *args)
            finally:
                in_steps[0] += time.perf_counter() - t0

        def callback(record):
            clock.append(time.perf_counter())
            marks.append(in_steps[0])

        RemedyStep._fused_step = clocked
        try:
            KSparseAutoencoder(n_hidden=H, k=K, alpha=1.0, k_start=K, max_iter=2, batch_size=N, lr=LR,
                               momentum=MOMENTUM, sigma=SIGMA, random_state=0, callback=callback).fit(X)
        finally:
            RemedyStep._fused_step = plain
        epochs.append([*np.diff(clock), marks[2] - marks[1]])

    return run


def time_blocks(fns, rounds, warm=None):
    """Run each callable in its own block, ``rounds`` times in turn; seconds and others' CPU share.

    ``warm`` maps a method to an untimed call of its own (one batch) that runs for
    :data:`benchmarks.common.SETTLE_S` before each of its blocks (:func:`benchmarks.common.settle`).
    """
    times = {n: [] for n in fns}
    shares = []
    for _ in range(rounds):
        for n, f in fns.items():
            if warm and n in warm:
                common.settle(warm[n])
            before = common.cpu_snapshot()
            t0 = time.perf_counter()
            f()
            times[n].append(time.perf_counter() - t0)
            shares.append(common.others_share(before, common.cpu_snapshot()))
    return {n: np.array(t) for n, t in times.items()}, max(shares)


def run_case(X, N, H, threads, rounds, with_torch):
    """One shape, on ``threads`` (the pools already limited to it): per-batch figures of every
    method, the phases, the fit epoch."""
    batches = batches_of(X, N)
    profile = np.zeros(3)
    per_batch = step_methods(batches, H, with_torch, profile)
    fit_times = []
    fit = fit_epochs(N, H, fit_times)
    for f in per_batch.values():  # compile, and fault in the memory of each method
        for x in batches[:3]:
            f(x)
    fit(X[:3 * N])
    fit_times.clear()
    profile[:] = 0
    n_peer = -(-min(PEER_IMAGES, X.shape[0]) // N)  # the batches holding the first PEER_IMAGES images
    fns = {n: (lambda f=f, b=(batches[:n_peer] if n in PEERS else batches): [f(x) for x in b])
           for n, f in per_batch.items()}
    fns[FIT] = lambda: fit(X)
    warm = {n: common.one_batch_at_a_time(f, batches) for n, f in per_batch.items()}
    warm_clocked = warm[CLOCKED]

    def warm_unclocked():  # the clocked step's warm-up adds nothing to the phases
        before = profile.copy()
        warm_clocked()
        profile[:] = before

    warm[CLOCKED] = warm_unclocked
    load_start = common.loadavg()
    times, share = time_blocks(fns, rounds, warm)
    n = len(batches)
    methods = {}
    for name, t in times.items():
        n_name = n_peer if name in PEERS else n
        methods[name] = {"ms": float(np.median(t)) * 1e3 / n_name, "ms_min": float(t.min()) * 1e3 / n_name,
                         "epoch_s": float(np.median(t)), "rounds": int(t.size), "batches": n_name}
    epochs = np.array(fit_times)  # (rounds, 3): the fit's first epoch (with its setup), its second, its steps
    methods[FIT] = {"epoch_s": float(np.median(epochs[:, 1])), "epoch_s_min": float(epochs[:, 1].min()),
                    "first_epoch_s": float(np.median(epochs[:, 0])), "fit_s": float(np.median(times[FIT])),
                    "own_steps_s": float(np.median(epochs[:, 2])),
                    "epoch_over_own_steps": float(np.median(epochs[:, 1] / epochs[:, 2])),
                    "rounds": int(epochs.shape[0]), "batches": n}
    methods[FIT]["ms"] = methods[FIT]["epoch_s"] * 1e3 / n
    methods[FIT]["ms_min"] = methods[FIT]["epoch_s_min"] * 1e3 / n
    base = methods[PRODUCT]
    for m in methods.values():
        m["ratio"] = m["ms"] / base["ms"]
        m["ratio_min"] = m["ms_min"] / base["ms_min"]
    phases = dict(zip(PHASES, (profile * 1e3 / (rounds * n)).tolist(), strict=True))
    return {"threads": threads, "N": N, "H": H, "batches": n, "methods": methods, "phases_ms": phases,
            "others_share": share, "busy": share > common.BUSY_SHARE, "load_start": load_start,
            "load_end": common.loadavg()}


def run(quick=False, threads=2, data_dir=None, images=None, rounds=None):
    """Every shape on 1 thread, then on ``threads``; the MNIST training split (50,000 images) by default."""
    from ksparse.datasets.mnist import load_mnist

    try:
        import torch  # noqa: F401  (imported before the pools are limited)

        with_torch = True
    except ImportError:
        with_torch = False
    images = images or (6000 if quick else None)
    rounds = rounds or (2 if quick else 3)
    X = load_mnist(data_dir, n_train=images, n_test=1, n_val=1).X_train
    t0 = time.perf_counter()
    results = {"machine": common.machine(), "images": int(X.shape[0]), "d": D, "k": K, "lr": LR,
               "momentum": MOMENTUM, "rounds": rounds, "busy_share": common.BUSY_SHARE,
               "settle_s": common.SETTLE_S, "cases": []}
    for n_threads in sorted({1, threads}):
        common.set_threads(n_threads)
        for N, H in (SHAPES[:2] if quick else SHAPES):
            results["cases"].append(run_case(X, N, H, n_threads, rounds, with_torch))
    results["loadavg_after"] = common.loadavg()
    results["seconds"] = time.perf_counter() - t0
    return results


def _ratio(m):
    return f"{m['ratio']:.2f}× ({m['ratio_min']:.2f}×)"


def _key(c):
    return [c["threads"], c["N"], c["H"]]


def report(results):
    """Markdown: the ratios, the milliseconds, the phases and the fit epoch, one row per case."""
    cases = results["cases"]
    peers = [p for p in (STEP, "ksparse (NumPy/SciPy)", "dense masked step", "PyTorch TopK")
             if p in cases[0]["methods"]]
    head = ["threads", "batch", "H"]
    rows = []
    for c in cases:
        m = c["methods"]
        machine = f"{'**busy**' if c['busy'] else 'quiet'} ({100 * c['others_share']:.0f}%)"
        rows.append(_key(c) + [f"{m[PRODUCT]['ms']:.3f}"] + [_ratio(m[p]) for p in peers]
                    + [f"{1 + m[PASS]['ms'] / m[PRODUCT]['ms']:.2f}×", machine])
    text = ["Time per batch as a multiple of one product `x @ W` in its own block: median over "
            "rounds (fastest round in brackets). Product, pass, ksparse and fit run whole epochs; "
            f"the other methods the first {PEER_IMAGES} images of each. The floor is one product "
            "plus one pass over W and its velocity. Each block follows untimed steps of its own "
            f"method for {results.get('settle_s', common.SETTLE_S)} s, so that it does not start "
            "while the previous block's BLAS threads still poll for work. The last column gives "
            "the share of the "
            "machine's CPU time that other processes took during the case (busy above "
            f"{100 * results['busy_share']:.0f}%).", "",
            common.table(head + ["product ms"] + peers + ["floor", "machine"], rows), ""]
    rows = []
    for c in cases:
        m, ph = c["methods"], c["phases_ms"]
        rows.append(_key(c) + [f"{m[PRODUCT]['ms']:.3f}", f"{m[PASS]['ms']:.3f}"]
                    + [f"{v:.3f}" for v in ph.values()]
                    + [f"{sum(ph.values()):.3f}", f"{m[CLOCKED]['ms']:.3f}", f"{m[STEP]['ms']:.3f}"])
    text += ["Milliseconds per batch of the ksparse step by phase (averaged over the clocked epochs; "
             "the rows phase includes the step's own product), their sum, the clocked epoch per "
             "batch, and the headline step; the product and the pass in their own blocks:", "",
             common.table(head + ["product", "pass"] + list(PHASES) + ["phases", "clocked step", "step"],
                          rows), ""]
    rows = []
    for c in cases:
        m = c["methods"]
        if FIT_STEP not in m:  # a run from before the fit's own step was timed
            continue
        fit, steps = m[FIT]["epoch_s"], m[FIT_STEP]["epoch_s"]
        own = (f"{m[FIT]['own_steps_s']:.2f}", f"{m[FIT]['epoch_over_own_steps']:.2f}×") \
            if "own_steps_s" in m[FIT] else ("", "")
        rows.append(_key(c) + [f"{m[FIT]['fit_s']:.2f}", f"{m[FIT]['first_epoch_s']:.2f}", f"{fit:.2f}",
                               own[0], own[1], f"{steps:.2f}", f"{m[STEP]['epoch_s']:.2f}",
                               f"{fit / steps:.2f}×"])
    text += [f"`fit` through `KSparseAutoencoder` for two epochs (k held at {results['k']}, every other "
             "option at its default: D9 and resampling of dead units), seconds, medians over rounds: "
             "the whole fit; its first epoch with the setup (validation, data statistics, scaling, "
             "initialisation); its second epoch (from one callback to the next), against the sum of "
             "its own steps, clocked inside the fit (the median over rounds of epoch / steps), and "
             "against the step `fit` runs (`ksparse.kernels.remedies.remedies_train_step_` with "
             "D9, D11's bound measured in its rows phase and the residual kept for resampling) over "
             "the same batches in its own block, on a model of its own that does not resample (most "
             "of its units die, so its step reads fewer columns of W than the fit's). The "
             "paper's step (no D9) is shown for comparison:", "",
             common.table(head + ["fit s", "1st epoch s", "2nd epoch s", "its steps s", "epoch / its steps",
                                  "block's steps s", "paper's steps s", "epoch / block's steps"], rows)]
    return "\n".join(text)


def main(argv=None):
    args = common.parse_args(__doc__, argv, epoch=True)
    results = run(args.quick, args.threads, args.data_dir, args.images, args.rounds)
    print(report(results))
    if not args.no_save:
        common.save_results("step", results)
    return results


if __name__ == "__main__":
    main()
