"""docs/scaling.md from the results of :mod:`benchmarks.scaling` (every number comes from there)."""

from benchmarks import common
from benchmarks.common import table


def _measured(r):
    m = r["measured"]
    rows = [[c["H"], c["batch"], f"{c['step_s'] * 1e3:.1f}", f"{c['shard_compute_s'] * 1e3:.1f}",
             f"{c['exchange_s'] * 1e3:.1f}", f"{c['exchange_bytes'] / 2**20:.1f}",
             " / ".join(str(u) for u in c["units_per_shard"])] for c in m["cases"]]
    header = ["H", "minibatch", "data-parallel step (ms)", "one shard's compute (ms)",
              "exchange alone (ms)", "exchanged (MiB)", "units used per shard"]
    link = m["link"]
    speed = "n/a" if link["GBps"] is None else f"{link['GBps']:.2f} GB/s"
    here = ", ".join(f"H = {H}: {b if b else 'none measured'}" for H, b in r["crossover_here"].items())
    lines = [
        "## 1. Where the exchange of dW stops dominating (measured)", "",
        f"A `LocalCluster` of 2 worker processes (1 thread each, TCP on localhost) runs "
        f"`DaskDataParallelStep` on float32 data with d = {r['d']}, k = {r['k']}. Each minibatch is split "
        "in two shards; each worker computes its shard's support-only gradient and returns only the "
        "columns of dW of the units its shard used. \"Exchange alone\" is the same traffic with no compute "
        "(scatter W, b, b' to both workers, gather the two replies). The data and W are random "
        "(uniform x, Gaussian W), so few units win: the units used per shard are those of this data, "
        "not of a trained model.", "",
        table(header, rows), "",
        f"Load average before / after: {m['loadavg_before'][0]:.1f} / {m['loadavg_after'][0]:.1f} on "
        f"{r['machine']['cores']} cores ({r['machine']['cpu']}), shared with other jobs: the times are "
        "noisy, the orders of magnitude are not.", "",
        f"A straight line through (bytes, exchange time) gives a latency of "
        f"{link['latency_s'] * 1e3:.1f} ms per step and {speed} on this machine's loopback. "
        "The smallest measured minibatch whose shard compute "
        f"exceeds the exchange: {here}.", "",
    ]
    for name, cross in r["crossover_projected"].items():
        text = ", ".join(f"H = {H}: {b if b else 'beyond the largest measured minibatch'}"
                         for H, b in cross.items())
        lines.append(f"- Projected on {name} (same latency, exchange = latency + bytes / speed): {text}.")
    lines += ["", "Both sides grow with H: the compute as N d H (D1), the exchange as d H (the broadcast "
              "of W) plus d times the units used (at most d min(H, rows k)). So the crossover is a minibatch "
              "size per worker, nearly independent of H, set by the ratio of the worker's flop rate to the "
              "network's byte rate; a fixed per-step latency (scheduling, serialisation) moves it up for "
              "small H.", ""]
    return lines


def _projection(r):
    c = r["cluster"]
    rows = []
    for p in r["projection"]:
        g = p["replica_GiB"]
        rows.append([p["d"], p["P"], p["global_batch"], f"{p['steps_per_epoch']:,}",
                     f"{g['W'] + g['velocity'] + g['dW']:.1f} + {g['z of one minibatch']:.1f}",
                     f"{p['sharded_GiB']:.2f}",
                     f"{p['allreduce_dense_GiB']:.2f} ({p['allreduce_dense_s'] * 1e3:.0f} ms)",
                     f"{p['allgather_support_GiB']:.2f} ({p['allgather_support_s'] * 1e3:.0f} ms)",
                     f"{p['sharded_traffic_GiB']:.3f}",
                     f"{p['d1_s'] * 1e3:.1f}", f"{p['dense_rest_s'] * 1e3:.1f}",
                     f"{p['support_rest_s'] * 1e3:.2f}", f"{p['update_pass_s'] * 1e3:.1f}"])
    header = ["d", "GPUs", "global batch", "steps / epoch", "replica: W + v + dW, + z (GiB)",
              "H-sharded: W + v + dW per GPU (GiB)", "dense all-reduce per GPU (GiB, time)",
              "support-only all-gather per GPU (GiB, time)", "H-sharded traffic per GPU (GiB)",
              "D1 (ms)", "D3, D6, D8 dense (ms)", "D3, D6, D8 on the support, memory-bound (ms)",
              "Eq. (11) pass over W, v (ms)"]
    return [
        "## 2. The next scale on paper: H = 2^20, N = 10^9", "",
        f"Assumptions (spec-sheet figures, not measured; no GPU was available to this run): "
        f"{c['gpu']}, {c['gemm_TFLOPs']:.0f} TFLOP/s sustained for the products, HBM "
        f"{c['hbm_TBps']} TB/s, NVLink {c['nvlink_GBps']:.0f} GB/s per GPU within a node of 8, "
        f"{c['interconnect_GBps']:.0f} GB/s per GPU between nodes; float32 parameters; k = {c['k']}; "
        f"{c['rows_per_device']} rows per GPU per step.", "",
        table(header, rows), "",
        "What the table says:", "",
        "- **Memory.** A full replica (data parallelism) holds W, its velocity and dW, 3 d H numbers "
        "(the \"replica\" column); at d = 4096 that is most of an 80 GB GPU before any activations, and "
        "the z of one minibatch (rows x H) must itself be computed in row blocks, as "
        "`ksparse.kernels.encode` does. Sharding the hidden units across the GPUs divides all three by "
        "the number of GPUs.",
        "- **All-reduce.** A dense all-reduce of dW moves 2 (P-1)/P d H numbers per GPU per step, "
        "more time than D1 itself at this batch. The support-only step changes this while the GPUs' "
        "supports together cover little of H (P x rows x k < H): dW is zero outside the units some "
        "row selected, so each GPU sends only min(H, rows k) columns, an all-gather of (unit, column) "
        "pairs (the 8-GPU rows). At 64 GPUs the supports cover H and the all-gather moves as much as "
        "the dense all-reduce. The rest of the step (D3, D6, D8) reads rows x k columns of W instead "
        "of three more dense products (timed above as memory-bound gathers), so D1 and the exchange "
        "are what is left.",
        "- **Sharding H instead of the batch** removes the exchange of dW altogether: each GPU owns H/P "
        "units and their columns of W; per step it exchanges only its candidates for the global top-k "
        "(rows x k x P pairs) and the partial reconstructions (an all-reduce of rows x d), the last "
        "column of traffic above. Its gradient for its own units is local. This is the layout to use at "
        "H = 2^20.",
        "- **The update.** Eq. (11) reads and writes W and v once per step; on the support only (lazy "
        "momentum, issue #13 item 3) it touches min(H, rows k) columns instead of H.", "",
        "Which engine would carry it: the per-GPU step is the CuPy path that exists "
        "(`ksparse.kernels._cupy`), and the collectives are NCCL's, reached from CuPy through "
        "`cupy.cuda.nccl` (or `cupyx.distributed.NCCLBackend`): an all-reduce of b' and of the partial "
        "x_hat, an all-gather of the top-k candidates. Dask (with dask-cuda) fits the data side: reading "
        "10^9 rows in blocks, and encoding them afterwards, which needs no communication at all "
        "(`ksparse.parallel.dask_encode`). The Dask data-parallel step of part 1 sends W through the "
        "scheduler every step and is a correctness reference and a small-cluster tool, not the "
        "2^20-unit engine.", "",
    ]


def report(r):
    lines = ["# Scaling past one process", "",
             f"Written by `python -m benchmarks.scaling` on {r['machine']['date']}; raw numbers in "
             "`docs/scaling.json`.", ""]
    return "\n".join(lines + _measured(r) + _projection(r)) + "\n"


def main(argv=None):
    """No run of its own: a part of ``python -m benchmarks.scaling`` (``--help`` says so)."""
    common.part_of("scaling_report", "scaling", __doc__, argv)


if __name__ == "__main__":
    main()
