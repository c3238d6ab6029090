"""The part of the Garmin FIT profile (FIT SDK ``Profile.xlsx``, protocol 2.0) that import needs.

Hand-written from the FIT SDK profile (21.x) for the messages and fields listed below; the full
profile (thousands of fields) is not needed to import sensor streams. Numbers, base types,
scales, offsets and units are the SDK's. Physical value = raw / scale - offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: FIT timestamps count seconds from 1989-12-31T00:00:00Z (FIT protocol §4.1, ``date_time``).
FIT_EPOCH_S = 631065600
#: A ``date_time`` below this is relative (seconds since the device powered on), not absolute.
MIN_ABSOLUTE_TIMESTAMP = 0x10000000
#: Field number of ``timestamp`` in every message that has one.
TIMESTAMP_FIELD = 253
#: Semicircles to degrees: 2**31 semicircles = 180 degrees.
SEMICIRCLE_DEG = 180.0 / 2**31


@dataclass(frozen=True, slots=True)
class BaseType:
    """A FIT base type: identifier byte, name, numpy little-endian dtype, size, invalid raw value."""

    ident: int
    name: str
    dtype: str
    size: int
    invalid: int | None  # None: strings (NUL terminated) and floats (NaN pattern)
    integer: bool


BASE_TYPES: dict[int, BaseType] = {
    b.ident: b for b in (
        BaseType(0x00, "enum", "u1", 1, 0xFF, True),
        BaseType(0x01, "sint8", "i1", 1, 0x7F, True),
        BaseType(0x02, "uint8", "u1", 1, 0xFF, True),
        BaseType(0x83, "sint16", "i2", 2, 0x7FFF, True),
        BaseType(0x84, "uint16", "u2", 2, 0xFFFF, True),
        BaseType(0x85, "sint32", "i4", 4, 0x7FFFFFFF, True),
        BaseType(0x86, "uint32", "u4", 4, 0xFFFFFFFF, True),
        BaseType(0x07, "string", "S1", 1, None, False),
        BaseType(0x88, "float32", "f4", 4, None, False),
        BaseType(0x89, "float64", "f8", 8, None, False),
        BaseType(0x0A, "uint8z", "u1", 1, 0, True),
        BaseType(0x8B, "uint16z", "u2", 2, 0, True),
        BaseType(0x8C, "uint32z", "u4", 4, 0, True),
        BaseType(0x0D, "byte", "u1", 1, 0xFF, False),
        BaseType(0x8E, "sint64", "i8", 8, 0x7FFFFFFFFFFFFFFF, True),
        BaseType(0x8F, "uint64", "u8", 8, 0xFFFFFFFFFFFFFFFF, True),
        BaseType(0x90, "uint64z", "u8", 8, 0, True),
    )
}
#: Sizes of the base types, indexed by identifier byte (0 = not a base type); for the scan kernel.
BASE_TYPE_SIZE = np.zeros(256, dtype=np.uint8)
for _b in BASE_TYPES.values():
    BASE_TYPE_SIZE[_b.ident] = _b.size


class Mesg:
    """Global message numbers (FIT profile ``mesg_num``)."""

    FILE_ID = 0
    SPORT = 12
    SESSION = 18
    LAP = 19
    RECORD = 20
    EVENT = 21
    DEVICE_INFO = 23
    ACTIVITY = 34
    HRV = 78
    FIELD_DESCRIPTION = 206
    DEVELOPER_DATA_ID = 207


@dataclass(frozen=True, slots=True)
class StreamField:
    """How one ``record`` field becomes a stream: field numbers (preferred first, e.g.
    ``enhanced_speed`` before ``speed``), the profile base type of each, the FIT scale and offset,
    and the output scale/unit of :class:`protocols.wire.SampleBatch` (raw ints are kept; an offset
    is folded into the raw value, see ``raw_offset``)."""

    stream: str
    fields: tuple[int, ...]
    base_types: tuple[int, ...]
    fit_scale: float
    fit_offset: float
    scale: float
    unit: str

    @property
    def raw_offset(self) -> int:
        """Integer subtracted from the FIT raw value so that ``physical = (raw - raw_offset) * scale``."""
        return round(self.fit_offset * self.fit_scale)


#: ``record`` (mesg 20) fields imported as single-channel streams.
RECORD_STREAMS: tuple[StreamField, ...] = (
    StreamField("heart_rate", (3,), (0x02,), 1, 0, 1.0, "bpm"),
    StreamField("power", (7,), (0x84,), 1, 0, 1.0, "W"),
    StreamField("cadence", (4,), (0x02,), 1, 0, 1.0, "rpm"),
    # enhanced_speed (73, uint32) supersedes speed (6, uint16); both 1/1000 m/s.
    StreamField("speed", (73, 6), (0x86, 0x84), 1000, 0, 0.001, "m/s"),
    StreamField("distance", (5,), (0x86,), 100, 0, 0.01, "m"),
    # enhanced_altitude (78, uint32) supersedes altitude (2, uint16); both 1/5 m with 500 m offset.
    StreamField("altitude", (78, 2), (0x86, 0x84), 5, 500, 0.2, "m"),
    StreamField("temperature", (13,), (0x01,), 1, 0, 1.0, "C"),
)
#: ``record`` position_lat (0) and position_long (1), sint32 semicircles -> 2-channel ``position``.
POSITION_FIELDS = (0, 1)
POSITION_BASE_TYPE = 0x85
#: ``record`` compressed_speed_distance: packed components the fast path leaves to fitdecode.
RECORD_COMPRESSED_SPEED_DISTANCE = 8
#: ``hrv`` (mesg 78) field ``time``: uint16 array, 1/1000 s per beat-to-beat interval.
HRV_TIME_FIELD = 0
HRV_BASE_TYPE = 0x84

#: ``file_id.type`` names (FIT profile ``file``).
FILE_TYPES = {1: "device", 2: "settings", 3: "sport", 4: "activity", 5: "workout", 6: "course",
              7: "schedules", 9: "weight", 10: "totals", 11: "goals", 14: "blood_pressure",
              15: "monitoring_a", 20: "activity_summary", 28: "monitoring_daily", 32: "monitoring_b",
              34: "segment", 35: "segment_list", 40: "exd_configuration"}
#: ``manufacturer`` names for device ids (a few common ones; others appear as their number).
MANUFACTURERS = {1: "garmin", 15: "dynastream", 13: "dynastream_oem", 23: "suunto", 32: "wahoo_fitness",
                 38: "osynce", 41: "shimano", 48: "pioneer", 68: "srm", 69: "cateye", 70: "sigmasport",
                 89: "tacx", 95: "stryd", 123: "polar", 255: "development", 260: "zwift",
                 263: "favero_electronics", 265: "strava", 267: "bryton", 289: "hammerhead",
                 294: "coros", 307: "magene", 322: "whoop"}
#: ``sport`` names.
SPORTS = {0: "generic", 1: "running", 2: "cycling", 3: "transition", 4: "fitness_equipment",
          5: "swimming", 6: "basketball", 7: "soccer", 10: "training", 11: "walking",
          12: "cross_country_skiing", 13: "alpine_skiing", 14: "snowboarding", 15: "rowing",
          16: "mountaineering", 17: "hiking", 18: "multisport", 19: "paddling", 21: "e_biking",
          37: "stand_up_paddleboarding", 53: "diving", 254: "all"}
