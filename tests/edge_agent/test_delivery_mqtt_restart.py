"""Broker restart under load: the MQTT uplink reconnects, resends, nothing lost or doubled."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from edge_agent.delivery import Delivery
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox
from edge_agent.uplink.mqtt import _mark_disconnect_seen

from ._delivery_helpers import FakeIngest, PrivateMosquitto, hr_batch, uplink_config

pytestmark = pytest.mark.services


async def _responder(port: int, cfg, ingest: FakeIngest) -> None:
    """The server side: consumes the uplink topic, Acks after 'commit'; reconnects forever."""
    while True:
        c = aiomqtt.Client("127.0.0.1", port, timeout=2)
        try:
            async with c:
                await c.subscribe(cfg.up_topic, qos=1)
                async for msg in c.messages:
                    ack = ingest.handle(msg.payload)
                    if ack is not None:
                        await c.publish(cfg.ack_topic, ack.SerializeToString(), qos=1)
        except aiomqtt.MqttError:
            await asyncio.sleep(0.1)
        finally:
            _mark_disconnect_seen(c)


@pytest.mark.slow
async def test_broker_restart_mid_stream(tmp_path) -> None:
    broker = PrivateMosquitto(tmp_path).start()
    ingest = FakeIngest()
    cfg = uplink_config("mqtt", port=broker.port, token="", max_batches_per_envelope=4, max_in_flight=4,
                        ack_timeout_s=2.0, keepalive_s=2)
    responder = asyncio.create_task(_responder(broker.port, cfg, ingest))
    m = EdgeMetrics()
    n = 0
    try:
        with Outbox(tmp_path / "o.db", metrics=m) as ob:
            d = Delivery(ob, cfg, metrics=m, poll_s=0.01)
            task = asyncio.create_task(d.run())
            for i in range(120):
                ob.append([hr_batch(device_id=f"ble-{k:012x}", n=5, t0_us=1_780_000_000_000_000 + i * 5_000_000)
                           for k in range(3)])
                n += 15
                d.notify()
                if i == 40:
                    broker.stop()
                if i == 70:
                    assert ob.stats().batches > 0  # the outbox held data while the broker was down
                    broker.start()
                await asyncio.sleep(0.01)
            assert await d.wait_empty(30), d.status
            d.stop()
            await asyncio.wait_for(task, 5)
    finally:
        responder.cancel()
        broker.stop()
    assert ingest.n_samples() == n
    assert d.status.reconnects >= 1
    assert m.registry.get_sample_value("fittrack_edge_uplink_errors_total",
                                       {"transport": "mqtt", "reason": "unavailable"}) >= 1
