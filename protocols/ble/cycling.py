"""Cycling: CSC Measurement (0x2A5B), CSC Feature (0x2A5C), Sensor Location (0x2A5D),
Cycling Power Measurement (0x2A63) and Cycling Power Feature (0x2A65).

Field tables from CSCS 1.0 §3 / CPS 1.1 §3 and the GATT Specification Supplement (all
little-endian). Units worth repeating because peers get them wrong:

* CSC wheel and crank event times are in 1/1024 s; Cycling Power *wheel* event time is in
  1/2048 s and its crank event time in 1/1024 s. All wrap at 2^16 (64 s / 32 s).
* CSC cumulative wheel revolutions are uint32, crank revolutions uint16.
* Cycling Power fields follow in flag-bit order; accumulated torque (1/32 N·m) sits between
  pedal power balance and wheel data and must be skipped correctly to reach crank data.

Turning the cumulative counters into speed and cadence is :mod:`protocols.ble.rates`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ._codegen import Field, FlagBit, Group, Spec, build
from .measurement import Measurement

CSC_MEASUREMENT_UUID = 0x2A5B
CSC_FEATURE_UUID = 0x2A5C
SENSOR_LOCATION_UUID = 0x2A5D
CYCLING_POWER_MEASUREMENT_UUID = 0x2A63
CYCLING_POWER_FEATURE_UUID = 0x2A65

#: CSC event times: 1/1024 s (CSCS 1.0 §3.1.1.2, §3.1.1.4).
CSC_TIME_TICKS_PER_S = 1024
#: Cycling Power wheel event time: 1/2048 s (CPS 1.1 §3.2.1.6); crank: 1/1024 s.
CP_WHEEL_TIME_TICKS_PER_S = 2048
CP_CRANK_TIME_TICKS_PER_S = 1024


# ----------------------------------------------------------------------------- 0x2A5B


@dataclass(frozen=True, kw_only=True)
class CscMeasurement(Measurement):
    """CSC Measurement.

    Attributes:
        flags: raw flags octet (bit 0 wheel data, bit 1 crank data).
        wheel_revolutions: cumulative wheel revolutions (uint32, wraps).
        wheel_event_time_1024: time of the last wheel revolution event, 1/1024 s (uint16, wraps every 64 s).
        crank_revolutions: cumulative crank revolutions (uint16, wraps).
        crank_event_time_1024: time of the last crank revolution event, 1/1024 s (uint16, wraps).
    """

    UUID = CSC_MEASUREMENT_UUID
    NAME = "CSC Measurement"

    flags: int = 0
    wheel_revolutions: int | None = None
    wheel_event_time_1024: int | None = None
    crank_revolutions: int | None = None
    crank_event_time_1024: int | None = None


CSC_MEASUREMENT_SPEC = Spec(CSC_MEASUREMENT_UUID, "CSC Measurement", 1, (
    Group(0, (Field("wheel_revolutions", "u32", unit="rev"), Field("wheel_event_time_1024", "u16", unit="1/1024 s"))),
    Group(1, (Field("crank_revolutions", "u16", unit="rev"), Field("crank_event_time_1024", "u16", unit="1/1024 s"))),
))


@dataclass(frozen=True, kw_only=True)
class CscFeature(Measurement):
    """CSC Feature (0x2A5C): ``flags`` is the raw uint16 feature word."""

    UUID = CSC_FEATURE_UUID
    NAME = "CSC Feature"

    flags: int = 0
    wheel_revolution_data_supported: bool = False
    crank_revolution_data_supported: bool = False
    multiple_sensor_locations_supported: bool = False


CSC_FEATURE_SPEC = Spec(CSC_FEATURE_UUID, "CSC Feature", 2, (
    FlagBit("wheel_revolution_data_supported", 0),
    FlagBit("crank_revolution_data_supported", 1),
    FlagBit("multiple_sensor_locations_supported", 2),
))


class SensorLocationValue(IntEnum):
    """Sensor Location (0x2A5D) values shared by CSCS, CPS and RSCS."""

    OTHER = 0
    TOP_OF_SHOE = 1
    IN_SHOE = 2
    HIP = 3
    FRONT_WHEEL = 4
    LEFT_CRANK = 5
    RIGHT_CRANK = 6
    LEFT_PEDAL = 7
    RIGHT_PEDAL = 8
    FRONT_HUB = 9
    REAR_DROPOUT = 10
    CHAINSTAY = 11
    REAR_WHEEL = 12
    REAR_HUB = 13
    CHEST = 14
    SPIDER = 15
    CHAIN_RING = 16


@dataclass(frozen=True, kw_only=True)
class SensorLocation(Measurement):
    """Sensor Location (0x2A5D): ``sensor_location`` (see :class:`SensorLocationValue`; 17-255 reserved, kept as int)."""

    UUID = SENSOR_LOCATION_UUID
    NAME = "Sensor Location"

    sensor_location: int = 0


SENSOR_LOCATION_SPEC = Spec(SENSOR_LOCATION_UUID, "Sensor Location", 0, (Group(None, (Field("sensor_location", "u8"),)),))


# ----------------------------------------------------------------------------- 0x2A63


@dataclass(frozen=True, kw_only=True)
class CyclingPowerMeasurement(Measurement):
    """Cycling Power Measurement. Every optional field is ``None`` when its flag is clear.

    Attributes:
        flags: raw uint16 flags.
        power_w: instantaneous power, W (sint16).
        pedal_power_balance_pct: percentage of power from the reference pedal, 1/2 % steps.
        pedal_power_balance_left: flag bit 1, the balance reference is the left pedal (else unknown).
        accumulated_torque_nm: accumulated torque, 1/32 N·m (uint16, wraps).
        accumulated_torque_crank_based: flag bit 3, torque source is the crank (else the wheel).
        wheel_revolutions: cumulative wheel revolutions (uint32).
        wheel_event_time_2048: last wheel event time, **1/2048 s** (uint16, wraps every 32 s).
        crank_revolutions: cumulative crank revolutions (uint16).
        crank_event_time_1024: last crank event time, 1/1024 s (uint16, wraps every 64 s).
        maximum_force_n, minimum_force_n: extreme force magnitudes, N (sint16).
        maximum_torque_nm, minimum_torque_nm: extreme torque magnitudes, 1/32 N·m (sint16).
        maximum_angle_deg, minimum_angle_deg: crank angles of the extremes, degrees (uint12 each).
        top_dead_spot_angle_deg, bottom_dead_spot_angle_deg: degrees (uint16).
        accumulated_energy_kj: kJ (uint16).
        offset_compensation_indicator: flag bit 12.
    """

    UUID = CYCLING_POWER_MEASUREMENT_UUID
    NAME = "Cycling Power Measurement"

    flags: int = 0
    power_w: int = 0
    pedal_power_balance_pct: float | None = None
    accumulated_torque_nm: float | None = None
    wheel_revolutions: int | None = None
    wheel_event_time_2048: int | None = None
    crank_revolutions: int | None = None
    crank_event_time_1024: int | None = None
    maximum_force_n: int | None = None
    minimum_force_n: int | None = None
    maximum_torque_nm: float | None = None
    minimum_torque_nm: float | None = None
    maximum_angle_deg: int | None = None
    minimum_angle_deg: int | None = None
    top_dead_spot_angle_deg: int | None = None
    bottom_dead_spot_angle_deg: int | None = None
    accumulated_energy_kj: int | None = None
    pedal_power_balance_left: bool = False
    accumulated_torque_crank_based: bool = False
    offset_compensation_indicator: bool = False


CYCLING_POWER_MEASUREMENT_SPEC = Spec(CYCLING_POWER_MEASUREMENT_UUID, "Cycling Power Measurement", 2, (
    Group(None, (Field("power_w", "s16", unit="W"),)),
    Group(0, (Field("pedal_power_balance_pct", "u8", den=2, unit="%"),)),
    FlagBit("pedal_power_balance_left", 1),
    Group(2, (Field("accumulated_torque_nm", "u16", den=32, unit="N·m"),)),
    FlagBit("accumulated_torque_crank_based", 3),
    Group(4, (Field("wheel_revolutions", "u32", unit="rev"), Field("wheel_event_time_2048", "u16", unit="1/2048 s"))),
    Group(5, (Field("crank_revolutions", "u16", unit="rev"), Field("crank_event_time_1024", "u16", unit="1/1024 s"))),
    Group(6, (Field("maximum_force_n", "s16", unit="N"), Field("minimum_force_n", "s16", unit="N"))),
    Group(7, (Field("maximum_torque_nm", "s16", den=32, unit="N·m"), Field("minimum_torque_nm", "s16", den=32, unit="N·m"))),
    Group(8, (Field("maximum_angle_deg", "u12pair", unit="°", name2="minimum_angle_deg"),)),
    Group(9, (Field("top_dead_spot_angle_deg", "u16", unit="°"),)),
    Group(10, (Field("bottom_dead_spot_angle_deg", "u16", unit="°"),)),
    Group(11, (Field("accumulated_energy_kj", "u16", unit="kJ"),)),
    FlagBit("offset_compensation_indicator", 12),
))


_CP_FEATURE_BITS = (
    "pedal_power_balance_supported", "accumulated_torque_supported", "wheel_revolution_data_supported",
    "crank_revolution_data_supported", "extreme_magnitudes_supported", "extreme_angles_supported",
    "top_and_bottom_dead_spot_angles_supported", "accumulated_energy_supported",
    "offset_compensation_indicator_supported", "offset_compensation_supported",
    "content_masking_supported", "multiple_sensor_locations_supported", "crank_length_adjustment_supported",
    "chain_length_adjustment_supported", "chain_weight_adjustment_supported", "span_length_adjustment_supported",
    "sensor_measurement_context_torque_based", "instantaneous_measurement_direction_supported",
    "factory_calibration_date_supported", "enhanced_offset_compensation_supported",
)


@dataclass(frozen=True, kw_only=True)
class CyclingPowerFeature(Measurement):
    """Cycling Power Feature (0x2A65): ``flags`` is the raw uint32 feature word; bits 20-21
    (Distributed System Support) are in :attr:`distributed_system_support`."""

    UUID = CYCLING_POWER_FEATURE_UUID
    NAME = "Cycling Power Feature"

    flags: int = 0
    pedal_power_balance_supported: bool = False
    accumulated_torque_supported: bool = False
    wheel_revolution_data_supported: bool = False
    crank_revolution_data_supported: bool = False
    extreme_magnitudes_supported: bool = False
    extreme_angles_supported: bool = False
    top_and_bottom_dead_spot_angles_supported: bool = False
    accumulated_energy_supported: bool = False
    offset_compensation_indicator_supported: bool = False
    offset_compensation_supported: bool = False
    content_masking_supported: bool = False
    multiple_sensor_locations_supported: bool = False
    crank_length_adjustment_supported: bool = False
    chain_length_adjustment_supported: bool = False
    chain_weight_adjustment_supported: bool = False
    span_length_adjustment_supported: bool = False
    sensor_measurement_context_torque_based: bool = False
    instantaneous_measurement_direction_supported: bool = False
    factory_calibration_date_supported: bool = False
    enhanced_offset_compensation_supported: bool = False

    @property
    def distributed_system_support(self) -> int:
        """0 legacy sensor, 1 not for use in a distributed system, 2 can be used in one, 3 RFU."""
        return (self.flags >> 20) & 3


CYCLING_POWER_FEATURE_SPEC = Spec(
    CYCLING_POWER_FEATURE_UUID, "Cycling Power Feature", 4,
    tuple(FlagBit(n, i) for i, n in enumerate(_CP_FEATURE_BITS)), extra_defined=0x300000,
)

decode_csc_measurement, encode_csc_measurement = build(CSC_MEASUREMENT_SPEC, CscMeasurement)
decode_csc_feature, encode_csc_feature = build(CSC_FEATURE_SPEC, CscFeature)
decode_sensor_location, encode_sensor_location = build(SENSOR_LOCATION_SPEC, SensorLocation)
decode_cycling_power_measurement, encode_cycling_power_measurement = build(CYCLING_POWER_MEASUREMENT_SPEC, CyclingPowerMeasurement)
decode_cycling_power_feature, encode_cycling_power_feature = build(CYCLING_POWER_FEATURE_SPEC, CyclingPowerFeature)
