"""Fitness Machine Service data: Treadmill (0x2ACD), Cross Trainer (0x2ACE), Rower (0x2AD1)
and Indoor Bike (0x2AD2) Data.

Field tables from FTMS 1.0 §4.4-4.9 and the GATT Specification Supplement, little-endian.
Bit 0 of every flags field is "More Data" and is **inverted**: 0 means the first field
(instantaneous speed; for a rower, stroke rate and stroke count) *is* present. Cross Trainer
flags are 24 bits. Real machines set undefined bits: they are kept in ``unknown_flag_bits``
(and ``flags``), lengths are checked strictly against the defined bits, and bytes the defined
bits do not account for are counted in ``trailing_bytes``.

A machine may split one data record over several notifications (FTMS §4.19); each
notification decodes on its own, with the fields it carries.

Treadmill pace: FTMS 1.0's field table gives Instantaneous/Average Pace as uint8 in 0.1 km/min
(so ``pace_km_per_min``); later SIG texts have described these fields differently. Machines
rarely set bits 5-6; docs/ble-characteristics.md says what to check if one does.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._codegen import Field, FlagBit, Group, Spec, build
from .measurement import Measurement

TREADMILL_DATA_UUID = 0x2ACD
CROSS_TRAINER_DATA_UUID = 0x2ACE
ROWER_DATA_UUID = 0x2AD1
INDOOR_BIKE_DATA_UUID = 0x2AD2

# Shared rows (FTMS field definitions are the same across machines).
_SPEED = Field("speed_kmh", "u16", den=100, unit="km/h")
_AVG_SPEED = Field("average_speed_kmh", "u16", den=100, unit="km/h")
_DISTANCE = Field("total_distance_m", "u24", unit="m")
_INCLINATION = (Field("inclination_pct", "s16", den=10, unit="%"), Field("ramp_angle_deg", "s16", den=10, unit="°"))
_ENERGY = (
    Field("total_energy_kcal", "u16", unit="kcal"),
    Field("energy_per_hour_kcal", "u16", unit="kcal/h"),
    Field("energy_per_minute_kcal", "u8", unit="kcal/min"),
)
_HR = Field("heart_rate_bpm", "u8", unit="bpm")
_MET = Field("metabolic_equivalent", "u8", den=10, unit="MET")
_ELAPSED = Field("elapsed_time_s", "u16", unit="s")
_REMAINING = Field("remaining_time_s", "u16", unit="s")
_POWER = Field("power_w", "s16", unit="W")
_AVG_POWER = Field("average_power_w", "s16", unit="W")


@dataclass(frozen=True, kw_only=True)
class _FtmsCommon(Measurement):
    flags: int = 0
    total_energy_kcal: int | None = None
    energy_per_hour_kcal: int | None = None
    energy_per_minute_kcal: int | None = None
    heart_rate_bpm: int | None = None
    metabolic_equivalent: float | None = None
    elapsed_time_s: int | None = None
    remaining_time_s: int | None = None


# ----------------------------------------------------------------------------- treadmill


@dataclass(frozen=True, kw_only=True)
class TreadmillData(_FtmsCommon):
    """Treadmill Data (0x2ACD). Units are in the names; ``None`` when a field is absent.

    speed_kmh, average_speed_kmh (0.01 km/h); total_distance_m (uint24, m); inclination_pct
    (0.1 %), ramp_angle_deg (0.1°); positive/negative_elevation_gain_m (0.1 m);
    pace_km_per_min, average_pace_km_per_min (0.1 km/min); total_energy_kcal,
    energy_per_hour_kcal, energy_per_minute_kcal; heart_rate_bpm; metabolic_equivalent (0.1);
    elapsed_time_s, remaining_time_s; force_on_belt_n (N), power_output_w (W).
    """

    UUID = TREADMILL_DATA_UUID
    NAME = "Treadmill Data"

    speed_kmh: float | None = None
    average_speed_kmh: float | None = None
    total_distance_m: int | None = None
    inclination_pct: float | None = None
    ramp_angle_deg: float | None = None
    positive_elevation_gain_m: float | None = None
    negative_elevation_gain_m: float | None = None
    pace_km_per_min: float | None = None
    average_pace_km_per_min: float | None = None
    force_on_belt_n: int | None = None
    power_output_w: int | None = None


TREADMILL_DATA_SPEC = Spec(TREADMILL_DATA_UUID, "Treadmill Data", 2, (
    Group(0, (_SPEED,), inverted=True),
    Group(1, (_AVG_SPEED,)),
    Group(2, (_DISTANCE,)),
    Group(3, _INCLINATION),
    Group(4, (Field("positive_elevation_gain_m", "u16", den=10, unit="m"), Field("negative_elevation_gain_m", "u16", den=10, unit="m"))),
    Group(5, (Field("pace_km_per_min", "u8", den=10, unit="km/min"),)),
    Group(6, (Field("average_pace_km_per_min", "u8", den=10, unit="km/min"),)),
    Group(7, _ENERGY),
    Group(8, (_HR,)),
    Group(9, (_MET,)),
    Group(10, (_ELAPSED,)),
    Group(11, (_REMAINING,)),
    Group(12, (Field("force_on_belt_n", "s16", unit="N"), Field("power_output_w", "s16", unit="W"))),
))


# ----------------------------------------------------------------------------- cross trainer


@dataclass(frozen=True, kw_only=True)
class CrossTrainerData(_FtmsCommon):
    """Cross Trainer Data (0x2ACE), 24-bit flags.

    speed_kmh, average_speed_kmh (0.01 km/h); total_distance_m (uint24, m); step_rate_spm,
    average_step_rate_spm (steps/min); stride_count; positive/negative_elevation_gain_m (1 m);
    inclination_pct (0.1 %), ramp_angle_deg (0.1°); resistance_level (0.1, unitless);
    power_w, average_power_w (W); energy, heart rate, MET, times as for every machine;
    movement_backward (flag bit 15; ``False`` = forward).
    """

    UUID = CROSS_TRAINER_DATA_UUID
    NAME = "Cross Trainer Data"

    speed_kmh: float | None = None
    average_speed_kmh: float | None = None
    total_distance_m: int | None = None
    step_rate_spm: int | None = None
    average_step_rate_spm: int | None = None
    stride_count: int | None = None
    positive_elevation_gain_m: int | None = None
    negative_elevation_gain_m: int | None = None
    inclination_pct: float | None = None
    ramp_angle_deg: float | None = None
    resistance_level: float | None = None
    power_w: int | None = None
    average_power_w: int | None = None
    movement_backward: bool = False


CROSS_TRAINER_DATA_SPEC = Spec(CROSS_TRAINER_DATA_UUID, "Cross Trainer Data", 3, (
    Group(0, (_SPEED,), inverted=True),
    Group(1, (_AVG_SPEED,)),
    Group(2, (_DISTANCE,)),
    Group(3, (Field("step_rate_spm", "u16", unit="steps/min"), Field("average_step_rate_spm", "u16", unit="steps/min"))),
    Group(4, (Field("stride_count", "u16"),)),
    Group(5, (Field("positive_elevation_gain_m", "u16", unit="m"), Field("negative_elevation_gain_m", "u16", unit="m"))),
    Group(6, _INCLINATION),
    Group(7, (Field("resistance_level", "s16", den=10),)),
    Group(8, (_POWER,)),
    Group(9, (_AVG_POWER,)),
    Group(10, _ENERGY),
    Group(11, (_HR,)),
    Group(12, (_MET,)),
    Group(13, (_ELAPSED,)),
    Group(14, (_REMAINING,)),
    FlagBit("movement_backward", 15),
))


# ----------------------------------------------------------------------------- rower


@dataclass(frozen=True, kw_only=True)
class RowerData(_FtmsCommon):
    """Rower Data (0x2AD1).

    stroke_rate_spm (0.5 strokes/min) with stroke_count (present together, "More Data" = 0);
    average_stroke_rate_spm (0.5/min); total_distance_m (uint24, m); pace_s_per_500m,
    average_pace_s_per_500m (s per 500 m); power_w, average_power_w (W); resistance_level
    (unitless); energy, heart rate, MET, times as for every machine.
    """

    UUID = ROWER_DATA_UUID
    NAME = "Rower Data"

    stroke_rate_spm: float | None = None
    stroke_count: int | None = None
    average_stroke_rate_spm: float | None = None
    total_distance_m: int | None = None
    pace_s_per_500m: int | None = None
    average_pace_s_per_500m: int | None = None
    power_w: int | None = None
    average_power_w: int | None = None
    resistance_level: int | None = None


ROWER_DATA_SPEC = Spec(ROWER_DATA_UUID, "Rower Data", 2, (
    Group(0, (Field("stroke_rate_spm", "u8", den=2, unit="strokes/min"), Field("stroke_count", "u16")), inverted=True),
    Group(1, (Field("average_stroke_rate_spm", "u8", den=2, unit="strokes/min"),)),
    Group(2, (_DISTANCE,)),
    Group(3, (Field("pace_s_per_500m", "u16", unit="s/500 m"),)),
    Group(4, (Field("average_pace_s_per_500m", "u16", unit="s/500 m"),)),
    Group(5, (_POWER,)),
    Group(6, (_AVG_POWER,)),
    Group(7, (Field("resistance_level", "s16"),)),
    Group(8, _ENERGY),
    Group(9, (_HR,)),
    Group(10, (_MET,)),
    Group(11, (_ELAPSED,)),
    Group(12, (_REMAINING,)),
))


# ----------------------------------------------------------------------------- indoor bike


@dataclass(frozen=True, kw_only=True)
class IndoorBikeData(_FtmsCommon):
    """Indoor Bike Data (0x2AD2).

    speed_kmh, average_speed_kmh (0.01 km/h); cadence_rpm, average_cadence_rpm (0.5 rpm);
    total_distance_m (uint24, m); resistance_level (unitless); power_w, average_power_w (W);
    energy, heart rate, MET, times as for every machine.
    """

    UUID = INDOOR_BIKE_DATA_UUID
    NAME = "Indoor Bike Data"

    speed_kmh: float | None = None
    average_speed_kmh: float | None = None
    cadence_rpm: float | None = None
    average_cadence_rpm: float | None = None
    total_distance_m: int | None = None
    resistance_level: int | None = None
    power_w: int | None = None
    average_power_w: int | None = None


INDOOR_BIKE_DATA_SPEC = Spec(INDOOR_BIKE_DATA_UUID, "Indoor Bike Data", 2, (
    Group(0, (_SPEED,), inverted=True),
    Group(1, (_AVG_SPEED,)),
    Group(2, (Field("cadence_rpm", "u16", den=2, unit="rpm"),)),
    Group(3, (Field("average_cadence_rpm", "u16", den=2, unit="rpm"),)),
    Group(4, (_DISTANCE,)),
    Group(5, (Field("resistance_level", "s16"),)),
    Group(6, (_POWER,)),
    Group(7, (_AVG_POWER,)),
    Group(8, _ENERGY),
    Group(9, (_HR,)),
    Group(10, (_MET,)),
    Group(11, (_ELAPSED,)),
    Group(12, (_REMAINING,)),
))

decode_treadmill_data, encode_treadmill_data = build(TREADMILL_DATA_SPEC, TreadmillData)
decode_cross_trainer_data, encode_cross_trainer_data = build(CROSS_TRAINER_DATA_SPEC, CrossTrainerData)
decode_rower_data, encode_rower_data = build(ROWER_DATA_SPEC, RowerData)
decode_indoor_bike_data, encode_indoor_bike_data = build(INDOOR_BIKE_DATA_SPEC, IndoorBikeData)
