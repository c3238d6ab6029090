"""Write FIT activity files (for simulators and tests) with garmin-fit-sdk's encoder.

``write_activity`` takes per-second samples in physical units and writes ``file_id``, one
``record`` per second, ``hrv`` messages with the beat-to-beat intervals (each written after the
record whose second the beat falls in, as watches do), a ``lap``, a ``session`` and an
``activity``. Values are rounded to the FIT resolution (speed 1 mm/s, distance 1 cm, altitude
0.2 m, position 1 semicircle, RR 1 ms); None leaves a field out of that record.
"""

from __future__ import annotations

from typing import Sequence

from .profile import FIT_EPOCH_S

#: Record fields by keyword: (FIT field name, degrees->semicircles?)
_RECORD_FIELDS = {
    "heart_rate_bpm": "heart_rate",
    "power_w": "power",
    "cadence_rpm": "cadence",
    "speed_mps": "speed",
    "distance_m": "distance",
    "altitude_m": "altitude",
    "temperature_c": "temperature",
}


def _semicircles(deg: float) -> int:
    return int(round(deg * 2**31 / 180.0))


def write_activity(
    start_time_us: int,
    samples: dict[str, Sequence[float | None]],
    *,
    rr_s: Sequence[float] | None = None,
    manufacturer: str = "development",
    product: int = 1,
    serial_number: int = 1,
    sport: str = "cycling",
) -> bytes:
    """Encode an activity of 1 Hz records starting at ``start_time_us`` (µs since the Unix epoch,
    whole seconds). ``samples`` maps keywords (``heart_rate_bpm``, ``power_w``, ``cadence_rpm``,
    ``speed_mps``, ``distance_m``, ``altitude_m``, ``temperature_c``, ``lat_deg``, ``lon_deg``) to
    equally long sequences. ``rr_s``: beat-to-beat intervals in s from the start."""
    from garmin_fit_sdk import Encoder, Profile

    if start_time_us % 1_000_000:
        raise ValueError("start_time_us must be a whole second")
    lengths = {len(v) for v in samples.values()}
    if len(lengths) > 1:
        raise ValueError(f"sample sequences differ in length: {sorted(lengths)}")
    unknown = set(samples) - set(_RECORD_FIELDS) - {"lat_deg", "lon_deg"}
    if unknown:
        raise ValueError(f"unknown sample keys: {sorted(unknown)}")
    n = lengths.pop() if lengths else 0
    t0 = start_time_us // 1_000_000 - FIT_EPOCH_S
    M = Profile["mesg_num"]
    enc = Encoder()
    enc.write_mesg({"mesg_num": M["FILE_ID"], "type": "activity", "manufacturer": manufacturer,
                    "product": product, "serial_number": serial_number, "time_created": t0})
    enc.write_mesg({"mesg_num": M["EVENT"], "timestamp": t0, "event": "timer", "event_type": "start"})
    rr = list(rr_s or [])
    beat_ms = 0
    j = 0
    for i in range(n):
        rec: dict = {"mesg_num": M["RECORD"], "timestamp": t0 + i}
        for key, name in _RECORD_FIELDS.items():
            v = samples.get(key, [None] * n)[i]
            if v is not None:
                rec[name] = v
        lat, lon = samples.get("lat_deg", [None] * n)[i], samples.get("lon_deg", [None] * n)[i]
        if lat is not None and lon is not None:
            rec["position_lat"] = _semicircles(lat)
            rec["position_long"] = _semicircles(lon)
        enc.write_mesg(rec)
        beats = []
        while j < len(rr) and beat_ms + round(rr[j] * 1000) <= i * 1000 or (i == n - 1 and j < len(rr)):
            beats.append(rr[j])
            beat_ms += round(rr[j] * 1000)
            j += 1
        for k in range(0, len(beats), 5):
            enc.write_mesg({"mesg_num": M["HRV"], "time": beats[k:k + 5]})
    elapsed = float(max(n - 1, 0))
    end = t0 + max(n - 1, 0)
    enc.write_mesg({"mesg_num": M["EVENT"], "timestamp": end, "event": "timer", "event_type": "stop_all"})
    common = {"timestamp": end, "start_time": t0, "total_elapsed_time": elapsed, "total_timer_time": elapsed,
              "sport": sport}
    enc.write_mesg({"mesg_num": M["LAP"], **common})
    enc.write_mesg({"mesg_num": M["SESSION"], **common, "num_laps": 1})
    enc.write_mesg({"mesg_num": M["ACTIVITY"], "timestamp": end, "num_sessions": 1, "total_timer_time": elapsed})
    return bytes(enc.close())
