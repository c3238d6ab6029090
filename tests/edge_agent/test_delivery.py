"""The delivery loop against an in-memory ingest (FakeIngest): every fault path of DESIGN §5."""

from __future__ import annotations

import asyncio

import pytest

from edge_agent.delivery import Delivery
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox

from ._delivery_helpers import T0_US, FakeHub, FakeIngest, hr_batch, imu_batch, uplink_config

DEVICES = [f"ble-{i:012x}" for i in range(5)]


def _fill(ob: Outbox, rounds: int, t0_us: int = T0_US) -> int:
    """``rounds`` batches of 10 HR samples per device + one IMU batch per round; returns samples."""
    n = 0
    for r in range(rounds):
        t = t0_us + r * 10_000_000
        ob.append([hr_batch(device_id=d, n=10, t0_us=t) for d in DEVICES] + [imu_batch(n=50, t0_us=t)])
        n += 10 * len(DEVICES) + 50
    return n


def _assert_exactly_once_in_order(ingest: FakeIngest, expected_samples: int, ordered: bool = True) -> None:
    """Every sample once; with ``ordered`` each stream's batches were also stored in seq order."""
    assert ingest.n_samples() == expected_samples
    for key, batches in ingest.stored.items():
        if not ordered:
            assert len({b.seq for b in batches}) == len(batches)
            continue
        seqs = [b.seq for b in batches]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"{key} stored out of order"
        ts = [int(b.t_us[0]) for b in batches]
        assert ts == sorted(ts)


async def _deliver(ob: Outbox, hub: FakeHub, metrics: EdgeMetrics, **cfg) -> tuple[Delivery, asyncio.Task]:
    d = Delivery(ob, uplink_config(**cfg), uplink_factory=hub.factory, metrics=metrics, poll_s=0.02)
    return d, asyncio.create_task(d.run())


async def _finish(d: Delivery, task: asyncio.Task) -> None:
    d.stop()
    await asyncio.wait_for(task, 5)


@pytest.fixture
def metrics() -> EdgeMetrics:
    return EdgeMetrics()


def _metric(m: EdgeMetrics, name: str, **labels) -> float:
    return m.registry.get_sample_value(name, labels) or 0.0


async def test_delivers_everything_once_in_order(tmp_path, metrics) -> None:
    hub = FakeHub()
    with Outbox(tmp_path / "o.db", metrics=metrics) as ob:
        n = _fill(ob, 20)
        d, task = await _deliver(ob, hub, metrics)
        assert await d.wait_empty(10)
        n += _fill(ob, 5, T0_US + 10**9)  # appended while running
        d.notify()
        assert await d.wait_empty(10)
        await _finish(d, task)
    _assert_exactly_once_in_order(hub.ingest, n)
    assert hub.ingest.duplicates == 0
    acked = _metric(metrics, "fittrack_edge_acked_samples_total", stream="heart_rate", status="stored")
    assert acked == 25 * 10 * len(DEVICES)
    assert hub.sent_seqs == sorted(set(hub.sent_seqs))


async def test_server_down_outbox_grows_then_drains_in_order(tmp_path, metrics) -> None:
    hub = FakeHub(up=False)
    with Outbox(tmp_path / "o.db", metrics=metrics) as ob:
        d, task = await _deliver(ob, hub, metrics)
        n = 0
        for i in range(10):
            n += _fill(ob, 1, T0_US + i * 10_000_000)
            await asyncio.sleep(0.03)
        assert ob.stats().batches == 60 and hub.ingest.envelopes == 0
        assert hub.connects >= 3  # kept trying, with (short, test-sized) backoff
        hub.up = True
        assert await d.wait_empty(10)
        await _finish(d, task)
    _assert_exactly_once_in_order(hub.ingest, n)


async def test_connection_cut_mid_stream_resends_without_doubles(tmp_path, metrics) -> None:
    hub = FakeHub(ack_delay_s=0.05)
    with Outbox(tmp_path / "o.db", metrics=metrics) as ob:
        n = _fill(ob, 40)
        d, task = await _deliver(ob, hub, metrics, max_batches_per_envelope=6, max_in_flight=4)
        for _ in range(3):
            await asyncio.sleep(0.08)
            hub.cut()
        assert await d.wait_empty(10)
        await _finish(d, task)
    _assert_exactly_once_in_order(hub.ingest, n)
    assert hub.connects >= 4
    assert hub.ingest.duplicates > 0  # batches stored but whose Ack was lost came back DUPLICATE
    resent = sum(_metric(metrics, "fittrack_edge_resent_samples_total", stream=s, reason="reconnect")
                 for s in ("heart_rate", "accel"))
    assert resent > 0
    dup = _metric(metrics, "fittrack_edge_acked_samples_total", stream="heart_rate", status="duplicate")
    assert dup > 0


async def test_ack_timeout_resends(tmp_path, metrics) -> None:
    dropped = []

    def policy(env):
        if len(dropped) < 2:
            dropped.append(env.seq)
            return "drop"
        return "ok"

    hub = FakeHub(ingest=FakeIngest(policy=policy))
    with Outbox(tmp_path / "o.db", metrics=metrics) as ob:
        n = _fill(ob, 5)
        d, task = await _deliver(ob, hub, metrics, ack_timeout_s=0.3, max_batches_per_envelope=10)
        assert await d.wait_empty(10)
        await _finish(d, task)
    # the lost envelopes were resent after the later ones of the window had been stored
    _assert_exactly_once_in_order(hub.ingest, n, ordered=False)
    assert _metric(metrics, "fittrack_edge_resent_samples_total", stream="heart_rate", reason="timeout") > 0
    assert _metric(metrics, "fittrack_edge_uplink_errors_total", transport="mqtt", reason="timeout") >= 1


async def test_window_of_one_keeps_server_order_through_lost_acks(tmp_path, metrics) -> None:
    dropped = []

    def policy(env):
        if len(dropped) < 2:
            dropped.append(env.seq)
            return "drop"
        return "ok"

    hub = FakeHub(ingest=FakeIngest(policy=policy))
    with Outbox(tmp_path / "o.db", metrics=metrics) as ob:
        n = _fill(ob, 5)
        d, task = await _deliver(ob, hub, metrics, ack_timeout_s=0.2, max_batches_per_envelope=10, max_in_flight=1)
        assert await d.wait_empty(10)
        await _finish(d, task)
    _assert_exactly_once_in_order(hub.ingest, n, ordered=True)


async def test_retry_ack_backs_off_and_resends(tmp_path, metrics) -> None:
    calls = []

    def policy(env):
        calls.append(env.seq)
        return "retry" if len(calls) <= 3 else "ok"

    hub = FakeHub(ingest=FakeIngest(policy=policy))
    with Outbox(tmp_path / "o.db", metrics=metrics) as ob:
        n = _fill(ob, 3)
        d, task = await _deliver(ob, hub, metrics, max_in_flight=1)
        assert await d.wait_empty(10)
        await _finish(d, task)
    _assert_exactly_once_in_order(hub.ingest, n)
    assert _metric(metrics, "fittrack_edge_resent_samples_total", stream="heart_rate", reason="retry") > 0
    assert hub.ingest.duplicates == 0  # RETRY means nothing was stored


async def test_rejected_batches_are_deleted_and_counted(tmp_path, metrics, caplog) -> None:
    hub = FakeHub(ingest=FakeIngest(reject=lambda b: "bad calibration (test)" if b.stream == "accel" else None))
    with Outbox(tmp_path / "o.db", metrics=metrics) as ob:
        _fill(ob, 4)
        d, task = await _deliver(ob, hub, metrics)
        assert await d.wait_empty(10)
        await _finish(d, task)
    assert ("ble-0000000000aa", "accel") not in hub.ingest.rows
    assert _metric(metrics, "fittrack_edge_rejected_samples_total", stream="accel") == 4 * 50
    assert hub.ingest.n_samples() == 4 * 10 * len(DEVICES)
    assert "bad calibration (test)" in caplog.text


async def test_backpressure_bounds_unacknowledged_envelopes(tmp_path, metrics) -> None:
    """A slow server (Acks 0.1 s late): never more than max_in_flight envelopes unacknowledged."""
    hub = FakeHub(ack_delay_s=0.1)
    with Outbox(tmp_path / "o.db", metrics=metrics) as ob:
        n = _fill(ob, 20)
        d, task = await _deliver(ob, hub, metrics, max_in_flight=2, max_batches_per_envelope=4)
        assert await d.wait_empty(20)
        await _finish(d, task)
    assert hub.max_outstanding == 2  # the window was used, and never exceeded
    assert len(hub.sent_seqs) == 30
    _assert_exactly_once_in_order(hub.ingest, n)


async def test_auth_error_backs_off_long(tmp_path, metrics, caplog) -> None:
    hub = FakeHub(auth_fail=True)
    with Outbox(tmp_path / "o.db", metrics=metrics) as ob:
        _fill(ob, 1)
        d, task = await _deliver(ob, hub, metrics, auth_backoff_s=30.0)
        await asyncio.sleep(0.5)
        assert hub.connects == 1
        assert "credential refused" in caplog.text
        assert d.status.backoff_until_us > 0 and "token refused" in d.status.last_error
        await _finish(d, task)
        assert ob.stats().batches == 6  # nothing lost


async def test_restart_resends_unacknowledged_and_counts_it(tmp_path, metrics) -> None:
    hub = FakeHub(ingest=FakeIngest(policy=lambda env: "lose_ack"))
    path = tmp_path / "o.db"
    with Outbox(path, metrics=metrics) as ob:
        n = _fill(ob, 5)
        d, task = await _deliver(ob, hub, metrics)
        await asyncio.sleep(0.3)
        await _finish(d, task)
        assert ob.stats().batches == 30  # sent (and stored) but never acknowledged
    hub.ingest.policy = lambda env: "ok"
    m2 = EdgeMetrics()
    with Outbox(path, metrics=m2) as ob:
        d, task = await _deliver(ob, hub, m2)
        assert await d.wait_empty(10)
        await _finish(d, task)
    _assert_exactly_once_in_order(hub.ingest, n)
    assert _metric(m2, "fittrack_edge_resent_samples_total", stream="heart_rate", reason="restart") == 5 * 10 * 5
    assert _metric(m2, "fittrack_edge_acked_samples_total", stream="heart_rate", status="duplicate") == 5 * 10 * 5


async def test_unexpected_error_does_not_end_delivery(tmp_path, metrics, caplog) -> None:
    hub = FakeHub()
    calls = {"n": 0}
    real = hub.factory

    def flaky(cfg):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("bug in a transport (test)")
        return real(cfg)

    with Outbox(tmp_path / "o.db", metrics=metrics) as ob:
        n = _fill(ob, 2)
        d = Delivery(ob, uplink_config(), uplink_factory=flaky, metrics=metrics, poll_s=0.02)
        task = asyncio.create_task(d.run())
        assert await d.wait_empty(10)
        await _finish(d, task)
    assert hub.ingest.n_samples() == n
    assert "bug in a transport (test)" in caplog.text
    assert _metric(metrics, "fittrack_edge_uplink_errors_total", transport="mqtt", reason="internal") == 1
