"""Outbox benchmark (issue 8): durable append, lease and ack throughput, FULL vs NORMAL, against
persist-queue's ``SQLiteAckQueue`` (a durable SQLite ack-queue; WAL, one transaction per put/ack)
measured in the same run on the same files system.

Workload: HR batches of 10 samples (1 Hz, 10 s) and IMU batches of 100 samples x 3 channels
(100 Hz, 1 s), 5 HR : 1 IMU, pre-built. Both stores get the same ``SampleBatch`` es and store
the same bytes (the one-batch wire encoding); the encoding is timed in both.

Rows:
* append, grouped: how the agent appends (one transaction per flush of 64 batches);
* append, 1/txn: one batch per transaction (what persist-queue does for every put);
* lease+ack: ours leases 256 batches and acks them in one transaction (one envelope);
  persist-queue gets and acks item by item (its API has no batch ack of a get).

Numbers on this 2-core machine shared with other jobs are noisy (±30 %); fsync cost depends on
the disk (here a virtual disk, much faster than a Pi's SD card).

Run: python -m bench.bench_outbox [--batches 20000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import print_table
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox
from protocols.wire import SampleBatch, encode_batches

T0 = 1_780_000_000_000_000


def workload(n: int) -> list[SampleBatch]:
    rng = np.random.default_rng(8)
    out = []
    for i in range(n):
        if i % 6 == 5:
            t = T0 + i * 1_000_000 + np.arange(100, dtype=np.int64) * 10_000
            v = rng.integers(-2048, 2048, size=(100, 3))
            out.append(SampleBatch("ble-0000000000aa", "accel", 0, t, v, scale=1 / 4096, unit="g"))
        else:
            t = T0 + i * 10_000_000 + np.arange(10, dtype=np.int64) * 1_000_000
            v = 60 + rng.integers(0, 30, size=10)
            out.append(SampleBatch(f"ble-{i % 50:012x}", "heart_rate", 0, t, v, unit="bpm"))
    return out


def _rate(n: int, dt: float) -> float:
    return n / dt if dt > 0 else float("inf")


def bench_ours(batches: list[SampleBatch], folder: Path, sync: str, n_single: int) -> dict[str, float]:
    res: dict[str, float] = {}
    ob = Outbox(folder / f"ours-{sync}.db", synchronous=sync, max_bytes=1 << 40, metrics=EdgeMetrics())  # type: ignore[arg-type]
    t0 = time.perf_counter()
    for i in range(0, len(batches), 64):
        ob.append(batches[i : i + 64])
    res["append_grouped"] = _rate(len(batches), time.perf_counter() - t0)
    samples = sum(len(b) for b in batches)
    res["append_grouped_samples"] = _rate(samples, time.perf_counter() - t0)
    t0 = time.perf_counter()
    for b in batches[:n_single]:
        ob.append([b])
    res["append_single"] = _rate(n_single, time.perf_counter() - t0)
    total = len(batches) + n_single
    t0 = time.perf_counter()
    done = 0
    while True:
        got = ob.lease(256, 1 << 30)
        if not got:
            break
        ob.ack([e.key for e in got])
        done += len(got)
    res["lease_ack"] = _rate(done, time.perf_counter() - t0)
    assert done == total, (done, total)
    ob.close()
    return res


def bench_persist_queue(batches: list[SampleBatch], folder: Path, n_single: int) -> dict[str, float]:
    from persistqueue import SQLiteAckQueue

    q = SQLiteAckQueue(str(folder / "pq"), multithreading=False, auto_commit=True)
    res: dict[str, float] = {}
    t0 = time.perf_counter()
    for b in batches[:n_single]:
        q.put(encode_batches([b]))  # the same encoding our outbox stores
    res["append_single"] = _rate(n_single, time.perf_counter() - t0)
    res["append_grouped"] = res["append_single"]  # no batched put in its API
    t0 = time.perf_counter()
    done = 0
    while done < n_single:
        item = q.get(block=False)
        q.ack(item)
        done += 1
    res["lease_ack"] = _rate(done, time.perf_counter() - t0)
    q.close() if hasattr(q, "close") else None
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=20_000, help="batches for the grouped runs")
    ap.add_argument("--single", type=int, default=2_000, help="batches for the one-per-transaction runs")
    ap.add_argument("--dir", default=None, help="folder for the database files (default: a temp dir)")
    a = ap.parse_args(argv)
    batches = workload(a.batches)
    bodies = [encode_batches([b]) for b in batches[: a.single]]
    mean_body = sum(map(len, bodies)) / len(bodies)
    samples_per_batch = sum(len(b) for b in batches) / len(batches)
    folder = Path(a.dir or tempfile.mkdtemp(prefix="bench-outbox-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        full = bench_ours(batches, folder, "FULL", a.single)
        normal = bench_ours(batches, folder, "NORMAL", a.single)
        pq = bench_persist_queue(batches, folder, a.single)
    finally:
        if a.dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    for b in batches:
        encode_batches([b])
    encode_rate = _rate(len(batches), time.perf_counter() - t0)
    rows = []
    for key, label in (("append_grouped", "append (grouped 64/txn; peer: 1/put)"),
                       ("append_single", "append (1 batch/txn)"),
                       ("lease_ack", "lease+ack (ours 256/txn; peer get+ack each)")):
        rows.append([label, f"{full[key]:,.0f}", f"{normal[key]:,.0f}", f"{pq[key]:,.0f}",
                     f"{full[key] / pq[key]:.1f}x", f"{normal[key] / pq[key]:.1f}x"])
    print_table(
        f"Outbox throughput, batches/s ({a.batches} grouped + {a.single} single; mean batch "
        f"{mean_body:.0f} B encoded, {samples_per_batch:.1f} samples; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs shared)",
        ["operation", "ours FULL", "ours NORMAL", "persist-queue", "FULL/peer", "NORMAL/peer"],
        rows,
    )
    print(f"wire encoding alone (included in every append above, ours and the peer's): {encode_rate:,.0f} batches/s")
    print(f"ours FULL grouped append: {full['append_grouped_samples']:,.0f} samples/s; "
          f"NORMAL: {normal['append_grouped_samples']:,.0f} samples/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
