"""Simulated BlueZ throughput (issue 6): notifications/s that reach unmodified bleak.

Ours: ``firmware_sims`` (a private dbus-daemon + the simulated org.bluez) with one ``flood``
device that notifies a 20-byte counter faster than anything can take; bleak (in this
process) subscribes with StartNotify (a D-Bus PropertiesChanged signal per notification) or
AcquireNotify (a SOCK_SEQPACKET socket, no D-Bus per notification). The rate is what bleak's
callback counts in the steady state; the counter must arrive without gaps or reordering.

Peer: bluezoo (``pip install bluezoo``, the ``bench`` extra), measured in the same run on its
own private bus: bluezoo with two simulated adapters, a peripheral app (dbus-fast) that
registers an advertisement and a GATT application on the second adapter and notifies the
same 20-byte counter as fast as it can, and bleak on the first adapter. bluezoo has no
AcquireNotify path for remote characteristics, so only StartNotify is compared.

The machine's cores are shared: figures are noisy; the ratio from one run is what counts.

Run: python -m bench.bench_sims [--seconds 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import print_table
from firmware_sims.models.flood import FLOOD_DATA
from firmware_sims.testing import _BUS_CONFIG, _stop_pid, dbus_daemon_path, running_sim


async def _measure(address: str, char: str, seconds: float, acquire: bool, adapter: str | None = None) -> dict[str, Any]:
    from bleak import BleakClient, BleakScanner

    bluez = {"adapter": adapter} if adapter else {}
    dev = None
    for _ in range(3):
        found = await BleakScanner.discover(timeout=3.0, bluez=bluez)
        dev = next((d for d in found if d.address.upper() == address.upper()), None)
        if dev is not None:
            break
    assert dev is not None, f"{address} not found"
    got = [0]
    last = [-1]
    gaps = [0]

    def cb(_c: Any, data: bytearray) -> None:
        n = struct.unpack_from("<I", data)[0]
        if n != last[0] + 1 and last[0] >= 0:
            gaps[0] += 1
        last[0] = n
        got[0] += 1

    c = BleakClient(dev, timeout=20, bluez=bluez)
    await c.connect()
    try:
        kw = {"bluez": {"use_start_notify": False}} if acquire else {}
        await c.start_notify(char, cb, **kw)
        await asyncio.sleep(0.5)  # warm-up
        n0, t0 = got[0], time.perf_counter()
        await asyncio.sleep(seconds)
        n1, t1 = got[0], time.perf_counter()
    finally:
        # a saturated server may take long to answer StopNotify/Disconnect behind its backlog:
        # the processes are stopped by PID right after, so do not wait for it
        try:
            await asyncio.wait_for(c.disconnect(), 2.0)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001
            pass
    return {"rate": (n1 - n0) / (t1 - t0), "received": got[0], "gaps": gaps[0]}


def bench_ours(seconds: float, acquire: bool) -> dict[str, Any]:
    # 1000 notifications per simulated second × 1000 = 1 M/s demanded: far above the ceiling
    with running_sim("flood:1", seed=0, time_scale=1000.0) as sim:
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = sim.bus_address
        return asyncio.run(_measure(sim.devices[0].address, FLOOD_DATA, seconds, acquire))


# --------------------------------------------------------------------------------- bluezoo
PERIPHERAL = r'''
import asyncio, struct, sys
from dbus_fast import BusType, Variant, PropertyAccess
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method, dbus_property, signal

SVC, CHR = "f17a00f0-7e57-4b1e-9a3e-5c0ffee00000", "f17a00f1-7e57-4b1e-9a3e-5c0ffee00000"
FILL = bytes(range(16))

class Adv(ServiceInterface):
    def __init__(self): super().__init__("org.bluez.LEAdvertisement1")
    @method()
    def Release(self): pass
    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> "s": return "peripheral"
    @dbus_property(access=PropertyAccess.READ)
    def ServiceUUIDs(self) -> "as": return [SVC]
    @dbus_property(access=PropertyAccess.READ)
    def LocalName(self) -> "s": return "bluezoo-flood"
    @dbus_property(access=PropertyAccess.READ)
    def Discoverable(self) -> "b": return True

class Svc(ServiceInterface):
    def __init__(self): super().__init__("org.bluez.GattService1")
    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s": return SVC
    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> "b": return True

class Chr(ServiceInterface):
    def __init__(self):
        super().__init__("org.bluez.GattCharacteristic1")
        self.notifying = False
        self.value = b""
    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s": return CHR
    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> "o": return "/app/service0"
    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> "as": return ["notify"]
    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> "ay": return self.value
    @method()
    def StartNotify(self): self.notifying = True
    @method()
    def StopNotify(self): self.notifying = False
    @method()
    def Confirm(self): pass  # bluezoo calls this after every value it forwards

async def main():
    from firmware_sims.bluez.flow import install_eagain_workaround
    install_eagain_workaround()  # the same dbus-fast EAGAIN fix our daemon uses
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    adv, svc, chr_ = Adv(), Svc(), Chr()
    bus.export("/app/adv0", adv)
    bus.export("/app/service0", svc)
    bus.export("/app/service0/char0", chr_)
    # the object manager for the GATT application
    from dbus_fast.service import ServiceInterface as _SI
    class OM(_SI):
        def __init__(self): super().__init__("org.freedesktop.DBus.ObjectManager")
        @method()
        def GetManagedObjects(self) -> "a{oa{sa{sv}}}":
            return {
                "/app/service0": {"org.bluez.GattService1": {"UUID": Variant("s", SVC), "Primary": Variant("b", True)}},
                "/app/service0/char0": {"org.bluez.GattCharacteristic1": {
                    "UUID": Variant("s", CHR), "Service": Variant("o", "/app/service0"),
                    "Flags": Variant("as", ["notify"])}},
            }
    bus.export("/app", OM())
    adapter = sys.argv[1]
    intro = await bus.introspect("org.bluez", adapter)
    obj = bus.get_proxy_object("org.bluez", adapter, intro)
    await obj.get_interface("org.bluez.LEAdvertisingManager1").call_register_advertisement("/app/adv0", {})
    await obj.get_interface("org.bluez.GattManager1").call_register_application("/app", {})
    print("ready", flush=True)
    n = 0
    while True:
        if chr_.notifying and len(bus._writer.messages) < 2000:  # keep the peer saturated, memory bounded
            for _ in range(200):
                chr_.value = struct.pack("<I", n) + FILL
                chr_.emit_properties_changed({"Value": chr_.value})
                n += 1
        await asyncio.sleep(0)

asyncio.run(main())
'''


def bench_bluezoo(seconds: float) -> dict[str, Any] | str:
    if shutil.which("bluezoo") is None and not (Path(sys.executable).parent / "bluezoo").exists():
        return "bluezoo not installed (pip install 'fittracker-gateway[bench]')"
    exe = shutil.which("bluezoo") or str(Path(sys.executable).parent / "bluezoo")
    tmp = Path(tempfile.mkdtemp(prefix="bench-bluezoo-"))
    procs: list[subprocess.Popen[Any]] = []
    try:
        cfg = tmp / "bus.conf"
        cfg.write_text(_BUS_CONFIG.format(socket=tmp / "bus"))
        bus = subprocess.Popen([dbus_daemon_path(), f"--config-file={cfg}", "--nofork", "--nopidfile", "--print-address=1"],
                               stdout=subprocess.PIPE, text=True)
        procs.append(bus)
        addr = bus.stdout.readline().strip()  # type: ignore[union-attr]
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": addr}
        zoo = subprocess.Popen([exe, "-v", "--auto-enable", "--scan-interval", "1", "--adapter", "00:00:00:01:00:00", "--adapter", "00:00:00:02:00:00"],
                               env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "zoo.err", "w"))
        procs.append(zoo)
        time.sleep(1.5)
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        per = subprocess.Popen([sys.executable, "-c", PERIPHERAL, "/org/bluez/hci1"], env=env, stdout=subprocess.PIPE,
                               stderr=open(tmp / "per.err", "w"), text=True)
        procs.append(per)
        line = per.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("ready"):
            return f"bluezoo peripheral did not start: {(tmp / 'per.err').read_text()[-800:]}"
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = addr
        try:
            return asyncio.run(_measure("00:00:00:02:00:00", FLOOD_DATA, seconds, acquire=False, adapter="hci0"))
        except Exception as e:  # noqa: BLE001 - reported as the peer's failure
            zlog = "\n".join(x for x in (tmp / "zoo.err").read_text().splitlines() if "Scanning for" not in x)
            return f"bluezoo run failed: {e!r}\nbluezoo: {zlog[-1500:]}\nperipheral: {(tmp / 'per.err').read_text()[-1500:]}"
    finally:
        for p in reversed(procs):
            _stop_pid(p)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="measuring window per run")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of (ours StartNotify, ours AcquireNotify, bluezoo), interleaved")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args(argv)
    runs: dict[str, list[float]] = {"start": [], "acquire": [], "bluezoo": []}
    gaps = {k: 0 for k in runs}
    peer_error = None
    ratios = []
    for _ in range(a.rounds):  # interleaved, so a busy spell on the shared machine hits all three
        st = bench_ours(a.seconds, acquire=False)
        aq = bench_ours(a.seconds, acquire=True)
        zoo = bench_bluezoo(a.seconds)
        runs["start"].append(st["rate"])
        runs["acquire"].append(aq["rate"])
        gaps["start"] += st["gaps"]
        gaps["acquire"] += aq["gaps"]
        if isinstance(zoo, dict):
            runs["bluezoo"].append(zoo["rate"])
            gaps["bluezoo"] += zoo["gaps"]
            ratios.append(st["rate"] / zoo["rate"])
        else:
            peer_error = zoo

    def fmt(xs: list[float]) -> str:
        return f"{statistics.median(xs):,.0f} ({min(xs):,.0f}-{max(xs):,.0f})" if xs else "-"

    med = statistics.median(runs["start"])
    rows = [["ours, StartNotify (D-Bus signal)", fmt(runs["start"]), gaps["start"], "1.00"],
            ["ours, AcquireNotify (socket)", fmt(runs["acquire"]), gaps["acquire"],
             f"{statistics.median(runs['acquire']) / med:.2f}"]]
    if runs["bluezoo"]:
        rows.append(["bluezoo 1.0.2, StartNotify", fmt(runs["bluezoo"]), gaps["bluezoo"],
                     f"{statistics.median(runs['bluezoo']) / med:.2f}"])
    print_table(f"notifications/s reaching bleak's callback (20-byte payload, 1 device), median (min-max) of {a.rounds}",
                ["path", "notifications/s", "gaps", "ratio to ours/StartNotify"], rows)
    if ratios:
        print(f"ours/bluezoo (StartNotify, same round): median {statistics.median(ratios):.1f}x "
              f"({min(ratios):.1f}-{max(ratios):.1f}x)")
    if peer_error:
        print(f"peer: {peer_error}")
    if a.json:
        a.json.write_text(json.dumps({"runs": runs, "gaps": gaps, "ratios": ratios, "peer_error": peer_error}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
