"""Advertisements: raw AD structures -> fields, and fields -> what kind of device this is.

Two entry points:

* :func:`parse_advertisement` takes the raw advertising/scan-response bytes (a sequence of
  ``length, AD type, data`` structures, Core Spec Supplement Part A) and returns an
  :class:`Advertisement`.
* :func:`classify` takes the already-parsed fields bleak hands over (service UUIDs,
  service data, manufacturer data, local name, appearance) and returns a
  :class:`DeviceClass`: the set of :class:`DeviceKind` the device offers, the FTMS machine
  types from its service data, and the vendor named by its company identifier.

Kinds come from the service UUIDs (0x180D heart rate, 0x1816 CSC, 0x1818 cycling power,
0x1814 RSC, 0x1826 fitness machine), the FTMS service data (flags octet, bit 0 "available";
uint16 machine type: bit 0 treadmill, 1 cross trainer, 2 step climber, 3 stair climber,
4 rower, 5 indoor bike; FTMS 1.0 §3.1) and the GAP Appearance category.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Mapping

from .errors import DecodeError
from .uuids import to_int, to_str128

HEART_RATE_SERVICE = 0x180D
CYCLING_SPEED_CADENCE_SERVICE = 0x1816
CYCLING_POWER_SERVICE = 0x1818
RUNNING_SPEED_CADENCE_SERVICE = 0x1814
FITNESS_MACHINE_SERVICE = 0x1826
BATTERY_SERVICE = 0x180F
DEVICE_INFORMATION_SERVICE = 0x180A


class DeviceKind(str, Enum):
    """What a device can give us."""

    HEART_RATE = "heart_rate"
    CYCLING_SPEED_CADENCE = "cycling_speed_cadence"
    CYCLING_POWER = "cycling_power"
    RUNNING_SPEED_CADENCE = "running_speed_cadence"
    FITNESS_MACHINE = "fitness_machine"
    TREADMILL = "treadmill"
    CROSS_TRAINER = "cross_trainer"
    STEP_CLIMBER = "step_climber"
    STAIR_CLIMBER = "stair_climber"
    ROWER = "rower"
    INDOOR_BIKE = "indoor_bike"


SERVICE_KINDS: dict[int, DeviceKind] = {
    HEART_RATE_SERVICE: DeviceKind.HEART_RATE,
    CYCLING_SPEED_CADENCE_SERVICE: DeviceKind.CYCLING_SPEED_CADENCE,
    CYCLING_POWER_SERVICE: DeviceKind.CYCLING_POWER,
    RUNNING_SPEED_CADENCE_SERVICE: DeviceKind.RUNNING_SPEED_CADENCE,
    FITNESS_MACHINE_SERVICE: DeviceKind.FITNESS_MACHINE,
}

#: FTMS service data Fitness Machine Type bits (FTMS 1.0 Table 3.3).
FTMS_MACHINE_TYPES: tuple[DeviceKind, ...] = (
    DeviceKind.TREADMILL, DeviceKind.CROSS_TRAINER, DeviceKind.STEP_CLIMBER,
    DeviceKind.STAIR_CLIMBER, DeviceKind.ROWER, DeviceKind.INDOOR_BIKE,
)

#: GAP Appearance category (value >> 6) -> kind (Assigned Numbers §2.6).
APPEARANCE_KINDS: dict[int, DeviceKind] = {
    0x0D: DeviceKind.HEART_RATE,              # 0x0340 Heart Rate Sensor
    0x11: DeviceKind.RUNNING_SPEED_CADENCE,   # 0x0440 Running Walking Sensor
}
#: Cycling category 0x12 (0x0480) sub-categories.
_CYCLING_APPEARANCE: dict[int, DeviceKind] = {
    0x0482: DeviceKind.CYCLING_SPEED_CADENCE,  # Speed Sensor
    0x0483: DeviceKind.CYCLING_SPEED_CADENCE,  # Cadence Sensor
    0x0484: DeviceKind.CYCLING_POWER,          # Power Sensor
    0x0485: DeviceKind.CYCLING_SPEED_CADENCE,  # Speed and Cadence Sensor
}

#: Bluetooth SIG company identifiers of vendors common in fitness (Assigned Numbers, Company Identifiers).
COMPANY_IDS: dict[int, str] = {
    0x0006: "Microsoft",
    0x004C: "Apple",
    0x0059: "Nordic Semiconductor",
    0x006B: "Polar Electro",
    0x0075: "Samsung Electronics",
    0x0087: "Garmin International",
    0x00E0: "Google",
}

_LABEL = "Advertising Data"


@dataclass(frozen=True)
class Advertisement:
    """Parsed advertising data. UUIDs are full lowercase 128-bit strings, as bleak reports them.

    ``ad_flags`` is the Flags AD (type 0x01), ``tx_power_dbm`` type 0x0A, ``appearance`` 0x19;
    ``unknown_ad_types`` lists AD types this parser keeps only as raw bytes (in ``other``).
    """

    local_name: str | None = None
    ad_flags: int | None = None
    service_uuids: tuple[str, ...] = ()
    service_data: Mapping[str, bytes] = field(default_factory=dict)
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)
    tx_power_dbm: int | None = None
    appearance: int | None = None
    other: Mapping[int, bytes] = field(default_factory=dict)

    def classify(self) -> "DeviceClass":
        return classify(self.service_uuids, self.service_data, self.manufacturer_data, self.local_name, self.appearance)


@dataclass(frozen=True)
class DeviceClass:
    """The result of :func:`classify`.

    kinds: what the device offers (a fitness machine with service data also gets its machine
    kinds); ftms_available: the FTMS service data "Fitness Machine Available" bit (``None``
    without service data: a machine that is busy with another user says ``False``);
    vendor: from the first manufacturer data company ID, when known; company_ids: all of them.
    """

    kinds: frozenset[DeviceKind]
    ftms_available: bool | None = None
    ftms_machine_type_bits: int | None = None
    vendor: str | None = None
    company_ids: tuple[int, ...] = ()

    @property
    def is_fitness_device(self) -> bool:
        return bool(self.kinds)


def _uuid_list(data: bytes, width: int, offset: int) -> list[str]:
    if len(data) % width:
        raise DecodeError(
            f"a {8 * width}-bit UUID list of {len(data)} byte(s) at offset {offset} is not a multiple of {width}",
            characteristic=_LABEL, field="service_uuids", offset=offset, needed=width, available=len(data),
        )
    out = []
    for i in range(0, len(data), width):
        chunk = data[i:i + width]
        if width == 16:
            h = chunk[::-1].hex()
            out.append(f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}")
        else:
            out.append(to_str128(int.from_bytes(chunk, "little")))
    return out


def parse_advertisement(raw: bytes) -> Advertisement:
    """Parse advertising (or scan response) bytes.

    A structure whose length runs past the end (or a UUID list of the wrong length) raises
    :class:`DecodeError` naming its offset; for a truncated structure the error's
    ``advertisement`` attribute holds the :class:`Advertisement` parsed from the structures
    before it. A zero length octet ends the data (the rest is padding).
    """
    name: str | None = None
    flags = tx = appearance = None
    uuids: list[str] = []
    sdata: dict[str, bytes] = {}
    mdata: dict[int, bytes] = {}
    other: dict[int, bytes] = {}
    i, n = 0, len(raw)

    def snapshot() -> Advertisement:
        return Advertisement(name, flags, tuple(uuids), dict(sdata), dict(mdata), tx, appearance, dict(other))

    while i < n:
        ln = raw[i]
        if ln == 0:
            break
        if i + 1 + ln > n:
            err = DecodeError(
                f"AD structure at offset {i} declares {ln} byte(s) but only {n - i - 1} follow",
                characteristic=_LABEL, field="length", offset=i, needed=ln + 1, available=n,
            )
            err.advertisement = snapshot()  # type: ignore[attr-defined]
            raise err
        t = raw[i + 1]
        data = bytes(raw[i + 2:i + 1 + ln])
        off = i + 2
        if t == 0x01 and data:
            flags = data[0]
        elif t in (0x02, 0x03):
            uuids += _uuid_list(data, 2, off)
        elif t in (0x04, 0x05):
            uuids += _uuid_list(data, 4, off)
        elif t in (0x06, 0x07):
            uuids += _uuid_list(data, 16, off)
        elif t in (0x08, 0x09):
            if name is None or t == 0x09:
                name = data.decode("utf-8", errors="replace")
        elif t == 0x0A and len(data) == 1:
            tx = data[0] - 256 if data[0] > 127 else data[0]
        elif t == 0x16 and len(data) >= 2:
            sdata[to_str128(int.from_bytes(data[:2], "little"))] = data[2:]
        elif t == 0x20 and len(data) >= 4:
            sdata[to_str128(int.from_bytes(data[:4], "little"))] = data[4:]
        elif t == 0x21 and len(data) >= 16:
            sdata[_uuid_list(data[:16], 16, off)[0]] = data[16:]
        elif t == 0x19 and len(data) == 2:
            appearance = int.from_bytes(data, "little")
        elif t == 0xFF and len(data) >= 2:
            mdata[int.from_bytes(data[:2], "little")] = data[2:]
        else:
            other[t] = data
        i += 1 + ln
    return snapshot()


def _sig(uuid: str | int) -> int | None:
    try:
        return to_int(uuid)
    except ValueError:
        return None


def classify(
    service_uuids: Iterable[str | int] = (),
    service_data: Mapping[str | int, bytes] | None = None,
    manufacturer_data: Mapping[int, bytes] | None = None,
    local_name: str | None = None,
    appearance: int | None = None,
) -> DeviceClass:
    """What kind of fitness device advertises these fields (bleak's ``AdvertisementData``
    fields map one to one). Unknown or malformed inputs are ignored, never raised."""
    kinds: set[DeviceKind] = set()
    for u in service_uuids:
        k = SERVICE_KINDS.get(_sig(u) if not isinstance(u, int) else u)  # type: ignore[arg-type]
        if k is not None:
            kinds.add(k)
    available = type_bits = None
    for u, data in (service_data or {}).items():
        if (u if isinstance(u, int) else _sig(u)) == FITNESS_MACHINE_SERVICE:
            kinds.add(DeviceKind.FITNESS_MACHINE)
            if len(data) >= 3:
                available = bool(data[0] & 1)
                type_bits = data[1] | data[2] << 8
                kinds.update(k for i, k in enumerate(FTMS_MACHINE_TYPES) if type_bits >> i & 1)
        else:
            k = SERVICE_KINDS.get((u if isinstance(u, int) else _sig(u)) or -1)
            if k is not None:
                kinds.add(k)
    if appearance is not None and 0 <= appearance <= 0xFFFF:
        k = _CYCLING_APPEARANCE.get(appearance) or APPEARANCE_KINDS.get(appearance >> 6)
        if k is not None:
            kinds.add(k)
    ids = tuple((manufacturer_data or {}).keys())
    vendor = next((COMPANY_IDS[c] for c in ids if c in COMPANY_IDS), None)
    return DeviceClass(frozenset(kinds), available, type_bits, vendor, ids)
