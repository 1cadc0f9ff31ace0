"""Subnormal velocities: what they cost this CPU, and the paper's setting's epochs with them flushed.

    python -m benchmarks.subnormal [--out docs] [--data-dir DIR] [--epochs 8]

Eq. (11) shrinks the velocity of a unit off the support by m per step, so a dead unit's
velocity becomes subnormal (below ``numpy.finfo(float32).tiny``) after about 800 steps, and
every CPU update of ksparse stores such entries as 0 (``ksparse.nn.optim``, docs/equations.md
D12). Two measurements, on one thread:

- ``pass``: ``v *= 0.9`` over a (784, 1000) float32 array of normal numbers (1e-3) and of
  subnormal ones (1e-39), NumPy, 100 passes each, the median of 5 rounds: what one pass over
  the velocity of 1000 dead units would cost without the flush.
- ``paper``: ``KSparseAutoencoder(paper=True)`` (no resampling: most units die) on MNIST
  (50,000 images, H = 1000, k = 25, batch 128) for ``--epochs`` epochs: the seconds of each
  epoch, the dead fraction, and the share of subnormal entries in the velocity at the end
  (0 with the flush).

Writes ``OUT/subnormal.json`` and ``OUT/subnormal.md``.
"""

import os
import sys
import time

import numpy as np

from benchmarks import common
from ksparse.argparsing import HintParser


def part_pass(rounds=5, passes=100):
    """Milliseconds of one ``v *= 0.9`` pass on normal and on subnormal float32 numbers."""
    out = {}
    for name, value in (("normal (1e-3)", 1e-3), ("subnormal (1e-39)", 1e-39)):
        v = np.empty((784, 1000), np.float32)
        times = []
        for _ in range(rounds):
            v.fill(value)  # after 100 passes 1e-3 is still normal, 1e-39 still subnormal (2.7e-44)
            t0 = time.perf_counter()
            for _ in range(passes):
                np.multiply(v, np.float32(0.9), out=v)
            times.append((time.perf_counter() - t0) / passes * 1e3)
        out[name] = float(np.median(times))
    return out


def part_paper(data_dir, epochs):
    """Epoch seconds of the paper's setting on MNIST, with the velocities as ksparse leaves them."""
    from ksparse.datasets.mnist import load_mnist
    from ksparse.estimators.autoencoder import KSparseAutoencoder

    X = load_mnist(data_dir, n_train=None, n_test=1, n_val=1).X_train
    clock = [time.perf_counter()]
    model = KSparseAutoencoder(n_hidden=1000, k=25, paper=True, max_iter=epochs, batch_size=128,
                               random_state=0, callback=lambda record: clock.append(time.perf_counter()))
    model.fit(X)
    v = model.state_.velocity["W"]
    return {"images": int(X.shape[0]), "epoch_s": np.diff(clock).tolist(),
            "dead_fraction": [h.get("dead_fraction") for h in model.history_],
            "subnormal_share_of_velocity": float(np.mean((v != 0) & (np.abs(v) < np.finfo(v.dtype).tiny)))}


def markdown(results):
    m = results["machine"]
    text = ["# Subnormal velocities (docs/equations.md, D12)", "",
            f"`{results['command']}` ({results['when']}); {m['cpu']}, {m['cores']} cores, one thread; "
            f"load average {results['load_start']} at the start.", ""]
    p = results["pass"]
    normal, sub = p["normal (1e-3)"], p["subnormal (1e-39)"]
    text += ["One pass `v *= 0.9` over a (784, 1000) float32 array, NumPy, median of 5 rounds of 100 "
             "passes:", "",
             common.table(["values", "ms per pass"], [[n, f"{t:.3f}"] for n, t in p.items()]), "",
             f"Subnormal / normal: {sub / normal:.1f}×.", ""]
    q = results["paper"]
    text += [f"`KSparseAutoencoder(paper=True)` on {q['images']} MNIST images (H = 1000, k = 25, batch 128; "
             "no resampling), velocities flushed as ksparse does; the share of subnormal velocity entries "
             f"at the end: {q['subnormal_share_of_velocity']:.2g}.", "",
             common.table(["epoch", "seconds", "dead fraction"],
                          [[i + 1, f"{s:.2f}", f"{d:.3f}" if d is not None else "-"] for i, (s, d)
                           in enumerate(zip(q["epoch_s"], q["dead_fraction"], strict=True))]), ""]
    return "\n".join(text)


def main(argv=None):
    parser = HintParser(description=__doc__.splitlines()[0])
    from ksparse.io import folder_argument, path_argument

    parser.add_argument("--out", default="docs", type=folder_argument,
                        help="folder for subnormal.json and subnormal.md (default: docs)")
    parser.add_argument("--data-dir", default=None, type=path_argument,
                        help="data folder (default: $KSPARSE_DATA, else ~/.cache/ksparse)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of the paper part (default: 8)")
    args = parser.parse_args(argv)
    common.set_threads(1)
    words = sys.argv[1:] if argv is None else argv
    results = {"command": " ".join(["python -m benchmarks.subnormal", *words]),
               "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": common.machine(),
               "load_start": [round(x, 2) for x in os.getloadavg()]}
    results["pass"] = part_pass()
    results["paper"] = part_paper(args.data_dir, args.epochs)
    common.write_report(os.path.join(args.out, "subnormal.json"), results, markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
