"""Running Speed and Cadence: RSC Measurement (0x2A53) and RSC Feature (0x2A54).

RSCS 1.0 §3.1 (little-endian): flags uint8 (bit 0 stride length present, bit 1 total
distance present, bit 2 walking (0) or running (1)); speed uint16 in 1/256 m/s; cadence
uint8 in steps per minute (steps, not strides); stride length uint16 in cm; total distance
uint32 in 1/10 m.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._codegen import Field, FlagBit, Group, Spec, build
from .measurement import Measurement

RSC_MEASUREMENT_UUID = 0x2A53
RSC_FEATURE_UUID = 0x2A54


@dataclass(frozen=True, kw_only=True)
class RscMeasurement(Measurement):
    """RSC Measurement.

    Attributes:
        flags: raw flags octet.
        speed_mps: instantaneous speed, m/s (1/256 m/s steps).
        cadence_spm: instantaneous cadence, steps per minute.
        stride_length_m: instantaneous stride length, m (1 cm steps), ``None`` if absent.
        total_distance_m: total distance, m (0.1 m steps), ``None`` if absent.
        is_running: flag bit 2 (``False`` = walking).
    """

    UUID = RSC_MEASUREMENT_UUID
    NAME = "RSC Measurement"

    flags: int = 0
    speed_mps: float = 0.0
    cadence_spm: int = 0
    stride_length_m: float | None = None
    total_distance_m: float | None = None
    is_running: bool = False


RSC_MEASUREMENT_SPEC = Spec(RSC_MEASUREMENT_UUID, "RSC Measurement", 1, (
    Group(None, (Field("speed_mps", "u16", den=256, unit="m/s"), Field("cadence_spm", "u8", unit="steps/min"))),
    Group(0, (Field("stride_length_m", "u16", den=100, unit="m"),)),
    Group(1, (Field("total_distance_m", "u32", den=10, unit="m"),)),
    FlagBit("is_running", 2),
))


@dataclass(frozen=True, kw_only=True)
class RscFeature(Measurement):
    """RSC Feature (0x2A54): ``flags`` is the raw uint16 feature word."""

    UUID = RSC_FEATURE_UUID
    NAME = "RSC Feature"

    flags: int = 0
    stride_length_supported: bool = False
    total_distance_supported: bool = False
    walking_or_running_status_supported: bool = False
    calibration_procedure_supported: bool = False
    multiple_sensor_locations_supported: bool = False


RSC_FEATURE_SPEC = Spec(RSC_FEATURE_UUID, "RSC Feature", 2, (
    FlagBit("stride_length_supported", 0),
    FlagBit("total_distance_supported", 1),
    FlagBit("walking_or_running_status_supported", 2),
    FlagBit("calibration_procedure_supported", 3),
    FlagBit("multiple_sensor_locations_supported", 4),
))

decode_rsc_measurement, encode_rsc_measurement = build(RSC_MEASUREMENT_SPEC, RscMeasurement)
decode_rsc_feature, encode_rsc_feature = build(RSC_FEATURE_SPEC, RscFeature)
