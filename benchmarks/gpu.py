"""Every GPU check and benchmark in one run (under 8 minutes on an H200): CuPy against PyTorch CUDA.

    python -m benchmarks.gpu --prepare gpu_carry   # here, on the CPU: MNIST and the CPU's first epochs
    python -m benchmarks.gpu --data-dir gpu_carry --out $OUT   # on the GPU machine
    python -m benchmarks.gpu --load $OUT/gpu.json  # here: store the results, rewrite docs/benchmarks.md
    python -m benchmarks.gpu --dry-run             # every path on the CPU, tiny shapes, nothing saved

1. Tests: the whole suite with CuPy present (pytest), and the float64 fast step on CuPy
   against the plain NumPy pairs at rtol 1e-10, up to the benchmark shapes.
2. Step: d = 784, H in {1000, 4096, 16384}, batch in {128, 4096}, k in {25, 64}, float32:
   the fused ksparse step against one cuBLAS product of the D1 shape and a PyTorch CUDA
   TopK step (topk, scatter, autograd, SGD with momentum).
3. Top-k: the ksparse select kernel against ``cupy.argpartition``, a full sort and
   ``torch.topk``, batch 4096, H up to 16384.
4. Training: all 60,000 MNIST images, H = 1000, k = 25, the Sec. 4.2.1 schedule, epochs
   for TRAIN_BUDGET_S; samples per second and the loss curve against the CPU's (from
   ``--prepare``).
5. Encode: the 60,000 images through the trained model's encoder, against torch (product,
   topk, scatter) and scikit-learn's OMP on the host (per image, on a subset).
6. Dictionary learning: ksparse on the GPU against MiniBatchDictionaryLearning and K-SVD on
   the host's CPUs at equal wall time (:mod:`benchmarks.dictionary`'s protocol).

Times come from device events around ``inner`` calls after a warm-up, medians over
rounds. ``--dry-run`` runs all of it with NumPy for CuPy, torch on the CPU and the host
clock, on random MNIST-shaped files, so that a CPU test keeps the script from rotting.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import common, gpu_train
from ksparse.argparsing import HintParser
from ksparse.io import folder_argument, path_argument

D, LR, MOMENTUM = 784, 1e-4, 0.9
STEP_SHAPES = [(N, H, k) for N in (128, 4096) for H in (1000, 4096, 16384) for k in (25, 64)]
TOPK_SHAPES = [(4096, H, k) for H in (1000, 4096, 16384) for k in (25, 64)]
TRAIN_BUDGET_S, DICT_BUDGET_S, OMP_IMAGES = 120.0, 30.0, 200


class Device:
    """CuPy, torch CUDA and device events; or, for a dry run, NumPy, torch CPU and the host clock."""

    def __init__(self, dry):
        self.dry = dry
        if dry:
            self.xp, self.name, self.torch_device, self.ksparse_device = np, "CPU, dry run", "cpu", "cpu"
        else:
            import cupy

            self.xp, self.torch_device, self.ksparse_device = cupy, "cuda", "gpu"
            props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
            self.name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])

    def sync(self):
        if not self.dry:
            self.xp.cuda.Device().synchronize()
            torch = sys.modules.get("torch")
            if torch is not None and torch.cuda.is_available():
                torch.cuda.synchronize()

    def _once(self, f, inner):
        if self.dry:
            t0 = time.perf_counter()
            for _ in range(inner):
                f()
            return (time.perf_counter() - t0) / inner
        start, end = self.xp.cuda.Event(), self.xp.cuda.Event()
        start.record()
        for _ in range(inner):
            f()
        end.record()
        end.synchronize()
        return self.xp.cuda.get_elapsed_time(start, end) / 1e3 / inner

    def time(self, fns, rounds, inner):
        """Per-call seconds of each callable: a warm-up, then ``rounds`` blocks of ``inner`` calls."""
        times = {n: [] for n in fns}
        for n, f in fns.items():
            f()
            self.sync()
            for _ in range(rounds):
                times[n].append(self._once(f, inner))
        return {n: np.array(t) for n, t in times.items()}


def run_tests(dry):
    """The whole suite with CuPy present (a dry run only collects tests/test_fast.py)."""
    args = ["--collect-only", "tests/test_fast.py"] if dry else ["-x"]
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                         capture_output=True, text=True, cwd=common.ROOT, timeout=400)
    lines = [s for s in res.stdout.strip().splitlines() if s.strip()]
    return {"returncode": res.returncode, "summary": lines[-1] if lines else res.stderr[-500:]}


def parity(dev, shapes):
    """Max relative error of the float64 step on the device against the NumPy pairs, per shape."""
    from ksparse.backend import to_numpy
    from ksparse.kernels import fast
    from ksparse.nn import layers

    out = []
    for N, d, H, k in shapes:
        rng = np.random.default_rng(N + H)
        x, W = rng.random((N, d)), rng.normal(0, 0.05, (d, H))
        b, b_prime = rng.normal(0, 0.1, H), rng.normal(0, 0.1, d)
        E0, g0, G0 = layers.ksparse_step(x, W, b, b_prime, k)
        E1, g1, G1 = fast.fast_step(*(dev.xp.asarray(a) for a in (x, np.asfortranarray(W), b, b_prime)), k)
        same = bool(np.array_equal(np.sort(G0, 1), np.sort(to_numpy(G1), 1)))
        err = max(float(np.max(np.abs(to_numpy(g1[n]) - g0[n])) / np.max(np.abs(g0[n]))) for n in g0)
        out.append({"shape": [N, d, H, k], "same_support": same, "max_rel_err_grads": err,
                    "rel_err_E": abs(float(E1) - float(E0)) / abs(float(E0)), "ok": same and err < 1e-10})
    return out


def _problem(N, H, d=D, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((N, d)).astype(np.float32), {
        "W": rng.normal(0, 0.05, (d, H)).astype(np.float32), "b": np.zeros(H, np.float32),
        "b_prime": np.zeros(d, np.float32)}


def step_methods(dev, N, H, k, d=D):
    from benchmarks.step import torch_step
    from ksparse.kernels import fast

    x_host, p_host = _problem(N, H, d)
    x, W = dev.xp.asarray(x_host), dev.xp.asarray(p_host["W"])
    p = {n: dev.xp.asarray(a, order="F") for n, a in p_host.items()}
    v = {n: dev.xp.zeros_like(a) for n, a in p.items()}
    step = torch_step(x_host, p_host, device=dev.torch_device)
    return {"one cuBLAS product x @ W": lambda: x @ W,
            "ksparse step": lambda: fast.fast_train_step_(x, p, v, k, LR, MOMENTUM),
            "PyTorch CUDA TopK": step}


def topk_methods(dev, N, H, k):
    import torch

    from ksparse.kernels import fast

    xp = dev.xp
    z = xp.asarray(np.random.default_rng(1).normal(size=(N, H)).astype(np.float32))
    zt = torch.as_tensor(z, device=dev.torch_device)
    if dev.dry:
        select = lambda: fast.supp_k(z, k)  # noqa: E731
    else:
        from ksparse.kernels import _cupy

        zero = xp.zeros(H, np.float32)
        select = lambda: _cupy.topk(z, zero, k)  # noqa: E731
    return {"ksparse select": select,
            "argpartition": lambda: xp.argpartition(z, H - k, axis=1)[:, H - k:],
            "full sort (argsort)": lambda: xp.argsort(z, axis=1)[:, H - k:],
            "torch.topk": lambda: torch.topk(zt, k, dim=1)}


def encode_methods(dev, X, params, k):
    import torch

    from ksparse.kernels.encode import encode

    x = dev.xp.asarray(X)
    W, b = params["W"], params["b"]
    xt, Wt, bt = (torch.as_tensor(a, device=dev.torch_device) for a in (x, dev.xp.ascontiguousarray(W), b))

    def torch_encode():
        with torch.no_grad():
            z = xt @ Wt + bt
            values, index = torch.topk(z, k, dim=1)
            return torch.zeros_like(z).scatter(1, index, values)

    return {"one cuBLAS product x @ W": lambda: x @ W, "ksparse encode": lambda: encode(x, W, b, k),
            "PyTorch topk + scatter": torch_encode}


def omp_per_image(X, params, k, n):
    """Seconds per image of scikit-learn's OMP on the host (unit-norm atoms of W), on ``n`` images."""
    from sklearn.linear_model import orthogonal_mp_gram

    from ksparse.backend import to_numpy

    W = to_numpy(params["W"]).astype(np.float64)
    W /= np.linalg.norm(W, axis=0)
    x = np.asarray(X[:n], dtype=np.float64)
    t0 = time.perf_counter()
    orthogonal_mp_gram(W.T @ W, W.T @ x.T, n_nonzero_coefs=k)
    return (time.perf_counter() - t0) / n


def _versions():
    out = {}
    try:
        import cupy

        out["cupy"] = cupy.__version__
        out["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        out["cuda_driver"] = cupy.cuda.runtime.driverGetVersion()
    except Exception:  # a dry run, or no CUDA
        pass
    import torch

    out["torch"] = torch.__version__
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        out["nvidia_smi"] = smi.stdout.strip() if smi.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        out["nvidia_smi"] = None
    return out


def _cases(dev, shapes, make, baseline, rounds, inner):
    cases = []
    for shape in shapes:
        times = dev.time(make(dev, *shape), rounds, inner)
        cases.append({"N": shape[0], "H": shape[1], "k": shape[2], "methods": common.ratios(times, baseline)})
    return cases


def run(dev, data_dir, quick=False):
    """Every section in turn; returns the results dict (section "gpu" of docs/benchmarks.json)."""
    dry, t_start = dev.dry, time.perf_counter()
    rounds, inner = (2, 2) if dry or quick else (10, 10)
    small = [(16, 64, 4)]
    X, X_test = gpu_train.load(data_dir, dry)
    ref_path = os.path.join(data_dir, gpu_train.REFERENCE)
    reference = json.load(open(ref_path)) if os.path.exists(ref_path) else None
    results = {"machine": common.machine(), "device": dev.name, "versions": _versions(),
               "command": " ".join(["python -m benchmarks.gpu", *sys.argv[1:]]), "tests": run_tests(dry),
               "parity_float64": parity(dev, [(16, 12, 30, 30), (33, 20, 200, 25)]
                                        + ([] if dry else [(128, D, 1000, 25), (1024, D, 4096, 64)]))}
    results["step"] = _cases(dev, small if dry else STEP_SHAPES, step_methods, "one cuBLAS product x @ W",
                             rounds, inner)
    results["topk"] = _cases(dev, small if dry else TOPK_SHAPES, topk_methods, "ksparse select",
                             rounds, inner)
    train, state = gpu_train.train(X, dev, 1.0 if dry else TRAIN_BUDGET_S, dry, reference)
    results["train"] = train
    k = state.config.k
    times = dev.time(encode_methods(dev, X, state.params, k), rounds, 1)
    results["encode"] = {"N": int(X.shape[0]), "H": state.config.n_hidden, "k": k,
                         "methods": common.ratios(times, "one cuBLAS product x @ W"),
                         "sklearn_omp_s_per_image": omp_per_image(X, state.params, k,
                                                                  8 if dry else OMP_IMAGES)}
    n_dict = 256 if dry else 10000
    results["dictionary"] = gpu_train.dictionary(X[:n_dict], X_test[:1000].astype(np.float64), dev,
                                                 0.5 if dry else DICT_BUDGET_S, os.cpu_count() or 1)
    results["seconds"] = time.perf_counter() - t_start
    return results


def _ratio_table(cases, key):
    names = list(cases[0]["methods"])
    rows = [[c["N"], c["H"], c["k"]] + [f"{m['ratio']:.2f}× ({m['ms']:.3f} ms)"
                                        for m in (c["methods"][n] for n in names)] for c in cases]
    return common.table(["batch", "H", "k"] + names, rows)


def report(results):
    """Markdown for the GPU section of docs/benchmarks.md."""
    v = results.get("versions", {})
    text = [f"Card: **{results['device']}** ({v.get('nvidia_smi')}); CUDA runtime {v.get('cuda_runtime')}, "
            f"driver {v.get('cuda_driver')}, CuPy {v.get('cupy')}, torch {v.get('torch')}. Command: "
            f"`{results.get('command')}`; {results['seconds']:.0f} s. "
            f"Tests: `{results['tests']['summary']}`.", ""]
    rows = [[" × ".join(map(str, p["shape"])), p["same_support"], f"{p['max_rel_err_grads']:.1e}",
             f"{p['rel_err_E']:.1e}"] for p in results["parity_float64"]]
    text += ["Float64 step on the device against the NumPy pairs (N × d × H × k):", "",
             common.table(["shape", "same support", "max rel. error of grads", "rel. error of E"], rows), "",
             "**Step, float32** (time per call as a multiple of one cuBLAS product; the update "
             "included):", "",
             _ratio_table(results["step"], "step"), "",
             "**Top-k, float32** (as a multiple of the ksparse select kernel):", "",
             _ratio_table(results["topk"], "topk"), ""]
    t = results["train"]
    text += [f"**Training**: {t['images']} MNIST images, H = {t['config']['n_hidden']}, "
             f"k = {t['config']['k']} "
             f"(from {t['config']['k_start']}), batch {t['config']['batch_size']}: {t['epochs']} epochs, "
             f"{t['samples_per_s']:.0f} samples/s"
             + (f", {t['speedup_over_cpu']:.1f}× the CPU reference; loss per epoch (device / CPU): "
                + ", ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(t["losses"], t["cpu_losses"], strict=False))
                + f" (largest relative difference {t['max_rel_loss_diff']:.1e})" if "cpu_losses" in t else "")
             + ".", ""]
    e = results["encode"]
    text += [f"**Encode** {e['N']} images, H = {e['H']}, k = {e['k']} (as a multiple of one cuBLAS product; "
             f"scikit-learn OMP on the host: {1e6 * e['sklearn_omp_s_per_image']:.0f} µs per image):", "",
             common.table(list(e["methods"]), [[f"{m['ratio']:.2f}× ({m['ms']:.3f} ms)"
                                                for m in e["methods"].values()]]), ""]
    from benchmarks.dictionary import calls_text

    dct = results["dictionary"]
    marks = list(next(iter(dct["at_budget"].values())))
    rows = [[n] + [f"{v:.4f}" if v is not None else "—" for v in b.values()]
            + [calls_text(dct["training_calls"][n])] for n, b in dct["at_budget"].items()]
    text += [f"**Dictionary learning**, {dct['n_train']} images, H = {dct['H']}, k = {dct['k']}, test "
             f"MSE per pixel on {dct['n_eval']} images, host on {dct['threads']} threads:", "",
             common.table(["method"] + [f"error within {m} s" for m in marks] + ["epochs or iterations"],
                          rows)]
    return "\n".join(text)


def _args(argv):
    import argparse

    p = HintParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prepare", metavar="DIR", type=folder_argument,
                   help="write MNIST and the CPU's first epochs to DIR; stop")
    p.add_argument("--data-dir", type=path_argument,
                   default=None, help="folder from --prepare (default: $KSPARSE_DATA)")
    p.add_argument("--out", type=folder_argument,
                   default=None, help="also write gpu.json and benchmarks.md to this folder")
    p.add_argument("--load", metavar="FILE", help="store a gpu.json in docs/benchmarks.json, redraw the page")
    p.add_argument("--dry-run", action="store_true", help="every path on the CPU, tiny shapes, nothing saved")
    p.add_argument("--quick", action="store_true", help="fewer rounds, for development; never writes "
                   "the docs (only --out, if given)")
    return p.parse_args(argv)


def main(argv=None):
    args = _args(argv)
    from benchmarks import run_all

    if args.prepare:
        print(json.dumps(gpu_train.prepare(args.prepare, args.data_dir, dry=args.dry_run), indent=1)[:2000])
        return None
    if args.load:
        with open(args.load) as f:
            common.save_results("gpu", json.load(f))
        print("wrote", run_all.write_page(common.load_results()))
        return None
    if args.dry_run:
        with tempfile.TemporaryDirectory() as tmp:
            gpu_train.prepare(tmp, dry=True)
            results = run(Device(dry=True), tmp)
            page = run_all.write_page({"gpu": results}, page=os.path.join(tmp, "benchmarks.md"),
                                      figures=os.path.join(tmp, "figures"))
            print(open(page).read())
        return results
    from ksparse.backend import gpu_available

    if not gpu_available():
        raise SystemExit("benchmarks.gpu needs CuPy and a CUDA GPU; use --dry-run to check it on the CPU")
    results = run(Device(dry=False), args.data_dir or os.environ.get("KSPARSE_DATA", ""), args.quick)
    print(report(results))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        common.write_json(os.path.join(args.out, "gpu.json"), results)
        page = os.path.join(args.out, "benchmarks.md")
        run_all.write_page(dict(common.load_results(), gpu=results), page, os.path.join(args.out, "figures"))
    elif not args.quick:  # a development run never rewrites the docs
        common.save_results("gpu", results)
        run_all.write_page(common.load_results())
    return results


if __name__ == "__main__":
    main()
