"""Outbox full while the server is down: the drop policy applies (IMU first), every dropped sample
is counted, and what survived is delivered exactly once when the server is back."""

from __future__ import annotations

import asyncio

from edge_agent.delivery import Delivery
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox

from ._delivery_helpers import T0_US, FakeHub, hr_batch, imu_batch, uplink_config


async def test_outbox_full_drops_counts_then_delivers_the_rest(tmp_path) -> None:
    hub = FakeHub(up=False)
    m = EdgeMetrics()
    appended = {"heart_rate": 0, "accel": 0, "hr_zone": 0}
    with Outbox(tmp_path / "o.db", max_bytes=15_000, metrics=m) as ob:
        d = Delivery(ob, uplink_config(), uplink_factory=hub.factory, metrics=m, poll_s=0.02)
        task = asyncio.create_task(d.run())
        for i in range(100):
            t = T0_US + i * 10_000_000
            ob.append([hr_batch(n=10, t0_us=t), imu_batch(n=100, t0_us=t), hr_batch(n=10, t0_us=t, stream="hr_zone")])
            appended["heart_rate"] += 10
            appended["accel"] += 100
            appended["hr_zone"] += 10
        st = ob.stats()
        assert st.bytes <= 15_000
        dropped = ob.dropped_counts()
        assert set(k[1] for k in dropped) == {"accel"}, dropped  # only the lowest class went
        dropped_samples = sum(ns for _nb, ns in dropped.values())
        assert dropped_samples > 0 and st.dropped_samples == dropped_samples
        assert m.registry.get_sample_value("fittrack_edge_dropped_samples_total", {"stream": "accel"}) == dropped_samples
        hub.up = True
        assert await d.wait_empty(10)
        d.stop()
        await asyncio.wait_for(task, 5)
    rows = hub.ingest.rows
    assert len(rows[("ble-000000000001", "heart_rate")]) == appended["heart_rate"]
    assert len(rows[("ble-000000000001", "hr_zone")]) == appended["hr_zone"]
    # every accel sample is either stored once or counted as dropped, and the newest survived
    stored_accel = len(rows[("ble-0000000000aa", "accel")])
    assert stored_accel + dropped_samples == appended["accel"]
    assert max(rows[("ble-0000000000aa", "accel")]) == T0_US + 99 * 10_000_000 + 99 * 10_000
