"""What every simulated device model provides (no transport code here).

A model is deterministic given its seed and the simulated time ``t_s`` (seconds since the
simulation started): :meth:`DeviceModel.advance` returns the notifications due up to ``t_s``
in time order, and the same seed gives the same bytes. All payloads are built with the
``protocols.ble`` encoders, never packed by hand. The simulated BlueZ (``firmware_sims.bluez``)
turns the GATT layout into D-Bus objects and the notifications into signals.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from protocols.ble import uuid_to_str128


def uuid128(u: int | str) -> str:
    """A 16-bit SIG UUID (or a 128-bit string) as BlueZ spells it: lower-case 128-bit."""
    return uuid_to_str128(u).lower()


#: GATT characteristic flags as BlueZ names them (org.bluez.GattCharacteristic1.Flags).
READ, WRITE, WRITE_NR, NOTIFY, INDICATE = "read", "write", "write-without-response", "notify", "indicate"


@dataclass(frozen=True)
class CharSpec:
    """One characteristic: its UUID, BlueZ flags; a CCCD (0x2902) is added for notify/indicate."""

    uuid: str
    flags: tuple[str, ...]
    descriptors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceSpec:
    """One primary service and its characteristics, in handle order."""

    uuid: str
    chars: tuple[CharSpec, ...]


@dataclass(frozen=True)
class Notification:
    """A notification or indication the device sends at simulated time ``t_s``."""

    t_s: float
    char_uuid: str
    payload: bytes


@dataclass(frozen=True)
class Advert:
    """What the device advertises (BlueZ Device1 properties after a scan)."""

    local_name: str
    service_uuids: tuple[str, ...]
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[str, bytes] = field(default_factory=dict)
    tx_power_dbm: int = 0
    rssi_dbm: int = -60
    appearance: int = 0


class AttError(Exception):
    """An ATT error response from the device (code per Core spec Vol 3 Part F 3.4.1.1)."""

    def __init__(self, code: int, text: str = "") -> None:
        self.code = code
        super().__init__(text or f"ATT error 0x{code:02x}")


#: ATT error codes used by the models.
ATT_READ_NOT_PERMITTED = 0x02
ATT_WRITE_NOT_PERMITTED = 0x03
ATT_REQUEST_NOT_SUPPORTED = 0x06
ATT_INVALID_ATTRIBUTE_VALUE_LEN = 0x0D
ATT_UNLIKELY_ERROR = 0x0E
ATT_CCCD_IMPROPERLY_CONFIGURED = 0xFD
ATT_PROCEDURE_IN_PROGRESS = 0xFE


def address_for(kind: str, index: int, seed: int) -> str:
    """A stable random static address (top two bits set) for device ``index`` of ``kind``."""
    h = hashlib.sha256(f"{kind}/{index}/{seed}".encode()).digest()
    b = bytes([h[0] | 0xC0]) + h[1:6]
    return ":".join(f"{x:02X}" for x in b)


class DeviceModel(ABC):
    """Base of the simulated devices.

    Subclasses set :attr:`kind`, build :meth:`services`, answer :meth:`read`/:meth:`write` and
    emit notifications from :meth:`advance`. ``ground_truth()`` returns JSON-able facts a test
    compares with what reached the client.
    """

    kind: str = "device"

    def __init__(self, address: str, name: str, seed: int) -> None:
        self.address = address
        self.name = name
        self.seed = seed
        self.t_s = 0.0

    @abstractmethod
    def advertisement(self) -> Advert: ...

    @abstractmethod
    def services(self) -> tuple[ServiceSpec, ...]: ...

    @abstractmethod
    def advance(self, t_s: float) -> list[Notification]:
        """Step the model to simulated time ``t_s`` and return the notifications due, in order."""

    def read(self, char_uuid: str) -> bytes:
        """The current value of a readable characteristic (raise :class:`AttError` if not)."""
        raise AttError(ATT_READ_NOT_PERMITTED, "Read not permitted")

    def write(self, char_uuid: str, value: bytes) -> list[Notification]:
        """Handle a write; return indications/notifications it causes (sent after the write reply)."""
        raise AttError(ATT_WRITE_NOT_PERMITTED, "Write not permitted")

    def ground_truth(self) -> dict[str, Any]:
        return {"kind": self.kind, "address": self.address, "name": self.name, "seed": self.seed}

    def nominal_rates_hz(self) -> dict[str, float]:
        """Notifications per simulated second per characteristic UUID while running."""
        return {}
