"""The GPU benchmark's data and training parts (see :mod:`benchmarks.gpu`).

- :func:`prepare`, run on the CPU before a GPU call: copies the four MNIST files into a
  folder that travels with the call (the GPU machine has no network), and trains the
  same model on the CPU for the first epochs, so the GPU run can compare loss curves and
  throughput without the CPU being there.
- :func:`train`: full MNIST on the device for a time budget, epoch by epoch.
- :func:`dictionary`: ksparse on the device against scikit-learn's
  MiniBatchDictionaryLearning and K-SVD on the host's CPUs at equal wall time (the
  protocol of :mod:`benchmarks.dictionary`).
"""

import gzip
import os
import shutil
import struct
import time

import numpy as np

from benchmarks import common
from ksparse.io import atomic_write, same_file

REFERENCE = "cpu_reference.json"


def train_config(dry):
    """Sec. 4.2.1's schedule (k from 100 down to 25 over the first half) at H = 1000, k = 25."""
    if dry:
        return {"n_hidden": 32, "k": 4, "alpha": 1.0, "k_start": 8, "max_iter": 4, "batch_size": 32,
                "random_state": 0, "lr": 1e-4}
    return {"n_hidden": 1000, "k": 25, "alpha": 1.0, "k_start": 100, "max_iter": 50, "batch_size": 128,
            "random_state": 0}


def load(data_dir, dry):
    """(X_train, X_test): all 60,000 training images (no validation split) and 10,000 test images."""
    from ksparse.datasets.mnist import load_mnist

    data = load_mnist(data_dir, val_size=0, download=False, verify=not dry)
    return data.X_train, data.X_test


def write_idx(path, array):
    """Write a uint8 array as a gzipped IDX file (the MNIST format)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()

    def write(f):
        with gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=0) as z:  # no temporary name inside
            z.write(data)
    atomic_write(path, write)


def fake_mnist(folder, n_train=256, n_test=64, seed=0):
    """Random MNIST-shaped files in ``folder``/mnist, for a dry run."""
    from ksparse.datasets.mnist import FILES

    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(folder, "mnist"), exist_ok=True)
    for role, n in (("train", n_train), ("test", n_test)):
        pixels = rng.integers(0, 256, (n, 28, 28)) * (rng.random((n, 28, 28)) < 0.15)  # MNIST's energy
        write_idx(os.path.join(folder, "mnist", FILES[role + "_images"] + ".gz"), pixels)
        write_idx(os.path.join(folder, "mnist", FILES[role + "_labels"] + ".gz"), rng.integers(0, 10, n))


def cpu_reference(X, config, n_epochs):
    """Train on the CPU for ``n_epochs`` epochs: per-epoch loss and seconds, and samples per second."""
    from ksparse.training.loop import fit

    losses, seconds, state = [], [], None
    for _ in range(n_epochs):
        t0 = time.perf_counter()
        state = fit(X, None if state else config, state=state, epochs=1)
        seconds.append(time.perf_counter() - t0)
        losses.append(state.history[-1]["loss"])
    return {"config": config, "losses": losses, "epoch_seconds": seconds,
            "samples_per_s": X.shape[0] / float(np.median(seconds)), "machine": common.machine()}


def prepare(folder, data_dir=None, n_epochs=3, dry=False):
    """Copy MNIST into ``folder``/mnist and store the CPU's first epochs in ``folder``/cpu_reference.json.

    Each file is copied atomically; one that is already the file to copy (``folder`` is the data
    folder itself) is left as it is, not copied onto itself."""
    from ksparse.datasets import data_dir as resolve
    from ksparse.datasets.mnist import FILES, locate_mnist

    os.makedirs(os.path.join(folder, "mnist"), exist_ok=True)
    if dry:
        fake_mnist(folder)
    else:
        for path in locate_mnist(resolve(data_dir), download=False).values():
            name = os.path.basename(path)
            assert name.split(".")[0] in FILES.values(), path
            target = os.path.join(folder, "mnist", name)
            if same_file(path, target):  # --prepare into the data folder: the file is there already
                continue
            with open(path, "rb") as src:
                atomic_write(target, lambda f, src=src: shutil.copyfileobj(src, f))
    X, _ = load(folder, dry)
    ref = cpu_reference(X, train_config(dry), 1 if dry else n_epochs)
    common.write_json(os.path.join(folder, REFERENCE), ref)
    return ref


def train(X, dev, budget_s, dry, reference=None):
    """Fit on the device epoch by epoch until ``budget_s`` (at least one epoch, at most max_iter)."""
    from ksparse.training.loop import fit

    config = train_config(dry)
    losses, seconds, state, spent = [], [], None, 0.0
    while spent < budget_s and (state is None or state.epoch < config["max_iter"]):
        dev.sync()
        t0 = time.perf_counter()
        state = fit(X, None if state else config, state=state, device=dev.ksparse_device, epochs=1)
        dev.sync()
        seconds.append(time.perf_counter() - t0)
        spent += seconds[-1]
        losses.append(state.history[-1]["loss"])
    out = {"config": config, "images": int(X.shape[0]), "epochs": len(losses), "losses": losses,
           "epoch_seconds": seconds, "samples_per_s": X.shape[0] / float(np.median(seconds))}
    if reference:
        n = min(len(losses), len(reference["losses"]))
        out["cpu_losses"] = reference["losses"][:n]
        pairs = zip(losses[:n], reference["losses"][:n], strict=True)
        out["max_rel_loss_diff"] = max(abs(a - b) / abs(b) for a, b in pairs)
        out["speedup_over_cpu"] = out["samples_per_s"] / reference["samples_per_s"]
    return out, state


def dictionary(X, X_eval, dev, budget_s, threads):
    """Test MSE per pixel at each budget: ksparse on the device, the others on the host's CPUs."""
    from benchmarks import dictionary as cpu

    common.set_threads(threads)
    marks = [budget_s / 10, budget_s / 3, budget_s]
    wall = time.perf_counter  # the device works outside the process's CPU time
    own, _ = cpu.ksparse_runs(X, X_eval, marks, device=dev.ksparse_device, clock=wall)
    others = {"scikit-learn MiniBatchDictionaryLearning (CPU)":
              cpu.sklearn_curve(X, X_eval, budget_s, clock=wall),
              "K-SVD (reference, approximate; CPU)": cpu.ksvd_curve(X, X_eval, budget_s, clock=wall)}
    mine = {f"ksparse ({dev.name})": "own", "ksparse dictionary, OMP codes": "omp"}
    return {"budget_s": budget_s, "n_train": int(X.shape[0]), "n_eval": int(X_eval.shape[0]),
            "H": cpu.H, "k": cpu.K, "threads": threads,
            "at_budget": {**{n: {f"{r['budget_s']:g}": r[key] for r in own} for n, key in mine.items()},
                          **{n: {f"{b:g}": cpu.at_budget(c, b) for b in marks}
                             for n, (c, _) in others.items()}},
            "training_calls": {**{n: [r["epochs"] for r in own] for n in mine},
                               **{n: calls for n, (_, calls) in others.items()}}}


def main(argv=None):
    """No run of its own: a part of ``python -m benchmarks.gpu`` (``--help`` says so)."""
    common.part_of("gpu_train", "gpu", __doc__, argv)


if __name__ == "__main__":
    main()
