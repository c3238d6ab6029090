"""Heart Rate Service: Heart Rate Measurement (0x2A37) and Body Sensor Location (0x2A38).

Heart Rate Service 1.0 §3.1 and the GATT Specification Supplement, little-endian:

=====  ==========================================================================
flags  bit 0: Heart Rate Value Format (0 = uint8, 1 = uint16), bpm
       bit 1: Sensor Contact detected — meaningful **only** when bit 2 is set
       bit 2: Sensor Contact feature supported
       bit 3: Energy Expended present (uint16, kJ, saturates at 65535)
       bit 4: RR-Interval present (one or more uint16, 1/1024 s, to the end)
       bits 5-7: reserved
=====  ==========================================================================

Peers get the contact bits wrong (``bool(flags & 0x06)`` reports "contact" for a strap that
only says it *supports* detection) and return RR in 1/1024 s unlabelled. Here
``sensor_contact`` is ``None`` unless bit 2 is set, and RR comes both raw
(``rr_intervals_1024``) and in milliseconds (``rr_intervals_ms``).

Hand-written (not table-generated): the RR list runs to the end of the payload, and this is
the hottest decoder of the gateway (one notification per second per strap, dozens of straps).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Sequence

from .errors import DecodeError, EncodeError, short
from .measurement import Measurement, make, make_partial

HEART_RATE_MEASUREMENT_UUID = 0x2A37
BODY_SENSOR_LOCATION_UUID = 0x2A38

#: RR-Interval resolution: 1/1024 s (HRS 1.0 §3.1.1.5).
RR_TICKS_PER_S = 1024
_RR_MS = 1000 / RR_TICKS_PER_S

FLAG_HR_UINT16 = 0x01
FLAG_CONTACT_DETECTED = 0x02
FLAG_CONTACT_SUPPORTED = 0x04
FLAG_ENERGY_EXPENDED = 0x08
FLAG_RR = 0x10
DEFINED_FLAGS = 0x1F

_LABEL = "Heart Rate Measurement (0x2A37)"
_U16 = struct.Struct("<H")
_RR_STRUCTS = [struct.Struct(f"<{k}H") for k in range(257)]


@dataclass(frozen=True, kw_only=True)
class HeartRateMeasurement(Measurement):
    """One Heart Rate Measurement notification.

    Attributes:
        flags: the raw flags octet.
        heart_rate_bpm: beats per minute (uint8 or uint16 on the wire).
        sensor_contact: ``True``/``False`` when the strap supports contact detection
            (flag bit 2), ``None`` when it does not.
        energy_expended_kj: cumulative energy expended in kilojoules (``None`` if absent).
        rr_intervals_1024: RR intervals in 1/1024 s as sent, oldest first (``None`` if absent).
        rr_intervals_ms: the same in milliseconds (``raw * 1000 / 1024``).
    """

    UUID = HEART_RATE_MEASUREMENT_UUID
    NAME = "Heart Rate Measurement"

    flags: int = 0
    heart_rate_bpm: int = 0
    sensor_contact: bool | None = None
    energy_expended_kj: int | None = None
    rr_intervals_1024: tuple[int, ...] | None = None
    # Derived from rr_intervals_1024 on first access (decoding stays cheap for the many
    # consumers that only forward the raw 1/1024 s values); a field all the same, so it is
    # in to_dict(), ==, hash and repr. default_factory keeps it off the class, which is what
    # lets __getattr__ fill it in.
    rr_intervals_ms: tuple[float, ...] | None = field(default_factory=lambda: None)

    def __post_init__(self) -> None:
        if self.rr_intervals_ms is None and self.rr_intervals_1024 is not None:
            object.__setattr__(self, "rr_intervals_ms", tuple([r * _RR_MS for r in self.rr_intervals_1024]))

    def __getattr__(self, name: str) -> Any:  # only reached for a decoded value's rr_intervals_ms
        if name == "rr_intervals_ms":
            rr = self.__dict__.get("rr_intervals_1024")
            ms = None if rr is None else tuple([r * _RR_MS for r in rr])
            object.__setattr__(self, "rr_intervals_ms", ms)
            return ms
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def to_dict(self) -> dict[str, Any]:
        self.rr_intervals_ms  # noqa: B018 - materialise the derived field
        return super().to_dict()


def decode_heart_rate_measurement(p: bytes) -> HeartRateMeasurement:
    """Decode a Heart Rate Measurement payload."""
    n = len(p)
    if n < 2:
        if n == 0:
            raise DecodeError("empty payload (needs at least the flags octet and a heart rate)", characteristic=_LABEL, field="flags", offset=0, needed=2, available=0)
        raise short(_LABEL, "heart_rate_bpm", 1, 2 if p[0] & 1 else 1, n, p[0])
    f = p[0]
    if f & 1:
        if n < 3:
            raise short(_LABEL, "heart_rate_bpm", 1, 2, n, f)
        hr = p[1] | p[2] << 8
        o = 3
    else:
        hr = p[1]
        o = 2
    contact = (f & 2 == 2) if f & 4 else None
    if f & 8:
        if n < o + 2:
            raise short(_LABEL, "energy_expended_kj", o, 2, n, f, make_partial(HeartRateMeasurement, {"flags": f, "heart_rate_bpm": hr, "sensor_contact": contact}))
        ee = p[o] | p[o + 1] << 8
        o += 2
    else:
        ee = None
    if f & 16:
        k = (n - o) >> 1
        if k == 0:
            raise short(
                _LABEL, "rr_intervals_1024", o, 2, n, f,
                make_partial(HeartRateMeasurement, {"flags": f, "heart_rate_bpm": hr, "sensor_contact": contact, "energy_expended_kj": ee}),
            )
        if k < 257:
            rr = _RR_STRUCTS[k].unpack_from(p, o)
        else:  # only possible with a huge ATT MTU
            rr = struct.unpack_from(f"<{k}H", p, o)
        o += 2 * k
    else:
        rr = None
    return make(
        HeartRateMeasurement,
        {
            "flags": f,
            "heart_rate_bpm": hr,
            "sensor_contact": contact,
            "energy_expended_kj": ee,
            "rr_intervals_1024": rr,
            "unknown_flag_bits": f & 0xE0,
            "trailing_bytes": n - o,
        },
    )


def _u16(value: Any, field: str) -> int:
    if type(value) is not int:
        try:
            if value != value or isinstance(value, (str, bytes)):
                raise TypeError
            rounded = round(value)
        except (TypeError, ValueError, OverflowError):
            raise EncodeError(f"field {field!r}: {value!r} is not a finite number", characteristic=_LABEL, field=field) from None
        value = rounded
    if not 0 <= value <= 0xFFFF:
        raise EncodeError(f"field {field!r}: {value} is outside 0..65535", characteristic=_LABEL, field=field)
    return value


def encode_heart_rate_measurement(
    *,
    heart_rate_bpm: int,
    sensor_contact: bool | None = None,
    energy_expended_kj: int | None = None,
    rr_intervals_1024: Sequence[int] | None = None,
    rr_intervals_ms: Sequence[float] | None = None,
    flags: int | None = None,
    unknown_flag_bits: int = 0,
    trailing_bytes: int = 0,
) -> bytes:
    """Encode a Heart Rate Measurement.

    The heart rate goes out as uint8 when it fits, else uint16; pass ``flags`` with bit 0 set
    to force uint16 (as some straps always do). RR intervals may be given raw
    (``rr_intervals_1024``) or in milliseconds (``rr_intervals_ms``, rounded to 1/1024 s); when
    both are given they must agree. ``sensor_contact=None`` means "contact detection not
    supported". ``flags``, when given, must agree with the fields (bit 1 may be set without
    bit 2, a quirk of some straps); ``trailing_bytes`` appends that many zero octets.
    The result is not limited to one ATT_MTU: the caller decides how many RR values fit.
    """
    hr = _u16(heart_rate_bpm, "heart_rate_bpm")
    d = 0
    if hr > 0xFF or (flags is not None and flags & 1):
        d |= FLAG_HR_UINT16
    if sensor_contact is not None:
        d |= FLAG_CONTACT_SUPPORTED | (FLAG_CONTACT_DETECTED if sensor_contact else 0)
    if energy_expended_kj is not None:
        d |= FLAG_ENERGY_EXPENDED
    rr: list[int] | None = None
    if rr_intervals_1024 is not None:
        rr = [_u16(r, "rr_intervals_1024") for r in rr_intervals_1024]
        if rr_intervals_ms is not None:
            if len(rr_intervals_ms) != len(rr) or any(abs(m * RR_TICKS_PER_S / 1000 - r) > 0.5 + 1e-9 for m, r in zip(rr_intervals_ms, rr)):
                raise EncodeError("rr_intervals_ms and rr_intervals_1024 disagree", characteristic=_LABEL, field="rr_intervals_ms")
    elif rr_intervals_ms is not None:
        rr = []
        for m in rr_intervals_ms:
            try:
                r = m * RR_TICKS_PER_S / 1000
            except TypeError:
                raise EncodeError(f"field 'rr_intervals_ms': {m!r} is not a number", characteristic=_LABEL, field="rr_intervals_ms") from None
            rr.append(_u16(r, "rr_intervals_ms"))
    if rr is not None:
        if not rr:
            raise EncodeError("RR-Interval present needs at least one value (use None for none)", characteristic=_LABEL, field="rr_intervals_1024")
        d |= FLAG_RR
    if type(unknown_flag_bits) is not int or unknown_flag_bits & ~0xE0:
        raise EncodeError(f"unknown_flag_bits={unknown_flag_bits!r} may only hold reserved bits 5-7 (0xE0)", characteristic=_LABEL, field="unknown_flag_bits")
    if flags is None:
        f = d | unknown_flag_bits
    else:
        if type(flags) is not int or not 0 <= flags <= 0xFF:
            raise EncodeError(f"flags={flags!r} is not an octet", characteristic=_LABEL, field="flags")
        checked = FLAG_HR_UINT16 | FLAG_CONTACT_SUPPORTED | FLAG_ENERGY_EXPENDED | FLAG_RR
        if sensor_contact is not None:
            checked |= FLAG_CONTACT_DETECTED  # bit 1 is free (meaningless) only without bit 2
        diff = (flags ^ d) & checked
        if diff:
            raise EncodeError(f"flags=0x{flags:02X} disagree with the fields given (derived 0x{d:02X}) in bits 0x{diff:02X}", characteristic=_LABEL, field="flags")
        if unknown_flag_bits and flags & 0xE0 != unknown_flag_bits:
            raise EncodeError(f"flags=0x{flags:02X} and unknown_flag_bits=0x{unknown_flag_bits:02X} disagree", characteristic=_LABEL, field="unknown_flag_bits")
        f = flags
    out = bytearray((f,))
    out += hr.to_bytes(2, "little") if f & 1 else bytes((hr,))
    if energy_expended_kj is not None:
        out += _U16.pack(_u16(energy_expended_kj, "energy_expended_kj"))
    if rr is not None:
        out += struct.pack(f"<{len(rr)}H", *rr)
    if trailing_bytes:
        if type(trailing_bytes) is not int or not 0 <= trailing_bytes <= 512:
            raise EncodeError(f"trailing_bytes={trailing_bytes!r} must be an int in 0..512", characteristic=_LABEL, field="trailing_bytes")
        out += bytes(trailing_bytes)
    return bytes(out)


# ----------------------------------------------------------------------------- 0x2A38


class SensorLocation(IntEnum):
    """Body Sensor Location values (HRS 1.0 §3.2); unknown values are kept as ints."""

    OTHER = 0
    CHEST = 1
    WRIST = 2
    FINGER = 3
    HAND = 4
    EAR_LOBE = 5
    FOOT = 6


@dataclass(frozen=True, kw_only=True)
class BodySensorLocation(Measurement):
    """Body Sensor Location (0x2A38): where the heart rate sensor is worn.

    ``body_sensor_location`` is a :class:`SensorLocation` for defined values, else the raw int
    (7-255 are reserved; kept, not rejected, so a newer device still decodes).
    """

    UUID = BODY_SENSOR_LOCATION_UUID
    NAME = "Body Sensor Location"

    body_sensor_location: int = 0


_BSL_LABEL = "Body Sensor Location (0x2A38)"


def decode_body_sensor_location(p: bytes) -> BodySensorLocation:
    if not p:
        raise DecodeError("empty payload (needs 1 octet)", characteristic=_BSL_LABEL, field="body_sensor_location", offset=0, needed=1, available=0)
    v = p[0]
    loc: int = SensorLocation(v) if v <= 6 else v
    return make(BodySensorLocation, {"unknown_flag_bits": 0, "trailing_bytes": len(p) - 1, "body_sensor_location": loc})


def encode_body_sensor_location(*, body_sensor_location: int | str, unknown_flag_bits: int = 0, trailing_bytes: int = 0) -> bytes:
    v = body_sensor_location
    if isinstance(v, str):
        try:
            v = SensorLocation[v.upper()]
        except KeyError:
            raise EncodeError(f"unknown location {v!r}; one of {[m.name.lower() for m in SensorLocation]}", characteristic=_BSL_LABEL, field="body_sensor_location") from None
    if type(v) is not int and not isinstance(v, int) or not 0 <= int(v) <= 255:
        raise EncodeError(f"body_sensor_location={v!r} is not an octet", characteristic=_BSL_LABEL, field="body_sensor_location")
    if unknown_flag_bits:
        raise EncodeError("this characteristic has no flags", characteristic=_BSL_LABEL, field="unknown_flag_bits")
    if type(trailing_bytes) is not int or not 0 <= trailing_bytes <= 512:
        raise EncodeError(f"trailing_bytes={trailing_bytes!r} must be an int in 0..512", characteristic=_BSL_LABEL, field="trailing_bytes")
    return bytes((int(v),)) + bytes(trailing_bytes)
