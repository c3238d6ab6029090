"""FIT import throughput (issue 5): MB/s and records/s on the three largest corpus files, ours
beside fitdecode, fitparse and garmin-fit-sdk measured in the same run, and peak memory.

What each does (each reads every message of the file):
  ours           protocols.fit.read(path): structure pass (CRCs, problems), then record/hrv fields
                 to 5-minute SampleBatches, summary and developer fields
  fitdecode      FitReader(path) iterated to the end (default processor: scale, units, datetimes)
  fitparse       FitFile(path).messages, every field value
  garmin-fit-sdk Decoder(Stream.from_file(path)).read() (default options)

Peers are timed once per file (they take seconds), ours best of 5 (after a warm-up that also
compiles the Numba kernels). Peak memory: tracemalloc peak during one read, as a multiple of
the file size, for ours collecting the batches (``read(path)``), ours streaming them to a sink
(``read(path, sink=...)``: what `fittrack import` and the agent can use) and fitdecode.
tracemalloc sees numpy and Python allocations, not the memory-mapped file itself.

Run: python -m bench.bench_fit [--files N]
"""

from __future__ import annotations

import argparse
import gc
import platform
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Callable

from bench.common import DATA, best_time, print_table


def _fitdecode(path: Path) -> int:
    import fitdecode

    n = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with fitdecode.FitReader(str(path)) as fr:
                for frame in fr:
                    if frame.frame_type == fitdecode.FIT_FRAME_DATA and frame.name == "record":
                        n += 1
        except fitdecode.FitError:
            pass
    return n


def _fitparse(path: Path) -> int:
    import fitparse

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ff = fitparse.FitFile(str(path), check_crc=False)
        n = 0
        try:
            for m in ff.get_messages():
                m.get_values()
                n += m.name == "record"
        except fitparse.FitParseError:
            pass
    return n


def _garmin(path: Path) -> int:
    from garmin_fit_sdk import Decoder, Stream

    messages, _errors = Decoder(Stream.from_file(str(path))).read()
    return len(messages.get("record_mesgs", []))


def _ours(path: Path) -> int:
    from protocols.fit import read

    return read(path).record_count


def _ours_stream(path: Path) -> int:
    from protocols.fit import read

    return read(path, sink=lambda b: None).record_count


PEERS: dict[str, Callable[[Path], int]] = {"fitdecode": _fitdecode, "fitparse": _fitparse, "garmin-fit-sdk": _garmin}


def _once(fn: Callable[[], object]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _peak(fn: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _synthetic(n: int) -> bytes:
    import numpy as np

    from protocols.fit.writer import write_activity

    rng = np.random.default_rng(n)
    return write_activity(1_780_000_000_000_000, {
        "heart_rate_bpm": rng.integers(60, 190, n).tolist(), "power_w": rng.integers(0, 400, n).tolist(),
        "cadence_rpm": rng.integers(60, 100, n).tolist(), "speed_mps": (rng.integers(0, 15000, n) / 1000).tolist(),
        "distance_m": (np.cumsum(rng.integers(0, 1500, n)) / 100).tolist(),
        "lat_deg": (45 + np.cumsum(rng.normal(0, 1e-5, n))).tolist(),
        "lon_deg": (7 + np.cumsum(rng.normal(0, 1e-5, n))).tolist()},
        rr_s=(rng.integers(500, 1000, n) / 1000).tolist())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=3, help="how many of the largest corpus files (default 3)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--flat", type=int, nargs="*", default=[20_000, 200_000], metavar="RECORDS",
                    help="also write synthetic activities of these many 1 Hz records (with RR) and measure the "
                         "streamed peak memory on them (default: 20000 200000; none to skip)")
    args = ap.parse_args(argv)
    files = sorted((DATA / "fit").glob("*.fit"), key=lambda p: p.stat().st_size, reverse=True)[: args.files]
    from protocols.fit import read
    from protocols.fit._jit import HAVE_NUMBA

    print(f"python {platform.python_version()} on {platform.machine()}, numba JIT: {HAVE_NUMBA}; "
          "machine shared with other jobs: figures are noisy")
    rows, mem_rows = [], []
    for p in files:
        size = p.stat().st_size
        r = read(p)
        records = r.record_count
        t_ours = best_time(lambda: _ours(p), repeat=args.repeat, min_time_s=0.2)
        peers = {}
        for name, fn in PEERS.items():
            try:
                n = fn(p)
                peers[name] = (_once(lambda: fn(p)), n)
            except Exception as exc:  # noqa: BLE001 - report a peer that cannot read the file
                peers[name] = (float("nan"), f"{type(exc).__name__}")
        fastest = min((t for t, _ in peers.values() if t == t), default=float("nan"))
        row = [p.name, f"{size / 1e6:.2f}", records, r.decoder,
               f"{size / t_ours / 1e6:.1f}", f"{records / t_ours / 1e3:.0f}"]
        for name in PEERS:
            t, n = peers[name]
            row.append(f"{size / t / 1e6:.2f} ({records / t / 1e3:.1f}k)" if t == t else f"failed: {n}")
        row.append(f"{fastest / t_ours:.0f}x")
        rows.append(row)
        mem_rows.append([p.name, f"{size / 1e6:.2f}",
                         f"{_peak(lambda: _ours(p)) / size:.1f}", f"{_peak(lambda: _ours_stream(p)) / 1e6:.2f} MB",
                         f"{_peak(lambda: _fitdecode(p)) / size:.1f}"])
    print_table("FIT import: ours vs peers (same run)",
                ["file", "MB", "records", "our path", "ours MB/s", "ours k rec/s",
                 *[f"{n} MB/s (rec/s)" for n in PEERS], "ours / fastest peer"], rows)
    for n in args.flat:
        blob = _synthetic(n)
        path = Path(tempfile.gettempdir()) / f"fittrack-bench-{n}.fit"
        path.write_bytes(blob)
        mem_rows.append([f"synthetic {n} records (writer)", f"{len(blob) / 1e6:.2f}", "",
                         f"{_peak(lambda: _ours_stream(path)) / 1e6:.2f} MB", ""])
        path.unlink()
    print_table("Peak traced memory during one read",
                ["file", "MB", "ours, batches kept (x size)", "ours, streamed to sink", "fitdecode (x size)"], mem_rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
