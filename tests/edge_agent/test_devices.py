"""Devices, pure parts: profiles (what to subscribe to), connection slots, reconnect backoff."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, strategies as st

from edge_agent.devices.profiles import BATTERY_LEVEL, SERIAL_NUMBER, GattChar, device_id_for, kind_label, plan
from edge_agent.devices.session import backoff_s
from edge_agent.devices.slots import SlotScheduler
from protocols.ble import HeartRateMeasurement, encode
from protocols.ble.imu import IMU_DATA_UUID, IMU_SERVICE_UUID, ImuData, encode_imu_data
from protocols.ble.uuids import to_str128 as u


def test_plan_subscribes_to_known_notify_chars_and_reads_battery_and_serial() -> None:
    chars = [
        GattChar(u(0x180D), u(0x2A37), ("notify",)),
        GattChar(u(0x180D), u(0x2A38), ("read",)),            # body sensor location: not streamed
        GattChar(u(0x180F), BATTERY_LEVEL, ("read", "notify")),
        GattChar(u(0x180A), SERIAL_NUMBER, ("read",)),
        GattChar(IMU_SERVICE_UUID, IMU_DATA_UUID, ("notify",)),
        GattChar(u(0x1826), u(0x2AD2), ("read",)),             # no notify property: not subscribed
        GattChar("12345678-0000-1000-8000-00805f9b34fb", "12345679-0000-1000-8000-00805f9b34fb", ("notify",)),
    ]
    subs, reads = plan(chars)
    assert [s.kind for s in subs] == ["hr", "battery", "imu"]
    assert reads == [BATTERY_LEVEL, SERIAL_NUMBER]
    hr = subs[0].decode(encode(0x2A37, heart_rate_bpm=72, rr_intervals_1024=[800]))
    assert isinstance(hr, HeartRateMeasurement) and hr.heart_rate_bpm == 72
    imu = subs[2].decode(encode_imu_data(packet_seq=1, sample_rate_dhz=1000, first_sample=0, accel_1_4096g=[(1, 2, 3)]))
    assert isinstance(imu, ImuData) and imu.accel_1_4096g == ((1, 2, 3),)
    assert kind_label(subs) == "hr"


@pytest.mark.parametrize("uuid,kind", [(0x2ACD, "ftms"), (0x2AD2, "ftms"), (0x2A63, "cps"), (0x2A5B, "csc"), (0x2A53, "rsc")])
def test_kind_label_of_each_profile(uuid: int, kind: str) -> None:
    subs, _ = plan([GattChar(u(0x1800), u(uuid), ("notify",)), GattChar(u(0x180D), u(0x2A37), ("notify",))])
    assert kind_label(subs) == (kind if kind in ("ftms", "cps") else "hr")


def test_device_id_is_stable_and_case_insensitive() -> None:
    a = device_id_for("aa:bb:cc:dd:ee:ff")
    assert a == device_id_for("AA:BB:CC:DD:EE:FF") and a.startswith("ble-") and len(a) == 16
    assert device_id_for("AA:BB:CC:DD:EE:FF", "SN1") != a


def test_slots_admit_up_to_budget_and_queue_the_rest() -> None:
    s = SlotScheduler({"hci0": 2}, rotation_s=0)
    for a in "ABCD":
        s.add(a)
    d = s.tick(0)
    assert d.admit == ["A", "B"] and d.evict == []
    (alloc,) = s.allocations()
    assert (alloc.slots, alloc.allocated, alloc.free, alloc.queued) == (2, 2, 0, ("C", "D"))
    s.release("A")  # unreachable: back of the queue, C gets the slot
    assert s.tick(1).admit == ["C"]
    assert s.allocations()[0].queued == ("D", "A")
    s.remove("B")
    assert s.tick(2).admit == ["D"]


def test_slots_rotate_fairly_so_every_device_gets_time() -> None:
    s = SlotScheduler({"hci0": 3}, rotation_s=10)
    devices = [f"D{i}" for i in range(7)]
    for a in devices:
        s.add(a)
    active = set(s.tick(0).admit)
    held = {a: 0 for a in devices}
    for t in range(1, 701):
        d = s.tick(t)
        active -= set(d.evict)
        active |= set(d.admit)
        assert len(active) == 3
        for a in active:
            held[a] += 1
    # 700 s of 3 slots shared by 7 devices: each gets 300 s +- one rotation
    assert all(abs(v - 300) <= 30 for v in held.values()), held
    assert s.rotations >= 60


def test_slots_per_adapter_budgets_are_independent() -> None:
    s = SlotScheduler({"hci0": 1, "hci1": 2}, rotation_s=0)
    for a, ad in (("A", "hci0"), ("B", "hci0"), ("C", "hci1"), ("D", "hci1")):
        s.add(a, ad)
    assert sorted(s.tick(0).admit) == ["A", "C", "D"]
    assert [x.queued for x in s.allocations()] == [("B",), ()]


@given(st.integers(0, 100), st.floats(0.1, 5), st.floats(5, 120))
def test_backoff_is_full_jitter_and_capped(attempt: int, initial: float, cap: float) -> None:
    rng = random.Random(attempt)
    d = backoff_s(attempt, initial_s=initial, max_s=cap, rng=rng)
    assert 0 <= d <= min(cap, initial * 2 ** min(attempt, 30))


def test_backoff_grows_on_average() -> None:
    rng = random.Random(1)
    means = [sum(backoff_s(a, initial_s=1, max_s=60, rng=rng) for _ in range(2000)) / 2000 for a in range(7)]
    assert means[0] < means[2] < means[4] < means[6]
    assert 25 < means[6] < 35  # capped at 60: mean 30


# ------------------------------------------------------------------ bad notifications never crash
from hypothesis import settings  # noqa: E402

from edge_agent.devices.profiles import NOTIFY_CHARS  # noqa: E402
from edge_agent.devices.profiles import Subscription  # noqa: E402
from edge_agent.devices.session import DeviceSession  # noqa: E402
from edge_agent.metrics import EdgeMetrics  # noqa: E402
from edge_agent.streams import StreamMapper  # noqa: E402
from edge_agent.timebase import ManualClock, Timebase  # noqa: E402


def _session(received: list) -> DeviceSession:
    mapper = StreamMapper()

    def on_measurement(_s: object, kind: str, m: object, t_us: int) -> None:
        received.append((kind, mapper.map(m, t_us)))

    return DeviceSession("AA:BB:CC:DD:EE:01", "ble-test", on_measurement=on_measurement,
                         timebase=Timebase(ManualClock()), metrics=EdgeMetrics())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(NOTIFY_CHARS)), st.binary(max_size=64))
def test_any_notification_bytes_are_decoded_or_counted_never_raised(uuid: str, payload: bytes) -> None:
    received: list = []
    s = _session(received)
    kind, dec = NOTIFY_CHARS[uuid]
    handler = s._handler(Subscription(uuid, kind, dec))
    handler(None, bytearray(payload))               # must not raise, whatever the bytes
    assert s.status.notifications == 1
    assert len(received) + s.status.decode_errors >= 1
    for _, samples in received:
        for x in samples:
            assert len(x.t_us) == len(x.values)


def test_truncated_hr_keeps_the_valid_part_and_counts_the_error() -> None:
    received: list = []
    s = _session(received)
    uuid = next(u for u, (k, _) in NOTIFY_CHARS.items() if k == "hr")
    good = encode(0x2A37, heart_rate_bpm=130, rr_intervals_1024=[500, 510])
    h = s._handler(Subscription(uuid, "hr", NOTIFY_CHARS[uuid][1]))
    h(None, bytearray(good[:-1]))                    # last RR cut in half: a trailing byte
    assert s.status.decode_errors == 1
    streams = {x.stream: x.values for _, samples in received for x in samples}
    assert streams["heart_rate"] == [130] and streams["rr_interval"] == [500]
    received.clear()
    h(None, bytearray(bytes([0x08, 77, 0x10])))      # energy expended announced, one of its two bytes
    assert s.status.decode_errors == 2
    assert s.metrics.decode_errors_total.labels("ble-test", "hr")._value.get() == 2
    (( _, samples),) = received
    assert [(x.stream, x.values) for x in samples] == [("heart_rate", [77])]
