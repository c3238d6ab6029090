"""Turn a device model's notifications into the streams an edge agent uploads (DESIGN §3).

Used by the load generator: it runs the models (no BLE), decodes every notification with
``protocols.ble`` exactly as an agent does, and cuts the samples into :class:`SampleBatch`
windows. Stream names, scales and units follow the contract: heart_rate (bpm), rr_interval
(1/1024 s, unit "s", timestamps at beat times), energy_expended (kJ), accel (3 ch, 1/4096 g),
gyro (3 ch, 0.1 deg/s), power (W), cadence (0.5 rpm), speed (0.01 km/h), distance (m),
incline (0.1 %), resistance, stroke_rate (0.5 spm).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protocols.ble import decode
from protocols.ble import imu as imu_codec

from .models import DeviceModel

#: stream -> (scale, unit, channels)
STREAMS: dict[str, tuple[float, str, int]] = {
    "heart_rate": (1.0, "bpm", 1), "rr_interval": (1 / 1024, "s", 1), "energy_expended": (1.0, "kJ", 1),
    "accel": (1 / imu_codec.ACCEL_LSB_PER_G, "g", 3), "gyro": (1 / imu_codec.GYRO_LSB_PER_DPS, "deg/s", 3),
    "power": (1.0, "W", 1), "cadence": (0.5, "rpm", 1), "speed": (0.01, "km/h", 1), "distance": (1.0, "m", 1),
    "incline": (0.1, "%", 1), "resistance": (1.0, "", 1), "stroke_rate": (0.5, "spm", 1),
}


def device_id_for(model: DeviceModel) -> str:
    """``ble-`` + first 12 hex of sha256(address + serial), stable per physical sensor."""
    serial = getattr(model, "serial", model.name)
    return "ble-" + hashlib.sha256(f"{model.address}{serial}".encode()).hexdigest()[:12]


@dataclass
class StreamBuffer:
    """Samples of one stream waiting to be batched: t_us and raw int values."""

    t_us: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)


class StreamDecoder:
    """Decodes one device's notifications into per-stream samples, as an edge agent does.

    RR intervals get timestamps by summing them (a beat clock), re-synchronised to the
    notification time after gaps (contact loss, missed notifications) and never going back.
    """

    def __init__(self, model: DeviceModel, t0_us: int) -> None:
        self.model = model
        self.t0_us = t0_us
        self.rr_clock_s: float | None = None

    def __call__(self, notes: list[Any]) -> dict[str, StreamBuffer]:
        return samples_from(self.model, notes, self.t0_us, self)


def samples_from(model: DeviceModel, notes: list[Any], t0_us: int, state: StreamDecoder | None = None) -> dict[str, StreamBuffer]:
    """Decode notifications (from ``model.advance``) into per-stream samples (t in µs since epoch)."""
    out: dict[str, StreamBuffer] = {}
    state = state or StreamDecoder(model, t0_us)

    def add(stream: str, t_s: float, v: Any) -> None:
        b = out.setdefault(stream, StreamBuffer())
        b.t_us.append(t0_us + int(round(t_s * 1e6)))
        b.values.append(v)

    for n in notes:
        uuid16 = n.char_uuid[4:8]
        if n.char_uuid == imu_codec.IMU_DATA_UUID:
            m = imu_codec.decode_imu_data(n.payload)
            period = 10.0 / m.sample_rate_dhz
            # sample times from the sample index, as an agent does (the rate is constant here)
            for i, a in enumerate(m.accel_1_4096g):
                t = (m.first_sample + i) * period
                add("accel", t, list(a))
                if m.gyro_0_1dps is not None:
                    add("gyro", t, list(m.gyro_0_1dps[i]))
            continue
        if uuid16 == "2a37":
            m = decode(0x2A37, n.payload)
            if m.sensor_contact is not False:
                add("heart_rate", n.t_s, m.heart_rate_bpm)
            if m.energy_expended_kj is not None:
                add("energy_expended", n.t_s, m.energy_expended_kj)
            if m.rr_intervals_1024:
                total = sum(m.rr_intervals_1024) / 1024
                clock = state.rr_clock_s
                if clock is None or abs(clock + total - n.t_s) > 1.5:
                    start = n.t_s - total
                    clock = start if clock is None else max(start, clock)
                for rr in m.rr_intervals_1024:
                    clock += rr / 1024
                    add("rr_interval", clock, rr)
                state.rr_clock_s = clock
            continue
        if uuid16 in ("2acd", "2ad2", "2ad1"):
            m = decode(uuid16, n.payload)
            d = m.to_dict()
            if d.get("speed_kmh") is not None:
                add("speed", n.t_s, int(round(d["speed_kmh"] * 100)))
            if d.get("total_distance_m") is not None:
                add("distance", n.t_s, int(d["total_distance_m"]))
            if d.get("inclination_pct") is not None:
                add("incline", n.t_s, int(round(d["inclination_pct"] * 10)))
            if d.get("cadence_rpm") is not None:
                add("cadence", n.t_s, int(round(d["cadence_rpm"] * 2)))
            if d.get("power_w") is not None:
                add("power", n.t_s, int(d["power_w"]))
            if d.get("resistance_level") is not None:
                add("resistance", n.t_s, int(d["resistance_level"]))
            if d.get("stroke_rate_spm") is not None:
                add("stroke_rate", n.t_s, int(round(d["stroke_rate_spm"] * 2)))
            continue
        if uuid16 == "2a63":
            m = decode(0x2A63, n.payload)
            add("power", n.t_s, int(m.power_w))
    return out


def as_arrays(buf: StreamBuffer, stream: str) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(buf.t_us, dtype=np.int64)
    v = np.asarray(buf.values, dtype=np.int64)
    if STREAMS[stream][2] > 1:
        v = v.reshape(len(t), STREAMS[stream][2])
    return t, v
