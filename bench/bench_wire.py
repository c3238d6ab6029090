"""Wire format benchmark (issue: foundation): bytes per sample and encode/decode speed.

Workloads (as specified):
  (a) HR + RR from the real Polar H10 recording (tests/data/rr/kbroman_detectPVC_polar_h10.csv),
      60 s envelopes: `heart_rate` at the HR notification times, `rr_interval` with beat times =
      first notification time + cumulative RR, both at 1 ms resolution, RR in 1/1024 s.
  (b) 100 Hz 3-axis accelerometer, int16 counts at 4096 counts/g, 0.5 Hz squat-like ±0.5 g motion
      on top of gravity plus sensor noise σ = 8 counts, 10 s envelopes (10 minutes in all).

Compared, in the same run: this codec; JSON with one object per sample; a plain-Python
delta coder (zig-zag varints of per-sample value and timestamp deltas, pure Python loops).

Run: python -m bench.bench_wire
"""

from __future__ import annotations

import csv
import json
import struct
import time

import numpy as np

from bench.common import DATA, best_time, print_table
from protocols.wire import SampleBatch, decode_envelope, encode_envelope

POLAR = DATA / "rr" / "kbroman_detectPVC_polar_h10.csv"


# ------------------------------------------------------------------ workloads


def hr_rr_workload() -> tuple[list[list[SampleBatch]], float]:
    hr_t, hr_v, rr_ms = [], [], []
    with POLAR.open() as f:
        for row in csv.DictReader(f):
            if row["hr"]:
                hr_t.append(int(round(float(row["time"]) / 1e6)))  # ns -> ms
                hr_v.append(int(row["hr"]))
            if row["rr"]:
                rr_ms.append(int(row["rr"]))
    hr_t_ms = np.array(hr_t, np.int64)
    hr_bpm = np.array(hr_v, np.int64)
    rr_1024 = np.rint(np.array(rr_ms) * 1.024).astype(np.int64)
    beat_ms = hr_t_ms[0] + np.rint(np.cumsum(rr_1024) * 1000 / 1024).astype(np.int64)
    t_start = hr_t_ms[0]
    t_end = max(hr_t_ms[-1], beat_ms[-1])
    duration_s = (t_end - t_start) / 1000
    envelopes = []
    seq = 0
    for w0 in range(int(t_start), int(t_end) + 1, 60_000):
        w1 = w0 + 60_000
        m = (hr_t_ms >= w0) & (hr_t_ms < w1)
        r = (beat_ms >= w0) & (beat_ms < w1)
        env = []
        if m.any():
            env.append(SampleBatch("polar-h10-6e1a2b", "heart_rate", seq, hr_t_ms[m] * 1000, hr_bpm[m], unit="bpm", time_resolution_us=1000))
        if r.any():
            env.append(SampleBatch("polar-h10-6e1a2b", "rr_interval", seq, beat_ms[r] * 1000, rr_1024[r], scale=1 / 1024, unit="s", time_resolution_us=1000))
        seq += 1
        envelopes.append(env)
    return envelopes, duration_s


def accel_workload(minutes: int = 10, seed: int = 7) -> tuple[list[list[SampleBatch]], float]:
    fs = 100
    n = minutes * 60 * fs
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    g = 4096.0
    # device worn at an angle: gravity and the vertical squat motion project onto all three axes
    vertical = g * (1.0 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    direction = np.array([0.25, -0.35, 0.90])
    direction /= np.linalg.norm(direction)
    acc = vertical[:, None] * direction[None, :] + rng.normal(0, 8, (n, 3))
    counts = np.clip(np.rint(acc), -32768, 32767).astype(np.int64)
    t_us = 1_764_000_000_000_000 + np.arange(n, dtype=np.int64) * 10_000
    envelopes = []
    per = 10 * fs
    for seq, i in enumerate(range(0, n, per)):
        envelopes.append([SampleBatch("imu-wrist-01", "accel", seq, t_us[i : i + per], counts[i : i + per], scale=1 / 4096, unit="g", time_resolution_us=10_000)])
    return envelopes, n / fs


# ------------------------------------------------------------------ codecs


def ours_encode(envs: list[list[SampleBatch]]) -> list[bytes]:
    return [encode_envelope(e, agent_id="agent-pi-01", tenant="gym-42", seq=i, sent_at_us=0) for i, e in enumerate(envs)]


def ours_decode(blobs: list[bytes]) -> int:
    return sum(decode_envelope(b).sample_count for b in blobs)


def json_encode(envs: list[list[SampleBatch]]) -> list[bytes]:
    out = []
    for i, env in enumerate(envs):
        objs = []
        for b in env:
            vals = b.values.tolist()
            phys_scale = b.scale
            for t, v in zip(b.t_us.tolist(), vals):
                objs.append({"device_id": b.device_id, "stream": b.stream, "t_us": t,
                             "value": [x * phys_scale for x in v] if isinstance(v, list) else v * phys_scale})
        out.append(json.dumps({"agent_id": "agent-pi-01", "tenant": "gym-42", "seq": i, "samples": objs}, separators=(",", ":")).encode())
    return out


def json_decode(blobs: list[bytes]) -> int:
    return sum(len(json.loads(b)["samples"]) for b in blobs)


def _zz(v: int) -> int:
    return (v << 1) ^ (v >> 63)


def _uvarint(out: bytearray, v: int) -> None:
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _unzz(u: int) -> int:
    return (u >> 1) ^ -(u & 1)


def py_encode(envs: list[list[SampleBatch]]) -> list[bytes]:
    """Plain Python: header + per-sample zig-zag varint deltas of timestamps and each channel."""
    out = []
    for env in envs:
        buf = bytearray()
        _uvarint(buf, len(env))
        for b in env:
            name = f"{b.device_id}\0{b.stream}".encode()
            _uvarint(buf, len(name))
            buf += name
            buf += struct.pack("<dQI", b.scale, b.seq, b.time_resolution_us)
            ch = b.channels
            _uvarint(buf, ch)
            _uvarint(buf, len(b))
            res = b.time_resolution_us
            prev_t = 0
            prev_v = [0] * ch
            vals = b.values.tolist()
            for t, v in zip(b.t_us.tolist(), vals):
                tt = t // res
                _uvarint(buf, _zz(tt - prev_t))
                prev_t = tt
                if ch == 1 and not isinstance(v, list):
                    v = [v]
                for k in range(ch):
                    _uvarint(buf, _zz(v[k] - prev_v[k]))
                    prev_v[k] = v[k]
        out.append(bytes(buf))
    return out


def py_decode(blobs: list[bytes]) -> int:
    total = 0
    for buf in blobs:
        nb, pos = _read_uvarint(buf, 0)
        for _ in range(nb):
            ln, pos = _read_uvarint(buf, pos)
            pos += ln
            scale, seq, res = struct.unpack_from("<dQI", buf, pos)
            pos += 20
            ch, pos = _read_uvarint(buf, pos)
            n, pos = _read_uvarint(buf, pos)
            t = 0
            prev = [0] * ch
            ts = []
            rows = []
            for _ in range(n):
                u, pos = _read_uvarint(buf, pos)
                t += _unzz(u)
                ts.append(t * res)
                row = []
                for k in range(ch):
                    u, pos = _read_uvarint(buf, pos)
                    prev[k] += _unzz(u)
                    row.append(prev[k])
                rows.append(row)
            total += n
    return total


CODECS = {
    "fittrack.v1 (ours)": (ours_encode, ours_decode),
    "JSON, object per sample": (json_encode, json_decode),
    "plain-Python delta varint": (py_encode, py_decode),
}


def run_workload(name: str, envs: list[list[SampleBatch]], duration_s: float, unit_label: str, per_sample_div: int = 1) -> dict[str, dict[str, float]]:
    n_samples = sum(len(b) for e in envs for b in e)
    results = {}
    rows = []
    for cname, (enc, dec) in CODECS.items():
        blobs = enc(envs)
        assert dec(blobs) == n_samples
        nbytes = sum(len(b) for b in blobs)
        t_enc = best_time(lambda: enc(envs), repeat=3)
        t_dec = best_time(lambda: dec(blobs), repeat=3)
        results[cname] = dict(bytes=nbytes, bps=nbytes / duration_s, bpsample=nbytes / n_samples, enc=n_samples / t_enc, dec=n_samples / t_dec)
    base = results["fittrack.v1 (ours)"]
    for cname, r in results.items():
        rows.append([
            cname, f"{r['bytes']:,}", f"{r['bps']:.2f}", f"{r['bpsample']:.2f}",
            f"{r['enc'] / 1e6:.2f}", f"{r['dec'] / 1e6:.2f}",
            "1.00" if r is base else f"{r['bytes'] / base['bytes']:.1f}x larger",
            "-" if r is base else f"ours {base['enc'] / r['enc']:.1f}x / {base['dec'] / r['dec']:.1f}x",
        ])
    print_table(
        f"{name}: {n_samples:,} samples ({unit_label}), {len(envs)} envelopes, {duration_s:.0f} s of recording",
        ["codec", "bytes", "B per s of rec.", f"B per {unit_label}", "encode M samples/s", "decode M samples/s", "size vs ours", "speed ratio enc/dec"],
        rows,
    )
    return results


def main() -> None:
    import platform

    print(f"bench_wire on {platform.processor() or platform.machine()}, Python {platform.python_version()}, one core, {time.strftime('%Y-%m-%d %H:%M')}")
    envs, dur = hr_rr_workload()
    a = run_workload("(a) HR + RR, Polar H10, 60 s envelopes", envs, dur, "sample")
    envs, dur = accel_workload()
    b = run_workload("(b) accel 100 Hz x 3, 10 s envelopes", envs, dur, "3-axis sample")
    ours_a, ours_b = a["fittrack.v1 (ours)"], b["fittrack.v1 (ours)"]
    raw_ble_b = 6.0
    print()
    print("targets:")
    print(f"  (a) <= 5.5 B per second of recording: {ours_a['bps']:.2f}  {'PASS' if ours_a['bps'] <= 5.5 else 'MISS'}")
    print(f"  (b) <= 4.0 B per 3-axis sample:        {ours_b['bpsample']:.2f}  {'PASS' if ours_b['bpsample'] <= 4.0 else 'MISS'}  (raw BLE payload {raw_ble_b})")
    print(f"  encode >= 5 M samples/s:  (a) {ours_a['enc'] / 1e6:.2f}  (b) {ours_b['enc'] / 1e6:.2f} M 3-axis samples/s = {3 * ours_b['enc'] / 1e6:.1f} M values/s")
    print(f"  decode >= 20 M samples/s: (a) {ours_a['dec'] / 1e6:.2f}  (b) {ours_b['dec'] / 1e6:.2f} M 3-axis samples/s = {3 * ours_b['dec'] / 1e6:.1f} M values/s")


if __name__ == "__main__":
    main()
