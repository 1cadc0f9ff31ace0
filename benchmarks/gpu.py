"""Every GPU check and benchmark in one run (under 8 minutes): CuPy against PyTorch CUDA.

    python -m benchmarks.gpu [--quick]

1. Checks: the GPU tests of tests/test_fast.py and tests/test_backend.py (pytest), and the
   float64 fast step on CuPy against the plain NumPy pairs at rtol 1e-10, up to the
   benchmark shapes.
2. Top-k: the ksparse radix-select kernel against ``cupy.argpartition`` and ``torch.topk``.
3. Step: the fused ksparse step (CuPy kernels) against one cuBLAS product of the D1 shape,
   the dense masked step on CuPy, and a PyTorch CUDA TopK step (topk, scatter, autograd,
   SGD with momentum); batch 128 and 1024, H = 1000 and 4000, float32 and float64.
4. Encode: ``ksparse.kernels.encode.encode`` on CuPy against torch (product, topk, scatter), for
   10,000 MNIST-shaped vectors.

Times are per call: a round runs each method ``inner`` times and synchronises the device;
figures are medians over rounds of per-round ratios to the product. The results go to
``docs/benchmarks.json`` (section "gpu", with the card's name) and ``docs/benchmarks.md``
is rewritten from the stored CPU and GPU results.
"""

import subprocess
import sys
import time

import numpy as np

from benchmarks import common

D, K, LR, MOMENTUM = 784, 25, 1e-4, 0.9
SHAPES = [(128, 1000), (128, 4000), (1024, 1000), (1024, 4000)]


def _sync():
    import cupy

    cupy.cuda.Device().synchronize()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.synchronize()


def gpu_interleaved(fns, rounds, inner):
    """Per-call seconds of each callable: ``inner`` calls, then a device sync, per round."""
    times = {n: [] for n in fns}
    for f in fns.values():  # warm-up: compile kernels, fill memory pools
        f()
    _sync()
    for r in range(rounds):
        names = list(fns)[r % len(fns):] + list(fns)[:r % len(fns)]
        for n in names:
            _sync()
            t0 = time.perf_counter()
            for _ in range(inner):
                fns[n]()
            _sync()
            times[n].append((time.perf_counter() - t0) / inner)
    return {n: np.array(t) for n, t in times.items()}


def run_tests():
    """The GPU tests, through pytest; returns its summary line."""
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/test_fast.py", "tests/test_backend.py"],
                         capture_output=True, text=True, cwd=common.ROOT, timeout=300)
    lines = [s for s in res.stdout.strip().splitlines() if s.strip()]
    return {"returncode": res.returncode, "summary": lines[-1] if lines else res.stderr[-500:]}


def parity():
    """Max relative error of the float64 CuPy step against the NumPy pairs, per shape."""
    import cupy

    from ksparse.kernels import fast
    from ksparse.nn import layers

    out = []
    for N, d, H, k in [(16, 12, 30, 30), (16, 12, 30, 1), (33, 20, 200, 25), (128, D, 1000, K),
                       (1024, D, 4000, K)]:
        rng = np.random.default_rng(N + H)
        x, W = rng.random((N, d)), rng.normal(0, 0.05, (d, H))
        b, b_prime = rng.normal(0, 0.1, H), rng.normal(0, 0.1, d)
        E0, g0, G0 = layers.ksparse_step(x, W, b, b_prime, k)
        E1, g1, G1 = fast.fast_step(*(cupy.asarray(a) for a in (x, np.asfortranarray(W), b, b_prime)), k)
        same = bool(np.array_equal(np.sort(G0, 1), np.sort(cupy.asnumpy(G1), 1)))
        err = max(float(np.max(np.abs(cupy.asnumpy(g1[n]) - g0[n])) / np.max(np.abs(g0[n]))) for n in g0)
        out.append({"shape": [N, d, H, k], "same_support": same, "max_rel_err_grads": err,
                    "rel_err_E": abs(float(E1) - float(E0)) / abs(float(E0)),
                    "ok": same and err < 1e-10})
    return out


def _problem(N, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((N, D)).astype(dtype)
    return x, {"W": rng.normal(0, 0.05, (D, H)).astype(dtype), "b": np.zeros(H, dtype),
               "b_prime": np.zeros(D, dtype)}


def step_methods(N, H, dtype, with_torch):
    import cupy

    from ksparse.kernels import fast
    from ksparse.nn import layers, optim

    x_host, p_host = _problem(N, H, dtype)
    x = cupy.asarray(x_host)
    W = cupy.asarray(p_host["W"])

    def state(order="F"):
        p = {n: cupy.asarray(a, order=order) for n, a in p_host.items()}
        return p, {n: cupy.zeros_like(a) for n, a in p.items()}

    p_fast, v_fast = state()
    p_dense, v_dense = state("C")

    def dense():
        E, grads, Gamma = layers.ksparse_step(x, p_dense["W"], p_dense["b"], p_dense["b_prime"], K)
        optim.sgd_momentum_(p_dense, grads, v_dense, LR, MOMENTUM)

    fns = {"one cuBLAS product x @ W": lambda: x @ W,
           "ksparse (CuPy kernels)": lambda: fast.fast_train_step_(x, p_fast, v_fast, K, LR, MOMENTUM),
           "dense masked step (CuPy)": dense}
    if with_torch:
        from benchmarks.step import torch_step

        fns["PyTorch CUDA TopK"] = torch_step(x_host, p_host, device="cuda")
    return fns


def topk_methods(N, H, dtype, with_torch):
    import cupy

    from ksparse.kernels import _cupy as _cupy_kernels

    z = cupy.asarray(np.random.default_rng(1).normal(size=(N, H)).astype(dtype))
    zero = cupy.zeros(H, dtype)
    fns = {"ksparse radix select": lambda: _cupy_kernels.topk(z, zero, K),
           "cupy.argpartition": lambda: cupy.argpartition(z, H - K, axis=1)[:, H - K:]}
    if with_torch:
        import torch

        zt = torch.as_tensor(z, device="cuda")
        fns["torch.topk"] = lambda: torch.topk(zt, K, dim=1)
    return fns


def encode_methods(H, dtype, with_torch, N=10000):
    import cupy

    from ksparse.kernels.encode import encode

    x_host, p = _problem(N, H, dtype)
    x, W, b = cupy.asarray(x_host), cupy.asarray(p["W"]), cupy.asarray(p["b"])
    fns = {"one cuBLAS product x @ W": lambda: x @ W, "ksparse encode (CuPy)": lambda: encode(x, W, b, K)}
    if with_torch:
        import torch

        xt, Wt, bt = (torch.as_tensor(a, device="cuda") for a in (x, W, b))

        def torch_encode():
            with torch.no_grad():
                z = xt @ Wt + bt
                values, index = torch.topk(z, K, dim=1)
                return torch.zeros_like(z).scatter(1, index, values)

        fns["PyTorch topk + scatter"] = torch_encode
    return fns


def _device_name():
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def run(quick=False):
    from ksparse.backend import gpu_available

    if not gpu_available():
        raise SystemExit("benchmarks.gpu needs CuPy and a CUDA GPU (pip install -e '.[gpu,bench]')")
    try:
        import torch

        with_torch = torch.cuda.is_available()
    except ImportError:
        with_torch = False
    t_start = time.perf_counter()
    results = {"machine": common.machine(), "device": _device_name(), "torch_cuda": with_torch,
               "tests": run_tests(), "parity_float64": parity(), "step": [], "topk": [], "encode": []}
    rounds, inner = (5, 5) if quick else (15, 20)
    for dtype in (["float32"] if quick else ["float32", "float64"]):
        for N, H in SHAPES:
            times = gpu_interleaved(step_methods(N, H, dtype, with_torch), rounds, inner)
            results["step"].append({"dtype": dtype, "N": N, "H": H,
                                    "methods": common.ratios(times, "one cuBLAS product x @ W")})
            times = gpu_interleaved(topk_methods(N, H, dtype, with_torch), rounds, inner)
            results["topk"].append({"dtype": dtype, "N": N, "H": H,
                                    "methods": common.ratios(times, "ksparse radix select")})
        for H in (1000, 4000):
            times = gpu_interleaved(encode_methods(H, dtype, with_torch), rounds, max(1, inner // 4))
            results["encode"].append({"dtype": dtype, "N": 10000, "H": H,
                                      "methods": common.ratios(times, "one cuBLAS product x @ W")})
    results["seconds"] = time.perf_counter() - t_start
    return results


def report(results):
    text = [f"Card: **{results['device']}**. Tests: `{results['tests']['summary']}`.", ""]
    rows = [[" × ".join(map(str, p["shape"])), p["same_support"], f"{p['max_rel_err_grads']:.1e}",
             f"{p['rel_err_E']:.1e}"] for p in results["parity_float64"]]
    text += ["Float64 CuPy step against the NumPy pairs (N × d × H × k):", "",
             common.table(["shape", "same support", "max rel. error of grads", "rel. error of E"], rows), ""]
    for key, title in (("step", "Step (ratio to one cuBLAS product, includes the update)"),
                       ("topk", "Top-k (ratio to the ksparse radix select)"),
                       ("encode", "Encode 10,000 vectors (ratio to one cuBLAS product)")):
        cases = results[key]
        if not cases:
            continue
        names = list(cases[0]["methods"])
        rows = [[c["dtype"], c["N"], c["H"]]
                + [f"{m['ratio']:.2f}× ({m['ms']:.3f} ms)" for m in (c["methods"][n] for n in names)]
                for c in cases]
        text += [f"**{title}**", "", common.table(["dtype", "batch", "H"] + names, rows), ""]
    return "\n".join(text)


def main(argv=None):
    args = common.parse_args(__doc__, argv)
    results = run(args.quick)
    print(report(results))
    if not args.no_save:
        common.save_results("gpu", results)
        from benchmarks import run_all

        run_all.write_page(common.load_results())
    return results


if __name__ == "__main__":
    main()
