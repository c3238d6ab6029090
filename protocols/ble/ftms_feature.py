"""Fitness Machine Feature (0x2ACC) and the Supported ... Range characteristics (0x2AD4-0x2AD8).

FTMS 1.0 §4.3: two uint32 bit fields, Fitness Machine Features then Target Setting Features.
Reserved bits (17-31 of each) are kept in ``unknown_flag_bits`` (features in the low 32 bits,
target settings in the high 32 bits). The ranges (§4.11-4.15) are minimum, maximum and
minimum increment.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._codegen import Field, Group, Spec, build
from .errors import DecodeError, EncodeError
from .measurement import Measurement, make

FITNESS_MACHINE_FEATURE_UUID = 0x2ACC
SUPPORTED_SPEED_RANGE_UUID = 0x2AD4
SUPPORTED_INCLINATION_RANGE_UUID = 0x2AD5
SUPPORTED_RESISTANCE_LEVEL_RANGE_UUID = 0x2AD6
SUPPORTED_HEART_RATE_RANGE_UUID = 0x2AD7
SUPPORTED_POWER_RANGE_UUID = 0x2AD8

#: Fitness Machine Features field, bit -> name (FTMS 1.0 Table 4.3).
MACHINE_FEATURES: tuple[str, ...] = (
    "average_speed", "cadence", "total_distance", "inclination", "elevation_gain", "pace", "step_count",
    "resistance_level", "stride_count", "expended_energy", "heart_rate_measurement", "metabolic_equivalent",
    "elapsed_time", "remaining_time", "power_measurement", "force_on_belt_and_power_output", "user_data_retention",
)
#: Target Setting Features field, bit -> name (FTMS 1.0 Table 4.4).
TARGET_SETTING_FEATURES: tuple[str, ...] = (
    "speed_target", "inclination_target", "resistance_target", "power_target", "heart_rate_target",
    "targeted_expended_energy", "targeted_step_number", "targeted_stride_number", "targeted_distance",
    "targeted_training_time", "targeted_time_in_two_hr_zones", "targeted_time_in_three_hr_zones",
    "targeted_time_in_five_hr_zones", "indoor_bike_simulation_parameters", "wheel_circumference",
    "spin_down_control", "targeted_cadence",
)
_DEFINED_MF = (1 << len(MACHINE_FEATURES)) - 1
_DEFINED_TS = (1 << len(TARGET_SETTING_FEATURES)) - 1
_LABEL = "Fitness Machine Feature (0x2ACC)"


@dataclass(frozen=True, kw_only=True)
class FitnessMachineFeature(Measurement):
    """Fitness Machine Feature: the two raw uint32 words plus their names.

    ``machine_features`` / ``target_settings`` list the names of the set bits (see
    :data:`MACHINE_FEATURES`, :data:`TARGET_SETTING_FEATURES`).
    """

    UUID = FITNESS_MACHINE_FEATURE_UUID
    NAME = "Fitness Machine Feature"

    fitness_machine_features: int = 0
    target_setting_features: int = 0
    machine_features: tuple[str, ...] = ()
    target_settings: tuple[str, ...] = ()

    def supports(self, name: str) -> bool:
        """True if ``name`` (from either table) is set."""
        return name in self.machine_features or name in self.target_settings


def _names(word: int, table: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for i, n in enumerate(table) if word >> i & 1)


def decode_fitness_machine_feature(p: bytes) -> FitnessMachineFeature:
    n = len(p)
    if n < 8:
        field = "fitness_machine_features" if n < 4 else "target_setting_features"
        off = 0 if n < 4 else 4
        raise DecodeError(
            f"payload too short for field {field!r}: it needs 4 byte(s) at offset {off}, but the payload is {n} byte(s) long",
            characteristic=_LABEL, field=field, offset=off, needed=4, available=n,
        )
    mf = int.from_bytes(p[0:4], "little")
    ts = int.from_bytes(p[4:8], "little")
    return make(FitnessMachineFeature, {
        "fitness_machine_features": mf,
        "target_setting_features": ts,
        "machine_features": _names(mf, MACHINE_FEATURES),
        "target_settings": _names(ts, TARGET_SETTING_FEATURES),
        "unknown_flag_bits": (mf & ~_DEFINED_MF) | (ts & ~_DEFINED_TS) << 32,
        "trailing_bytes": n - 8,
    })


def _word(label_field: str, value: object) -> int:
    if type(value) is not int or not 0 <= value <= 0xFFFFFFFF:
        raise EncodeError(f"{label_field}={value!r} must be an int in 0..0xFFFFFFFF", characteristic=_LABEL, field=label_field)
    return value


def encode_fitness_machine_feature(
    *,
    fitness_machine_features: int | None = None,
    target_setting_features: int | None = None,
    machine_features: "tuple[str, ...] | list[str] | None" = None,
    target_settings: "tuple[str, ...] | list[str] | None" = None,
    unknown_flag_bits: int = 0,
    trailing_bytes: int = 0,
) -> bytes:
    """Encode from the raw words, from the name lists, or both (then they must agree)."""
    words = []
    for raw_name, raw, names_name, names, table in (
        ("fitness_machine_features", fitness_machine_features, "machine_features", machine_features, MACHINE_FEATURES),
        ("target_setting_features", target_setting_features, "target_settings", target_settings, TARGET_SETTING_FEATURES),
    ):
        from_names = None
        if names is not None:
            bad = [x for x in names if x not in table]
            if bad:
                raise EncodeError(f"{names_name}: unknown names {bad}", characteristic=_LABEL, field=names_name)
            from_names = sum(1 << table.index(x) for x in set(names))
        if raw is None:
            w = from_names or 0
        else:
            w = _word(raw_name, raw)
            if from_names is not None and w & ((1 << len(table)) - 1) != from_names:
                raise EncodeError(f"{raw_name}=0x{w:X} disagrees with {names_name}={list(names or ())}", characteristic=_LABEL, field=names_name)
        words.append(w)
    if type(unknown_flag_bits) is not int or unknown_flag_bits < 0 or unknown_flag_bits >> 64:
        raise EncodeError(f"unknown_flag_bits={unknown_flag_bits!r} is not a 64-bit int", characteristic=_LABEL, field="unknown_flag_bits")
    unk_mf, unk_ts = unknown_flag_bits & 0xFFFFFFFF, unknown_flag_bits >> 32
    if unk_mf & _DEFINED_MF or unk_ts & _DEFINED_TS:
        raise EncodeError("unknown_flag_bits may only hold reserved bits", characteristic=_LABEL, field="unknown_flag_bits")
    words[0] |= unk_mf
    words[1] |= unk_ts
    if type(trailing_bytes) is not int or not 0 <= trailing_bytes <= 512:
        raise EncodeError(f"trailing_bytes={trailing_bytes!r} must be an int in 0..512", characteristic=_LABEL, field="trailing_bytes")
    return words[0].to_bytes(4, "little") + words[1].to_bytes(4, "little") + bytes(trailing_bytes)


# ----------------------------------------------------------------------------- ranges


@dataclass(frozen=True, kw_only=True)
class SupportedSpeedRange(Measurement):
    """Supported Speed Range (0x2AD4): km/h, 0.01 km/h steps."""

    UUID = SUPPORTED_SPEED_RANGE_UUID
    NAME = "Supported Speed Range"
    minimum_speed_kmh: float = 0.0
    maximum_speed_kmh: float = 0.0
    minimum_increment_kmh: float = 0.0


@dataclass(frozen=True, kw_only=True)
class SupportedInclinationRange(Measurement):
    """Supported Inclination Range (0x2AD5): %, 0.1 % steps."""

    UUID = SUPPORTED_INCLINATION_RANGE_UUID
    NAME = "Supported Inclination Range"
    minimum_inclination_pct: float = 0.0
    maximum_inclination_pct: float = 0.0
    minimum_increment_pct: float = 0.0


@dataclass(frozen=True, kw_only=True)
class SupportedResistanceLevelRange(Measurement):
    """Supported Resistance Level Range (0x2AD6): unitless, 0.1 steps."""

    UUID = SUPPORTED_RESISTANCE_LEVEL_RANGE_UUID
    NAME = "Supported Resistance Level Range"
    minimum_resistance_level: float = 0.0
    maximum_resistance_level: float = 0.0
    minimum_increment: float = 0.0


@dataclass(frozen=True, kw_only=True)
class SupportedHeartRateRange(Measurement):
    """Supported Heart Rate Range (0x2AD7): bpm."""

    UUID = SUPPORTED_HEART_RATE_RANGE_UUID
    NAME = "Supported Heart Rate Range"
    minimum_heart_rate_bpm: int = 0
    maximum_heart_rate_bpm: int = 0
    minimum_increment_bpm: int = 0


@dataclass(frozen=True, kw_only=True)
class SupportedPowerRange(Measurement):
    """Supported Power Range (0x2AD8): W."""

    UUID = SUPPORTED_POWER_RANGE_UUID
    NAME = "Supported Power Range"
    minimum_power_w: int = 0
    maximum_power_w: int = 0
    minimum_increment_w: int = 0


def _range(uuid: int, name: str, kinds: tuple[str, str, str], names: tuple[str, str, str], den: int, unit: str) -> Spec:
    return Spec(uuid, name, 0, (Group(None, tuple(Field(n, k, den=den, unit=unit) for n, k in zip(names, kinds))),))


SUPPORTED_SPEED_RANGE_SPEC = _range(SUPPORTED_SPEED_RANGE_UUID, "Supported Speed Range", ("u16", "u16", "u16"),
                                    ("minimum_speed_kmh", "maximum_speed_kmh", "minimum_increment_kmh"), 100, "km/h")
SUPPORTED_INCLINATION_RANGE_SPEC = _range(SUPPORTED_INCLINATION_RANGE_UUID, "Supported Inclination Range", ("s16", "s16", "u16"),
                                          ("minimum_inclination_pct", "maximum_inclination_pct", "minimum_increment_pct"), 10, "%")
SUPPORTED_RESISTANCE_LEVEL_RANGE_SPEC = _range(SUPPORTED_RESISTANCE_LEVEL_RANGE_UUID, "Supported Resistance Level Range", ("s16", "s16", "u16"),
                                               ("minimum_resistance_level", "maximum_resistance_level", "minimum_increment"), 10, "")
SUPPORTED_HEART_RATE_RANGE_SPEC = _range(SUPPORTED_HEART_RATE_RANGE_UUID, "Supported Heart Rate Range", ("u8", "u8", "u8"),
                                         ("minimum_heart_rate_bpm", "maximum_heart_rate_bpm", "minimum_increment_bpm"), 1, "bpm")
SUPPORTED_POWER_RANGE_SPEC = _range(SUPPORTED_POWER_RANGE_UUID, "Supported Power Range", ("s16", "s16", "u16"),
                                    ("minimum_power_w", "maximum_power_w", "minimum_increment_w"), 1, "W")

decode_supported_speed_range, encode_supported_speed_range = build(SUPPORTED_SPEED_RANGE_SPEC, SupportedSpeedRange)
decode_supported_inclination_range, encode_supported_inclination_range = build(SUPPORTED_INCLINATION_RANGE_SPEC, SupportedInclinationRange)
decode_supported_resistance_level_range, encode_supported_resistance_level_range = build(SUPPORTED_RESISTANCE_LEVEL_RANGE_SPEC, SupportedResistanceLevelRange)
decode_supported_heart_rate_range, encode_supported_heart_rate_range = build(SUPPORTED_HEART_RATE_RANGE_SPEC, SupportedHeartRateRange)
decode_supported_power_range, encode_supported_power_range = build(SUPPORTED_POWER_RANGE_SPEC, SupportedPowerRange)
