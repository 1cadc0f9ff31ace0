"""Peak resident memory of ``ksparse train`` and ``ksparse encode`` on a memory-mapped 2 GB .npy.

    python -m benchmarks.rss [--gb 2.0] [--max-iter 1] [--folder DIR] [--no-save]

Writes BIG.npy (random float32 rows of d = 784 at the scale of MNIST pixels: each entry
uniform in [0, 1) with probability 0.2, else 0; 2 * 10^9 bytes of data by default) block
by block into a temporary folder, then runs, each under
``/usr/bin/time -v``:

- ``python -m ksparse.cli train --dataset BIG.npy --max-iter 1 --no-logreg --quiet`` (the
  defaults otherwise: H = 1000, k = 20, batch 64), which reads the file one minibatch of
  rows at a time through a fresh memory map (:class:`ksparse.blockio.NpyRows`);
- ``python -m ksparse.cli encode MODEL BIG.npy CODES.npz --form topk``,

and records "Maximum resident set size" and the wall time of each. The issue's target for
``train`` is 500 MB. Writes docs/rss.json (not a test: it takes minutes and 2 GB of disk).
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import common
from ksparse.argparsing import HintParser
from ksparse.io import atomic_write, path_argument

D = 784


def write_big(path, n_bytes, block_rows=1 << 15):
    """A float32 (N, D) .npy of about ``n_bytes`` of data, written block by block (uniform entries,
    80% of them zeroed, so that the default learning rate suits it as it suits MNIST)."""
    from ksparse.blockio import write_npy_blocks

    n = int(n_bytes // (4 * D))
    rng = np.random.default_rng(0)
    blocks = (_rows(rng, min(block_rows, n - lo)) for lo in range(0, n, block_rows))
    write_npy_blocks(path, np.float32, (n, D), blocks)
    return n


def _rows(rng, n):
    return rng.random((n, D), dtype=np.float32) * (rng.random((n, D), dtype=np.float32) < 0.2)


def timed(argv):
    """Run ``argv`` under /usr/bin/time -v; return its peak RSS (MB), wall seconds and exit code."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return {"command": " ".join(argv[2:]), "returncode": p.returncode, "wall_s": wall,
            "max_rss_MB": int(m.group(1)) / 1024 if m else None,
            "stderr_tail": p.stderr[-600:] if p.returncode else ""}


def run(gb=2.0, max_iter=1, folder=None):
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        big = os.path.join(tmp, "BIG.npy")
        n = write_big(big, gb * 1e9)
        py = [sys.executable, "-m", "ksparse.cli"]
        train = timed([*py, "train", "--dataset", big, "--max-iter", str(max_iter), "--no-logreg", "--quiet",
                       "--out", os.path.join(tmp, "run")])
        encode = timed([*py, "encode", os.path.join(tmp, "run", "model.npz"), big,
                        os.path.join(tmp, "codes.npz"), "--form", "topk"])
        return {"machine": common.machine(), "file_bytes": os.path.getsize(big), "rows": n, "d": D,
                "max_iter": max_iter, "train": train, "encode": encode,
                "target_MB": 500, "loadavg_after": list(os.getloadavg())}


def main(argv=None):
    p = HintParser(description=__doc__)
    p.add_argument("--gb", type=float, default=2.0, help="data size in units of 10^9 bytes (default 2)")
    p.add_argument("--max-iter", type=int, default=1, help="epochs of the training run (default 1)")
    p.add_argument("--folder", default=None, type=path_argument,
                   help="an existing folder to put the temporary file in (default: the system's)")
    p.add_argument("--no-save", action="store_true", help="do not write docs/rss.json")
    args = p.parse_args(argv)
    if args.folder is not None and not os.path.isdir(args.folder):  # before the 2 GB are written
        p.error(f"--folder {args.folder!r} is not a folder; give an existing folder for the temporary file")
    results = run(args.gb, args.max_iter, args.folder)
    print(json.dumps({k: results[k] for k in ("file_bytes", "rows", "train", "encode")}, indent=1))
    if not args.no_save:
        text = json.dumps(results, indent=1)
        atomic_write(os.path.join(common.ROOT, "docs", "rss.json"), lambda f: f.write(text.encode()))
    return results


if __name__ == "__main__":
    main()
