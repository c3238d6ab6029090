"""Cycling power meter (0x1818) and speed/cadence sensor (0x1816): cumulative counters.

Crank and wheel revolutions are integrated from cadence and speed; each notification (1 Hz)
carries the cumulative count and the time of the last revolution event, which roll over as
the specification says (crank revolutions uint16, wheel revolutions uint32 on CSC; event times
uint16 in 1/1024 s, or 1/2048 s for the power meter's wheel). Ground truth keeps the
unwrapped counts, the event times and the distance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from protocols.ble import encode

from .base import NOTIFY, READ, Advert, AttError, CharSpec, DeviceModel, Notification, ServiceSpec, ATT_READ_NOT_PERMITTED, uuid128
from .profile import WorkoutProfile, intervals

CP_SERVICE, CP_MEASUREMENT, CP_FEATURE, SENSOR_LOCATION = (uuid128(u) for u in (0x1818, 0x2A63, 0x2A65, 0x2A5D))
CSC_SERVICE, CSC_MEASUREMENT, CSC_FEATURE = (uuid128(u) for u in (0x1816, 0x2A5B, 0x2A5C))
WHEEL_CIRCUMFERENCE_M = 2.105


class _Counters:
    """Revolution events of a wheel or crank turning at a varying rate."""

    def __init__(self, start_revs: int) -> None:
        self.revs = start_revs  # unwrapped
        self.phase = 0.0
        self.last_event_s = 0.0

    def step(self, t0: float, dt: float, rev_per_s: float) -> None:
        if rev_per_s <= 0:
            return
        p = self.phase + rev_per_s * dt
        n = int(math.floor(p))
        if n:
            # time of the last crossing: when phase reached n exactly
            self.last_event_s = t0 + (n - self.phase) / rev_per_s
            self.revs += n
        self.phase = p - n


class _CyclingBase(DeviceModel):
    def __init__(self, address: str, name: str, seed: int, profile: WorkoutProfile | None = None) -> None:
        super().__init__(address, name, seed)
        self.rng = np.random.default_rng([seed, 5])
        self.profile = profile or intervals()
        self.phase_s = float(self.rng.uniform(0, 1))
        self.crank = _Counters(int(self.rng.integers(0, 65536)))  # counters do not start at 0 on real sensors
        self.wheel = _Counters(int(self.rng.integers(0, 2**32 - 100000)))
        self._next_k = 1
        self.history: list[dict[str, Any]] = []

    def cadence_rpm(self, t: float) -> float:
        return 72 + 22 * self.profile.intensity(t) + float(self.rng.normal(0, 1.5))

    def speed_kmh(self, t: float) -> float:
        return 18 + 20 * self.profile.intensity(t)

    def power_w(self, t: float) -> int:
        return int(round(60 + 260 * self.profile.intensity(t) + float(self.rng.normal(0, 6))))

    def nominal_rates_hz(self) -> dict[str, float]:
        return {self.meas_uuid: 1.0}

    meas_uuid = ""

    def _fields(self, t: float, power: int) -> dict[str, Any]:
        raise NotImplementedError

    def advance(self, t_s: float) -> list[Notification]:
        out = []
        self.t_s = t_s
        while self._next_k + self.phase_s <= t_s:
            t = self._next_k + self.phase_s
            cad, spd, pw = self.cadence_rpm(t), self.speed_kmh(t), self.power_w(t)
            self.crank.step(t - 1, 1.0, cad / 60)
            self.wheel.step(t - 1, 1.0, spd / 3.6 / WHEEL_CIRCUMFERENCE_M)
            fields = self._fields(t, pw)
            out.append(Notification(t, self.meas_uuid, encode(self.meas_uuid[4:8], **fields)))
            self.history.append({"t_s": t, "cadence_rpm": cad, "speed_kmh": spd, "power_w": pw,
                                 "crank_revs_total": self.crank.revs, "crank_event_s": self.crank.last_event_s,
                                 "wheel_revs_total": self.wheel.revs, "wheel_event_s": self.wheel.last_event_s, **fields})
            self._next_k += 1
        return out

    def ground_truth(self, since_s: float = 0.0) -> dict[str, Any]:
        gt = super().ground_truth()
        gt.update(t_s=self.t_s, wheel_circumference_m=WHEEL_CIRCUMFERENCE_M,
                  data=[h for h in self.history if h["t_s"] >= since_s])
        return gt


class PowerMeter(_CyclingBase):
    kind = "power"
    meas_uuid = CP_MEASUREMENT

    def advertisement(self) -> Advert:
        return Advert(self.name, (CP_SERVICE,), {0xFFFF: b"FT\x04"}, rssi_dbm=-58)

    def services(self) -> tuple[ServiceSpec, ...]:
        return (ServiceSpec(CP_SERVICE, (CharSpec(CP_MEASUREMENT, (NOTIFY,)), CharSpec(CP_FEATURE, (READ,)),
                                         CharSpec(SENSOR_LOCATION, (READ,)))),)

    def read(self, char_uuid: str) -> bytes:
        if char_uuid == CP_FEATURE:
            return encode(0x2A65, crank_revolution_data_supported=True, wheel_revolution_data_supported=True)
        if char_uuid == SENSOR_LOCATION:
            return encode(0x2A5D, sensor_location=5)  # left crank
        raise AttError(ATT_READ_NOT_PERMITTED, "Read not permitted")

    def _fields(self, t: float, power: int) -> dict[str, Any]:
        return dict(power_w=power, wheel_revolutions=self.wheel.revs % 2**32,
                    wheel_event_time_2048=int(self.wheel.last_event_s * 2048) % 65536,
                    crank_revolutions=self.crank.revs % 65536,
                    crank_event_time_1024=int(self.crank.last_event_s * 1024) % 65536)


class CadenceSensor(_CyclingBase):
    kind = "csc"
    meas_uuid = CSC_MEASUREMENT

    def advertisement(self) -> Advert:
        return Advert(self.name, (CSC_SERVICE,), {0xFFFF: b"FT\x05"}, rssi_dbm=-66)

    def services(self) -> tuple[ServiceSpec, ...]:
        return (ServiceSpec(CSC_SERVICE, (CharSpec(CSC_MEASUREMENT, (NOTIFY,)), CharSpec(CSC_FEATURE, (READ,)),
                                          CharSpec(SENSOR_LOCATION, (READ,)))),)

    def read(self, char_uuid: str) -> bytes:
        if char_uuid == CSC_FEATURE:
            return encode(0x2A5C, wheel_revolution_data_supported=True, crank_revolution_data_supported=True)
        if char_uuid == SENSOR_LOCATION:
            return encode(0x2A5D, sensor_location=12)  # rear wheel
        raise AttError(ATT_READ_NOT_PERMITTED, "Read not permitted")

    def _fields(self, t: float, power: int) -> dict[str, Any]:
        return dict(wheel_revolutions=self.wheel.revs % 2**32, wheel_event_time_1024=int(self.wheel.last_event_s * 1024) % 65536,
                    crank_revolutions=self.crank.revs % 65536, crank_event_time_1024=int(self.crank.last_event_s * 1024) % 65536)
