"""Decoded measurements -> per-stream samples (DESIGN §3 stream names, scales and units).

A :class:`StreamMapper` belongs to one device. It turns each decoded notification (a
``protocols.ble`` measurement, or an IMU packet) stamped with its arrival time into
:class:`Samples`: integer raw values of named streams with their timestamps (µs, UTC).

* Single-value characteristics (HR, power, speed...) are stamped with the notification's
  arrival time, quantised to :data:`TIME_RES_US` (1 ms).
* RR intervals are their own stream of **beat times** (:class:`RrClock`): the beats of a
  notification end at its arrival, and later beats continue from the previous beat by the sum of
  the RR intervals, so the timestamps agree with the RR values (the wire codec then stores them
  for free, TIME_MODEL_CUMULATIVE). The clock re-anchors to the arrival time when the two
  disagree by more than ``max_drift_us`` (missed notifications, a link drop, strap clock drift).
* CSC and Cycling Power counters become speed/cadence/distance through ``protocols.ble.rates``.
* Bad fields never crash the mapper: a decode error keeps the valid part (``DecodeError.partial``)
  and is counted by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from protocols.ble import (
    BatteryLevel,
    CrossTrainerData,
    CscMeasurement,
    CscRates,
    CyclingPowerMeasurement,
    CyclingPowerRates,
    HeartRateMeasurement,
    IndoorBikeData,
    RowerData,
    TreadmillData,
)
from protocols.ble.imu import ImuData
from protocols.ble.running import RscMeasurement

__all__ = ["STREAMS", "StreamSpec", "Samples", "RrClock", "ImuClock", "StreamMapper", "TIME_RES_US", "quantise_us"]

#: Timestamps of notification-stamped streams are whole milliseconds (BLE connection intervals are
#: 7.5 ms or more, so finer stamps would only carry jitter and cost wire bytes).
TIME_RES_US = 1000


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One stream: physical value = raw * ``scale`` in ``unit``; ``channels`` 1 or 3 (accel/gyro);
    ``priority`` orders the outbox drop policy (higher is kept longer)."""

    name: str
    scale: float
    unit: str
    channels: int = 1
    priority: int = 1
    derived: bool = False


#: Stream table (DESIGN §3). Priorities: HR/RR and derived 3, machine and cycling streams 2,
#: high-rate IMU 0 (dropped first), battery 1.
STREAMS: dict[str, StreamSpec] = {s.name: s for s in (
    StreamSpec("heart_rate", 1.0, "bpm", priority=3),
    StreamSpec("rr_interval", 1 / 1024, "s", priority=3),
    StreamSpec("energy_expended", 1.0, "kJ", priority=2),
    StreamSpec("accel", 1 / 4096, "g", channels=3, priority=0),
    StreamSpec("gyro", 0.1, "deg/s", channels=3, priority=0),
    StreamSpec("power", 1.0, "W", priority=2),
    StreamSpec("cadence", 0.5, "rpm", priority=2),
    StreamSpec("speed", 0.01, "km/h", priority=2),
    StreamSpec("distance", 0.1, "m", priority=2),
    StreamSpec("incline", 0.1, "%", priority=2),
    StreamSpec("resistance", 0.1, "", priority=2),
    StreamSpec("stroke_rate", 0.5, "1/min", priority=2),
    StreamSpec("battery", 1.0, "%", priority=1),
    # derived (edge_agent.pipeline)
    StreamSpec("hr_zone", 1.0, "", priority=3, derived=True),
    StreamSpec("time_in_zone", 0.001, "s", channels=5, priority=3, derived=True),
    StreamSpec("trimp", 0.001, "", priority=3, derived=True),
    StreamSpec("calories", 0.001, "kcal", priority=3, derived=True),
    StreamSpec("hrv_rmssd", 0.01, "ms", priority=3, derived=True),
    StreamSpec("rep", 1.0, "", priority=3, derived=True),
)}


def quantise_us(t_us: int, res_us: int = TIME_RES_US) -> int:
    """``t_us`` rounded down to a multiple of ``res_us``."""
    return t_us - t_us % res_us


@dataclass(slots=True)
class Samples:
    """Samples of one stream: ``t_us`` (UTC µs, multiples of :data:`TIME_RES_US`) and raw
    integer ``values`` (ints, or tuples of ints for multi-channel streams)."""

    stream: str
    t_us: list[int]
    values: list[Any]


class RrClock:
    """Beat times from RR intervals (1/1024 s) and notification arrival times (see module doc).

    Args:
        max_drift_us: re-anchor to the arrival time when the beat clock and the arrival time
            disagree by more than this (default 1.5 s).
    """

    def __init__(self, max_drift_us: int = 1_500_000) -> None:
        self.max_drift_us = max_drift_us
        self._last_beat_us: float | None = None
        self._floor_us: float | None = None  # last beat handed out (kept across resets)
        self._last_q = -1
        self.reanchors = 0

    def reset(self) -> None:
        """Forget the beat clock (after a link drop)."""
        self._last_beat_us = None

    def beats(self, arrival_us: int, rr_1024: Sequence[int]) -> list[int]:
        """Beat times (µs, multiples of 1 ms) of the intervals ``rr_1024`` that ended by ``arrival_us``."""
        if not rr_1024:
            return []
        cum = []
        acc = 0.0
        for r in rr_1024:
            acc += r * 1e6 / 1024
            cum.append(acc)
        last = self._last_beat_us
        if last is None or abs(last + acc - arrival_us) > self.max_drift_us or last + acc > arrival_us + self.max_drift_us:
            if last is not None:
                self.reanchors += 1
            # beats never go back past the previous notification's last beat
            start = arrival_us - acc
            if self._floor_us is not None:
                start = max(start, self._floor_us)
        else:
            start = last
        times = [start + c for c in cum]
        self._last_beat_us = self._floor_us = times[-1]
        out = []
        prev = self._last_q
        for t in times:
            q = int(math.floor(t / TIME_RES_US)) * TIME_RES_US
            if q <= prev:  # two beats in one ms cannot happen (RR >= 1/1024 s rounds apart), but guard
                q = prev + TIME_RES_US
            out.append(q)
            prev = q
        self._last_q = prev
        return out


class ImuClock:
    """Sample times of IMU packets (``protocols.ble.imu``) from the sensor's sample index.

    Sample *k* (index since the sensor started, unwrapped past 2**32) is at
    ``anchor_us + k * 1e6 / rate``; the anchor is set from the first packet's arrival (its last
    sample taken at arrival) and re-set when the index goes backwards or jumps (sensor restart,
    a device clock jump) or when the predicted time drifts from arrival by more than
    ``max_drift_us`` (sensor crystal error, a long gap). Lost packets leave a gap in time, they
    do not shift later samples.
    """

    def __init__(self, max_drift_us: int = 500_000) -> None:
        self.max_drift_us = max_drift_us
        self._anchor_us: float | None = None
        self._rate = 0.0
        self._last_raw = 0
        self._wraps = 0
        self._last_k = -1
        self._last_t_us: float | None = None
        self.reanchors = 0

    def reset(self) -> None:
        self._anchor_us = None

    def times(self, arrival_us: int, first_sample: int, count: int, rate_hz: float) -> list[int]:
        if count <= 0 or rate_hz <= 0:
            return []
        period = 1e6 / rate_hz
        if self._anchor_us is not None and rate_hz == self._rate:
            if first_sample < self._last_raw and self._last_raw - first_sample > (1 << 31):
                self._wraps += 1  # the uint32 index rolled over
            k0 = (self._wraps << 32) + first_sample
            last_pred = self._anchor_us + (k0 + count - 1) * period
            if k0 <= self._last_k or abs(last_pred - arrival_us) > self.max_drift_us:
                self._anchor_us = None
                self.reanchors += 1
        if self._anchor_us is None or rate_hz != self._rate:
            self._wraps = 0
            k0 = first_sample
            self._rate = rate_hz
            self._anchor_us = arrival_us - (k0 + count - 1) * period
            if self._last_t_us is not None and self._anchor_us + k0 * period < self._last_t_us + period:
                # never back past (or onto) the samples already stamped: continue right after them
                self._anchor_us = self._last_t_us + period - k0 * period
        self._last_raw = first_sample
        self._last_k = k0 + count - 1
        a = self._anchor_us
        res = TIME_RES_US
        out = [int((a + (k0 + i) * period) // res) * res for i in range(count)]
        self._last_t_us = a + (k0 + count - 1) * period
        return out


def _r(x: float, scale: float) -> int:
    return int(round(x / scale))


class StreamMapper:
    """Turns one device's decoded notifications into :class:`Samples` (see module docstring).

    Args:
        wheel_circumference_m: for CSC/CP wheel speed and distance.
    """

    def __init__(self, wheel_circumference_m: float = 2.105) -> None:
        self.rr = RrClock()
        self.imu = ImuClock()
        self._last_t: dict[str, int] = {}
        self.csc = CscRates(wheel_circumference_m)
        self.cps = CyclingPowerRates(wheel_circumference_m)

    def reset(self) -> None:
        """After a link drop: the RR clock and the revolution counters restart."""
        self.rr.reset()
        self.imu.reset()
        self.csc.reset()
        self.cps.reset()

    def map(self, m: Any, arrival_us: int) -> list[Samples]:
        """Samples of a decoded measurement ``m`` that arrived at ``arrival_us`` (UTC µs)."""
        t0 = quantise_us(arrival_us)
        out: list[Samples] = []
        last = self._last_t

        def one(stream: str, raw: int) -> None:
            # notifications delivered in a burst (after a stall) can share a millisecond: keep
            # each stream's times strictly increasing so every sample has its own time
            t = t0
            prev = last.get(stream)
            if prev is not None and t <= prev:
                t = prev + TIME_RES_US
            last[stream] = t
            out.append(Samples(stream, [t], [raw]))

        if isinstance(m, HeartRateMeasurement):
            if m.heart_rate_bpm:  # 0 = no reading (strap without skin contact)
                one("heart_rate", int(m.heart_rate_bpm))
            if m.energy_expended_kj is not None:
                one("energy_expended", int(m.energy_expended_kj))
            if m.rr_intervals_1024:
                rr = [int(r) for r in m.rr_intervals_1024 if r > 0]
                if rr:
                    out.append(Samples("rr_interval", self.rr.beats(arrival_us, rr), rr))
        elif isinstance(m, CyclingPowerMeasurement):
            one("power", int(m.power_w))
            sc = self.cps.update(m, arrival_us)
            self._speed_cadence(one, sc, m.wheel_revolutions is not None, m.crank_revolutions is not None)
        elif isinstance(m, CscMeasurement):
            sc = self.csc.update(m, arrival_us)
            self._speed_cadence(one, sc, m.wheel_revolutions is not None, m.crank_revolutions is not None)
        elif isinstance(m, RscMeasurement):
            one("speed", _r(m.speed_mps * 3.6, 0.01))
            one("cadence", _r(m.cadence_spm, 0.5))
            if m.total_distance_m is not None:
                one("distance", _r(m.total_distance_m, 0.1))
        elif isinstance(m, (TreadmillData, IndoorBikeData, RowerData, CrossTrainerData)):
            self._ftms(one, m)
        elif isinstance(m, ImuData):
            n = len(m.accel_1_4096g)
            ts = self.imu.times(arrival_us, m.first_sample, n, m.sample_rate_hz)
            if ts:
                out.append(Samples("accel", ts, list(m.accel_1_4096g)))
                if m.gyro_0_1dps is not None and len(m.gyro_0_1dps) == n:
                    out.append(Samples("gyro", ts, list(m.gyro_0_1dps)))
        elif isinstance(m, BatteryLevel):
            one("battery", int(m.battery_level_pct))
        return out

    @staticmethod
    def _speed_cadence(one: Any, sc: Any, wheel: bool, crank: bool) -> None:
        if wheel and sc.speed_mps is not None:
            one("speed", _r(sc.speed_mps * 3.6, 0.01))
            one("distance", _r(sc.distance_m, 0.1))
        if crank and sc.cadence_rpm is not None:
            one("cadence", _r(sc.cadence_rpm, 0.5))

    @staticmethod
    def _ftms(one: Any, m: Any) -> None:
        g = m.__getattribute__
        for attr, stream, scale in (
            ("speed_kmh", "speed", 0.01),
            ("total_distance_m", "distance", 0.1),
            ("inclination_pct", "incline", 0.1),
            ("cadence_rpm", "cadence", 0.5),
            ("step_rate_spm", "cadence", 0.5),
            ("stroke_rate_spm", "stroke_rate", 0.5),
            ("resistance_level", "resistance", 0.1),
            ("power_w", "power", 1.0),
            ("power_output_w", "power", 1.0),
            ("heart_rate_bpm", "heart_rate", 1.0),
        ):
            try:
                v = g(attr)
            except AttributeError:
                continue
            if v is not None and not (stream == "heart_rate" and v == 0):
                one(stream, _r(float(v), scale))
