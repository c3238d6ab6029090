"""Heart-rate strap: HR from a workout profile, RR intervals with HRV, ectopic and missed beats.

Physiology (simple but plausible): the heart rate relaxes towards the profile's target with a
25 s time constant going up and 45 s coming down; every beat's RR interval is 60/HR modulated
by respiratory sinus arrhythmia (0.25 Hz, larger at low HR) and 1 % noise. Premature
(ectopic) beats come at 0.62 × RR followed by a compensatory 1.38 × RR; missed beats are real
beats the strap does not detect, so the RR it reports spans two intervals. Contact is lost
for 5–20 s roughly every 10 minutes (no RR, HR 0, contact bit cleared), the battery drains
1 % per 15 simulated minutes. Energy expended (Keytel, kJ) rides on every 10th notification.

Notifications (0x2A37) go out once a second at ``k + phase_s``; each carries the RR intervals
of the beats detected since the previous one, in 1/1024 s, as ``round(t*1024)`` differences
so that they add up exactly to the beat times.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from protocols.ble import encode

from .base import (
    NOTIFY,
    READ,
    Advert,
    AttError,
    CharSpec,
    DeviceModel,
    Notification,
    ServiceSpec,
    ATT_READ_NOT_PERMITTED,
    uuid128,
)
from .profile import WorkoutProfile, intervals

HR_SERVICE, HR_MEASUREMENT, BODY_SENSOR_LOCATION = uuid128(0x180D), uuid128(0x2A37), uuid128(0x2A38)
BATTERY_SERVICE, BATTERY_LEVEL = uuid128(0x180F), uuid128(0x2A19)
DIS_SERVICE = uuid128(0x180A)
DIS_CHARS = {uuid128(0x2A29): "FitTracker", uuid128(0x2A24): "FT-HRM-1", uuid128(0x2A26): "1.4.2"}
SERIAL_NUMBER = uuid128(0x2A25)
COMPANY_ID = 0xFFFF  # "reserved for testing" company identifier


class HeartRateStrap(DeviceModel):
    kind = "hr"

    def __init__(self, address: str, name: str, seed: int, profile: WorkoutProfile | None = None,
                 hr_rest_bpm: float | None = None, hr_max_bpm: float | None = None,
                 p_ectopic: float = 0.004, p_missed: float = 0.003) -> None:
        super().__init__(address, name, seed)
        self.rng = np.random.default_rng([seed, 1])
        self.profile = profile or intervals()
        self.hr_rest_bpm = hr_rest_bpm if hr_rest_bpm is not None else float(self.rng.uniform(52, 68))
        self.hr_max_bpm = hr_max_bpm if hr_max_bpm is not None else float(self.rng.uniform(178, 195))
        self.p_ectopic, self.p_missed = p_ectopic, p_missed
        self.phase_s = float(self.rng.uniform(0, 1))
        self.weight_kg, self.age_y = float(self.rng.uniform(60, 95)), int(self.rng.integers(20, 60))
        self.battery_start_pct = int(self.rng.integers(60, 101))
        # beats: true times; detected flag; kind ("n" normal, "e" ectopic)
        self._hr_state = self.hr_rest_bpm
        self.beats_s: list[float] = []
        self.detected: list[bool] = []
        self.ectopic_s: list[float] = []
        self.missed_s: list[float] = []
        self._compensate = False
        self.contact_loss: list[tuple[float, float]] = []
        t = float(self.rng.uniform(120, 600))
        while t < 48 * 3600:
            d = float(self.rng.uniform(5, 20))
            self.contact_loss.append((t, t + d))
            t += d + float(self.rng.uniform(400, 800))
        self._next_k = 1
        self._last_reported_beat = -1  # index of the last beat whose RR went out
        self._energy_kj = 0.0
        self._battery_pct = self.battery_start_pct
        self.sent: list[dict[str, Any]] = []
        self.serial = f"HR{int(self.rng.integers(10**7, 10**8))}"

    # -- physiology ---------------------------------------------------------------------------
    def target_hr_bpm(self, t_s: float) -> float:
        return self.hr_rest_bpm + self.profile.intensity(t_s) * (self.hr_max_bpm - self.hr_rest_bpm)

    def _in_contact_loss(self, t_s: float) -> bool:
        for a, b in self.contact_loss:
            if a <= t_s < b:
                return True
            if a > t_s:
                return False
        return False

    def _gen_beats(self, until_s: float) -> None:
        rng = self.rng
        t = self.beats_s[-1] if self.beats_s else float(rng.uniform(0, 0.8))
        if not self.beats_s:
            self.beats_s.append(t)
            self.detected.append(True)
        while t < until_s:
            target = self.target_hr_bpm(t)
            rr = 60.0 / self._hr_state
            tau = 25.0 if target > self._hr_state else 45.0
            self._hr_state += (target - self._hr_state) * (1 - math.exp(-rr / tau))
            span = max(self.hr_max_bpm - self.hr_rest_bpm, 1.0)
            amp = 0.045 * (self.hr_max_bpm - self._hr_state) / span + 0.004
            rr = 60.0 / self._hr_state * (1 + amp * math.sin(2 * math.pi * 0.25 * t) + float(rng.normal(0, 0.01)))
            if self._compensate:
                rr *= 1.38
                self._compensate = False
            elif rng.random() < self.p_ectopic:
                rr *= 0.62
                self._compensate = True
                self.ectopic_s.append(t + rr)
            t += rr
            missed = rng.random() < self.p_missed
            if missed:
                self.missed_s.append(t)
            self.beats_s.append(t)
            self.detected.append(not missed)

    def true_hr_bpm(self, t_s: float) -> float:
        """Instantaneous HR from the last three true RR intervals before ``t_s``."""
        i = bisect.bisect_right(self.beats_s, t_s) - 1
        if i < 1:
            return self.hr_rest_bpm
        j = max(0, i - 3)
        return 60.0 * (i - j) / (self.beats_s[i] - self.beats_s[j])

    # -- device -------------------------------------------------------------------------------
    def advertisement(self) -> Advert:
        return Advert(self.name, (HR_SERVICE, BATTERY_SERVICE), {COMPANY_ID: b"FT\x01" + bytes([self._battery_pct])},
                      tx_power_dbm=0, rssi_dbm=-55 - int(self.seed % 20), appearance=0x0341)

    def services(self) -> tuple[ServiceSpec, ...]:
        return (
            ServiceSpec(HR_SERVICE, (CharSpec(HR_MEASUREMENT, (NOTIFY,)), CharSpec(BODY_SENSOR_LOCATION, (READ,)))),
            ServiceSpec(BATTERY_SERVICE, (CharSpec(BATTERY_LEVEL, (READ, NOTIFY)),)),
            ServiceSpec(DIS_SERVICE, tuple(CharSpec(u, (READ,)) for u in [*DIS_CHARS, SERIAL_NUMBER])),
        )

    def nominal_rates_hz(self) -> dict[str, float]:
        return {HR_MEASUREMENT: 1.0}

    def read(self, char_uuid: str) -> bytes:
        if char_uuid == BODY_SENSOR_LOCATION:
            return encode(0x2A38, body_sensor_location=1)
        if char_uuid == BATTERY_LEVEL:
            return encode(0x2A19, battery_level_pct=self._battery_pct)
        if char_uuid in DIS_CHARS:
            return DIS_CHARS[char_uuid].encode()
        if char_uuid == SERIAL_NUMBER:
            return self.serial.encode()
        raise AttError(ATT_READ_NOT_PERMITTED, "Read not permitted")

    def advance(self, t_s: float) -> list[Notification]:
        out: list[Notification] = []
        self.t_s = t_s
        while self._next_k + self.phase_s <= t_s:
            out.extend(self._notify(self._next_k))
            self._next_k += 1
        return out

    def _notify(self, k: int) -> list[Notification]:
        t = k + self.phase_s
        self._gen_beats(t + 2.0)
        out: list[Notification] = []
        contact = not self._in_contact_loss(t)
        hr_true = self.true_hr_bpm(t)
        ee_kj_per_min = -55.0969 + 0.6309 * hr_true + 0.1988 * self.weight_kg + 0.2017 * self.age_y
        self._energy_kj += max(ee_kj_per_min, 2.0) / 60.0
        rr: list[int] = []
        lo = bisect.bisect_right(self.beats_s, t - 1.0)
        hi = bisect.bisect_right(self.beats_s, t)
        for i in range(lo, hi):
            if not self.detected[i] or self._in_contact_loss(self.beats_s[i]):
                continue
            prev = self._last_reported_beat
            self._last_reported_beat = i
            # the strap measures between detected beats; after contact returns it restarts
            if prev < 0 or any(self._in_contact_loss(self.beats_s[j]) for j in range(prev + 1, i)):
                continue
            rr.append(round(self.beats_s[i] * 1024) - round(self.beats_s[prev] * 1024))
        rr = rr[-9:]
        fields: dict[str, Any] = {
            "heart_rate_bpm": int(round(hr_true)) if contact else 0,
            "sensor_contact": contact,
        }
        if rr and contact:
            fields["rr_intervals_1024"] = rr
        else:
            rr = []
        if k % 10 == 0:
            fields["energy_expended_kj"] = min(int(self._energy_kj), 0xFFFF)
        payload = encode(0x2A37, **fields)
        out.append(Notification(t, HR_MEASUREMENT, payload))
        self.sent.append({"t_s": t, "true_hr_bpm": hr_true, "heart_rate_bpm": fields["heart_rate_bpm"],
                          "sensor_contact": contact, "rr_intervals_1024": rr,
                          "energy_expended_kj": fields.get("energy_expended_kj")})
        pct = max(0, self.battery_start_pct - int(t // 900))
        if pct != self._battery_pct:
            self._battery_pct = pct
            out.append(Notification(t, BATTERY_LEVEL, encode(0x2A19, battery_level_pct=pct)))
        return out

    def ground_truth(self, since_s: float = 0.0) -> dict[str, Any]:
        gt = super().ground_truth()
        lo = bisect.bisect_left(self.beats_s, since_s)
        hi = bisect.bisect_right(self.beats_s, self.t_s)
        gt.update(
            hr_rest_bpm=self.hr_rest_bpm, hr_max_bpm=self.hr_max_bpm, t_s=self.t_s,
            notifications=[s for s in self.sent if s["t_s"] >= since_s],
            beats_s=self.beats_s[lo:hi], ectopic_s=[x for x in self.ectopic_s if since_s <= x <= self.t_s],
            missed_s=[x for x in self.missed_s if since_s <= x <= self.t_s],
            contact_loss=[list(w) for w in self.contact_loss if w[0] <= self.t_s],
            battery_pct=self._battery_pct, energy_kj=self._energy_kj,
        )
        return gt
