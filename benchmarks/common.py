"""Shared helpers: thread pools, interleaved timing, machine facts, result files."""

import itertools
import json
import os
import platform
import sys
import time

import numpy as np

from ksparse.argparsing import HintParser
from ksparse.io import folder_argument, path_argument

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "docs", "benchmarks.json")


def set_threads(n):
    """Limit every thread pool in the process to ``n``: all BLAS copies (numpy and scipy ship
    their own OpenBLAS), OpenMP, numba and torch. Call after importing torch."""
    import scipy.linalg  # noqa: F401  (load scipy's own OpenBLAS before limiting it)
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n


# Seconds each timed block is preceded by untimed calls of its own method. After a call
# that used several BLAS threads, OpenBLAS's workers poll for new work for 2^28 cycles (its
# THREAD_TIMEOUT, about 0.1 s at 2.6 GHz) before they sleep, and meanwhile take a core from
# whatever runs next: a block started right after another method's would pay for it. The
# untimed calls let each block start with the thread pools in its own method's state.
SETTLE_S = 0.2


def settle(call, seconds=SETTLE_S):
    """Call ``call()`` until ``seconds`` have passed (at least once); return the first call's seconds."""
    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    while time.perf_counter() - t0 < seconds:
        call()
    return first


def one_batch_at_a_time(f, batches):
    """A callable that runs ``f`` on the next of ``batches`` (cycling) at each call: a warm-up for
    :func:`settle`."""
    batch = itertools.cycle(batches)
    return lambda: f(next(batch))


# A case is marked busy when other processes took more than this share of the machine's
# CPU time (all cores) while it ran.
BUSY_SHARE = 0.10


def loadavg():
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(v, 2) for v in os.getloadavg()]


def cpu_snapshot():
    """(CPU seconds the whole machine spent busy, CPU seconds of this process, wall seconds).

    The machine's figure comes from /proc/stat (user, nice, system, irq, softirq, steal);
    None where that file does not exist.
    """
    busy = None
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
        busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return busy, time.process_time(), time.perf_counter()


def others_share(before, after):
    """The share of the machine's CPU time (0-1, over all cores) that other processes used
    between two :func:`cpu_snapshot` calls; from the load average where /proc/stat is missing."""
    wall = after[2] - before[2]
    if before[0] is None or after[0] is None or wall <= 0:
        return max(0.0, os.getloadavg()[0] - 1) / (os.cpu_count() or 1)
    others = (after[0] - before[0]) - (after[1] - before[1])
    return float(min(1.0, max(0.0, others / (wall * (os.cpu_count() or 1)))))


def interleaved(fns, rounds, warmup=2):
    """Time each callable once per round, in rotating order; return {name: seconds array}.

    Interleaving puts every method under the same load drift, so per-round ratios to a
    baseline stay meaningful on a shared machine. The first ``warmup`` rounds are dropped.
    """
    names = list(fns)
    times = {n: [] for n in names}
    for r in range(warmup + rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            t0 = time.perf_counter()
            fns[n]()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[n].append(dt)
    return {n: np.array(t) for n, t in times.items()}


def ratios(times, baseline):
    """Median per-round ratio of each method to ``baseline``, and its median time in ms."""
    base = times[baseline]
    return {n: {"ratio": float(np.median(t / base)), "ms": float(np.median(t) * 1e3),
                "ms_min": float(t.min() * 1e3), "rounds": int(t.size)} for n, t in times.items()}


def rounds_for(fns, budget_s, lo=5, hi=40):
    """How many interleaved rounds fit in ``budget_s``, from one timed trial round."""
    t0 = time.perf_counter()
    for f in fns.values():
        f()
    per_round = time.perf_counter() - t0
    return int(np.clip(budget_s / max(per_round, 1e-9), lo, hi))


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def machine():
    """Machine, BLAS, thread and version facts for the benchmark page."""
    from threadpoolctl import threadpool_info

    blas = [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "filepath")}
            for p in threadpool_info()]
    for p in blas:
        p["filepath"] = os.path.basename(p["filepath"] or "")
    return {
        "cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(), "loadavg": list(os.getloadavg()),
        "thread_pools": blas,
        "versions": {n: _version(n) for n in ("ksparse", "numpy", "scipy", "scikit-learn", "numba",
                                              "torch", "threadpoolctl", "cupy-cuda12x")},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def load_results():
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            return json.load(f)
    return {}


def save_results(section, data, drop=()):
    """Store ``data`` under ``section`` in docs/benchmarks.json, keeping the other sections
    except those named in ``drop``."""
    results = load_results()
    results[section] = data
    for name in drop:
        results.pop(name, None)
    write_json(RESULTS, results)
    return results


def write_json(path, data):
    """Write ``data`` as JSON to ``path`` atomically."""
    from ksparse.io import atomic_write

    atomic_write(path, lambda f: f.write(json.dumps(data, indent=1, default=float).encode()))


def write_report(path, data, markdown):
    """Write ``data`` to ``path`` (.json) and the text ``markdown`` beside it (.md), atomically."""
    from ksparse.io import atomic_write

    write_json(path, data)
    atomic_write(os.path.splitext(path)[0] + ".md", lambda f: f.write(markdown.encode()))


def save_part(path, results, part, out, command, threads, markdown, into=None):
    """Store one part's record (stamped with ``command``, the time and ``threads``) in ``results``
    (or in ``into``, a dict inside it) and rewrite ``path`` (.json) and its .md page from
    ``markdown(results)``; after every part or run, so that a stopped job keeps what it measured."""
    out.update(command=command, when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), threads=threads)
    (results if into is None else into)[part] = out
    write_report(path, results, markdown(results))


def table(header, rows):
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def parse_args(description, argv=None, epoch=False):
    import argparse

    p = HintParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a short run, for development; never writes the docs "
                   "(implies --no-save)")
    p.add_argument("--threads", type=int, default=2, help="threads for every pool (default 2)")
    p.add_argument("--no-save", action="store_true", help="do not write the docs files (docs/*.json, .md)")
    p.add_argument("--data-dir", type=path_argument,
                   default=None, help="folder holding mnist/ (default: $KSPARSE_DATA)")
    p.add_argument("--only", default=None,
                   help="run_all: only these comma-separated sections "
                   "(compile, step, lazy, encode, dictionary)")
    if epoch:
        p.add_argument("--images", type=int, default=None,
                       help="MNIST training images per epoch (default: all 50,000)")
        p.add_argument("--rounds", type=int, default=None, help="epochs per method (default 3)")
    return quick_never_saves(p.parse_args(argv))


def quick_never_saves(args):
    """A development run (``--quick``) never rewrites the docs: it sets ``no_save``."""
    if getattr(args, "quick", False):
        args.no_save = True
    return args


def part_of(module, parent, description, argv=None):
    """``main`` of a module with no run of its own (a part of ``python -m benchmarks.PARENT``):
    ``--help`` says so and exits; without it, print where to go instead."""
    import argparse

    epilog = f"A part of benchmarks.{parent}: run `python -m benchmarks.{parent} --help`."
    HintParser(prog=f"python -m benchmarks.{module}", description=description, epilog=epilog,
               formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    print(f"benchmarks.{module} is a part of benchmarks.{parent}; run `python -m benchmarks.{parent}`")


def parts_args(doc, argv, name, parts, seeds, add=None):
    """Parse the options of a benchmark run in parts (``--part``, ``--seeds``, ``--data-dir``,
    ``--threads``, ``--out``; ``add(parser)`` adds its own), set the threads, and load what an
    earlier run saved. Returns ``(args, path, results, command)``; each finished part goes to
    :func:`save_part` with ``command``, so that a stopped job keeps what it measured."""
    p = HintParser(description=doc.split("\n")[0])
    p.add_argument("--part", default=parts, help=f"comma-separated parts to run (default: {parts})")
    p.add_argument("--seeds", default=seeds, help=f"comma-separated seeds (default: {seeds})")
    if add is not None:
        add(p)
    p.add_argument("--data-dir", type=path_argument, default=None,
                   help="data folder (default: $KSPARSE_DATA, else ~/.cache/ksparse)")
    p.add_argument("--threads", type=int, default=1, help="BLAS and numba threads (default: 1)")
    p.add_argument("--out", type=folder_argument, default=os.path.join(ROOT, "docs"),
                   help=f"folder for {name}.json and .md (default: docs)")
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    set_threads(args.threads)
    path = os.path.join(args.out, f"{name}.json")
    results = json.load(open(path)) if os.path.isfile(path) else {}
    command = f"python -m benchmarks.{name} " + " ".join(argv or [])
    return args, path, results, command
