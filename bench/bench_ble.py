"""BLE decode throughput (issue 3): notifications/s for Heart Rate Measurement and Indoor Bike
Data, ours beside pycycling and pyftms, measured in the same run.

Workloads:
  HR    the real Polar H10 recording in tests/data/rr/kbroman_detectPVC_polar_h10.csv turned
        into the notifications the strap sent: flags 0x16 (contact supported + detected, RR
        present), uint8 HR, the RR intervals (1/1024 s) that arrived since the previous one.
  Bike  a 20-minute interval session on a smart trainer at 1 Hz: speed, cadence, power and
        heart rate (flags 0x0244), with every 10th notification also carrying average speed,
        distance, energy and elapsed time (flags 0x0D56) as real trainers interleave them.

Peers: pycycling 0.4.1 (HR and Indoor Bike parsers; runs on Python 3.11) and pyftms (Indoor
Bike only; needs Python >= 3.12: no release installs and imports on 3.11 — 0.2.20 declares
>=3.11 but uses typing.override and PEP 701 f-strings). pyftms is therefore measured in a
Python 3.12 interpreter, and ours is measured again in that same interpreter so the ratio
compares like with like. Point the script at it with --py312 PATH or FITTRACK_BENCH_PY312, or
create bench/out/venv312 once:

    python3.12 -m venv bench/out/venv312 && bench/out/venv312/bin/pip install pyftms

Run: python -m bench.bench_ble            (best of N timing, one core)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # worker mode runs from another interpreter
    sys.path.insert(0, str(ROOT))

from bench.common import DATA, best_time, print_table  # noqa: E402
from protocols.ble import decode, encode  # noqa: E402
from protocols.ble.ftms_data import decode_indoor_bike_data  # noqa: E402
from protocols.ble.heart_rate import decode_heart_rate_measurement  # noqa: E402

POLAR = DATA / "rr" / "kbroman_detectPVC_polar_h10.csv"
HR_TARGET = 300_000


def hr_payloads() -> list[bytes]:
    out: list[bytes] = []
    pending: list[int] = []
    with POLAR.open() as f:
        for row in csv.DictReader(f):
            if row["rr"]:
                pending.append(round(int(row["rr"]) * 1.024))
            if row["hr"]:
                out.append(encode(0x2A37, heart_rate_bpm=int(row["hr"]), sensor_contact=True,
                                  rr_intervals_1024=pending[-9:] or None))  # 9 RR fit a 23-octet ATT_MTU
                pending = []
    return out


def bike_payloads(minutes: int = 20) -> list[bytes]:
    out = []
    for s in range(minutes * 60):
        hard = (s // 60) % 4 == 3  # a 1-minute effort every 4 minutes
        power = 320 + (s * 7) % 25 if hard else 180 + (s * 3) % 15
        cadence = 96.5 if hard else 88.0
        speed = 36.4 if hard else 29.8
        hr = min(185, 120 + s // 20 + (25 if hard else 0))
        if s % 10 == 0:
            out.append(encode(0x2AD2, speed_kmh=speed, average_speed_kmh=31.2, cadence_rpm=cadence, total_distance_m=int(s * 8.6),
                              power_w=power, total_energy_kcal=s // 5, energy_per_hour_kcal=700, energy_per_minute_kcal=11,
                              heart_rate_bpm=hr, elapsed_time_s=s))
        else:
            out.append(encode(0x2AD2, speed_kmh=speed, cadence_rpm=cadence, power_w=power, heart_rate_bpm=hr))
    return out


def rate(fn: Callable[[list[bytes]], Any], payloads: list[bytes], repeat: int) -> float:
    return len(payloads) / best_time(lambda: fn(payloads), repeat=repeat, min_time_s=0.3)


# ----------------------------------------------------------------------------- the contenders


def ours_hr(ps: list[bytes]) -> None:
    for p in ps:
        decode(0x2A37, p)


def ours_hr_direct(ps: list[bytes]) -> None:
    f = decode_heart_rate_measurement
    for p in ps:
        f(p)


def ours_bike(ps: list[bytes]) -> None:
    for p in ps:
        decode(0x2AD2, p)


def ours_bike_direct(ps: list[bytes]) -> None:
    f = decode_indoor_bike_data
    for p in ps:
        f(p)


def pycycling_fns() -> tuple[Callable | None, Callable | None, str]:
    try:
        import importlib.metadata as md

        from pycycling.ftms_parsers.indoor_bike_data import parse_indoor_bike_data
        from pycycling.heart_rate_service import _parse_hr_measurement
    except ImportError as exc:
        return None, None, f"not installed ({exc.name}); pip install 'fittracker-gateway[bench]'"

    def hr(ps: list[bytes]) -> None:
        for p in ps:
            _parse_hr_measurement(p)

    def bike(ps: list[bytes]) -> None:
        for p in ps:
            parse_indoor_bike_data(p)

    return hr, bike, md.version("pycycling")


def pyftms_bike_fn() -> tuple[Callable | None, str]:
    try:
        import importlib.metadata as md

        from pyftms.models.realtime_data import IndoorBikeData
    except (ImportError, SyntaxError) as exc:
        return None, f"cannot import on Python {platform.python_version()} ({type(exc).__name__})"
    des = IndoorBikeData._deserialize
    BytesIO = io.BytesIO

    def bike(ps: list[bytes]) -> None:
        for p in ps:
            des(BytesIO(p))

    return bike, md.version("pyftms")


def check_agreement(hr: list[bytes], bike: list[bytes]) -> list[str]:
    """The peers must read the same numbers from the workload (else the race is meaningless)."""
    notes = []
    try:
        from pycycling.ftms_parsers.indoor_bike_data import parse_indoor_bike_data
        from pycycling.heart_rate_service import _parse_hr_measurement

        ok = all(_parse_hr_measurement(p).bpm == decode(0x2A37, p).heart_rate_bpm for p in hr[:500])
        ok &= all(parse_indoor_bike_data(p).instant_power == decode(0x2AD2, p).power_w for p in bike[:500])
        notes.append(f"pycycling agrees on HR and power: {ok}")
    except ImportError:
        pass
    try:
        from pyftms.models.realtime_data import IndoorBikeData

        ok = all(IndoorBikeData._deserialize(io.BytesIO(p)).power_instant == decode(0x2AD2, p).power_w for p in bike[:500])
        notes.append(f"pyftms agrees on power: {ok}")
    except (ImportError, SyntaxError):
        pass
    return notes


def measure(repeat: int) -> dict[str, Any]:
    hr, bike = hr_payloads(), bike_payloads()
    res: dict[str, Any] = {"python": platform.python_version(), "n_hr": len(hr), "n_bike": len(bike), "hr": {}, "bike": {}, "versions": {}}
    res["hr"]["ours: decode(0x2A37, p)"] = rate(ours_hr, hr, repeat)
    res["hr"]["ours: decode_heart_rate_measurement(p)"] = rate(ours_hr_direct, hr, repeat)
    res["bike"]["ours: decode(0x2AD2, p)"] = rate(ours_bike, bike, repeat)
    res["bike"]["ours: decode_indoor_bike_data(p)"] = rate(ours_bike_direct, bike, repeat)
    pc_hr, pc_bike, pc_ver = pycycling_fns()
    res["versions"]["pycycling"] = pc_ver
    if pc_hr and pc_bike:
        res["hr"]["pycycling _parse_hr_measurement"] = rate(pc_hr, hr, repeat)
        res["bike"]["pycycling parse_indoor_bike_data"] = rate(pc_bike, bike, repeat)
    pf_bike, pf_ver = pyftms_bike_fn()
    res["versions"]["pyftms"] = pf_ver
    if pf_bike:
        res["bike"]["pyftms IndoorBikeData._deserialize"] = rate(pf_bike, bike, repeat)
    res["agreement"] = check_agreement(hr, bike)
    return res


def find_py312(arg: str | None) -> str | None:
    for cand in (arg, os.environ.get("FITTRACK_BENCH_PY312"), str(ROOT / "bench" / "out" / "venv312" / "bin" / "python")):
        if cand and Path(cand).exists():
            return cand
    return None


def table(title: str, rows: dict[str, float], ours_key: str) -> None:
    base = rows[ours_key]
    print_table(title, ["decoder", "notifications/s", "µs per notification", "ours (decode()) vs it"],
                [[k, f"{v:,.0f}", f"{1e6 / v:.2f}", "-" if k == ours_key else f"{base / v:.2f}x"] for k, v in rows.items()])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7, help="best of N (default 7)")
    ap.add_argument("--py312", help="a Python >= 3.12 with pyftms installed (for the pyftms column)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(measure(a.repeat)))
        return 0
    load = os.getloadavg()[0]
    print(f"bench_ble on {platform.processor() or platform.machine()}, Python {platform.python_version()}, one core, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load average {load:.2f} on {os.cpu_count()} cores"
          f"{' (busy: figures are noisy)' if load > 0.8 else ''}")
    main_res = measure(a.repeat)
    print(f"workload: {main_res['n_hr']:,} HR notifications (Polar H10 recording), {main_res['n_bike']:,} Indoor Bike notifications")
    print(f"peers: pycycling {main_res['versions']['pycycling']}; pyftms {main_res['versions']['pyftms']}")
    table(f"Heart Rate Measurement 0x2A37, Python {main_res['python']}", main_res["hr"], "ours: decode(0x2A37, p)")
    table(f"Indoor Bike Data 0x2AD2, Python {main_res['python']}", main_res["bike"], "ours: decode(0x2AD2, p)")
    res312 = None
    py312 = find_py312(a.py312)
    if py312:
        out = subprocess.run([py312, str(Path(__file__).resolve()), "--worker", "--repeat", str(a.repeat)],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
        if out.returncode == 0:
            res312 = json.loads(out.stdout)
            print(f"peers in Python {res312['python']}: pycycling {res312['versions']['pycycling']}; pyftms {res312['versions']['pyftms']}")
            table(f"Indoor Bike Data 0x2AD2, Python {res312['python']} (same run, subprocess)", res312["bike"], "ours: decode(0x2AD2, p)")
            table(f"Heart Rate Measurement 0x2A37, Python {res312['python']} (same run, subprocess)", res312["hr"], "ours: decode(0x2A37, p)")
        else:
            print(f"Python 3.12 worker failed: {out.stderr.strip()[-400:]}")
    else:
        print("pyftms column skipped: no Python >= 3.12 with pyftms (see --py312 in the module docstring)")
    for note in main_res["agreement"] + (res312["agreement"] if res312 else []):
        print("check:", note)
    print()
    print("targets:")
    hr_rate = main_res["hr"]["ours: decode(0x2A37, p)"]
    print(f"  >= {HR_TARGET:,} HR notifications/s on one core: {hr_rate:,.0f}  {'PASS' if hr_rate >= HR_TARGET else 'MISS'}")
    verdicts = []
    for res in filter(None, (main_res, res312)):
        for kind, ours_key in (("hr", "ours: decode(0x2A37, p)"), ("bike", "ours: decode(0x2AD2, p)")):
            for k, v in res[kind].items():
                if not k.startswith("ours"):
                    verdicts.append((f"{kind} vs {k} (Python {res['python']})", res[kind][ours_key] / v))
    for name, ratio in verdicts:
        print(f"  faster than {name}: {ratio:.2f}x  {'PASS' if ratio > 1 else 'MISS'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
