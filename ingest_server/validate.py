"""Validation of decoded batches: time window, per-stream physical ranges, storage limits.

A batch that fails is REJECTED with a reason (it goes to the dead-letter table and to the
metrics); the other batches of the same envelope are still stored (a PARTIAL ack).
Wire-level limits (envelope bytes, inflated bytes, samples per batch, values per envelope) are
those of :mod:`protocols.wire` and are enforced by :func:`protocols.wire.decode_envelope`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from protocols.wire import SampleBatch

INT64_MAX = (1 << 63) - 1

#: Physical ranges (after raw * scale) per stream, inclusive. Streams not listed are not range
#: checked. Units as in DESIGN §3.
RANGES: dict[str, tuple[float, float]] = {
    "heart_rate": (20.0, 250.0),        # bpm
    "rr_interval": (0.2, 3.0),          # s (300..20 bpm)
    "energy_expended": (0.0, 65535.0),  # kJ (uint16 in 0x2A37)
    "accel": (-64.0, 64.0),             # g
    "gyro": (-4000.0, 4000.0),          # deg/s
    "power": (0.0, 4000.0),             # W
    "cadence": (0.0, 300.0),            # rpm
    "speed": (0.0, 120.0),              # km/h
    "distance": (0.0, 1.0e7),           # m
    "incline": (-45.0, 45.0),           # %
    "stroke_rate": (0.0, 120.0),        # strokes/min
    "battery": (0.0, 100.0),            # %
    "hr_zone": (0.0, 10.0),
    "hrv_rmssd": (0.0, 1000.0),         # ms
}


@dataclass(frozen=True, slots=True)
class Limits:
    """What the server accepts. Times in µs / days."""

    max_future_us: int = 5 * 60 * 1_000_000      # samples more than 5 min ahead of our clock
    max_age_days: float = 400.0                  # older than this: refused (FIT imports of last year OK)
    max_batches_per_envelope: int = 10_000
    ranges: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(RANGES))


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int          # position in the envelope
    batch: SampleBatch
    reason: str


def check_batch(b: SampleBatch, limits: Limits, now_us: int | None = None) -> str | None:
    """The reason ``b`` is refused, or None if it is acceptable."""
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    where = f"{b.device_id}/{b.stream}#{b.seq}"
    if b.seq > INT64_MAX:
        return f"{where}: seq {b.seq} above 2**63-1 (storage keeps seq as a signed 64-bit integer)"
    if not b.device_id.isprintable():
        return f"{where}: device_id has control characters"
    n = len(b)
    if n == 0:
        return f"{where}: empty batch (no samples)"
    small = n <= 32  # tiny batches (1 Hz HR): plain Python beats numpy's per-call overhead
    if small:
        tl = b.t_us.tolist()
        t_max, t_min = max(tl), min(tl)
    else:
        t_max, t_min = int(b.t_us.max()), int(b.t_us.min())
    if t_max > now_us + limits.max_future_us:
        ahead_s = (t_max - now_us) / 1e6
        return f"{where}: sample time {ahead_s:.0f} s in the future (limit {limits.max_future_us / 1e6:.0f} s): agent clock wrong?"
    oldest = now_us - int(limits.max_age_days * 86_400e6)
    if t_min < oldest:
        age_d = (now_us - t_min) / 86_400e6
        return f"{where}: sample time {age_d:.1f} days old (limit {limits.max_age_days:g} days)"
    rng = limits.ranges.get(b.stream)
    if rng is not None:
        lo, hi = rng
        scale = b.scale
        if small:
            flat = b.values.reshape(-1).tolist()
            bad_vals = [v * scale for v in flat if not lo <= v * scale <= hi]
            if not bad_vals:
                return None
            count, first = len(bad_vals), bad_vals[0]
        else:
            phys = b.values * scale
            bad = np.flatnonzero((phys < lo) | (phys > hi))
            if not bad.size:
                return None
            count, first = int(bad.size), float(phys.reshape(-1)[int(bad[0])])
        return (f"{where}: {count} value(s) outside the physical range {lo:g}..{hi:g} of {b.stream!r}"
                f" (first {first:g} {b.unit or ''})").rstrip()
    return None


def split_valid(batches: list[SampleBatch], limits: Limits, now_us: int | None = None) -> tuple[list[SampleBatch], list[Rejected]]:
    """(acceptable batches, rejected with reasons)."""
    now_us = time.time_ns() // 1000 if now_us is None else now_us
    ok: list[SampleBatch] = []
    bad: list[Rejected] = []
    for i, b in enumerate(batches):
        if i >= limits.max_batches_per_envelope:
            bad.append(Rejected(i, b, f"envelope carries more than {limits.max_batches_per_envelope} batches"))
            continue
        reason = check_batch(b, limits, now_us)
        if reason is None:
            ok.append(b)
        else:
            bad.append(Rejected(i, b, reason))
    return ok, bad
