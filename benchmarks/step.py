"""Training step: ksparse against one dense product, the dense masked step and PyTorch TopK.

    python -m benchmarks.step [--quick] [--threads 2]

Every step includes the momentum update (Eq. (11), or torch's SGD with momentum). Each
figure is the median over rounds of (method time / product time) in the same round.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np

from benchmarks import common
from ksparse.kernels import fast
from ksparse.nn import layers, optim

D, K, LR, MOMENTUM = 784, 25, 1e-4, 0.9
SHAPES = [(128, 1000), (128, 4000), (1024, 1000), (1024, 4000)]


def _problem(N, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((N, D)).astype(dtype)
    params = {"W": rng.normal(0, 0.05, (D, H)).astype(dtype), "b": np.zeros(H, dtype),
              "b_prime": np.zeros(D, dtype)}
    return x, params


def _state(params):
    p = {n: a.copy() for n, a in params.items()}
    return p, {n: np.zeros_like(a) for n, a in p.items()}


def make_steps(x, params, with_torch=True):
    """{name: callable} for one shape: the baseline product and every training step."""
    W = params["W"]
    steps = {"one product x @ W": lambda: x @ W}
    p_fast, v_fast = _state(params)
    kernel = "numba" if fast.has_numba() else "numpy"
    steps[f"ksparse ({kernel})"] = lambda: fast.fast_train_step_(x, p_fast, v_fast, K, LR, MOMENTUM, kernel)
    if kernel == "numba":
        p_np, v_np = _state(params)
        steps["ksparse (NumPy/SciPy)"] = lambda: fast.fast_train_step_(
            x, p_np, v_np, K, LR, MOMENTUM, "numpy")
    p_dense, v_dense = _state(params)

    def dense():
        E, grads, Gamma = layers.ksparse_step(x, p_dense["W"], p_dense["b"], p_dense["b_prime"], K)
        optim.sgd_momentum_(p_dense, grads, v_dense, LR, MOMENTUM)

    steps["dense masked step"] = dense
    if with_torch:
        steps["PyTorch TopK"] = torch_step(x, params)
    return steps


def torch_step(x, params, device="cpu"):
    """A TopK autoencoder step in the style of openai/sparse_autoencoder: torch.topk, scatter,
    autograd, and torch.optim.SGD with momentum; tied weights, the same loss D4."""
    import torch

    xt = torch.as_tensor(x, device=device)
    W, b, b_prime = (torch.tensor(params[n], device=device, requires_grad=True)
                     for n in ("W", "b", "b_prime"))
    opt = torch.optim.SGD([W, b, b_prime], lr=LR, momentum=MOMENTUM)

    def step():
        z = xt @ W + b
        values, index = torch.topk(z, K, dim=1)
        z_k = torch.zeros_like(z).scatter(1, index, values)
        x_hat = z_k @ W.T + b_prime
        loss = ((x_hat - xt) ** 2).sum(dim=1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def phases(x, params, repeats=20):
    """Median ms per phase of the compiled ksparse step (numba only)."""
    if not fast.has_numba():
        return None
    from ksparse.kernels import _numba as nk

    p, v = _state(params)
    fast.fast_train_step_(x, p, v, K, LR, MOMENTUM, "numba")
    WT, VT = p["W"].T, v["W"].T
    lr, m = x.dtype.type(LR), x.dtype.type(MOMENTUM)
    rows = []
    for _ in range(repeats):
        t = [time.perf_counter()]
        z = x @ p["W"]
        z += p["b"]
        t.append(time.perf_counter())
        bits_type = np.int32 if x.dtype == np.float32 else np.int64
        Gamma = np.empty((x.shape[0], K), np.int64)
        dx_hat, dz, err = np.empty_like(x), np.empty((x.shape[0], K), x.dtype), np.empty(x.shape[0])
        nk.forward_rows(x, z, z.view(bits_type), bits_type(8 * np.dtype(bits_type).itemsize - 1),
                        bits_type(np.iinfo(bits_type).max), WT, p["b_prime"], K, Gamma, dx_hat, dz, err)
        t.append(time.perf_counter())
        start, entries = nk.by_unit(Gamma, WT.shape[0])
        t.append(time.perf_counter())
        nk.weight_grads_update(start, entries, x, z, dx_hat, dz, WT, p["b"], VT, v["b"], lr, m)
        t.append(time.perf_counter())
        rows.append(np.diff(t) * 1e3)
    med = np.median(rows, axis=0)
    names = ["product D1", "top-k, decode, dz (D2-D6)", "group by unit", "dW, db + update (D7, D8, Eq. 11)"]
    return dict(zip(names, map(float, med), strict=True))


def peak_memory(N=1024, H=4000, dtype="float32"):
    """Extra peak resident memory (MB) of a step of each method, each in a fresh process:
    the peak (VmHWM, reset before the step) less the resident memory before it (Linux)."""
    out = {}
    for name in ("ksparse", "ksparse (NumPy/SciPy)", "dense masked step", "PyTorch TopK"):
        code = (
            "import numpy as np\n"
            "from benchmarks import step as s\n"
            f"x, params = s._problem({N}, {H}, np.{dtype})\n"
            f"fns = s.make_steps(x, params, with_torch={name == 'PyTorch TopK'})\n"
            f"f = [v for k, v in fns.items() if k.startswith({name!r})][0]\n"
            "f()\n"  # compile, and let the allocators settle
            "def mb(key):\n"
            "    line = [s for s in open('/proc/self/status') if s.startswith(key)][0]\n"
            "    return int(line.split()[1]) / 1024\n"
            "open('/proc/self/clear_refs', 'w').write('5')\n"  # reset the peak (VmHWM)
            "before = mb('VmRSS')\n"
            "f(); f()\n"
            "print(mb('VmHWM') - before)\n"
        )
        try:
            # large blocks straight from mmap, so that freed arrays leave the resident set
            env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 cwd=common.ROOT, timeout=300, env=env)
            out[name] = float(res.stdout.strip().splitlines()[-1])
        except Exception as e:  # torch missing, or a failure: say so in the page
            out[name] = f"n/a ({type(e).__name__})"
    out["z itself"] = N * H * np.dtype(dtype).itemsize / 2**20
    return out


def run(quick=False, threads=2, dtypes=None, extras=True):
    try:
        import torch  # noqa: F401  (imported before the pools are limited)

        with_torch = True
    except ImportError:
        with_torch = False
    common.set_threads(threads)
    results = {"machine": common.machine(), "threads": threads, "d": D, "k": K, "cases": []}
    dtypes = dtypes or (["float32"] if quick else ["float32", "float64"])
    shapes = SHAPES[:2] if quick else SHAPES
    for dtype in dtypes:
        for N, H in shapes:
            x, params = _problem(N, H, np.dtype(dtype))
            fns = make_steps(x, params, with_torch)
            for f in fns.values():  # compile and warm the caches
                f()
            rounds = common.rounds_for(fns, 2.0 if quick else 8.0, lo=5 if quick else 7)
            times = common.interleaved(fns, rounds, warmup=2)
            results["cases"].append({"dtype": dtype, "N": N, "H": H,
                                     "methods": common.ratios(times, "one product x @ W")})
    x, params = _problem(128, 1000, np.float32)
    results["phases_ms"] = phases(x, params) if extras else None
    results["peak_memory_mb"] = peak_memory() if extras and not quick else {}
    results["loadavg_after"] = list(os.getloadavg())
    return results


def report(results):
    """Markdown for the step section."""
    cases = results["cases"]
    names = sorted(cases[0]["methods"], key=lambda n: (not n.startswith("one "), not n.startswith("ksparse"),
                                                        "NumPy" in n, n))
    rows = [[c["dtype"], c["N"], c["H"]] + [f"{c['methods'][n]['ratio']:.2f}×" for n in names]
            for c in cases]
    text = [common.table(["dtype", "batch", "H"] + names, rows), ""]
    rows = [[c["dtype"], c["N"], c["H"]] + [f"{c['methods'][n]['ms']:.2f}" for n in names] for c in cases]
    text += ["Median milliseconds per call (the ratios above are per-round ratios, so they need not",
             "equal the ratios of these medians):", "",
             common.table(["dtype", "batch", "H"] + names, rows), ""]
    base = names[0]
    rows = [[c["dtype"], c["N"], c["H"]]
            + [f"{c['methods'][n]['ms_min'] / c['methods'][base]['ms_min']:.2f}×" for n in names]
            for c in cases]
    text += ["Ratios of the fastest call of each method (a rough proxy for an idle machine when the",
             "load was high; not the figures the targets are judged on):", "",
             common.table(["dtype", "batch", "H"] + names, rows)]
    return "\n".join(text)


def main(argv=None):
    args = common.parse_args(__doc__, argv)
    results = run(args.quick, args.threads)
    print(report(results))
    extra = {n: results[n] for n in ("phases_ms", "peak_memory_mb")}
    print(json.dumps(extra, indent=1))
    if not args.no_save:
        common.save_results("step", results)
    return results


if __name__ == "__main__":
    main()
