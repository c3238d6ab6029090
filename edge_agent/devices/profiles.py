"""What to subscribe to on a connected device, and how to decode it.

Given the GATT table a device exposes (service UUID, characteristic UUID, properties), the
profile picks every characteristic the agent understands (decoders from ``protocols.ble``):

=========================  ===============================  ======================
service                    characteristic (notify)          kind label
=========================  ===============================  ======================
Heart Rate 0x180D          Heart Rate Measurement 0x2A37    ``hr``
CSC 0x1816                 CSC Measurement 0x2A5B           ``csc``
Cycling Power 0x1818       CP Measurement 0x2A63            ``cps``
RSC 0x1814                 RSC Measurement 0x2A53           ``rsc``
Fitness Machine 0x1826     Treadmill 0x2ACD, Cross Trainer  ``ftms``
                           0x2ACE, Rower 0x2AD1, Indoor
                           Bike 0x2AD2
FitTracker IMU (vendor)    IMU Data f17a0002-...            ``imu``
Battery 0x180F             Battery Level 0x2A19 (read,      —
                           notify when offered)
Device Information 0x180A  Serial Number 0x2A25 (read once  —
                           for the device id)
=========================  ===============================  ======================

Pure: no bleak here (the session feeds it bleak's service collection as tuples).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Iterable

from protocols.ble import decode as ble_decode
from protocols.ble.imu import IMU_DATA_UUID, IMU_SERVICE_UUID, decode_imu_data
from protocols.ble.measurement import Measurement
from protocols.ble.uuids import to_str128

__all__ = [
    "BATTERY_LEVEL", "SERIAL_NUMBER", "Subscription", "GattChar", "plan", "kind_label", "device_id_for",
    "NOTIFY_CHARS",
]

BATTERY_LEVEL = to_str128(0x2A19)
SERIAL_NUMBER = to_str128(0x2A25)


def _sig(n: int) -> Callable[[bytes], Measurement]:
    def dec(data: bytes) -> Measurement:
        return ble_decode(n, data)
    dec.__name__ = f"decode_0x{n:04X}"
    return dec


#: characteristic UUID (128-bit, lowercase) -> (kind label, decoder)
NOTIFY_CHARS: dict[str, tuple[str, Callable[[bytes], Measurement]]] = {
    to_str128(0x2A37): ("hr", _sig(0x2A37)),
    to_str128(0x2A5B): ("csc", _sig(0x2A5B)),
    to_str128(0x2A63): ("cps", _sig(0x2A63)),
    to_str128(0x2A53): ("rsc", _sig(0x2A53)),
    to_str128(0x2ACD): ("ftms", _sig(0x2ACD)),
    to_str128(0x2ACE): ("ftms", _sig(0x2ACE)),
    to_str128(0x2AD1): ("ftms", _sig(0x2AD1)),
    to_str128(0x2AD2): ("ftms", _sig(0x2AD2)),
    IMU_DATA_UUID: ("imu", decode_imu_data),
    BATTERY_LEVEL: ("battery", _sig(0x2A19)),
}

#: Order in which a device's kind label is chosen when it offers several services.
_KIND_ORDER = ("ftms", "cps", "hr", "imu", "csc", "rsc")
_ = IMU_SERVICE_UUID  # documented above; the characteristic UUID is what identifies the data


@dataclass(frozen=True, slots=True)
class GattChar:
    """One characteristic of the GATT table: UUIDs in bleak's 128-bit lowercase form."""

    service_uuid: str
    uuid: str
    properties: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Subscription:
    """Notify on ``uuid``; decode with ``decode``; ``kind`` labels metrics and status."""

    uuid: str
    kind: str
    decode: Callable[[bytes], Measurement]


def plan(chars: Iterable[GattChar]) -> tuple[list[Subscription], list[str]]:
    """Subscriptions for the characteristics offered, and characteristics to read once
    (battery level, serial number) in that order."""
    subs: list[Subscription] = []
    reads: list[str] = []
    seen: set[str] = set()
    for c in chars:
        u = c.uuid.lower()
        if u in seen:
            continue
        seen.add(u)
        entry = NOTIFY_CHARS.get(u)
        if entry is not None and ("notify" in c.properties or "indicate" in c.properties):
            subs.append(Subscription(u, entry[0], entry[1]))
        if u in (BATTERY_LEVEL, SERIAL_NUMBER) and "read" in c.properties:
            reads.append(u)
    return subs, reads


def kind_label(subs: Iterable[Subscription]) -> str:
    """One label for a device (``hr``, ``ftms``, ``imu``...): the first of ftms, cps, hr, imu, csc, rsc
    it offers; ``other`` when none."""
    kinds = {s.kind for s in subs}
    return next((k for k in _KIND_ORDER if k in kinds), "other")


def device_id_for(address: str, serial: str = "") -> str:
    """Stable id of a physical sensor: ``ble-`` + first 12 hex of sha256(address + serial)."""
    return "ble-" + hashlib.sha256((address.upper() + serial).encode()).hexdigest()[:12]
