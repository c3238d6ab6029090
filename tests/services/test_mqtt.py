"""A publish/subscribe round trip through the real broker, with QoS 1, under a private prefix."""

import asyncio

import aiomqtt

from protocols.wire import SampleBatch, decode_envelope, encode_envelope


async def test_publish_subscribe_round_trip(mqtt_broker, mqtt_prefix: str) -> None:
    import numpy as np

    batch = SampleBatch("strap-1", "heart_rate", 7, np.arange(5, dtype=np.int64) * 1_000_000, [60, 61, 62, 62, 63], unit="bpm")
    payloads = [encode_envelope([batch], agent_id="agent-1", tenant="gym", seq=i) for i in range(3)]
    topic = f"{mqtt_prefix}/fittrack/v1/up/gym/agent-1"
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port, identifier=f"{mqtt_prefix}-sub") as sub:
        await sub.subscribe(f"{mqtt_prefix}/#", qos=1)
        async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port, identifier=f"{mqtt_prefix}-pub") as pub:
            for p in payloads:
                await pub.publish(topic, p, qos=1)
        got = []
        async with asyncio.timeout(10):
            async for msg in sub.messages:
                got.append(msg)
                if len(got) == len(payloads):
                    break
    assert [str(m.topic) for m in got] == [topic] * 3
    envs = [decode_envelope(bytes(m.payload)) for m in got]
    assert [e.seq for e in envs] == [0, 1, 2]
    assert all(e.batches == [batch] for e in envs)
