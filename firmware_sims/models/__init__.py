"""Deterministic device models (seed + simulated time → notifications), no transport code.

``build_devices("hr:3,imu:1,treadmill:1,bike:1", seed=0)`` makes the models the simulated
BlueZ exposes; ``KINDS`` lists the device kinds.
"""

from __future__ import annotations

from .base import Advert, AttError, CharSpec, DeviceModel, Notification, ServiceSpec, address_for, uuid128
from .cycling import CadenceSensor, PowerMeter
from .flood import Flood
from .ftms import FitnessMachine, IndoorBike, Rower, Treadmill
from .hr_strap import HeartRateStrap
from .imu import ImuWearable

KINDS: dict[str, type[DeviceModel]] = {
    "hr": HeartRateStrap, "imu": ImuWearable, "treadmill": Treadmill, "bike": IndoorBike, "rower": Rower,
    "power": PowerMeter, "csc": CadenceSensor, "flood": Flood,
}
_NAMES = {"hr": "FT-HR", "imu": "FT-IMU", "treadmill": "FT-Treadmill", "bike": "FT-Bike", "rower": "FT-Rower",
          "power": "FT-Power", "csc": "FT-CSC", "flood": "FT-Flood"}


def parse_spec(spec: str) -> list[tuple[str, int]]:
    """``"hr:3,imu:1"`` → ``[("hr", 3), ("imu", 1)]``; a clear ValueError for anything else."""
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, _, n = part.partition(":")
        if kind not in KINDS:
            raise ValueError(f"unknown device kind {kind!r} in {spec!r}; known: {', '.join(KINDS)}")
        try:
            count = int(n) if n else 1
        except ValueError:
            raise ValueError(f"bad count {n!r} for {kind!r} in {spec!r}: expected an integer") from None
        if count < 0:
            raise ValueError(f"negative count for {kind!r} in {spec!r}")
        out.append((kind, count))
    return out


def build_devices(spec: str, seed: int = 0) -> list[DeviceModel]:
    """The models for a device spec; addresses and names are stable for a given seed."""
    devs: list[DeviceModel] = []
    for kind, count in parse_spec(spec):
        for i in range(count):
            addr = address_for(kind, i, seed)
            name = f"{_NAMES[kind]} {addr[-5:].replace(':', '')}"
            devs.append(KINDS[kind](addr, name, seed * 1000 + len(devs)))
    return devs


__all__ = ["Advert", "AttError", "CadenceSensor", "CharSpec", "DeviceModel", "FitnessMachine", "HeartRateStrap",
           "ImuWearable", "IndoorBike", "KINDS", "Notification", "PowerMeter", "Rower", "ServiceSpec", "Treadmill",
           "Flood", "address_for", "build_devices", "parse_spec", "uuid128"]
