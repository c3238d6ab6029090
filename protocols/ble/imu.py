"""The FitTracker IMU service: a custom (vendor) GATT service for wrist/chest motion sensors.

There is no Bluetooth SIG profile for raw accelerometer/gyroscope streams, so FitTracker's
wearables (and the simulated ones in ``firmware_sims``) use this small, documented vendor
service. It lives here, pure, so the edge agent decodes it without importing the simulators.

Service ``f17a0001-7e57-4b1e-9a3e-5c0ffee00000`` (:data:`IMU_SERVICE_UUID`):

* IMU Data ``f17a0002-...`` (notify): one packet of consecutive samples, little-endian::

      offset size field
      0      1    flags            bit 0: gyroscope present; bits 1-7 reserved
      1      2    packet_seq       uint16, +1 per packet, rolls over at 65536
      3      2    sample_rate_dhz  uint16, sample rate in 0.1 Hz (125 = 12.5 Hz)
      5      4    first_sample     uint32, index of the first sample since the sensor started
                                   (rolls over at 2**32)
      9      1    count            number of samples that follow (N)
      10     N*6  accel            per sample x, y, z as int16 in 1/4096 g (±8 g)
                  [N*6 gyro]       only if flag bit 0: per sample x, y, z as int16 in 0.1 deg/s

  Sample *i* of the packet was taken at ``(first_sample + i) / sample_rate_hz`` seconds after
  the sensor started. With the 247-byte ATT MTU (244-byte payload) a packet holds at most
  39 accelerometer-only samples or 19 with the gyroscope.

* IMU Config ``f17a0003-...`` (read/write): ``sample_rate_dhz`` uint16 + ``flags`` uint8 (bit 0:
  send gyroscope). Rates from 12.5 to 200 Hz.

:func:`decode_imu_data` / :func:`encode_imu_data` are exact inverses (``encode(**decode(p).to_dict())
== p``); decode errors are :class:`~protocols.ble.errors.DecodeError` with the valid part kept.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from .errors import DecodeError, EncodeError
from .measurement import Measurement

IMU_SERVICE_UUID = "f17a0001-7e57-4b1e-9a3e-5c0ffee00000"
IMU_DATA_UUID = "f17a0002-7e57-4b1e-9a3e-5c0ffee00000"
IMU_CONFIG_UUID = "f17a0003-7e57-4b1e-9a3e-5c0ffee00000"

#: accelerometer LSB per g (int16 → ±8 g)
ACCEL_LSB_PER_G = 4096
#: gyroscope LSB per deg/s (int16 → ±3276.7 deg/s)
GYRO_LSB_PER_DPS = 10
HEADER_BYTES = 10
MAX_PAYLOAD_BYTES = 244
FLAG_GYRO = 0x01
_DATA_NAME = f"IMU Data ({IMU_DATA_UUID})"
_CONFIG_NAME = f"IMU Config ({IMU_CONFIG_UUID})"
_HEADER = struct.Struct("<BHHIB")
_CONFIG = struct.Struct("<HB")

Triple = tuple[int, int, int]


@dataclass(frozen=True, kw_only=True)
class ImuData(Measurement):
    """One IMU Data packet.

    ``accel_1_4096g`` / ``gyro_0_1dps`` are the raw int16 triples as sent (x, y, z per sample);
    :attr:`accel_g` and :attr:`gyro_dps` give them in g and deg/s. ``gyro_0_1dps`` is ``None``
    when the packet carries no gyroscope data.
    """

    flags: int = 0
    packet_seq: int = 0
    sample_rate_dhz: int = 0
    first_sample: int = 0
    accel_1_4096g: tuple[Triple, ...] = ()
    gyro_0_1dps: tuple[Triple, ...] | None = None

    NAME: ClassVar[str] = "IMU Data"

    @property
    def sample_rate_hz(self) -> float:
        """Sample rate in Hz."""
        return self.sample_rate_dhz / 10.0

    @property
    def accel_g(self) -> list[tuple[float, float, float]]:
        """Accelerations in g, one (x, y, z) per sample."""
        return [(x / ACCEL_LSB_PER_G, y / ACCEL_LSB_PER_G, z / ACCEL_LSB_PER_G) for x, y, z in self.accel_1_4096g]

    @property
    def gyro_dps(self) -> list[tuple[float, float, float]] | None:
        """Angular rates in deg/s, one (x, y, z) per sample, or ``None`` without gyroscope."""
        if self.gyro_0_1dps is None:
            return None
        return [(x / GYRO_LSB_PER_DPS, y / GYRO_LSB_PER_DPS, z / GYRO_LSB_PER_DPS) for x, y, z in self.gyro_0_1dps]

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["accel_1_4096g"] = [list(s) for s in self.accel_1_4096g]
        d["gyro_0_1dps"] = None if self.gyro_0_1dps is None else [list(s) for s in self.gyro_0_1dps]
        return d


@dataclass(frozen=True, kw_only=True)
class ImuConfig(Measurement):
    """IMU Config: sample rate (0.1 Hz units) and whether the gyroscope is sent."""

    sample_rate_dhz: int = 0
    flags: int = 0

    NAME: ClassVar[str] = "IMU Config"

    @property
    def gyro_enabled(self) -> bool:
        return bool(self.flags & FLAG_GYRO)


def max_samples(gyro: bool, payload_bytes: int = MAX_PAYLOAD_BYTES) -> int:
    """How many samples fit in one packet of ``payload_bytes``."""
    return (payload_bytes - HEADER_BYTES) // (12 if gyro else 6)


def _triples(raw: bytes, offset: int, n: int) -> tuple[Triple, ...]:
    vals = struct.unpack_from(f"<{3 * n}h", raw, offset)
    return tuple((vals[i], vals[i + 1], vals[i + 2]) for i in range(0, 3 * n, 3))


def decode_imu_data(payload: bytes | bytearray | memoryview) -> ImuData:
    """Decode one IMU Data notification.

    Raises :class:`DecodeError` for a payload shorter than the header or than the samples its
    ``count`` announces; ``.partial`` then holds the header and every complete part (accel
    without gyro if only the gyro block is cut).
    """
    raw = bytes(payload)
    n_bytes = len(raw)
    if n_bytes < HEADER_BYTES:
        raise DecodeError(
            f"payload too short for the header: it needs {HEADER_BYTES} byte(s), the payload is {n_bytes}",
            characteristic=_DATA_NAME, field="header", offset=0, needed=HEADER_BYTES, available=n_bytes,
        )
    flags, seq, rate, first, count = _HEADER.unpack_from(raw, 0)
    gyro = bool(flags & FLAG_GYRO)
    base: dict[str, Any] = dict(
        flags=flags, packet_seq=seq, sample_rate_dhz=rate, first_sample=first,
        unknown_flag_bits=flags & ~FLAG_GYRO & 0xFF,
    )
    need = 6 * count
    if n_bytes < HEADER_BYTES + need:
        raise DecodeError(
            f"payload too short for field 'accel': {count} sample(s) need {need} byte(s) at offset "
            f"{HEADER_BYTES}, but the payload is {n_bytes} byte(s) long ({n_bytes - HEADER_BYTES} left)",
            characteristic=_DATA_NAME, field="accel", offset=HEADER_BYTES, needed=need, available=n_bytes,
            partial=ImuData(**base),
        )
    accel = _triples(raw, HEADER_BYTES, count)
    off = HEADER_BYTES + need
    gyro_vals: tuple[Triple, ...] | None = None
    if gyro:
        if n_bytes < off + need:
            raise DecodeError(
                f"payload too short for field 'gyro' (flags 0x{flags:X}): it needs {need} byte(s) at "
                f"offset {off}, but the payload is {n_bytes} byte(s) long ({n_bytes - off} left)",
                characteristic=_DATA_NAME, field="gyro", offset=off, needed=need, available=n_bytes,
                partial=ImuData(**base, accel_1_4096g=accel),
            )
        gyro_vals = _triples(raw, off, count)
        off += need
    return ImuData(**base, accel_1_4096g=accel, gyro_0_1dps=gyro_vals, trailing_bytes=n_bytes - off)


def _check_triples(name: str, samples: Sequence[Sequence[int]]) -> list[int]:
    flat: list[int] = []
    for i, s in enumerate(samples):
        if len(s) != 3:
            raise EncodeError(f"sample {i} of {name} has {len(s)} values, expected 3", characteristic=_DATA_NAME, field=name)
        for v in s:
            iv = int(v)
            if iv != v or not -32768 <= iv <= 32767:
                raise EncodeError(
                    f"sample {i} of {name} has {v!r}, outside the int16 range -32768..32767",
                    characteristic=_DATA_NAME, field=name,
                )
            flat.append(iv)
    return flat


def encode_imu_data(
    *,
    packet_seq: int,
    sample_rate_dhz: int,
    first_sample: int,
    accel_1_4096g: Sequence[Sequence[int]],
    gyro_0_1dps: Sequence[Sequence[int]] | None = None,
    flags: int | None = None,
    unknown_flag_bits: int = 0,
    trailing_bytes: int = 0,
    **_ignored: Any,
) -> bytes:
    """Build an IMU Data packet (the exact inverse of :func:`decode_imu_data`).

    ``packet_seq`` and ``first_sample`` are taken modulo 2**16 / 2**32 (they roll over).
    Raises :class:`EncodeError` when a value is out of range or accel/gyro lengths differ.
    """
    n = len(accel_1_4096g)
    if n > 255:
        raise EncodeError(f"{n} samples, at most 255 fit the count field", characteristic=_DATA_NAME, field="accel_1_4096g")
    if not 0 <= sample_rate_dhz <= 0xFFFF:
        raise EncodeError(f"sample_rate_dhz {sample_rate_dhz} outside 0..65535", characteristic=_DATA_NAME, field="sample_rate_dhz")
    gyro = gyro_0_1dps is not None
    f = (FLAG_GYRO if gyro else 0) | (unknown_flag_bits & 0xFE)
    if flags is not None and flags != f:
        raise EncodeError(f"flags 0x{flags:X} disagree with the fields given (0x{f:X})", characteristic=_DATA_NAME, field="flags")
    out = bytearray(_HEADER.pack(f, packet_seq & 0xFFFF, sample_rate_dhz, first_sample & 0xFFFFFFFF, n))
    a = _check_triples("accel_1_4096g", accel_1_4096g)
    out += struct.pack(f"<{len(a)}h", *a)
    if gyro:
        assert gyro_0_1dps is not None
        if len(gyro_0_1dps) != n:
            raise EncodeError(f"{len(gyro_0_1dps)} gyro samples for {n} accel samples", characteristic=_DATA_NAME, field="gyro_0_1dps")
        g = _check_triples("gyro_0_1dps", gyro_0_1dps)
        out += struct.pack(f"<{len(g)}h", *g)
    out += bytes(trailing_bytes)
    return bytes(out)


def decode_imu_config(payload: bytes | bytearray | memoryview) -> ImuConfig:
    """Decode the IMU Config value (3 bytes)."""
    raw = bytes(payload)
    if len(raw) < _CONFIG.size:
        raise DecodeError(
            f"payload too short: it needs {_CONFIG.size} byte(s), the payload is {len(raw)}",
            characteristic=_CONFIG_NAME, field="sample_rate_dhz", offset=0, needed=_CONFIG.size, available=len(raw),
        )
    rate, flags = _CONFIG.unpack_from(raw, 0)
    return ImuConfig(sample_rate_dhz=rate, flags=flags, unknown_flag_bits=flags & 0xFE,
                     trailing_bytes=len(raw) - _CONFIG.size)


def encode_imu_config(*, sample_rate_dhz: int, flags: int = 0, trailing_bytes: int = 0, **_ignored: Any) -> bytes:
    """Build the IMU Config value."""
    if not 0 <= sample_rate_dhz <= 0xFFFF:
        raise EncodeError(f"sample_rate_dhz {sample_rate_dhz} outside 0..65535", characteristic=_CONFIG_NAME, field="sample_rate_dhz")
    if not 0 <= flags <= 0xFF:
        raise EncodeError(f"flags {flags} outside 0..255", characteristic=_CONFIG_NAME, field="flags")
    return _CONFIG.pack(sample_rate_dhz, flags) + bytes(trailing_bytes)
