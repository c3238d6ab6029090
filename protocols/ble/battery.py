"""Battery Service: Battery Level (0x2A19), one uint8 in percent, 0..100 (BAS 1.0 §3.1).

Values 101-255 are prohibited by the specification; they raise :class:`DecodeError`
rather than turning into a nonsense percentage.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DecodeError, EncodeError
from .measurement import Measurement, make

BATTERY_LEVEL_UUID = 0x2A19
_LABEL = "Battery Level (0x2A19)"


@dataclass(frozen=True, kw_only=True)
class BatteryLevel(Measurement):
    """Battery Level: ``battery_level_pct`` in percent of full charge, 0..100."""

    UUID = BATTERY_LEVEL_UUID
    NAME = "Battery Level"

    battery_level_pct: int = 0


def decode_battery_level(p: bytes) -> BatteryLevel:
    if not p:
        raise DecodeError("empty payload (needs 1 octet)", characteristic=_LABEL, field="battery_level_pct", offset=0, needed=1, available=0)
    v = p[0]
    if v > 100:
        raise DecodeError(
            f"field 'battery_level_pct' at offset 0 is {v}, a prohibited value (the range is 0..100 %)",
            characteristic=_LABEL, field="battery_level_pct", offset=0, needed=1, available=len(p),
        )
    return make(BatteryLevel, {"unknown_flag_bits": 0, "trailing_bytes": len(p) - 1, "battery_level_pct": v})


def encode_battery_level(*, battery_level_pct: int, unknown_flag_bits: int = 0, trailing_bytes: int = 0) -> bytes:
    v = battery_level_pct
    try:
        v = round(v) if type(v) is not int else v
    except (TypeError, ValueError, OverflowError):
        raise EncodeError(f"battery_level_pct={battery_level_pct!r} is not a number", characteristic=_LABEL, field="battery_level_pct") from None
    if not 0 <= v <= 100:
        raise EncodeError(f"battery_level_pct={battery_level_pct!r} is outside 0..100 %", characteristic=_LABEL, field="battery_level_pct")
    if unknown_flag_bits:
        raise EncodeError("this characteristic has no flags", characteristic=_LABEL, field="unknown_flag_bits")
    if type(trailing_bytes) is not int or not 0 <= trailing_bytes <= 512:
        raise EncodeError(f"trailing_bytes={trailing_bytes!r} must be an int in 0..512", characteristic=_LABEL, field="trailing_bytes")
    return bytes((v,)) + bytes(trailing_bytes)
