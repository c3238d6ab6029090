"""``fittrack demo``: a self-contained end-to-end run on the embedded store (SQLite).

Simulated athletes (heart-rate straps with RR intervals, an IMU doing squat sets) produce
samples; they are batched per stream, packed into ``fittrack.v1`` envelopes, sent over an
in-process loopback link that also re-sends some envelopes (as a flaky uplink would), decoded,
and written once each into SQLite with the dedup ledger. The summary shows what was sent, what
was stored, the duplicates refused and the bytes on the wire; ``--chart`` draws the HR traces.

This grows with the project: the next steps put real BLE simulators, the edge agent and the
ingest server in the loop (see the issues in docs/roadmap.md).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from protocols.wire import SampleBatch, decode_envelope, encode_envelope

T_START_US = 1_764_576_000_000_000  # 2025-12-01 08:00 UTC


@dataclass
class Athlete:
    """A toy physiological model: HR follows the workout's target with a 30 s time constant."""

    name: str
    device_id: str
    hr_rest: float
    hr_max: float
    rng: np.random.Generator
    hr: float = field(init=False)
    seq: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hr = self.hr_rest

    def next_seq(self, stream: str) -> int:
        s = self.seq.get(stream, 0)
        self.seq[stream] = s + 1
        return s

    def intensity(self, t_s: float) -> float:
        """Warm-up 5 min, then 3 min hard / 2 min easy intervals, cool-down at the end."""
        if t_s < 300:
            return 0.3 + 0.3 * t_s / 300
        cycle = (t_s - 300) % 300
        return 0.9 if cycle < 180 else 0.5

    def beats(self, t0_s: float, dur_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """HR samples at 1 Hz (t_us, bpm) and RR beats (t_us, rr in 1/1024 s) for a window."""
        hr_t, hr_v, rr_t, rr_v = [], [], [], []
        t = t0_s
        next_hr = np.ceil(t0_s)
        while t < t0_s + dur_s:
            target = self.hr_rest + (self.hr_max - self.hr_rest) * self.intensity(t)
            rr_s = 60.0 / self.hr
            rr_s *= 1.0 + 0.04 * np.sin(2 * np.pi * 0.25 * t) + self.rng.normal(0, 0.015)  # RSA + noise
            self.hr += (target - self.hr) * (1 - np.exp(-rr_s / 30.0))
            t += rr_s
            rr_t.append(int(t * 1e3) * 1000)
            rr_v.append(int(round(rr_s * 1024)))
            while next_hr <= t and next_hr < t0_s + dur_s:
                hr_t.append(int(next_hr * 1e3) * 1000)
                hr_v.append(int(round(self.hr)))
                next_hr += 1.0
        return (np.array(hr_t, np.int64) + T_START_US, np.array(hr_v, np.int64),
                np.array(rr_t, np.int64) + T_START_US, np.array(rr_v, np.int64))


def squat_imu(t0_s: float, dur_s: float, fs_hz: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """3-axis accelerometer counts (4096/g) of sets of 10 squats every 90 s, worn tilted."""
    n = int(round(dur_s * fs_hz))
    t = t0_s + np.arange(n) / fs_hz
    in_set = (t % 90.0) < 25.0  # 10 reps at 0.4 Hz, then rest
    vertical = 1.0 + np.where(in_set, 0.45 * np.sin(2 * np.pi * 0.4 * t), 0.0)
    direction = np.array([0.2, -0.3, 0.93])
    acc = vertical[:, None] * direction / np.linalg.norm(direction) * 4096 + rng.normal(0, 8, (n, 3))
    period_us = int(round(1e6 / fs_hz))
    t_us = T_START_US + np.rint(t * fs_hz).astype(np.int64) * period_us
    return t_us, np.rint(acc).astype(np.int64)


async def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from ingest_server.storage.base import WriteStatus
    from ingest_server.storage.sqlite import SqliteBackend

    console = Console()
    rng = np.random.default_rng(args.seed)
    athletes = [
        Athlete(f"athlete-{i + 1}", f"strap-{i + 1:02d}", hr_rest=float(rng.integers(50, 70)), hr_max=float(rng.integers(175, 200)), rng=rng)
        for i in range(args.straps)
    ]
    imu_seq = 0
    window_s = float(args.batch_seconds)
    windows = int(args.minutes * 60 / window_s)
    db_path = Path(args.db)
    if db_path.exists() and not args.keep:
        for suffix in ("", "-wal", "-shm"):
            Path(str(db_path) + suffix).unlink(missing_ok=True)
    sent_samples = stored = duplicates = wire_bytes = envelopes = resent = 0
    hr_trace: dict[str, list[tuple[int, int]]] = {a.name: [] for a in athletes}
    started = time.perf_counter()
    async with SqliteBackend(db_path) as store:
        with Progress(TextColumn("[bold]simulating"), BarColumn(), TextColumn("{task.completed}/{task.total} windows of {task.fields[w]} s"), TimeRemainingColumn(), console=console, disable=args.quiet) as progress:
            task = progress.add_task("sim", total=windows, w=int(window_s))
            for w in range(windows):
                t0 = w * window_s
                batches: list[SampleBatch] = []
                for a in athletes:
                    hr_t, hr_v, rr_t, rr_v = a.beats(t0, window_s)
                    if hr_t.size:
                        batches.append(SampleBatch(a.device_id, "heart_rate", a.next_seq("heart_rate"), hr_t, hr_v, unit="bpm", time_resolution_us=1000))
                        hr_trace[a.name].extend(zip(hr_t.tolist(), hr_v.tolist()))
                    if rr_t.size:
                        batches.append(SampleBatch(a.device_id, "rr_interval", a.next_seq("rr_interval"), rr_t, rr_v, scale=1 / 1024, unit="s", time_resolution_us=1000))
                for k in range(args.imu):
                    t_us, counts = squat_imu(t0, window_s, 100.0, rng)
                    batches.append(SampleBatch(f"imu-{k + 1:02d}", "accel", imu_seq, t_us, counts, scale=1 / 4096, unit="g", time_resolution_us=10_000))
                imu_seq += 1
                sent_samples += sum(len(b) for b in batches)
                payload = encode_envelope(batches, agent_id="demo-hub", tenant="demo-gym", seq=w)
                # the loopback uplink: every envelope arrives; a flaky link re-sends some of them
                deliveries = [payload] + ([payload] if rng.random() < args.resend_rate else [])
                for data in deliveries:
                    env = decode_envelope(data)
                    outcomes = await store.write_batches(env.tenant, env.agent_id, env.batches)
                    wire_bytes += len(data)
                    envelopes += 1
                    stored += sum(o.samples for o in outcomes if o.status is WriteStatus.STORED)
                    duplicates += sum(1 for o in outcomes if o.status is WriteStatus.DUPLICATE)
                resent += len(deliveries) - 1
                progress.advance(task)
        rows = await store.query(
            "SELECT device_id, stream, count(*), min(raw * scale), avg(raw * scale), max(raw * scale) FROM samples "
            "WHERE channel = 0 GROUP BY device_id, stream ORDER BY device_id, stream"
        )
        in_db = (await store.query("SELECT count(*) FROM samples WHERE channel = 0"))[0][0]
    elapsed = time.perf_counter() - started

    table = Table(title=f"fittrack demo: {args.minutes} min, {args.straps} straps + {args.imu} IMU, stored in {db_path}")
    for col in ("device", "stream", "samples", "min (ch 0)", "mean", "max"):
        table.add_column(col, justify="left" if col in ("device", "stream") else "right")
    for dev, stream, n, lo, mean, hi in rows:
        fmt = "{:.3f}" if stream != "heart_rate" else "{:.0f}"
        table.add_row(dev, stream, f"{n:,}", fmt.format(lo), fmt.format(mean), fmt.format(hi))
    console.print(table)
    console.print(
        f"sent {sent_samples:,} samples in {envelopes - resent} envelopes (+{resent} re-sent), "
        f"{wire_bytes:,} bytes on the wire = {wire_bytes / max(sent_samples, 1):.2f} B/sample\n"
        f"stored {stored:,} samples once each ({in_db:,} in the database); "
        f"{duplicates} duplicate batches refused by the ledger; {elapsed:.1f} s"
    )
    ok = stored == sent_samples == in_db
    if args.chart:
        chart = draw_chart(hr_trace, Path(args.chart))
        if chart:
            console.print(f"HR chart: {chart}")
    console.print("[green]OK: every sample stored exactly once[/green]" if ok else "[red]MISMATCH between sent and stored samples[/red]")
    return 0 if ok else 1


def draw_chart(trace: dict[str, list[tuple[int, int]]], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    for name, pts in trace.items():
        if pts:
            t = (np.array([p[0] for p in pts]) - T_START_US) / 60e6
            ax.plot(t, [p[1] for p in pts], label=name, linewidth=1)
    ax.set_xlabel("minutes")
    ax.set_ylabel("heart rate (bpm)")
    ax.set_title("fittrack demo: heart rate as stored")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str], prog: str = "fittrack demo") -> int:
    ap = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0] + ".",
        epilog="example: fittrack demo --minutes 30 --straps 8 --chart hr.png",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--minutes", type=float, default=15, help="simulated workout length")
    ap.add_argument("--straps", type=int, default=4, help="heart-rate straps (athletes)")
    ap.add_argument("--imu", type=int, default=1, help="wrist IMUs doing squat sets (100 Hz)")
    ap.add_argument("--batch-seconds", type=float, default=10, help="seconds of data per envelope")
    ap.add_argument("--resend-rate", type=float, default=0.1, help="fraction of envelopes the flaky link sends twice")
    ap.add_argument("--db", default="fittrack-demo.sqlite", help="SQLite file to store into")
    ap.add_argument("--keep", action="store_true", help="keep an existing database (re-running then stores nothing new)")
    ap.add_argument("--chart", default="fittrack-demo-hr.png", help="PNG chart of the stored HR ('' for none)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.minutes <= 0 or args.straps < 0 or args.imu < 0 or args.batch_seconds <= 0:
        ap.error("--minutes and --batch-seconds must be positive; --straps and --imu not negative")
    if args.straps == 0 and args.imu == 0:
        ap.error("nothing to simulate: give --straps or --imu")
    return asyncio.run(run(args))
