"""Compile time of the first run: numba's kernels from an empty cache, against a warm cache.

    python -m benchmarks.compile [--no-save]

Runs the same small job twice in fresh processes that share one new, empty numba cache
folder (NUMBA_CACHE_DIR): fit a float32 KSparseAutoencoder for one epoch, then transform
(the kernels a first ``ksparse train`` compiles). The first process compiles every
kernel it calls and writes the cache; the second loads them. Compile time is the
difference, in wall seconds and in CPU seconds (the CPU figure is what a quiet machine
would show as wall time: compiling is single-threaded). Three such rounds, each with its own
empty cache; the median round is reported, and all are kept.
"""

import json
import os
import subprocess
import sys
import tempfile

from benchmarks import common

JOB = """
import json, time
w0, c0 = time.perf_counter(), time.process_time()
import numpy as np
from ksparse import KSparseAutoencoder
x = np.random.default_rng(0).random((256, 784)).astype(np.float32)
ae = KSparseAutoencoder(n_hidden=300, k=25, max_iter=1, batch_size=128, random_state=0).fit(x)
ae.transform(x[:64])
print(json.dumps({"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0}))
"""


def job_seconds(cache_dir):
    """Wall and CPU seconds of JOB in a fresh interpreter with ``cache_dir`` as numba's cache."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", JOB], capture_output=True, text=True, cwd=common.ROOT,
                         env=env, timeout=600, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def run(rounds=3):
    """``rounds`` cold/warm pairs, each with its own empty cache; the figures are the median
    round's (by compile CPU time), every round is kept under ``"rounds"``."""
    before = common.cpu_snapshot()
    pairs = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as cache:
            cold, warm = job_seconds(cache), job_seconds(cache)
        pairs.append({"cold": cold, "warm": warm, "compile_wall_s": cold["wall"] - warm["wall"],
                      "compile_cpu_s": cold["cpu"] - warm["cpu"]})
    after = common.cpu_snapshot()
    # the jobs ran in child processes: their CPU time is ours, not other processes'
    jobs = sum(p["cold"]["cpu"] + p["warm"]["cpu"] for p in pairs)
    share = common.others_share(before, (after[0], after[1] + jobs, after[2]))
    median = sorted(pairs, key=lambda p: p["compile_cpu_s"])[len(pairs) // 2]
    return {"machine": common.machine(), **median, "rounds": pairs,
            "others_share": share, "busy": share > common.BUSY_SHARE, "loadavg_after": common.loadavg()}


def report(results):
    busy = " (**busy** machine: the wall time is inflated; the CPU time is the guide)" * results["busy"]
    return (f"First run after an install (empty numba cache), a one-epoch fit and a transform: "
            f"{results['cold']['wall']:.1f} s wall, {results['cold']['cpu']:.1f} s CPU; the same job with "
            f"the cache filled: {results['warm']['wall']:.1f} s wall, {results['warm']['cpu']:.1f} s CPU. "
            f"Compiling costs **{results['compile_cpu_s']:.1f} s of CPU** ({results['compile_wall_s']:.1f} s "
            f"wall){busy}, the median of {len(results.get('rounds', [])) or 1} rounds, each from its own "
            f"empty cache (every round: {_rounds(results)}). Command: `python -m benchmarks.compile`.")


def _rounds(results):
    return ", ".join(f"{r['compile_cpu_s']:.1f} s CPU / {r['compile_wall_s']:.1f} s wall"
                     for r in results.get("rounds", [results]))


def main(argv=None):
    args = common.parse_args(__doc__, argv)
    results = run()
    print(report(results))
    if not args.no_save:
        common.save_results("compile", results)
    return results


if __name__ == "__main__":
    main()
