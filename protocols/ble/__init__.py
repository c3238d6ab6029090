"""Spec-exact decoders and encoders for fitness Bluetooth LE characteristics.

Public API (other packages and users rely on these names)::

    decode(uuid, payload) -> Measurement      # uuid: 0x2A37, "2a37", "0x2A37" or the 128-bit string
    encode(uuid, **fields) -> bytes           # the exact inverse: fields = decode(...).to_dict()
    DecodeError(ValueError)                   # .characteristic .field .offset .needed .available .partial
    EncodeError(ValueError), UnsupportedCharacteristicError(ValueError, LookupError)

    CscRates, CyclingPowerRates, RevolutionRate   # cumulative counters -> speed / cadence
    parse_advertisement(raw) -> Advertisement, classify(...) -> DeviceClass (DeviceKind set)

Every decoded value is a frozen dataclass (:class:`Measurement` subclass) whose ``to_dict()``
keys carry their units (``heart_rate_bpm``, ``rr_intervals_ms``, ``power_w``, ``speed_kmh``...)
plus ``unknown_flag_bits`` and ``trailing_bytes``. docs/ble-characteristics.md lists every
characteristic and field. Pure: no I/O, no asyncio.
"""

from .advertising import Advertisement, DeviceClass, DeviceKind, classify, parse_advertisement
from .battery import BatteryLevel
from .cycling import (
    CscFeature,
    CscMeasurement,
    CyclingPowerFeature,
    CyclingPowerMeasurement,
    SensorLocation,
    SensorLocationValue,
)
from .device_information import (
    FirmwareRevision,
    HardwareRevision,
    ManufacturerName,
    ModelNumber,
    PnpId,
    SerialNumber,
    SoftwareRevision,
    SystemId,
)
from .errors import BleError, DecodeError, EncodeError, UnsupportedCharacteristicError
from .ftms_control import (
    ControlPointOpCode,
    FitnessMachineControlPoint,
    FitnessMachineStatus,
    MachineStatusOpCode,
    ResultCode,
    SpinDownControl,
    SpinDownStatus,
    StopOrPause,
    TrainingStatus,
    TrainingStatusCode,
)
from .ftms_data import CrossTrainerData, IndoorBikeData, RowerData, TreadmillData
from .ftms_feature import (
    FitnessMachineFeature,
    SupportedHeartRateRange,
    SupportedInclinationRange,
    SupportedPowerRange,
    SupportedResistanceLevelRange,
    SupportedSpeedRange,
)
from . import imu  # FitTracker custom IMU service (vendor UUIDs): imu.decode_imu_data, imu.ImuData
from .heart_rate import BodySensorLocation, HeartRateMeasurement, SensorLocation as BodySensorLocationValue
from .measurement import Measurement
from .rates import CscRates, CyclingPowerRates, RateStats, RevolutionRate, SpeedCadence
from .registry import CODECS, Codec, codec_for, decode, encode, supported
from .uuids import to_int as uuid_to_int, to_str128 as uuid_to_str128

__all__ = [
    "Advertisement", "BatteryLevel", "BleError", "BodySensorLocation", "BodySensorLocationValue", "CODECS", "Codec",
    "ControlPointOpCode", "CrossTrainerData", "CscFeature", "CscMeasurement", "CscRates", "CyclingPowerFeature",
    "CyclingPowerMeasurement", "CyclingPowerRates", "DecodeError", "DeviceClass", "DeviceKind", "EncodeError",
    "FirmwareRevision", "FitnessMachineControlPoint", "FitnessMachineFeature", "FitnessMachineStatus",
    "HardwareRevision", "HeartRateMeasurement", "IndoorBikeData", "MachineStatusOpCode", "ManufacturerName",
    "Measurement", "ModelNumber", "PnpId", "RateStats", "ResultCode", "RevolutionRate", "RowerData", "SensorLocation",
    "SensorLocationValue", "SerialNumber", "SoftwareRevision", "SpeedCadence", "SpinDownControl", "SpinDownStatus",
    "StopOrPause", "SupportedHeartRateRange", "SupportedInclinationRange", "SupportedPowerRange",
    "SupportedResistanceLevelRange", "SupportedSpeedRange", "SystemId", "TrainingStatus", "TrainingStatusCode",
    "TreadmillData", "UnsupportedCharacteristicError", "classify", "codec_for", "decode", "encode",
    "parse_advertisement", "supported", "uuid_to_int", "uuid_to_str128",
]
