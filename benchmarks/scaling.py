"""Scaling: where the exchange of dW stops dominating a data-parallel step, and the next scale on paper.

    python -m benchmarks.scaling [--quick] [--no-save]

Part 1 (measured here): a Dask ``LocalCluster`` of 2 worker processes (1 thread each,
TCP on localhost) runs :class:`ksparse.parallel.data_parallel.DaskDataParallelStep` on
MNIST-shaped float32 data (d = 784, k = 25) for H in {1000, 4000} and minibatches of 128
to 8192 rows. Per configuration it times the whole data-parallel step, the compute of one
shard alone (:func:`ksparse.parallel.data_parallel.shard_gradient` in this process), and
the exchange alone (the same scatter of W, b, b' and gather of the shards' support-only
dW, with no compute). The exchange's cost fits latency + bytes / bandwidth; with it the
script projects the batch at which compute overtakes the exchange on a network of
stated speed.

Part 2 (arithmetic, no measurement): H = 2^20 hidden units, N = 10^9 samples on a GPU
cluster, from the stated assumptions in :data:`CLUSTER`. Writes docs/scaling.json and
docs/scaling.md (every number on that page comes from this script).
"""

import os
import time

import numpy as np

from benchmarks import common

K = 25
D = 784

# Part 2's assumptions: spec-sheet figures, not measurements (no GPU was available here).
CLUSTER = {
    "H": 2**20, "N": 10**9, "k": 32, "d": (768, 4096), "bytes_per_number": 4,
    "devices": (8, 64), "rows_per_device": 1024,
    "gpu": "NVIDIA H100 SXM 80 GB", "gpu_memory_GB": 80,
    "gemm_TFLOPs": 200.0,            # sustained TF32 tensor-core rate assumed for D1
    "hbm_TBps": 3.35,                # HBM3 bandwidth, for the pass of Eq. (11) over W and v
    "nvlink_GBps": 450.0,            # per GPU and direction, within a node of 8
    "interconnect_GBps": 50.0,       # 400 Gb/s InfiniBand per GPU, between nodes
}
NETWORKS_GBps = {"10 Gb/s Ethernet": 1.25, "100 Gb/s Ethernet or InfiniBand": 12.5}


# -- Part 1: measured on this machine --------------------------------------------------------

def _median_time(f, reps):
    f()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _exchange(client, params, parts_shapes):
    """The data-parallel step's traffic without its compute: scatter the parameters, gather dW's."""
    workers = sorted(client.ncores())
    [p] = client.scatter([params], broadcast=True, hash=False)
    futures = [client.submit(_fake_part, p, shape, workers=[w], pure=False)
               for w, shape in zip(workers, parts_shapes, strict=True)]
    client.gather(futures)


def _fake_part(params, shape):
    """A shard's reply of the given dW shape (d, m), built without computing anything."""
    return np.zeros(shape, params[0].dtype), np.arange(shape[1])


def measure_case(client, H, batch, reps, rng):
    """Step, shard compute and exchange times for one (H, batch) on the 2-worker cluster."""
    from ksparse.parallel.data_parallel import DaskDataParallelStep, shard_gradient

    x = rng.random((batch, D), dtype=np.float32)
    params = {"W": np.asfortranarray(rng.normal(0, 0.05, (D, H)).astype(np.float32)),
              "b": np.zeros(H, np.float32), "b_prime": np.zeros(D, np.float32)}
    ptuple = (params["W"], params["b"], params["b_prime"])
    step = DaskDataParallelStep(client)
    half = np.array_split(x, 2)
    units = [np.unique(shard_gradient(s, ptuple, K, batch)[1]).size for s in half]
    return {
        "H": H, "batch": batch, "units_per_shard": units,
        "step_s": _median_time(lambda: step.gradient(x, params, K), reps),
        "shard_compute_s": _median_time(lambda: shard_gradient(half[0], ptuple, K, batch), reps),
        "exchange_s": _median_time(lambda: _exchange(client, ptuple, [(D, u) for u in units]), reps),
        "exchange_bytes": int(2 * params["W"].nbytes + sum(D * u * 4 for u in units)),
    }


def measure(quick=False):
    """Part 1 on a LocalCluster of 2 processes; returns the cases and the fitted link."""
    from distributed import Client, LocalCluster

    common.set_threads(1)
    rng = np.random.default_rng(0)
    batches = (128, 1024, 8192) if quick else (128, 512, 2048, 8192)
    out = {"loadavg_before": list(os.getloadavg()), "cases": []}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      env={"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}) as cluster, \
            Client(cluster) as client:
        for H in (1000, 4000):
            for batch in batches:
                out["cases"].append(measure_case(client, H, batch, 3 if quick else 5, rng))
    out["loadavg_after"] = list(os.getloadavg())
    b = np.array([c["exchange_bytes"] for c in out["cases"]], float)
    t = np.array([c["exchange_s"] for c in out["cases"]])
    slope, latency = np.polyfit(b, t, 1)
    out["link"] = {"latency_s": float(latency), "GBps": float(1e-9 / slope) if slope > 0 else None}
    return out


def crossover(measured, network_GBps=None):
    """Smallest measured batch per H whose shard compute exceeds the exchange; with a network
    speed, the exchange is projected as latency + bytes / speed."""
    result = {}
    for c in measured["cases"]:
        exchange = c["exchange_s"] if network_GBps is None else (
            measured["link"]["latency_s"] + c["exchange_bytes"] / (network_GBps * 1e9))
        if c["shard_compute_s"] >= exchange and c["H"] not in result:
            result[c["H"]] = c["batch"]
    return {H: result.get(H) for H in sorted({c["H"] for c in measured["cases"]})}


# -- Part 2: the next scale, on paper --------------------------------------------------------

def project(d, P, c=CLUSTER):
    """Memory, traffic and time per step for H = 2^20 at width d on P GPUs (float32)."""
    H, k, B, nb = c["H"], c["k"], c["rows_per_device"], c["bytes_per_number"]
    weights = d * H * nb
    link = c["nvlink_GBps"] if P <= 8 else c["interconnect_GBps"]
    ring = 2 * (P - 1) / P
    used = min(H, B * k)  # units on one device's support: the columns of dW it sends
    sparse = P * used * (d * nb + 4)  # all-gather of (unit, column) pairs, received per device
    return {
        "d": d, "P": P, "global_batch": B * P, "steps_per_epoch": int(np.ceil(c["N"] / (B * P))),
        "replica_GiB": {"W": weights / 2**30, "velocity": weights / 2**30, "dW": weights / 2**30,
                        "z of one minibatch": B * H * nb / 2**30},
        "sharded_GiB": 3 * weights / P / 2**30,
        "allreduce_dense_GiB": ring * weights / 2**30,
        "allgather_support_GiB": sparse / 2**30,
        "sharded_traffic_GiB": (ring * B * P * d * nb + B * P * k * P * 8) / 2**30,
        "d1_s": 2 * B * d * H / (c["gemm_TFLOPs"] * 1e12),
        "dense_rest_s": 8 * B * d * H / (c["gemm_TFLOPs"] * 1e12),
        "support_rest_s": 4 * B * k * d * nb / (c["hbm_TBps"] * 1e12),  # gathers: memory-bound
        "update_pass_s": 4 * weights / (c["hbm_TBps"] * 1e12),
        "allreduce_dense_s": ring * weights / (link * 1e9),
        "allgather_support_s": sparse / (link * 1e9),
        "link_GBps": link,
    }


def run(quick=False):
    measured = measure(quick)
    return {"machine": common.machine(), "k": K, "d": D, "measured": measured,
            "crossover_here": crossover(measured),
            "crossover_projected": {n: crossover(measured, s) for n, s in NETWORKS_GBps.items()},
            "cluster": CLUSTER,
            "projection": [project(d, P) for d in CLUSTER["d"] for P in CLUSTER["devices"]]}


def main(argv=None):
    from benchmarks import scaling_report

    args = common.parse_args(__doc__, argv)
    results = run(args.quick)
    text = scaling_report.report(results)
    print(text)
    if not args.no_save:
        common.write_report(os.path.join(common.ROOT, "docs", "scaling.json"), results, text)
    return results


if __name__ == "__main__":
    main()
