"""UUID -> codec table and the public ``decode`` / ``encode`` entry points."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import battery, cycling, device_information as dis, ftms_control, ftms_data, ftms_feature, heart_rate, running
from .errors import UnsupportedCharacteristicError
from .measurement import Measurement
from .uuids import spellings, to_int


@dataclass(frozen=True)
class Codec:
    """One supported characteristic."""

    uuid: int
    name: str
    cls: type[Measurement]
    decode: Callable[[bytes], Measurement]
    encode: Callable[..., bytes]

    @property
    def label(self) -> str:
        return f"{self.name} (0x{self.uuid:04X})"


def _c(cls: type[Measurement], dec: Callable[[bytes], Measurement], enc: Callable[..., bytes]) -> Codec:
    return Codec(cls.UUID, cls.NAME, cls, dec, enc)


CODECS: tuple[Codec, ...] = (
    _c(heart_rate.HeartRateMeasurement, heart_rate.decode_heart_rate_measurement, heart_rate.encode_heart_rate_measurement),
    _c(heart_rate.BodySensorLocation, heart_rate.decode_body_sensor_location, heart_rate.encode_body_sensor_location),
    _c(battery.BatteryLevel, battery.decode_battery_level, battery.encode_battery_level),
    *(_c(cls, *dis.make_string_codec(cls)) for cls in dis.STRING_CLASSES),
    _c(dis.SystemId, dis.decode_system_id, dis.encode_system_id),
    _c(dis.PnpId, dis.decode_pnp_id, dis.encode_pnp_id),
    _c(cycling.CscMeasurement, cycling.decode_csc_measurement, cycling.encode_csc_measurement),
    _c(cycling.CscFeature, cycling.decode_csc_feature, cycling.encode_csc_feature),
    _c(cycling.SensorLocation, cycling.decode_sensor_location, cycling.encode_sensor_location),
    _c(cycling.CyclingPowerMeasurement, cycling.decode_cycling_power_measurement, cycling.encode_cycling_power_measurement),
    _c(cycling.CyclingPowerFeature, cycling.decode_cycling_power_feature, cycling.encode_cycling_power_feature),
    _c(running.RscMeasurement, running.decode_rsc_measurement, running.encode_rsc_measurement),
    _c(running.RscFeature, running.decode_rsc_feature, running.encode_rsc_feature),
    _c(ftms_feature.FitnessMachineFeature, ftms_feature.decode_fitness_machine_feature, ftms_feature.encode_fitness_machine_feature),
    _c(ftms_data.TreadmillData, ftms_data.decode_treadmill_data, ftms_data.encode_treadmill_data),
    _c(ftms_data.CrossTrainerData, ftms_data.decode_cross_trainer_data, ftms_data.encode_cross_trainer_data),
    _c(ftms_data.RowerData, ftms_data.decode_rower_data, ftms_data.encode_rower_data),
    _c(ftms_data.IndoorBikeData, ftms_data.decode_indoor_bike_data, ftms_data.encode_indoor_bike_data),
    _c(ftms_control.TrainingStatus, ftms_control.decode_training_status, ftms_control.encode_training_status),
    _c(ftms_feature.SupportedSpeedRange, ftms_feature.decode_supported_speed_range, ftms_feature.encode_supported_speed_range),
    _c(ftms_feature.SupportedInclinationRange, ftms_feature.decode_supported_inclination_range, ftms_feature.encode_supported_inclination_range),
    _c(ftms_feature.SupportedResistanceLevelRange, ftms_feature.decode_supported_resistance_level_range, ftms_feature.encode_supported_resistance_level_range),
    _c(ftms_feature.SupportedHeartRateRange, ftms_feature.decode_supported_heart_rate_range, ftms_feature.encode_supported_heart_rate_range),
    _c(ftms_feature.SupportedPowerRange, ftms_feature.decode_supported_power_range, ftms_feature.encode_supported_power_range),
    _c(ftms_control.FitnessMachineControlPoint, ftms_control.decode_fitness_machine_control_point, ftms_control.encode_fitness_machine_control_point),
    _c(ftms_control.FitnessMachineStatus, ftms_control.decode_fitness_machine_status, ftms_control.encode_fitness_machine_status),
)

BY_UUID: dict[int, Codec] = {c.uuid: c for c in CODECS}
assert len(BY_UUID) == len(CODECS), "duplicate UUID in CODECS"

# Pre-computed spellings make the common lookups one dict probe; others go through to_int.
_DECODERS: dict[object, Callable[[bytes], Measurement]] = {}
_ENCODERS: dict[object, Callable[..., bytes]] = {}
for _codec in CODECS:
    for _s in spellings(_codec.uuid):
        _DECODERS[_s] = _codec.decode
        _ENCODERS[_s] = _codec.encode


def codec_for(uuid: int | str) -> Codec:
    """The :class:`Codec` of a characteristic UUID (any spelling)."""
    n = to_int(uuid)
    try:
        return BY_UUID[n]
    except KeyError:
        raise UnsupportedCharacteristicError(f"characteristic 0x{n:04X} is not supported by protocols.ble", uuid=uuid) from None


def decode(uuid: int | str, payload: bytes | bytearray | memoryview) -> Measurement:
    """Decode one notification/read value of characteristic ``uuid``.

    ``uuid`` may be ``0x2A37``, ``"2a37"``, ``"0x2A37"`` or the full 128-bit string. Raises
    :class:`~protocols.ble.errors.DecodeError` for a payload that does not match the
    specification (empty, too short for its flags, prohibited values) and
    :class:`~protocols.ble.errors.UnsupportedCharacteristicError` for an unknown UUID.
    """
    try:
        dec = _DECODERS[uuid]
    except (KeyError, TypeError):
        dec = codec_for(uuid).decode
    if type(payload) is not bytes and not isinstance(payload, (bytes, bytearray, memoryview)):
        raise TypeError(f"payload must be bytes, bytearray or memoryview, not {type(payload).__name__}")
    return dec(payload)


def encode(uuid: int | str, **fields: Any) -> bytes:
    """Encode ``fields`` (the keys of the decoded class's ``to_dict()``) for ``uuid``.

    The exact inverse of :func:`decode`: ``decode(uuid, encode(uuid, **m.to_dict())) == m``.
    Raises :class:`~protocols.ble.errors.EncodeError` for values out of range or
    inconsistent with ``flags``, :class:`TypeError` for an unknown keyword.
    """
    try:
        enc = _ENCODERS[uuid]
    except (KeyError, TypeError):
        enc = codec_for(uuid).encode
    return enc(**fields)


def supported() -> tuple[Codec, ...]:
    """Every supported characteristic, in documentation order."""
    return CODECS
