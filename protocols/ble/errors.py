"""Errors of the BLE characteristic codecs.

One root, :class:`BleError` (a :class:`ValueError`), so callers that only care about "bad
bytes" catch ``ValueError``. Every error carries its facts as attributes; never match on text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .measurement import Measurement


class BleError(ValueError):
    """Root of the errors raised by :mod:`protocols.ble`."""


class DecodeError(BleError):
    """A notification/read payload that does not match its characteristic's specification.

    Attributes:
        characteristic: human name and UUID, e.g. ``"Heart Rate Measurement (0x2A37)"``.
        field: the field being decoded when the payload ran out or was invalid (``None`` when
            the problem is the payload as a whole, e.g. empty).
        offset: byte offset of that field in the payload.
        needed: bytes the field needs from ``offset``.
        available: total length of the payload.
        partial: the fields decoded before the failure (a :class:`Measurement` with the rest
            ``None``), so the valid part of a truncated notification is not lost; ``None``
            when nothing could be decoded.
    """

    def __init__(
        self,
        message: str,
        *,
        characteristic: str,
        field: str | None = None,
        offset: int | None = None,
        needed: int | None = None,
        available: int | None = None,
        partial: "Measurement | None" = None,
    ) -> None:
        self.characteristic = characteristic
        self.field = field
        self.offset = offset
        self.needed = needed
        self.available = available
        self.partial = partial
        super().__init__(f"{characteristic}: {message}")


class EncodeError(BleError):
    """Fields that cannot be encoded: out of range, inconsistent flags, a missing group member.

    Attributes: ``characteristic`` and ``field`` (``None`` when the problem spans fields).
    """

    def __init__(self, message: str, *, characteristic: str, field: str | None = None) -> None:
        self.characteristic = characteristic
        self.field = field
        super().__init__(f"{characteristic}: {message}")


class UnsupportedCharacteristicError(BleError, LookupError):
    """A UUID that is not one of the supported characteristics (or is not a valid UUID)."""

    def __init__(self, message: str, *, uuid: Any) -> None:
        self.uuid = uuid
        super().__init__(message)


def short(
    characteristic: str,
    field: str,
    offset: int,
    needed: int,
    available: int,
    flags: int | None = None,
    partial: "Measurement | None" = None,
) -> DecodeError:
    """The error for a payload that ends inside ``field`` (used by the generated decoders)."""
    have = max(0, available - offset)
    where = f" (flags 0x{flags:X})" if flags is not None else ""
    return DecodeError(
        f"payload too short for field {field!r}{where}: it needs {needed} byte(s) at offset "
        f"{offset}, but the payload is {available} byte(s) long ({have} left)",
        characteristic=characteristic,
        field=field,
        offset=offset,
        needed=needed,
        available=available,
        partial=partial,
    )
