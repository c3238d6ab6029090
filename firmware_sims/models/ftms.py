"""FTMS gym machines: treadmill, indoor bike and rower, with a working Control Point.

Each machine follows a workout program (:mod:`.profile`) until a client takes control and
sets targets. Data (0x2ACD / 0x2AD2 / 0x2AD1) is notified once a second; Fitness Machine
Feature (0x2ACC), the Supported ... Range characteristics and Training Status (0x2AD3) are
readable; Training Status and Fitness Machine Status (0x2ADA) are notified on changes.

Control Point (0x2AD9) semantics per FTMS 1.0 §4.16: every write is answered with an
indication ``0x80, request op code, result code``: Request Control first (else 0x05 Control
Not Permitted); targets outside the Supported ... Range → 0x03 Invalid Parameter; op codes
the machine does not support → 0x02 Op Code Not Supported; success → 0x01 plus a Fitness
Machine Status notification (target changed / started / stopped). The simulated BlueZ
refuses writes while indications are not enabled (ATT 0xFD), as real machines do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from protocols.ble import ControlPointOpCode as Op
from protocols.ble import MachineStatusOpCode as St
from protocols.ble import ResultCode, TrainingStatusCode, decode, encode

from .base import (
    INDICATE,
    NOTIFY,
    READ,
    WRITE,
    Advert,
    AttError,
    CharSpec,
    DeviceModel,
    Notification,
    ServiceSpec,
    ATT_READ_NOT_PERMITTED,
    ATT_WRITE_NOT_PERMITTED,
    uuid128,
)
from .profile import WorkoutProfile, intervals

FTMS_SERVICE = uuid128(0x1826)
FEATURE, TRAINING_STATUS, CONTROL_POINT, MACHINE_STATUS = (uuid128(u) for u in (0x2ACC, 0x2AD3, 0x2AD9, 0x2ADA))
SPEED_RANGE, INCLINE_RANGE, RESISTANCE_RANGE, POWER_RANGE = (uuid128(u) for u in (0x2AD4, 0x2AD5, 0x2AD6, 0x2AD8))
TREADMILL_DATA, BIKE_DATA, ROWER_DATA = uuid128(0x2ACD), uuid128(0x2AD2), uuid128(0x2AD1)
# FTMS service data in the advert: flags (machine available) + machine type bits (FTMS 1.0 §3.1)
_TYPE_BITS = {"treadmill": 0x01, "bike": 0x20, "rower": 0x10}


class FitnessMachine(DeviceModel):
    """Shared state machine; subclasses define data fields, ranges and physics."""

    data_uuid = ""
    data_sig = 0
    ranges: dict[str, tuple[float, float, float]] = {}  # key -> (min, max, increment)
    machine_features: tuple[str, ...] = ()
    target_settings: tuple[str, ...] = ()

    def __init__(self, address: str, name: str, seed: int, profile: WorkoutProfile | None = None) -> None:
        super().__init__(address, name, seed)
        self.rng = np.random.default_rng([seed, 4])
        self.profile = profile or intervals()
        self.phase_s = float(self.rng.uniform(0, 1))
        self.fitness = float(self.rng.uniform(0.8, 1.2))
        self.running = True
        self.controlled = False
        self.targets: dict[str, float] = {}
        self.elapsed_s = 0
        self.distance_m = 0.0
        self.energy_kcal = 0.0
        self.state: dict[str, float] = {}
        self.training_status = int(TrainingStatusCode.MANUAL_MODE)
        self._next_k = 1
        self.history: list[dict[str, Any]] = []
        self.control_log: list[dict[str, Any]] = []
        self._pending: list[Notification] = []

    # -- subclass hooks --------------------------------------------------------------------
    def program(self, t_s: float) -> dict[str, float]:
        raise NotImplementedError

    def step(self, dt_s: float, want: dict[str, float]) -> None:
        raise NotImplementedError

    def data_fields(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- device ----------------------------------------------------------------------------
    def advertisement(self) -> Advert:
        return Advert(self.name, (FTMS_SERVICE,), {0xFFFF: b"FT\x03"},
                      service_data={FTMS_SERVICE: bytes([0x01, _TYPE_BITS[self.kind], 0x00])},
                      tx_power_dbm=4, rssi_dbm=-48 - int(self.seed % 10))

    def services(self) -> tuple[ServiceSpec, ...]:
        chars = [CharSpec(FEATURE, (READ,)), CharSpec(self.data_uuid, (NOTIFY,)),
                 CharSpec(TRAINING_STATUS, (READ, NOTIFY))]
        for key, u in (("speed", SPEED_RANGE), ("incline", INCLINE_RANGE), ("resistance", RESISTANCE_RANGE),
                       ("power", POWER_RANGE)):
            if key in self.ranges:
                chars.append(CharSpec(u, (READ,)))
        chars += [CharSpec(CONTROL_POINT, (WRITE, INDICATE)), CharSpec(MACHINE_STATUS, (NOTIFY,))]
        return (ServiceSpec(FTMS_SERVICE, tuple(chars)),)

    def nominal_rates_hz(self) -> dict[str, float]:
        return {self.data_uuid: 1.0}

    def read(self, char_uuid: str) -> bytes:
        if char_uuid == FEATURE:
            return encode(0x2ACC, machine_features=self.machine_features, target_settings=self.target_settings)
        if char_uuid == TRAINING_STATUS:
            return encode(0x2AD3, training_status=self.training_status)
        r = self.ranges
        if char_uuid == SPEED_RANGE and "speed" in r:
            return encode(0x2AD4, minimum_speed_kmh=r["speed"][0], maximum_speed_kmh=r["speed"][1], minimum_increment_kmh=r["speed"][2])
        if char_uuid == INCLINE_RANGE and "incline" in r:
            return encode(0x2AD5, minimum_inclination_pct=r["incline"][0], maximum_inclination_pct=r["incline"][1],
                          minimum_increment_pct=r["incline"][2])
        if char_uuid == RESISTANCE_RANGE and "resistance" in r:
            return encode(0x2AD6, minimum_resistance_level=r["resistance"][0], maximum_resistance_level=r["resistance"][1],
                          minimum_increment=r["resistance"][2])
        if char_uuid == POWER_RANGE and "power" in r:
            return encode(0x2AD8, minimum_power_w=int(r["power"][0]), maximum_power_w=int(r["power"][1]),
                          minimum_increment_w=int(r["power"][2]))
        raise AttError(ATT_READ_NOT_PERMITTED, "Read not permitted")

    def _reply(self, op: int, result: ResultCode) -> Notification:
        return Notification(self.t_s, CONTROL_POINT, encode(0x2AD9, op_code=Op.RESPONSE_CODE, request_op_code=op, result_code=result))

    def _status(self, **fields: Any) -> Notification:
        return Notification(self.t_s, MACHINE_STATUS, encode(0x2ADA, **fields))

    def _training(self, code: TrainingStatusCode) -> Notification:
        self.training_status = int(code)
        return Notification(self.t_s, TRAINING_STATUS, encode(0x2AD3, training_status=int(code)))

    def write(self, char_uuid: str, value: bytes) -> list[Notification]:
        if char_uuid != CONTROL_POINT:
            raise AttError(ATT_WRITE_NOT_PERMITTED, "Write not permitted")
        if not value:
            raise AttError(0x0D, "empty control point write")
        op = value[0]
        out = self._control(op, value)
        self.control_log.append({"t_s": self.t_s, "request": value.hex(), "op": op,
                                 "result": decode(0x2AD9, out[0].payload).result_code.value})
        return out

    def _control(self, op: int, value: bytes) -> list[Notification]:
        try:
            req = decode(0x2AD9, value)
        except ValueError:
            return [self._reply(op, ResultCode.INVALID_PARAMETER)]
        if op == Op.REQUEST_CONTROL:
            self.controlled = True
            return [self._reply(op, ResultCode.SUCCESS)]
        setters = {Op.SET_TARGET_SPEED: ("speed", "target_speed_kmh", St.TARGET_SPEED_CHANGED),
                   Op.SET_TARGET_INCLINATION: ("incline", "target_inclination_pct", St.TARGET_INCLINE_CHANGED),
                   Op.SET_TARGET_RESISTANCE_LEVEL: ("resistance", "target_resistance_level", St.TARGET_RESISTANCE_LEVEL_CHANGED),
                   Op.SET_TARGET_POWER: ("power", "target_power_w", St.TARGET_POWER_CHANGED)}
        supported = {Op.RESET, Op.START_OR_RESUME, Op.STOP_OR_PAUSE} | {o for o, s in setters.items() if s[0] in self.ranges}
        if op not in supported:
            return [self._reply(op, ResultCode.OP_CODE_NOT_SUPPORTED)]
        if not self.controlled:
            return [self._reply(op, ResultCode.CONTROL_NOT_PERMITTED)]
        if op == Op.RESET:
            self.controlled = False
            self.targets.clear()
            return [self._reply(op, ResultCode.SUCCESS), self._status(op_code=St.RESET)]
        if op == Op.START_OR_RESUME:
            self.running = True
            return [self._reply(op, ResultCode.SUCCESS), self._status(op_code=St.STARTED_OR_RESUMED_BY_USER),
                    self._training(TrainingStatusCode.MANUAL_MODE)]
        if op == Op.STOP_OR_PAUSE:
            if req.stop_or_pause not in (1, 2):
                return [self._reply(op, ResultCode.INVALID_PARAMETER)]
            self.running = False
            return [self._reply(op, ResultCode.SUCCESS),
                    self._status(op_code=St.STOPPED_OR_PAUSED_BY_USER, stop_or_pause=req.stop_or_pause),
                    self._training(TrainingStatusCode.POST_WORKOUT if req.stop_or_pause == 1 else TrainingStatusCode.IDLE)]
        key, field, status = setters[Op(op)]
        v = getattr(req, field)
        lo, hi, _inc = self.ranges[key]
        if v is None or not lo <= float(v) <= hi:
            return [self._reply(op, ResultCode.INVALID_PARAMETER)]
        self.targets[key] = float(v)
        return [self._reply(op, ResultCode.SUCCESS), self._status(op_code=status, **{field: v})]

    def advance(self, t_s: float) -> list[Notification]:
        out: list[Notification] = []
        self.t_s = t_s
        while self._next_k + self.phase_s <= t_s:
            t = self._next_k + self.phase_s
            want = {**self.program(t), **self.targets}
            if self.running:
                self.elapsed_s += 1
                self.step(1.0, want)
            else:
                self.step(1.0, {k: 0.0 for k in want})
            fields = self.data_fields()
            out.append(Notification(t, self.data_uuid, encode(self.data_sig, **fields)))
            self.history.append({"t_s": t, **fields})
            self._next_k += 1
        return out

    def ground_truth(self, since_s: float = 0.0) -> dict[str, Any]:
        gt = super().ground_truth()
        gt.update(t_s=self.t_s, distance_m=self.distance_m, energy_kcal=self.energy_kcal, elapsed_s=self.elapsed_s,
                  running=self.running, controlled=self.controlled, targets=dict(self.targets),
                  data=[h for h in self.history if h["t_s"] >= since_s], control_log=self.control_log)
        return gt


def _approach(x: float, target: float, rate: float) -> float:
    return x + max(-rate, min(rate, target - x))


class Treadmill(FitnessMachine):
    kind = "treadmill"
    data_uuid, data_sig = TREADMILL_DATA, 0x2ACD
    ranges = {"speed": (0.5, 20.0, 0.1), "incline": (0.0, 15.0, 0.5)}
    machine_features = ("total_distance", "inclination", "expended_energy", "elapsed_time")
    target_settings = ("speed_target", "inclination_target")

    def program(self, t_s: float) -> dict[str, float]:
        i = self.profile.intensity(t_s)
        return {"speed": round(4.5 + 10.0 * i * self.fitness, 1), "incline": 1.0 if i > 0.6 else 0.0}

    def step(self, dt_s: float, want: dict[str, float]) -> None:
        s = self.state
        s["speed_kmh"] = round(_approach(s.get("speed_kmh", 0.0), want["speed"], 0.8 * dt_s), 2)
        s["incline_pct"] = round(_approach(s.get("incline_pct", 0.0), want["incline"], 0.5 * dt_s), 1)
        self.distance_m += s["speed_kmh"] / 3.6 * dt_s
        self.energy_kcal += (0.9 * s["speed_kmh"] + 0.4 * s["incline_pct"] + 1.2) * dt_s / 60.0 * 75 / 60

    def data_fields(self) -> dict[str, Any]:
        s = self.state
        return dict(speed_kmh=s["speed_kmh"], total_distance_m=int(self.distance_m), inclination_pct=s["incline_pct"],
                    ramp_angle_deg=round(float(np.degrees(np.arctan(s["incline_pct"] / 100))), 1),
                    total_energy_kcal=int(self.energy_kcal), energy_per_hour_kcal=int(60 * (0.9 * s["speed_kmh"] + 1.2)),
                    energy_per_minute_kcal=int(0.9 * s["speed_kmh"] + 1.2), elapsed_time_s=self.elapsed_s)


class IndoorBike(FitnessMachine):
    kind = "bike"
    data_uuid, data_sig = BIKE_DATA, 0x2AD2
    ranges = {"resistance": (1.0, 20.0, 1.0), "power": (25.0, 1000.0, 1.0)}
    machine_features = ("cadence", "total_distance", "resistance_level", "expended_energy", "elapsed_time", "power_measurement")
    target_settings = ("resistance_target", "power_target")

    def program(self, t_s: float) -> dict[str, float]:
        i = self.profile.intensity(t_s)
        return {"power": round((70 + 240 * i) * self.fitness), "cadence": 70 + 25 * i, "resistance": round(2 + 12 * i)}

    def step(self, dt_s: float, want: dict[str, float]) -> None:
        s = self.state
        s["power_w"] = round(_approach(s.get("power_w", 0.0), want["power"], 40 * dt_s))
        s["cadence_rpm"] = round(_approach(s.get("cadence_rpm", 0.0), want.get("cadence", 80.0) if want["power"] else 0.0, 10 * dt_s) * 2) / 2
        s["resistance"] = want["resistance"]
        s["speed_kmh"] = round(3.6 * (max(s["power_w"], 0.0) / 4.0) ** (1 / 3) * 1.8, 2) if s["power_w"] > 0 else 0.0
        self.distance_m += s["speed_kmh"] / 3.6 * dt_s
        self.energy_kcal += s["power_w"] * dt_s / 4184 / 0.24

    def data_fields(self) -> dict[str, Any]:
        s = self.state
        return dict(speed_kmh=s["speed_kmh"], cadence_rpm=s["cadence_rpm"], total_distance_m=int(self.distance_m),
                    resistance_level=int(s["resistance"]), power_w=int(s["power_w"]),
                    total_energy_kcal=int(self.energy_kcal), energy_per_hour_kcal=int(s["power_w"] * 3.6 / 4.184 / 0.24),
                    energy_per_minute_kcal=int(s["power_w"] * 0.06 / 4.184 / 0.24), elapsed_time_s=self.elapsed_s)


class Rower(FitnessMachine):
    kind = "rower"
    data_uuid, data_sig = ROWER_DATA, 0x2AD1
    ranges = {"resistance": (1.0, 10.0, 1.0), "power": (25.0, 800.0, 1.0)}
    machine_features = ("cadence", "total_distance", "pace", "resistance_level", "expended_energy", "elapsed_time",
                        "power_measurement")
    target_settings = ("resistance_target", "power_target")

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.strokes = 0.0

    def program(self, t_s: float) -> dict[str, float]:
        i = self.profile.intensity(t_s)
        return {"power": round((60 + 220 * i) * self.fitness), "resistance": round(3 + 5 * i)}

    def step(self, dt_s: float, want: dict[str, float]) -> None:
        s = self.state
        s["power_w"] = round(_approach(s.get("power_w", 0.0), want["power"], 30 * dt_s))
        s["resistance"] = want["resistance"]
        s["stroke_rate_spm"] = round(16 + s["power_w"] / 20, 0) / 1 if s["power_w"] else 0.0
        self.strokes += s["stroke_rate_spm"] * dt_s / 60
        # Concept2: pace (s/500 m) = 500 * (2.8 / P) ** (1/3)
        pace = 500 * (2.8 / s["power_w"]) ** (1 / 3) if s["power_w"] > 0 else 0.0
        s["pace_s_per_500m"] = int(round(pace))
        self.distance_m += (500 / pace) * dt_s if pace else 0.0
        self.energy_kcal += (4 * s["power_w"] * dt_s + 0.35 * 4184 * dt_s / 60) / 4184

    def data_fields(self) -> dict[str, Any]:
        s = self.state
        return dict(stroke_rate_spm=s["stroke_rate_spm"], stroke_count=int(self.strokes), total_distance_m=int(self.distance_m),
                    pace_s_per_500m=s["pace_s_per_500m"], power_w=int(s["power_w"]), resistance_level=int(s["resistance"]),
                    total_energy_kcal=int(self.energy_kcal), energy_per_hour_kcal=int(s["power_w"] * 4 * 3.6 / 4.184),
                    energy_per_minute_kcal=int(s["power_w"] * 4 * 0.06 / 4.184), elapsed_time_s=self.elapsed_s)
