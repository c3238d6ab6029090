"""Device Information Service (0x180A): the identity strings, System ID and PnP ID.

Strings are UTF-8 (``utf8s``, DIS 1.1 §3). Many devices pad them with NUL octets to a fixed
length or send a C string with junk after its NUL: the text ends at the first NUL and the
octets from there on are counted in ``trailing_bytes``. Invalid UTF-8 raises
:class:`DecodeError` naming the byte offset (the text before it is kept in ``partial``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ._codegen import Field, Group, Spec, build
from .errors import DecodeError, EncodeError
from .measurement import Measurement, make, make_partial

DEVICE_INFORMATION_SERVICE_UUID = 0x180A


@dataclass(frozen=True, kw_only=True)
class ManufacturerName(Measurement):
    """Manufacturer Name String (0x2A29)."""

    UUID = 0x2A29
    NAME = "Manufacturer Name String"
    manufacturer_name: str = ""


@dataclass(frozen=True, kw_only=True)
class ModelNumber(Measurement):
    """Model Number String (0x2A24)."""

    UUID = 0x2A24
    NAME = "Model Number String"
    model_number: str = ""


@dataclass(frozen=True, kw_only=True)
class SerialNumber(Measurement):
    """Serial Number String (0x2A25)."""

    UUID = 0x2A25
    NAME = "Serial Number String"
    serial_number: str = ""


@dataclass(frozen=True, kw_only=True)
class FirmwareRevision(Measurement):
    """Firmware Revision String (0x2A26)."""

    UUID = 0x2A26
    NAME = "Firmware Revision String"
    firmware_revision: str = ""


@dataclass(frozen=True, kw_only=True)
class HardwareRevision(Measurement):
    """Hardware Revision String (0x2A27)."""

    UUID = 0x2A27
    NAME = "Hardware Revision String"
    hardware_revision: str = ""


@dataclass(frozen=True, kw_only=True)
class SoftwareRevision(Measurement):
    """Software Revision String (0x2A28)."""

    UUID = 0x2A28
    NAME = "Software Revision String"
    software_revision: str = ""


STRING_CLASSES: tuple[type[Measurement], ...] = (ManufacturerName, ModelNumber, SerialNumber, FirmwareRevision, HardwareRevision, SoftwareRevision)


def _string_field(cls: type[Measurement]) -> str:
    return next(n for n in cls.field_names() if n not in ("unknown_flag_bits", "trailing_bytes"))


def make_string_codec(cls: type[Measurement]):  # noqa: ANN201 - returns (decode, encode)
    """Decoder and encoder for one DIS string characteristic."""
    label = f"{cls.NAME} (0x{cls.UUID:04X})"
    key = _string_field(cls)

    def decode(p: bytes) -> Measurement:
        raw = bytes(p)
        end = raw.find(b"\x00")  # C-string devices: the text ends at the first NUL
        body = raw if end < 0 else raw[:end]
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(
                f"field {key!r} is not valid UTF-8 at byte offset {exc.start} (0x{body[exc.start]:02X}): {exc.reason}",
                characteristic=label, field=key, offset=exc.start, needed=1, available=len(raw),
                partial=make_partial(cls, {key: body[: exc.start].decode("utf-8")}),
            ) from None
        return make(cls, {"unknown_flag_bits": 0, "trailing_bytes": len(raw) - len(body), key: text})

    def encode(*, unknown_flag_bits: int = 0, trailing_bytes: int = 0, **kw: str) -> bytes:
        if set(kw) != {key}:
            raise TypeError(f"encode {cls.NAME}: expected keyword {key!r}, got {sorted(kw)}")
        value = kw[key]
        if not isinstance(value, str):
            raise EncodeError(f"field {key!r} must be a str, got {type(value).__name__}", characteristic=label, field=key)
        if "\x00" in value:
            raise EncodeError(f"field {key!r} must not contain NUL characters", characteristic=label, field=key)
        if unknown_flag_bits:
            raise EncodeError("this characteristic has no flags", characteristic=label, field="unknown_flag_bits")
        if type(trailing_bytes) is not int or not 0 <= trailing_bytes <= 512:
            raise EncodeError(f"trailing_bytes={trailing_bytes!r} must be an int in 0..512", characteristic=label, field="trailing_bytes")
        return value.encode("utf-8") + bytes(trailing_bytes)

    decode.__qualname__ = f"decode_{cls.__name__}"
    encode.__qualname__ = f"encode_{cls.__name__}"
    return decode, encode


# ----------------------------------------------------------------------------- System ID, PnP ID


@dataclass(frozen=True, kw_only=True)
class SystemId(Measurement):
    """System ID (0x2A23): a 40-bit manufacturer-defined identifier and a 24-bit IEEE OUI."""

    UUID = 0x2A23
    NAME = "System ID"
    manufacturer_identifier: int = 0
    organizationally_unique_identifier: int = 0


SYSTEM_ID_SPEC = Spec(0x2A23, "System ID", 0, (
    Group(None, (Field("manufacturer_identifier", "u40"), Field("organizationally_unique_identifier", "u24"))),
))


class VendorIdSource(IntEnum):
    """PnP ID Vendor ID Source: who assigned ``vendor_id``."""

    BLUETOOTH_SIG = 1
    USB_IF = 2


@dataclass(frozen=True, kw_only=True)
class PnpId(Measurement):
    """PnP ID (0x2A50): vendor ID source (1 = Bluetooth SIG company ID, 2 = USB-IF), vendor,
    product and product version."""

    UUID = 0x2A50
    NAME = "PnP ID"
    vendor_id_source: int = 0
    vendor_id: int = 0
    product_id: int = 0
    product_version: int = 0


PNP_ID_SPEC = Spec(0x2A50, "PnP ID", 0, (
    Group(None, (Field("vendor_id_source", "u8"), Field("vendor_id", "u16"), Field("product_id", "u16"), Field("product_version", "u16"))),
))

decode_system_id, encode_system_id = build(SYSTEM_ID_SPEC, SystemId)
decode_pnp_id, encode_pnp_id = build(PNP_ID_SPEC, PnpId)

__all__ = [
    "DEVICE_INFORMATION_SERVICE_UUID", "FirmwareRevision", "HardwareRevision", "ManufacturerName", "ModelNumber",
    "PnpId", "STRING_CLASSES", "SerialNumber", "SoftwareRevision", "SystemId", "VendorIdSource", "EncodeError",
    "decode_pnp_id", "decode_system_id", "encode_pnp_id", "encode_system_id", "make_string_codec",
]
