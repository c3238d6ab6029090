"""FTMS Fitness Machine Control Point (0x2AD9), Fitness Machine Status (0x2ADA) and
Training Status (0x2AD3).

Control Point (FTMS 1.0 §4.16): the client writes a request (an op code and its parameter);
the machine indicates a response ``0x80, request op code, result code[, parameter]``. Both
directions decode to :class:`FitnessMachineControlPoint` and encode from it.

Status (§4.17): the machine notifies an op code and its parameter when something changed
(started, stopped by the safety key, a new target...).

Parameters are named with their units (``target_speed_kmh``, ``target_power_w``...). An op
code this module does not know is kept (``op_code`` is then a plain int) and its parameter
bytes are counted in ``trailing_bytes``: a newer machine is visible, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from ._codegen import KINDS, Field, to_raw
from .errors import DecodeError, EncodeError, short
from .measurement import Measurement, make, make_partial

TRAINING_STATUS_UUID = 0x2AD3
FITNESS_MACHINE_CONTROL_POINT_UUID = 0x2AD9
FITNESS_MACHINE_STATUS_UUID = 0x2ADA


class ControlPointOpCode(IntEnum):
    """Fitness Machine Control Point op codes (FTMS 1.0 Table 4.15)."""

    REQUEST_CONTROL = 0x00
    RESET = 0x01
    SET_TARGET_SPEED = 0x02
    SET_TARGET_INCLINATION = 0x03
    SET_TARGET_RESISTANCE_LEVEL = 0x04
    SET_TARGET_POWER = 0x05
    SET_TARGET_HEART_RATE = 0x06
    START_OR_RESUME = 0x07
    STOP_OR_PAUSE = 0x08
    SET_TARGETED_EXPENDED_ENERGY = 0x09
    SET_TARGETED_NUMBER_OF_STEPS = 0x0A
    SET_TARGETED_NUMBER_OF_STRIDES = 0x0B
    SET_TARGETED_DISTANCE = 0x0C
    SET_TARGETED_TRAINING_TIME = 0x0D
    SET_TARGETED_TIME_IN_TWO_HR_ZONES = 0x0E
    SET_TARGETED_TIME_IN_THREE_HR_ZONES = 0x0F
    SET_TARGETED_TIME_IN_FIVE_HR_ZONES = 0x10
    SET_INDOOR_BIKE_SIMULATION_PARAMETERS = 0x11
    SET_WHEEL_CIRCUMFERENCE = 0x12
    SPIN_DOWN_CONTROL = 0x13
    SET_TARGETED_CADENCE = 0x14
    RESPONSE_CODE = 0x80


class ResultCode(IntEnum):
    """Control Point result codes (FTMS 1.0 Table 4.24)."""

    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_PARAMETER = 0x03
    OPERATION_FAILED = 0x04
    CONTROL_NOT_PERMITTED = 0x05


class StopOrPause(IntEnum):
    """Parameter of Stop or Pause (control point 0x08, status 0x02)."""

    STOP = 0x01
    PAUSE = 0x02


class SpinDownControl(IntEnum):
    """Parameter of Spin Down Control (control point 0x13)."""

    START = 0x01
    IGNORE = 0x02


class SpinDownStatus(IntEnum):
    """Parameter of Spin Down Status (status 0x14)."""

    SPIN_DOWN_REQUESTED = 0x01
    SUCCESS = 0x02
    ERROR = 0x03
    STOP_PEDALING = 0x04


class MachineStatusOpCode(IntEnum):
    """Fitness Machine Status op codes (FTMS 1.0 Table 4.26)."""

    RESET = 0x01
    STOPPED_OR_PAUSED_BY_USER = 0x02
    STOPPED_BY_SAFETY_KEY = 0x03
    STARTED_OR_RESUMED_BY_USER = 0x04
    TARGET_SPEED_CHANGED = 0x05
    TARGET_INCLINE_CHANGED = 0x06
    TARGET_RESISTANCE_LEVEL_CHANGED = 0x07
    TARGET_POWER_CHANGED = 0x08
    TARGET_HEART_RATE_CHANGED = 0x09
    TARGETED_EXPENDED_ENERGY_CHANGED = 0x0A
    TARGETED_NUMBER_OF_STEPS_CHANGED = 0x0B
    TARGETED_NUMBER_OF_STRIDES_CHANGED = 0x0C
    TARGETED_DISTANCE_CHANGED = 0x0D
    TARGETED_TRAINING_TIME_CHANGED = 0x0E
    TARGETED_TIME_IN_TWO_HR_ZONES_CHANGED = 0x0F
    TARGETED_TIME_IN_THREE_HR_ZONES_CHANGED = 0x10
    TARGETED_TIME_IN_FIVE_HR_ZONES_CHANGED = 0x11
    INDOOR_BIKE_SIMULATION_PARAMETERS_CHANGED = 0x12
    WHEEL_CIRCUMFERENCE_CHANGED = 0x13
    SPIN_DOWN_STATUS = 0x14
    TARGETED_CADENCE_CHANGED = 0x15
    CONTROL_PERMISSION_LOST = 0xFF


# Parameter fields (FTMS 1.0 §4.16.2 / §4.17).
_SPEED = (Field("target_speed_kmh", "u16", den=100, unit="km/h"),)
_INCL = (Field("target_inclination_pct", "s16", den=10, unit="%"),)
_RES = (Field("target_resistance_level", "u8", den=10),)
_POWER = (Field("target_power_w", "s16", unit="W"),)
_HR = (Field("target_heart_rate_bpm", "u8", unit="bpm"),)
_STOP = (Field("stop_or_pause", "u8"),)
_ENERGY = (Field("targeted_expended_energy_kcal", "u16", unit="kcal"),)
_STEPS = (Field("targeted_steps", "u16"),)
_STRIDES = (Field("targeted_strides", "u16"),)
_DIST = (Field("targeted_distance_m", "u24", unit="m"),)
_TIME = (Field("targeted_training_time_s", "u16", unit="s"),)
_SIM = (
    Field("wind_speed_mps", "s16", den=1000, unit="m/s"),
    Field("grade_pct", "s16", den=100, unit="%"),
    Field("rolling_resistance_coefficient", "u8", den=10000),
    Field("wind_resistance_coefficient_kg_per_m", "u8", den=100, unit="kg/m"),
)
_WHEEL = (Field("wheel_circumference_mm", "u16", den=10, unit="mm"),)
_CADENCE = (Field("targeted_cadence_rpm", "u16", den=2, unit="rpm"),)
_ZONE = Field("targeted_time_in_hr_zones_s", "u16", unit="s")
_SPIN_SPEEDS = (Field("target_speed_low_kmh", "u16", den=100, unit="km/h"), Field("target_speed_high_kmh", "u16", den=100, unit="km/h"))

#: op code -> parameter fields, or an int: that many targeted-time-in-zone uint16 values.
CONTROL_POINT_PARAMETERS: dict[int, tuple[Field, ...] | int] = {
    0x00: (), 0x01: (), 0x02: _SPEED, 0x03: _INCL, 0x04: _RES, 0x05: _POWER, 0x06: _HR, 0x07: (), 0x08: _STOP,
    0x09: _ENERGY, 0x0A: _STEPS, 0x0B: _STRIDES, 0x0C: _DIST, 0x0D: _TIME, 0x0E: 2, 0x0F: 3, 0x10: 5,
    0x11: _SIM, 0x12: _WHEEL, 0x13: (Field("spin_down_control", "u8"),), 0x14: _CADENCE,
}
MACHINE_STATUS_PARAMETERS: dict[int, tuple[Field, ...] | int] = {
    0x01: (), 0x02: _STOP, 0x03: (), 0x04: (), 0x05: _SPEED, 0x06: _INCL, 0x07: _RES, 0x08: _POWER, 0x09: _HR,
    0x0A: _ENERGY, 0x0B: _STEPS, 0x0C: _STRIDES, 0x0D: _DIST, 0x0E: _TIME, 0x0F: 2, 0x10: 3, 0x11: 5,
    0x12: _SIM, 0x13: _WHEEL, 0x14: (Field("spin_down_status", "u8"),), 0x15: _CADENCE, 0xFF: (),
}


@dataclass(frozen=True, kw_only=True)
class _OpCoded(Measurement):
    op_code: int = 0
    target_speed_kmh: float | None = None
    target_inclination_pct: float | None = None
    target_resistance_level: float | None = None
    target_power_w: int | None = None
    target_heart_rate_bpm: int | None = None
    stop_or_pause: int | None = None
    targeted_expended_energy_kcal: int | None = None
    targeted_steps: int | None = None
    targeted_strides: int | None = None
    targeted_distance_m: int | None = None
    targeted_training_time_s: int | None = None
    targeted_time_in_hr_zones_s: tuple[int, ...] | None = None
    wind_speed_mps: float | None = None
    grade_pct: float | None = None
    rolling_resistance_coefficient: float | None = None
    wind_resistance_coefficient_kg_per_m: float | None = None
    wheel_circumference_mm: float | None = None
    targeted_cadence_rpm: float | None = None


@dataclass(frozen=True, kw_only=True)
class FitnessMachineControlPoint(_OpCoded):
    """A Control Point request (``op_code`` < 0x80) or response (``op_code == 0x80``).

    Request parameters, by op code: target_speed_kmh (0.01 km/h), target_inclination_pct
    (0.1 %), target_resistance_level (0.1), target_power_w, target_heart_rate_bpm,
    stop_or_pause (:class:`StopOrPause`), targeted_expended_energy_kcal, targeted_steps,
    targeted_strides, targeted_distance_m, targeted_training_time_s,
    targeted_time_in_hr_zones_s (2, 3 or 5 values, s), the indoor bike simulation
    parameters wind_speed_mps (0.001 m/s), grade_pct (0.01 %), rolling_resistance_coefficient
    (0.0001), wind_resistance_coefficient_kg_per_m (0.01 kg/m), wheel_circumference_mm
    (0.1 mm), spin_down_control (:class:`SpinDownControl`), targeted_cadence_rpm (0.5 rpm).

    Response: request_op_code, result_code (:class:`ResultCode`) and, for a successful Spin
    Down Control start, target_speed_low_kmh / target_speed_high_kmh.
    """

    UUID = FITNESS_MACHINE_CONTROL_POINT_UUID
    NAME = "Fitness Machine Control Point"

    spin_down_control: int | None = None
    request_op_code: int | None = None
    result_code: int | None = None
    target_speed_low_kmh: float | None = None
    target_speed_high_kmh: float | None = None

    @property
    def is_response(self) -> bool:
        return self.op_code == ControlPointOpCode.RESPONSE_CODE

    @property
    def succeeded(self) -> bool:
        """For a response: the machine accepted the request."""
        return self.is_response and self.result_code == ResultCode.SUCCESS


@dataclass(frozen=True, kw_only=True)
class FitnessMachineStatus(_OpCoded):
    """A Fitness Machine Status notification: ``op_code`` (:class:`MachineStatusOpCode`) and
    the parameter it carries (same names and units as :class:`FitnessMachineControlPoint`;
    spin_down_status is :class:`SpinDownStatus`)."""

    UUID = FITNESS_MACHINE_STATUS_UUID
    NAME = "Fitness Machine Status"

    spin_down_status: int | None = None


_ENUMS: dict[str, type[IntEnum]] = {
    "stop_or_pause": StopOrPause, "spin_down_control": SpinDownControl, "spin_down_status": SpinDownStatus,
    "result_code": ResultCode, "request_op_code": ControlPointOpCode,
}


def _enum(name: str, v: int) -> int:
    e = _ENUMS.get(name)
    if e is not None:
        try:
            return e(v)
        except ValueError:
            return v
    return v


def _read(f: Field, p: bytes, o: int) -> Any:
    size, signed = KINDS[f.kind]
    raw = int.from_bytes(p[o:o + size], "little", signed=signed)
    if f.scaled:
        return raw * f.num / f.den
    return _enum(f.name, raw)


def _decode_fields(label: str, cls: type[_OpCoded], p: bytes, o: int, fields: "tuple[Field, ...] | int", values: dict[str, Any]) -> int:
    n = len(p)
    if isinstance(fields, int):  # targeted time in 2/3/5 heart rate zones
        need = 2 * fields
        if n < o + need:
            raise short(label, _ZONE.name, o, need, n, None, make_partial(cls, values))
        values[_ZONE.name] = tuple(int.from_bytes(p[o + 2 * i:o + 2 * i + 2], "little") for i in range(fields))
        return o + need
    for f in fields:
        if n < o + f.size:
            raise short(label, f.name, o, f.size, n, None, make_partial(cls, values))
        values[f.name] = _read(f, p, o)
        o += f.size
    return o


def _with_defaults(cls: type[_OpCoded], values: dict[str, Any]) -> dict[str, Any]:
    full = dict.fromkeys(cls.field_names())
    full.update(values)
    full["unknown_flag_bits"] = 0
    return full


_CP_LABEL = "Fitness Machine Control Point (0x2AD9)"
_MS_LABEL = "Fitness Machine Status (0x2ADA)"


def decode_fitness_machine_control_point(p: bytes) -> FitnessMachineControlPoint:
    n = len(p)
    if n == 0:
        raise DecodeError("empty payload (needs an op code)", characteristic=_CP_LABEL, field="op_code", offset=0, needed=1, available=0)
    op = p[0]
    values: dict[str, Any] = {"op_code": _enum_op(ControlPointOpCode, op)}
    cls = FitnessMachineControlPoint
    if op == 0x80:
        if n < 3:
            raise short(_CP_LABEL, "request_op_code/result_code", 1, 2, n, None, make_partial(cls, values))
        values["request_op_code"] = _enum("request_op_code", p[1])
        values["result_code"] = _enum("result_code", p[2])
        o = 3
        if p[1] == ControlPointOpCode.SPIN_DOWN_CONTROL and p[2] == ResultCode.SUCCESS and n >= 7:
            o = _decode_fields(_CP_LABEL, cls, p, o, _SPIN_SPEEDS, values)
    else:
        fields = CONTROL_POINT_PARAMETERS.get(op)
        o = 1 if fields is None else _decode_fields(_CP_LABEL, cls, p, 1, fields, values)
    values["trailing_bytes"] = n - o
    return make(cls, _with_defaults(cls, values))


def decode_fitness_machine_status(p: bytes) -> FitnessMachineStatus:
    n = len(p)
    if n == 0:
        raise DecodeError("empty payload (needs an op code)", characteristic=_MS_LABEL, field="op_code", offset=0, needed=1, available=0)
    op = p[0]
    values: dict[str, Any] = {"op_code": _enum_op(MachineStatusOpCode, op)}
    fields = MACHINE_STATUS_PARAMETERS.get(op)
    o = 1 if fields is None else _decode_fields(_MS_LABEL, FitnessMachineStatus, p, 1, fields, values)
    values["trailing_bytes"] = n - o
    return make(FitnessMachineStatus, _with_defaults(FitnessMachineStatus, values))


def _enum_op(e: type[IntEnum], v: int) -> int:
    try:
        return e(v)
    except ValueError:
        return v


def _encode_op(label: str, cls: type[_OpCoded], table: dict[int, "tuple[Field, ...] | int"], kw: dict[str, Any]) -> bytes:
    known = set(cls.field_names())
    extra = set(kw) - known
    if extra:
        raise TypeError(f"encode {cls.NAME}: unexpected keyword(s) {sorted(extra)}")
    op = kw.get("op_code")
    if type(op) is not int and not isinstance(op, IntEnum) or not 0 <= int(op) <= 0xFF:
        raise EncodeError(f"op_code={op!r} must be an int in 0..255", characteristic=label, field="op_code")
    op = int(op)
    out = bytearray((op,))
    used = {"op_code", "unknown_flag_bits", "trailing_bytes"}
    if cls is FitnessMachineControlPoint and op == 0x80:
        for name in ("request_op_code", "result_code"):
            v = kw.get(name)
            if not isinstance(v, int) or not 0 <= v <= 0xFF:
                raise EncodeError(f"a response needs {name} as an int in 0..255, got {v!r}", characteristic=label, field=name)
            out.append(int(v))
            used.add(name)
        if kw.get("target_speed_low_kmh") is not None or kw.get("target_speed_high_kmh") is not None:
            for f in _SPIN_SPEEDS:
                if kw.get(f.name) is None:
                    raise EncodeError(f"{f.name} is required with the other spin-down speed", characteristic=label, field=f.name)
                out += to_raw(kw[f.name], f, label).to_bytes(2, "little")
                used.add(f.name)
    else:
        fields = table.get(op)
        if fields is None:  # an op code this module does not know: no parameters to encode
            fields = ()
        if isinstance(fields, int):
            zones = kw.get(_ZONE.name)
            if zones is None or len(zones) != fields:
                raise EncodeError(f"op code 0x{op:02X} needs {_ZONE.name} with {fields} values, got {zones!r}", characteristic=label, field=_ZONE.name)
            for z in zones:
                out += to_raw(z, _ZONE, label).to_bytes(2, "little")
            used.add(_ZONE.name)
        else:
            for f in fields:
                v = kw.get(f.name)
                if v is None:
                    raise EncodeError(f"op code 0x{op:02X} needs {f.name!r}", characteristic=label, field=f.name)
                size, signed = KINDS[f.kind]
                out += to_raw(int(v) if isinstance(v, IntEnum) else v, f, label).to_bytes(size, "little", signed=signed)
                used.add(f.name)
    stray = sorted(k for k, v in kw.items() if v is not None and k not in used)
    if stray:
        raise EncodeError(f"op code 0x{op:02X} carries no {stray}", characteristic=label, field=stray[0])
    if kw.get("unknown_flag_bits"):
        raise EncodeError("this characteristic has no flags", characteristic=label, field="unknown_flag_bits")
    tb = kw.get("trailing_bytes", 0)
    if type(tb) is not int or not 0 <= tb <= 512:
        raise EncodeError(f"trailing_bytes={tb!r} must be an int in 0..512", characteristic=label, field="trailing_bytes")
    return bytes(out) + bytes(tb)


def encode_fitness_machine_control_point(**kw: Any) -> bytes:
    """Encode a request (``op_code`` and its parameter) or a response (``op_code=0x80``,
    ``request_op_code``, ``result_code``[, spin-down speeds])."""
    return _encode_op(_CP_LABEL, FitnessMachineControlPoint, CONTROL_POINT_PARAMETERS, kw)


def encode_fitness_machine_status(**kw: Any) -> bytes:
    """Encode a status notification (``op_code`` and its parameter)."""
    return _encode_op(_MS_LABEL, FitnessMachineStatus, MACHINE_STATUS_PARAMETERS, kw)


# ----------------------------------------------------------------------------- training status


class TrainingStatusCode(IntEnum):
    """Training Status values (FTMS 1.0 Table 4.11)."""

    OTHER = 0x00
    IDLE = 0x01
    WARMING_UP = 0x02
    LOW_INTENSITY_INTERVAL = 0x03
    HIGH_INTENSITY_INTERVAL = 0x04
    RECOVERY_INTERVAL = 0x05
    ISOMETRIC = 0x06
    HEART_RATE_CONTROL = 0x07
    FITNESS_TEST = 0x08
    SPEED_OUTSIDE_CONTROL_REGION_LOW = 0x09
    SPEED_OUTSIDE_CONTROL_REGION_HIGH = 0x0A
    COOL_DOWN = 0x0B
    WATT_CONTROL = 0x0C
    MANUAL_MODE = 0x0D
    PRE_WORKOUT = 0x0E
    POST_WORKOUT = 0x0F


@dataclass(frozen=True, kw_only=True)
class TrainingStatus(Measurement):
    """Training Status (0x2AD3).

    Attributes:
        flags: raw flags octet (bit 0 string present, bit 1 extended string).
        training_status: :class:`TrainingStatusCode` (reserved values kept as int).
        training_status_string: UTF-8 text, ``None`` when flag bit 0 is clear.
        extended_string: flag bit 1, the string continues beyond this value (long read).
    """

    UUID = TRAINING_STATUS_UUID
    NAME = "Training Status"

    flags: int = 0
    training_status: int = 0
    training_status_string: str | None = None
    extended_string: bool = False


_TS_LABEL = "Training Status (0x2AD3)"


def decode_training_status(p: bytes) -> TrainingStatus:
    n = len(p)
    if n < 2:
        if n == 0:
            raise DecodeError("empty payload (needs flags and a status)", characteristic=_TS_LABEL, field="flags", offset=0, needed=2, available=0)
        raise short(_TS_LABEL, "training_status", 1, 1, n, p[0], make_partial(TrainingStatus, {"flags": p[0]}))
    f = p[0]
    status = _enum_op(TrainingStatusCode, p[1])
    text = None
    o = 2
    if f & 1:
        try:
            text = bytes(p[2:]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(
                f"field 'training_status_string' is not valid UTF-8 at byte offset {2 + exc.start}: {exc.reason}",
                characteristic=_TS_LABEL, field="training_status_string", offset=2 + exc.start, needed=1, available=n,
                partial=make_partial(TrainingStatus, {"flags": f, "training_status": status, "extended_string": bool(f & 2)}),
            ) from None
        o = n
    return make(TrainingStatus, {
        "flags": f, "training_status": status, "training_status_string": text, "extended_string": (f & 2) != 0,
        "unknown_flag_bits": f & 0xFC, "trailing_bytes": n - o,
    })


def encode_training_status(
    *,
    training_status: int,
    training_status_string: str | None = None,
    extended_string: bool = False,
    flags: int | None = None,
    unknown_flag_bits: int = 0,
    trailing_bytes: int = 0,
) -> bytes:
    """Encode a Training Status value. ``trailing_bytes`` is only possible without a string
    (the string runs to the end of the value)."""
    d = (1 if training_status_string is not None else 0) | (2 if extended_string else 0)
    from ._codegen import finish_flags

    f = finish_flags(_TS_LABEL, d, flags, unknown_flag_bits, 0x03, 1, 0x03)
    if type(training_status) is not int and not isinstance(training_status, IntEnum) or not 0 <= int(training_status) <= 0xFF:
        raise EncodeError(f"training_status={training_status!r} is not an octet", characteristic=_TS_LABEL, field="training_status")
    out = bytes((f, int(training_status)))
    if training_status_string is not None:
        if not isinstance(training_status_string, str):
            raise EncodeError("training_status_string must be a str", characteristic=_TS_LABEL, field="training_status_string")
        out += training_status_string.encode("utf-8")
    if trailing_bytes:
        if training_status_string is not None:
            raise EncodeError("trailing bytes after a string are part of the string", characteristic=_TS_LABEL, field="trailing_bytes")
        if type(trailing_bytes) is not int or not 0 <= trailing_bytes <= 512:
            raise EncodeError(f"trailing_bytes={trailing_bytes!r} must be an int in 0..512", characteristic=_TS_LABEL, field="trailing_bytes")
        out += bytes(trailing_bytes)
    return out


__all__ = [
    "CONTROL_POINT_PARAMETERS", "MACHINE_STATUS_PARAMETERS", "ControlPointOpCode", "FitnessMachineControlPoint",
    "FitnessMachineStatus", "MachineStatusOpCode", "ResultCode", "SpinDownControl", "SpinDownStatus", "StopOrPause",
    "TrainingStatus", "TrainingStatusCode", "decode_fitness_machine_control_point", "decode_fitness_machine_status",
    "decode_training_status", "encode_fitness_machine_control_point", "encode_fitness_machine_status",
    "encode_training_status",
]
