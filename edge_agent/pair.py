"""``fittrack pair``: scan for BLE fitness devices, show them, add the chosen ones to ``edge.toml``.

::

    fittrack pair --config edge.toml                      # scan 10 s, list, ask which to add
    fittrack pair --config edge.toml --select 1,3 --athlete alice --session bike-3
    fittrack pair --config edge.toml --address C0:FF:EE:00:00:01 --yes
    fittrack pair --config edge.toml --all --yes          # every fitness device found (a gym hub)

For each device found it shows the name, the kind from its advertised services and service
data (``protocols.ble.classify``: heart rate, cycling power, CSC, RSC, fitness machine with its
machine type, FitTracker IMU), the RSSI and the battery level (from advertised Battery service
data, else read over a short connection unless ``--no-battery``). Chosen devices are appended
as ``[[devices]]`` tables with tomlkit, which keeps the file's comments and layout; addresses
already in the file are left alone.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocols.ble import DeviceKind, classify
from protocols.ble.imu import IMU_SERVICE_UUID
from protocols.ble.uuids import to_str128

from .devices.profiles import BATTERY_LEVEL, device_id_for

__all__ = ["Found", "add_devices", "kind_of", "main", "scan"]

BATTERY_SERVICE = to_str128(0x180F)

_KIND_LABELS = (
    (DeviceKind.TREADMILL, "treadmill"), (DeviceKind.INDOOR_BIKE, "bike"), (DeviceKind.ROWER, "rower"),
    (DeviceKind.CROSS_TRAINER, "cross_trainer"), (DeviceKind.FITNESS_MACHINE, "ftms"),
    (DeviceKind.CYCLING_POWER, "cps"), (DeviceKind.HEART_RATE, "hr"), (DeviceKind.CYCLING_SPEED_CADENCE, "csc"),
    (DeviceKind.RUNNING_SPEED_CADENCE, "rsc"),
)


@dataclass
class Found:
    """A device seen while scanning."""

    address: str
    name: str
    kind: str
    rssi_dbm: int | None
    battery_pct: int | None = None
    service_uuids: list[str] = field(default_factory=list)


def kind_of(service_uuids: list[str], service_data: dict[str, bytes], manufacturer_data: dict[int, bytes],
            name: str | None) -> str:
    """One label for what an advertisement offers (``""`` when it is not a fitness device)."""
    uuids = [u.lower() for u in service_uuids]
    c = classify(uuids, service_data, manufacturer_data, name)
    for k, label in _KIND_LABELS:
        if k in c.kinds:
            return label
    if IMU_SERVICE_UUID in uuids:
        return "imu"
    return ""


async def scan(seconds: float, adapter: str | None = None, *, all_devices: bool = False) -> list[Found]:
    """Scan for ``seconds`` and return the devices seen (fitness devices only unless ``all_devices``),
    strongest signal first."""
    from bleak import BleakScanner

    seen: dict[str, Found] = {}

    def on_adv(dev: Any, adv: Any) -> None:
        kind = kind_of(list(adv.service_uuids), dict(adv.service_data), dict(adv.manufacturer_data), adv.local_name)
        if not kind and not all_devices:
            return
        batt = adv.service_data.get(BATTERY_SERVICE)
        f = seen.get(dev.address)
        if f is None:
            f = seen[dev.address] = Found(dev.address.upper(), adv.local_name or dev.name or "", kind, adv.rssi)
        f.rssi_dbm = adv.rssi
        f.service_uuids = list(adv.service_uuids)
        if batt:
            f.battery_pct = int(batt[0])
        if adv.local_name:
            f.name = adv.local_name

    kw: dict[str, Any] = {"detection_callback": on_adv}
    if adapter:
        kw["bluez"] = {"adapter": adapter}
    async with BleakScanner(**kw):
        await asyncio.sleep(seconds)
    return sorted(seen.values(), key=lambda f: -(f.rssi_dbm if f.rssi_dbm is not None else -999))


async def read_battery(found: list[Found], timeout_s: float = 8.0) -> None:
    """Fill ``battery_pct`` by connecting briefly to the devices that did not advertise it."""
    from bleak import BleakClient, BleakScanner

    async def one(f: Found) -> None:
        try:
            dev = await BleakScanner.find_device_by_address(f.address, timeout=timeout_s)
            if dev is None:
                return
            async with asyncio.timeout(timeout_s):
                async with BleakClient(dev) as client:
                    if client.services.get_characteristic(BATTERY_LEVEL) is not None:
                        data = await client.read_gatt_char(BATTERY_LEVEL)
                        if data:
                            f.battery_pct = int(data[0])
        except Exception:  # noqa: BLE001 - battery is best effort
            pass

    for f in found:  # one at a time: a Pi adapter connects one device at a time anyway
        if f.battery_pct is None:
            await one(f)


def add_devices(config_path: Path, found: list[Found], *, athlete: str = "", session: str = "",
                adapter: str = "") -> tuple[list[Found], list[Found]]:
    """Append ``found`` to ``config_path`` as ``[[devices]]`` (tomlkit keeps comments).

    Returns (added, already present). Creates a minimal file when it does not exist.
    """
    import tomlkit

    if config_path.exists():
        doc = tomlkit.parse(config_path.read_text())
    else:
        doc = tomlkit.document()
        doc.add(tomlkit.comment("FitTracker edge agent configuration (docs/edge.example.toml has every key)"))
        agent = tomlkit.table()
        agent.add("agent_id", "edge-1")
        agent.add("tenant", "default")
        doc.add("agent", agent)
    devices = doc.get("devices")
    if devices is None:
        devices = tomlkit.aot()
        doc.append("devices", devices)
    present = {str(d.get("address", "")).upper() for d in devices}
    added, skipped = [], []
    for f in found:
        if f.address.upper() in present:
            skipped.append(f)
            continue
        t = tomlkit.table()
        t.add("address", f.address.upper())
        t.add("name", f.name or f.address)
        if f.kind:
            t.add("kind", f.kind)
        t.add("device_id", device_id_for(f.address))
        if adapter:
            t.add("adapter", adapter)
        if athlete:
            t.add("athlete", athlete)
        if session:
            t.add("session", session)
        devices.append(t)
        present.add(f.address.upper())
        added.append(f)
    tmp = config_path.with_suffix(config_path.suffix + ".tmp")
    tmp.write_text(tomlkit.dumps(doc))
    tmp.replace(config_path)
    return added, skipped


def _show(found: list[Found]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{len(found)} device(s) found")
    for c in ("#", "name", "kind", "address", "RSSI", "battery"):
        t.add_column(c)
    for i, f in enumerate(found, 1):
        t.add_row(str(i), f.name or "?", f.kind or "-", f.address,
                  f"{f.rssi_dbm} dBm" if f.rssi_dbm is not None else "-",
                  f"{f.battery_pct}%" if f.battery_pct is not None else "-")
    Console().print(t)


def _parse_selection(text: str, n: int) -> list[int]:
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out += list(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    bad = [i for i in out if not 1 <= i <= n]
    if bad:
        raise ValueError(f"no device number {bad[0]} (1..{n})")
    return sorted(set(out))


def main(argv: list[str], prog: str = "fittrack pair") -> int:
    p = argparse.ArgumentParser(prog=prog, description="Scan for BLE fitness devices and add the chosen ones to "
                                "the edge agent's config (comments kept). docs/edge-agent.md")
    p.add_argument("--config", "-c", required=True, type=Path, help="edge.toml to update (created if missing)")
    p.add_argument("--scan-s", type=float, default=10.0, help="how long to scan (s)")
    p.add_argument("--adapter", default="", help="BlueZ adapter to scan with and to record (default: the system's)")
    p.add_argument("--all-devices", action="store_true", help="also list devices that are not fitness devices")
    p.add_argument("--no-battery", action="store_true", help="do not connect to read battery levels")
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--select", help="numbers from the list to add, e.g. 1,3-5 (else asked)")
    sel.add_argument("--address", action="append", default=[], help="add this address (repeatable)")
    sel.add_argument("--all", action="store_true", help="add every fitness device found")
    p.add_argument("--athlete", default="", help="[athletes.<id>] the devices belong to (hub: the member)")
    p.add_argument("--session", default="", help="free label for the devices (class, lane, bike number)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    args = p.parse_args(argv)

    try:
        found = asyncio.run(scan(args.scan_s, args.adapter or None, all_devices=args.all_devices))
        if found and not args.no_battery:
            asyncio.run(read_battery(found))
    except Exception as exc:  # noqa: BLE001 - e.g. no adapter, BlueZ not running
        print(f"{prog}: scanning failed: {type(exc).__name__}: {exc}\n"
              f"  Is Bluetooth on (bluetoothctl power on) and may this user use it (group bluetooth)?", file=sys.stderr)
        return 1
    _show(found)
    if not found:
        print("nothing found: wake the devices (put the strap on, pedal the bike) and scan again", file=sys.stderr)
        return 1
    if args.all:
        chosen = found
    elif args.address:
        want = {a.upper() for a in args.address}
        chosen = [f for f in found if f.address in want]
        missing = want - {f.address for f in chosen}
        if missing:
            print(f"{prog}: not seen in the scan: {', '.join(sorted(missing))}", file=sys.stderr)
            return 1
    else:
        text = args.select
        if text is None:
            if not sys.stdin.isatty():
                print(f"{prog}: give --select, --address or --all when not interactive", file=sys.stderr)
                return 2
            text = input("devices to add (e.g. 1,3-5; empty for none): ")
        try:
            chosen = [found[i - 1] for i in _parse_selection(text, len(found))]
        except ValueError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 2
    if not chosen:
        print("nothing added")
        return 0
    if not args.yes and sys.stdin.isatty():
        if input(f"add {len(chosen)} device(s) to {args.config}? [y/N] ").strip().lower() not in ("y", "yes"):
            return 1
    added, skipped = add_devices(args.config, chosen, athlete=args.athlete, session=args.session, adapter=args.adapter)
    for f in added:
        print(f"added {f.name or f.address} ({f.kind or '?'}, {f.address}) as {device_id_for(f.address)}")
    for f in skipped:
        print(f"already configured: {f.name or f.address} ({f.address})")
    if added:
        print(f"restart the agent to use them: systemctl restart fittrack-edge  (or check: fittrack edge check-config -c {args.config})")
    return 0
