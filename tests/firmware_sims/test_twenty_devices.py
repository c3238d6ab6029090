"""Twenty simulated devices on one bus: bleak gets every notification at the nominal rates.

A minute of simulated time at 6× speed (10 s wall): 10 HR straps (1 Hz), 4 IMUs (50 Hz in
packets of 5 → 10 Hz, two via AcquireNotify), 2 treadmills, 2 bikes, a rower and a power meter
(1 Hz). Every device's received stream must be gap-free (sequence fields contiguous), match
what the simulator counted as sent, and have the nominal count for the simulated duration.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bleak import BleakClient, BleakScanner

from protocols.ble import decode
from protocols.ble import imu as imu_codec

SCALE = 6.0
SIM_SECONDS = 60.0
SPEC = "hr:10,imu:4,treadmill:2,bike:2,rower:1,power:1"


async def test_twenty_devices_every_notification_at_nominal_rate(sim_bluez, bleak_bus) -> None:
    sim = sim_bluez(SPEC, seed=3, time_scale=SCALE)
    assert len(sim.devices) == 20
    bleak_bus(sim)
    received: dict[str, list[bytes]] = {d.address: [] for d in sim.devices}
    clients: list[BleakClient] = []

    # one scan, then connect by BLEDevice: concurrent connects by address would each start a
    # discovery from the same D-Bus client, which BlueZ (and the simulator) refuses with InProgress
    found = await BleakScanner.discover(timeout=1.0)
    by_addr = {d.address: d for d in found}
    assert set(by_addr) >= set(received)

    async def start(dev: Any, i: int) -> None:
        c = BleakClient(by_addr[dev.address], timeout=20)
        await c.connect()
        clients.append(c)
        (uuid, _rate), = dev.rates_hz.items()
        kw = {"bluez": {"use_start_notify": False}} if dev.kind == "imu" and i % 2 else {}
        await c.start_notify(uuid, lambda _c, data, a=dev.address: received[a].append(bytes(data)), **kw)

    try:
        await asyncio.gather(*(start(d, i) for i, d in enumerate(sim.devices)))
        t0 = await sim.aclock()
        for a in received:
            received[a].clear()
        base = await sim.astats()
        await asyncio.sleep(SIM_SECONDS / SCALE)
        for c in clients:
            (uuid, _r), = next(d for d in sim.devices if d.address == c.address).rates_hz.items()
            await c.stop_notify(uuid)
        t1 = await sim.aclock()
        await asyncio.sleep(0.3)
        stats = await sim.astats()
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
    elapsed = t1 - t0
    assert elapsed >= SIM_SECONDS
    for dev in sim.devices:
        got = received[dev.address]
        (uuid, rate), = dev.rates_hz.items()
        sent = stats["devices"][dev.address]["sent"].get(uuid, 0) - base["devices"][dev.address]["sent"].get(uuid, 0)
        assert abs(len(got) - sent) <= 1, f"{dev.name}: sent {sent}, bleak got {len(got)}"
        # nominal: rate × simulated time, ±2 for the window edges
        assert abs(len(got) - rate * elapsed) <= 2 + 0.01 * rate * elapsed, (dev.name, len(got), rate * elapsed)
        if dev.kind == "imu":
            seqs = [imu_codec.decode_imu_data(p).packet_seq for p in got]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{dev.name}: gap in packet_seq"
        elif dev.kind in ("treadmill", "bike", "rower"):
            el = [decode(uuid[4:8], p).elapsed_time_s for p in got]
            assert el == list(range(el[0], el[0] + len(el))), f"{dev.name}: gap in elapsed time"
        elif dev.kind == "hr":
            gt = await sim.aground_truth(dev.address)
            truth = [(r["heart_rate_bpm"], r["rr_intervals_1024"]) for r in gt["notifications"]]
            keys = [(m.heart_rate_bpm, list(m.rr_intervals_1024 or [])) for m in (decode(0x2A37, p) for p in got)]
            assert any(truth[i:i + len(keys)] == keys for i in range(len(truth) - len(keys) + 1)), dev.name
        elif dev.kind == "power":
            gt = await sim.aground_truth(dev.address)
            truth = [h["crank_revolutions"] for h in gt["data"]]
            revs = [decode(0x2A63, p).crank_revolutions for p in got]
            assert any(truth[i:i + len(revs)] == revs for i in range(len(truth) - len(revs) + 1)), dev.name
