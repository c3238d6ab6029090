"""Wrist/chest IMU wearable doing scripted strength sets (squat, bench, curl, row, press...).

Every set has a known number of reps; each rep moves the sensor along the exercise's axis
(displacement ``D·(1-cos 2πu)/2`` over the rep's duration) and/or rotates it (curl: ~130°
about y), at a tempo that varies ±12 % rep to rep; each set is done with the sensor tilted a
little differently (±15°). Between sets the athlete rests 45–90 s; the accelerometer then
reads gravity plus noise. Samples (accel in 1/4096 g, gyro in 0.1 deg/s, int16) go out in
IMU Data packets (``protocols.ble.imu``) of about 1/10 s; the sample rate (12.5–200 Hz) and
gyro on/off are set through IMU Config.

Ground truth: the sets, the start/end time of every rep, and every sample sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from protocols.ble import imu as imu_codec
from protocols.ble import encode

from .base import (
    NOTIFY,
    READ,
    WRITE,
    Advert,
    AttError,
    CharSpec,
    DeviceModel,
    Notification,
    ServiceSpec,
    ATT_INVALID_ATTRIBUTE_VALUE_LEN,
    ATT_READ_NOT_PERMITTED,
    ATT_WRITE_NOT_PERMITTED,
    uuid128,
)

G = 9.80665
BATTERY_SERVICE, BATTERY_LEVEL = uuid128(0x180F), uuid128(0x2A19)
IMU_SERVICE, IMU_DATA, IMU_CONFIG = imu_codec.IMU_SERVICE_UUID, imu_codec.IMU_DATA_UUID, imu_codec.IMU_CONFIG_UUID
RATES_DHZ = (125, 250, 500, 1000, 2000)


@dataclass(frozen=True)
class Exercise:
    name: str
    disp_axis: tuple[float, float, float]  # world axis of the movement
    disp_m: float
    rot_axis: tuple[float, float, float]  # sensor axis of rotation
    rot_deg: float
    tempo_s: float  # nominal seconds per rep
    pitch_deg: float  # base orientation of the sensor during the exercise
    roll_deg: float


EXERCISES: dict[str, Exercise] = {
    "squat": Exercise("squat", (0, 0, 1), 0.45, (0, 1, 0), 10, 2.6, 0, 0),
    "bench": Exercise("bench", (0, 0, 1), 0.40, (1, 0, 0), 5, 2.2, 0, 90),
    "curl": Exercise("curl", (1, 0, 1), 0.05, (0, 1, 0), 130, 2.4, -10, 0),
    "row": Exercise("row", (1, 0, 0), 0.35, (0, 1, 0), 20, 2.2, 45, 0),
    "press": Exercise("press", (0, 0, 1), 0.50, (1, 0, 0), 8, 2.4, 0, 0),
    "deadlift": Exercise("deadlift", (0, 0, 1), 0.55, (0, 1, 0), 15, 3.0, 0, 0),
}
DEFAULT_PROGRAM: tuple[tuple[str, int], ...] = (
    ("squat", 10), ("bench", 8), ("curl", 12), ("row", 10), ("press", 8), ("squat", 8), ("deadlift", 5),
)


def _rot(axis: np.ndarray, deg: float) -> np.ndarray:
    a = axis / np.linalg.norm(axis)
    t = math.radians(deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * (k @ k)


class ImuWearable(DeviceModel):
    kind = "imu"

    def __init__(self, address: str, name: str, seed: int, rate_dhz: int = 500, gyro: bool = True,
                 program: tuple[tuple[str, int], ...] = DEFAULT_PROGRAM, start_s: float = 10.0,
                 history_samples: int = 200 * 3600) -> None:
        super().__init__(address, name, seed)
        self.rng = np.random.default_rng([seed, 2])
        self.rate_dhz = rate_dhz
        self.gyro = gyro
        self.sets: list[dict[str, Any]] = []
        t = start_s
        for _ in range(20):  # the program repeats: ample for hours of simulated time
            for ex_name, reps in program:
                ex = EXERCISES[ex_name]
                tilt = (float(self.rng.uniform(-15, 15)), float(self.rng.uniform(-15, 15)))
                rep_times = []
                for _r in range(reps):
                    d = ex.tempo_s * float(self.rng.uniform(0.88, 1.12))
                    rep_times.append((t, t + d))
                    t += d + float(self.rng.uniform(0.1, 0.4))
                self.sets.append({"exercise": ex_name, "reps": reps, "start_s": rep_times[0][0], "end_s": rep_times[-1][1],
                                  "rep_times_s": rep_times, "tilt_deg": tilt})
                t += float(self.rng.uniform(45, 90))
        self._set_idx = 0
        self._n = 0  # next sample index
        self._seq = 0
        self._noise = np.random.default_rng([seed, 3])
        # the samples sent (raw), kept for the last ``history_samples`` samples only so a long
        # run does not grow without bound; ``samples_offset`` is the index of the first one kept
        self.history_samples = history_samples
        self.samples_offset = 0
        self.samples_accel: list[tuple[int, int, int]] = []
        self.samples_gyro: list[tuple[int, int, int]] = []
        self.sample_t_s: list[float] = []
        self.packets_sent = 0
        self._rate_changes: list[tuple[int, int]] = [(0, rate_dhz)]  # (first sample index, rate)
        self._t_base = 0.0  # time of sample index _n_base at the current rate
        self._n_base = 0

    @property
    def rate_hz(self) -> float:
        return self.rate_dhz / 10.0

    def samples_per_packet(self) -> int:
        return max(1, min(imu_codec.max_samples(self.gyro), round(self.rate_hz / 10)))

    def nominal_rates_hz(self) -> dict[str, float]:
        return {IMU_DATA: self.rate_hz / self.samples_per_packet()}

    def advertisement(self) -> Advert:
        return Advert(self.name, (IMU_SERVICE,), {0xFFFF: b"FT\x02"}, tx_power_dbm=-4, rssi_dbm=-62 - int(self.seed % 15))

    def services(self) -> tuple[ServiceSpec, ...]:
        return (
            ServiceSpec(IMU_SERVICE, (CharSpec(IMU_DATA, (NOTIFY,)), CharSpec(IMU_CONFIG, (READ, WRITE)))),
            ServiceSpec(BATTERY_SERVICE, (CharSpec(BATTERY_LEVEL, (READ,)),)),
        )

    def read(self, char_uuid: str) -> bytes:
        if char_uuid == IMU_CONFIG:
            return imu_codec.encode_imu_config(sample_rate_dhz=self.rate_dhz, flags=1 if self.gyro else 0)
        if char_uuid == BATTERY_LEVEL:
            return encode(0x2A19, battery_level_pct=80)
        raise AttError(ATT_READ_NOT_PERMITTED, "Read not permitted")

    def write(self, char_uuid: str, value: bytes) -> list[Notification]:
        if char_uuid != IMU_CONFIG:
            raise AttError(ATT_WRITE_NOT_PERMITTED, "Write not permitted")
        try:
            cfg = imu_codec.decode_imu_config(value)
        except ValueError as e:
            raise AttError(ATT_INVALID_ATTRIBUTE_VALUE_LEN, str(e)) from e
        if cfg.sample_rate_dhz not in RATES_DHZ:
            raise AttError(0x13, f"unsupported rate {cfg.sample_rate_dhz / 10} Hz")  # value not allowed
        self._t_base = self._t_of(self._n)
        self._n_base = self._n
        self.rate_dhz = cfg.sample_rate_dhz
        self.gyro = cfg.gyro_enabled
        self._rate_changes.append((self._n, self.rate_dhz))
        return []

    def _t_of(self, n: int) -> float:
        return self._t_base + (n - self._n_base) * 10.0 / self.rate_dhz

    def _set_geometry(self, idx: int) -> dict[str, Any]:
        """Per-set constants (cached): base rotation, axes, rep start/end arrays."""
        cache = self.__dict__.setdefault("_geom", {})
        g = cache.get(idx)
        if g is None:
            s = self.sets[idx]
            ex = EXERCISES[s["exercise"]]
            axis = np.array(ex.disp_axis, dtype=float)
            rot_axis = np.array(ex.rot_axis, dtype=float)
            rot_axis /= np.linalg.norm(rot_axis)
            k = np.array([[0, -rot_axis[2], rot_axis[1]], [rot_axis[2], 0, -rot_axis[0]], [-rot_axis[1], rot_axis[0], 0]])
            g = cache[idx] = {
                "ex": ex, "base": _rot(np.array([0.0, 1.0, 0.0]), ex.pitch_deg + s["tilt_deg"][0]) @ _rot(
                    np.array([1.0, 0.0, 0.0]), ex.roll_deg + s["tilt_deg"][1]),
                "axis": axis / np.linalg.norm(axis), "rot_axis": rot_axis, "K": k, "K2": k @ k,
                "starts": np.array([a for a, _ in s["rep_times_s"]]), "ends": np.array([b for _, b in s["rep_times_s"]]),
            }
        return g

    def _motion(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(accel in g, gyro in deg/s), shape (n, 3), in the sensor frame at times ``t`` (no noise).

        ``t`` is increasing; samples belong to the current set until 30 s after its last rep.
        """
        n = len(t)
        acc = np.empty((n, 3))
        gyr = np.empty((n, 3))
        i = 0
        while i < n:
            while self._set_idx + 1 < len(self.sets) and self.sets[self._set_idx]["end_s"] + 30 < t[i]:
                self._set_idx += 1
            limit = self.sets[self._set_idx]["end_s"] + 30 if self._set_idx + 1 < len(self.sets) else np.inf
            j = i + int(np.searchsorted(t[i:], limit, side="right"))
            j = max(j, i + 1)
            g = self._set_geometry(self._set_idx)
            ex, tt = g["ex"], t[i:j]
            r = np.searchsorted(g["starts"], tt, side="right") - 1
            rr = np.clip(r, 0, None)
            in_rep = (r >= 0) & (tt <= g["ends"][rr])
            period = g["ends"][rr] - g["starts"][rr]
            u = np.where(in_rep, (tt - g["starts"][rr]) / period, 0.0)
            c, sn = np.cos(2 * np.pi * u), np.sin(2 * np.pi * u)
            a_mag = np.where(in_rep, ex.disp_m * (2 * np.pi / period) ** 2 / 2 * c / G, 0.0)
            theta = np.where(in_rep, np.radians(ex.rot_deg) * (1 - c) / 2, 0.0)
            omega = np.where(in_rep, ex.rot_deg * np.pi / period * sn, 0.0)
            # R(theta) = I + sin K + (1 - cos) K^2, per sample; accel = R(theta)^T base^T (g + a)
            v = np.array([0.0, 0.0, 1.0]) + a_mag[:, None] * g["axis"]
            w = v @ g["base"]  # base^T v, row-wise
            st, ct = np.sin(theta)[:, None], (1 - np.cos(theta))[:, None]
            acc[i:j] = w + st * (w @ g["K"]) + ct * (w @ g["K2"])
            gyr[i:j] = omega[:, None] * g["rot_axis"]
            i = j
        return acc, gyr

    def advance(self, t_s: float) -> list[Notification]:
        out: list[Notification] = []
        self.t_s = t_s
        k = self.samples_per_packet()
        while self._t_of(self._n + k - 1) <= t_s:
            first = self._n
            t = self._t_base + (np.arange(first, first + k) - self._n_base) * 10.0 / self.rate_dhz
            acc, gyr = self._motion(t)
            acc = acc + self._noise.normal(0, 0.01, (k, 3))
            gyr = gyr + self._noise.normal(0, 0.5, (k, 3))
            acc_raw = [tuple(r) for r in np.clip(np.rint(acc * imu_codec.ACCEL_LSB_PER_G), -32768, 32767).astype(int).tolist()]
            gyr_raw = [tuple(r) for r in np.clip(np.rint(gyr * imu_codec.GYRO_LSB_PER_DPS), -32768, 32767).astype(int).tolist()]
            self.sample_t_s.extend(t.tolist())
            self.samples_accel.extend(acc_raw)
            if self.gyro:
                self.samples_gyro.extend(gyr_raw)
            if len(self.sample_t_s) > 2 * self.history_samples:
                drop = len(self.sample_t_s) - self.history_samples
                del self.sample_t_s[:drop], self.samples_accel[:drop]
                self.samples_gyro = self.samples_gyro[-self.history_samples:]
                self.samples_offset += drop
            payload = imu_codec.encode_imu_data(packet_seq=self._seq, sample_rate_dhz=self.rate_dhz, first_sample=first,
                                                accel_1_4096g=acc_raw, gyro_0_1dps=gyr_raw if self.gyro else None)
            out.append(Notification(float(t[-1]), IMU_DATA, payload))
            self._seq = (self._seq + 1) & 0xFFFF
            self._n += k
            self.packets_sent += 1
        return out

    def ground_truth(self, since_s: float = 0.0) -> dict[str, Any]:
        gt = super().ground_truth()
        gt.update(
            t_s=self.t_s, sample_rate_dhz=self.rate_dhz, gyro=self.gyro, samples_sent=self._n,
            packets_sent=self.packets_sent,
            sets=[s for s in self.sets if s["start_s"] <= self.t_s and s["end_s"] >= since_s],
            rep_times_s=[r for s in self.sets for r in s["rep_times_s"] if since_s <= r[0] <= self.t_s],
        )
        return gt
