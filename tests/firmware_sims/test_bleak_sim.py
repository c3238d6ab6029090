"""Unmodified bleak against the simulated BlueZ: scan, connect, notify, faults, FTMS control.

Every test here runs bleak's real BlueZ backend in this process with
``DBUS_SYSTEM_BUS_ADDRESS`` pointing at a private bus (fixtures in tests/fix_sims.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDBusError, BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode

from protocols.ble import ControlPointOpCode as Op
from protocols.ble import ResultCode, decode, encode
from protocols.ble import imu as imu_codec

HR = "00002a37-0000-1000-8000-00805f9b34fb"
BODY_LOC = "00002a38-0000-1000-8000-00805f9b34fb"
CP = "00002ad9-0000-1000-8000-00805f9b34fb"
STATUS = "00002ada-0000-1000-8000-00805f9b34fb"
TREADMILL = "00002acd-0000-1000-8000-00805f9b34fb"
SCALE = 8.0  # simulated seconds per wall second: HR straps notify 8 times a second


@pytest.fixture(scope="module")
def sim(sim_bluez):
    return sim_bluez("hr:2,imu:1,treadmill:1,bike:1", seed=7, time_scale=SCALE)


def _hr_key(payload: bytes) -> tuple[Any, ...]:
    m = decode(0x2A37, payload)
    return (m.heart_rate_bpm, m.sensor_contact, list(m.rr_intervals_1024 or []), m.energy_expended_kj)


def _truth_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    return (rec["heart_rate_bpm"], rec["sensor_contact"], rec["rr_intervals_1024"], rec["energy_expended_kj"])


def _find_run(received: list[tuple[Any, ...]], truth: list[tuple[Any, ...]]) -> int:
    """Index in ``truth`` where ``received`` appears as a contiguous run (-1 if nowhere)."""
    n = len(received)
    for i in range(len(truth) - n + 1):
        if truth[i:i + n] == received:
            return i
    return -1


async def _collect(client: BleakClient, uuid: str, n: int, timeout_s: float = 15.0, **kw: Any) -> list[bytes]:
    got: list[bytes] = []
    done = asyncio.Event()

    def cb(_c: Any, data: bytearray) -> None:
        got.append(bytes(data))
        if len(got) >= n:
            done.set()

    await client.start_notify(uuid, cb, **kw)
    await asyncio.wait_for(done.wait(), timeout_s)
    await client.stop_notify(uuid)
    return got[:n]


async def test_scan_finds_strap_treadmill_imu(sim, bleak_bus) -> None:
    bleak_bus(sim)
    found = await BleakScanner.discover(timeout=1.0, return_adv=True)
    for kind, uuid in (("hr", "0000180d-0000-1000-8000-00805f9b34fb"), ("treadmill", "00001826-0000-1000-8000-00805f9b34fb"),
                       ("imu", imu_codec.IMU_SERVICE_UUID)):
        for dev in sim.by_kind(kind):
            assert dev.address in found, f"{kind} {dev.address} not found; found {sorted(found)}"
            d, adv = found[dev.address]
            assert d.name == dev.name == adv.local_name
            assert uuid in adv.service_uuids
            assert adv.manufacturer_data[0xFFFF][:2] == b"FT"  # a{qv}: keyed by company id
            assert -100 < adv.rssi < -20
    # a scan filtered on the Heart Rate service reports only the straps
    hr_only = await BleakScanner.discover(timeout=0.8, return_adv=True, service_uuids=["0000180d-0000-1000-8000-00805f9b34fb"])
    assert set(hr_only) == {d.address for d in sim.by_kind("hr")}


async def test_hr_notifications_equal_ground_truth_and_resume_after_link_drop(sim, bleak_bus) -> None:
    bleak_bus(sim)
    strap = sim.by_kind("hr")[0]
    dropped = asyncio.Event()
    async with BleakClient(strap.address, disconnected_callback=lambda _c: dropped.set(), timeout=10) as client:
        assert (await client.read_gatt_char(BODY_LOC)) == bytearray(b"\x01")  # chest
        first = await _collect(client, HR, 25)
        gt = await sim.aground_truth(strap.address)
        truth = [_truth_key(r) for r in gt["notifications"]]
        got = [_hr_key(p) for p in first]
        i = _find_run(got, truth)
        assert i >= 0, f"received HR notifications are not a contiguous run of the model's: {got[:5]}..."
        assert sum(len(k[2]) for k in got) >= 20  # RR intervals really went through
        # RR values add up to the model's true (detected) beat times, in 1/1024 s
        assert all(r["true_hr_bpm"] > 30 for r in gt["notifications"][i:i + 25])
        await client.start_notify(HR, lambda *_: None)
        await sim.afault(strap.address, "link_drop")
        await asyncio.wait_for(dropped.wait(), 5)
        assert not client.is_connected
    # reconnect: the stream resumes where the model is now, still exactly its ground truth
    async with BleakClient(strap.address, timeout=10) as client:
        second = await _collect(client, HR, 10)
    gt = await sim.aground_truth(strap.address)
    truth = [_truth_key(r) for r in gt["notifications"]]
    j = _find_run([_hr_key(p) for p in second], truth)
    assert j >= i + 25, "the resumed stream must continue after the first run"
    stats = await sim.astats()
    assert stats["devices"][strap.address]["disconnects"] >= 1


async def test_acquire_notify_imu_packets_are_contiguous(sim, bleak_bus) -> None:
    bleak_bus(sim)
    imu = sim.by_kind("imu")[0]
    async with BleakClient(imu.address, timeout=10) as client:
        cfg = imu_codec.decode_imu_config(await client.read_gatt_char(imu_codec.IMU_CONFIG_UUID))
        assert cfg.sample_rate_dhz == 500 and cfg.gyro_enabled
        packets = [imu_codec.decode_imu_data(p) for p in
                   await _collect(client, imu_codec.IMU_DATA_UUID, 40, bluez={"use_start_notify": False})]
    seqs = [p.packet_seq for p in packets]
    assert seqs == list(range(seqs[0], seqs[0] + 40))
    firsts = [p.first_sample for p in packets]
    assert all(b - a == len(p.accel_1_4096g) for a, b, p in zip(firsts, firsts[1:], packets))
    mags = [(x * x + y * y + z * z) ** 0.5 for p in packets for x, y, z in p.accel_g]
    assert 0.5 < sum(mags) / len(mags) < 1.5  # gravity is there
    gt = await sim.aground_truth(imu.address)
    assert gt["samples_sent"] >= firsts[-1] + len(packets[-1].accel_1_4096g)


async def test_ftms_control_point_indications(sim, bleak_bus) -> None:
    bleak_bus(sim)
    tm = sim.by_kind("treadmill")[0]
    async with BleakClient(tm.address, timeout=10) as client:
        # indications not enabled yet: the machine refuses the write (ATT 0xFD) as real ones do
        with pytest.raises(BleakGATTProtocolError) as ei:  # org.bluez.Error.ImproperlyConfigured
            await client.write_gatt_char(CP, encode(0x2AD9, op_code=Op.REQUEST_CONTROL), response=True)
        assert ei.value.code == BleakGATTProtocolErrorCode.CCCD_IMPROPERLY_CONFIGURED
        responses: asyncio.Queue[bytes] = asyncio.Queue()
        statuses: list[bytes] = []
        await client.start_notify(CP, lambda _c, d: responses.put_nowait(bytes(d)))
        await client.start_notify(STATUS, lambda _c, d: statuses.append(bytes(d)))

        async def command(**fields: Any) -> ResultCode:
            await client.write_gatt_char(CP, encode(0x2AD9, **fields), response=True)
            r = decode(0x2AD9, await asyncio.wait_for(responses.get(), 5))
            assert r.op_code == Op.RESPONSE_CODE and r.request_op_code == fields["op_code"]
            return r.result_code

        assert await command(op_code=Op.SET_TARGET_SPEED, target_speed_kmh=12.0) == ResultCode.CONTROL_NOT_PERMITTED
        assert await command(op_code=Op.REQUEST_CONTROL) == ResultCode.SUCCESS
        assert await command(op_code=Op.SET_TARGET_SPEED, target_speed_kmh=42.0) == ResultCode.INVALID_PARAMETER
        assert await command(op_code=Op.SET_TARGET_POWER, target_power_w=200) == ResultCode.OP_CODE_NOT_SUPPORTED
        assert await command(op_code=Op.SET_TARGET_SPEED, target_speed_kmh=12.0) == ResultCode.SUCCESS
        data = await _collect(client, TREADMILL, 40)
        speeds = [decode(0x2ACD, p).speed_kmh for p in data]
        assert speeds[-1] == pytest.approx(12.0)
        await asyncio.sleep(0.05)
        st = [decode(0x2ADA, s) for s in statuses]
        assert any(s.target_speed_kmh == pytest.approx(12.0) for s in st)
    gt = await sim.aground_truth(tm.address)
    assert [c["result"] for c in gt["control_log"]] == [5, 1, 3, 2, 1]
    assert gt["targets"] == {"speed": 12.0}


async def test_faults_refuse_slow_att_error_out_of_range_adapter_off(sim, bleak_bus) -> None:
    bleak_bus(sim)
    bike = sim.by_kind("bike")[0]
    strap = sim.by_kind("hr")[1]
    await sim.afault(bike.address, "refuse_connect", count=1)
    with pytest.raises(BleakDBusError) as ei:
        async with BleakClient(bike.address, timeout=10):
            pass
    assert ei.value.dbus_error == "org.bluez.Error.Failed" and "le-connection-abort-by-remote" in str(ei.value)

    await sim.afault(bike.address, "slow_discovery", seconds=8.0)  # 1 s wall at SCALE 8
    t0 = time.monotonic()
    async with BleakClient(bike.address, timeout=10) as client:
        assert time.monotonic() - t0 >= 0.9
        await sim.afault(bike.address, "att_error", char=0x2ACC, code=0x0E, count=1)
        with pytest.raises(BleakGATTProtocolError) as ei:  # org.bluez.Error.Failed "...ATT error: 0x0e"
            await client.read_gatt_char("00002acc-0000-1000-8000-00805f9b34fb")
        assert ei.value.code == BleakGATTProtocolErrorCode.UNLIKELY_ERROR
        feat = decode(0x2ACC, await client.read_gatt_char("00002acc-0000-1000-8000-00805f9b34fb"))  # next read ok
        assert feat.supports("power_target")

    lost = asyncio.Event()
    known = await BleakScanner.find_device_by_address(strap.address, timeout=5)  # as a paired hub knows it
    assert known is not None
    async with BleakClient(known, disconnected_callback=lambda _c: lost.set(), timeout=10) as client:
        await sim.afault(strap.address, "out_of_range", seconds=32.0)  # 4 s wall
        await asyncio.wait_for(lost.wait(), 5)
    t_lost = time.monotonic()
    with pytest.raises(BleakDBusError) as ei:  # BlueZ gives up on a silent device
        async with BleakClient(known, timeout=8):
            pass
    assert ei.value.dbus_error == "org.bluez.Error.Failed" and "le-connection-timeout" in str(ei.value)
    await asyncio.sleep(max(0.0, 4.3 - (time.monotonic() - t_lost)))
    async with BleakClient(strap.address, timeout=10) as client:  # back in range
        assert len(await _collect(client, HR, 3)) == 3

    lost.clear()
    async with BleakClient(strap.address, disconnected_callback=lambda _c: lost.set(), timeout=10) as client:
        await sim.afault("", "adapter_off", seconds=4.0)
        await asyncio.wait_for(lost.wait(), 5)
    await asyncio.sleep(0.8)
    async with BleakClient(strap.address, timeout=10) as client:
        assert client.is_connected


async def test_burst_delivers_held_notifications_at_once(sim, bleak_bus) -> None:
    bleak_bus(sim)
    strap = sim.by_kind("hr")[0]
    arrivals: list[tuple[float, bytes]] = []
    async with BleakClient(strap.address, timeout=10) as client:
        await client.start_notify(HR, lambda _c, d: arrivals.append((time.monotonic(), bytes(d))))
        await asyncio.sleep(0.3)
        await sim.afault(strap.address, "burst", seconds=8.0)  # ~1 s wall of held notifications
        await asyncio.sleep(2.0)
    gt = await sim.aground_truth(strap.address)
    truth = [_truth_key(r) for r in gt["notifications"]]
    got = [_hr_key(p) for _, p in arrivals]
    assert _find_run(got, truth) >= 0, "a burst must not lose or reorder notifications"
    gaps = [b[0] - a[0] for a, b in zip(arrivals, arrivals[1:])]
    assert max(gaps) > 0.8 and sum(g < 0.02 for g in gaps) >= 5  # a pause, then several at once


async def test_unseen_device_is_removed_after_temporary_timeout(sim_bluez, bleak_bus) -> None:
    """bluetoothd drops an unpaired device nobody saw or connected for TemporaryTimeout."""
    short = sim_bluez("hr:1", seed=9, temporary_timeout_s=1.0)
    bleak_bus(short)
    addr = short.devices[0].address
    known = await BleakScanner.find_device_by_address(addr, timeout=5)
    assert known is not None
    await asyncio.sleep(1.6)
    with pytest.raises(BleakError, match="not found"):  # bleak: the device left BlueZ's object tree
        async with BleakClient(known, timeout=5):
            pass
    async with BleakClient(addr, timeout=10) as client:  # a new scan finds it again
        assert client.is_connected
