"""MQTT ingest on the provisioned Mosquitto (topics under a per-test prefix): acks after commit,
resends stored once, identity checks, live republish; two server processes on one shared
subscription with concurrent resends over MQTT and gRPC."""

from __future__ import annotations

import asyncio
import urllib.request

import aiomqtt
import pytest

from ingest_server.app import IngestApp
from ingest_server.config import IngestConfig
from protocols.wire.gen.fittrack.v1 import ingest_pb2

from .helpers import MqttAgent, batch_statuses, cli, envelope, hr_batch, imu_batch, now_s_us, start_server, status, upload


@pytest.fixture(scope="module")
def dsn(pg_database_factory) -> str:
    return pg_database_factory("mqtt")


async def test_mqtt_envelopes_acked_after_commit_resends_once_identity_checked(dsn, mqtt_broker, mqtt_prefix) -> None:
    root = f"{mqtt_prefix}/fittrack/v1"
    cfg = IngestConfig(db=dsn, mqtt=f"{mqtt_broker.host}:{mqtt_broker.port}", mqtt_topic_root=root, maintain_interval_s=0)
    async with IngestApp(cfg) as app:
        await app.add_agent("gym-m", "hub-m1")
        await app.add_agent("gym-n", "hub-n1")
        live_client = aiomqtt.Client(mqtt_broker.host, mqtt_broker.port, protocol=aiomqtt.ProtocolVersion.V5)
        async with live_client, MqttAgent(mqtt_broker.host, mqtt_broker.port, root=root, tenant="gym-m", agent="hub-m1") as agent, \
                MqttAgent(mqtt_broker.host, mqtt_broker.port, root=root, tenant="gym-n", agent="hub-n1") as other:
            await live_client.subscribe(f"{root}/live/gym-m/+/+", qos=0)
            base = now_s_us() - 3_600_000_000
            envs = {s: envelope([hr_batch("m-strap", s, t0_us=base + s * 10_000_000), imu_batch("m-imu", s, t0_us=base + s * 2_000_000)],
                                agent="hub-m1", tenant="gym-m", seq=s) for s in range(10)}
            for s, e in envs.items():
                await agent.publish(e)
            acks = await agent.wait_acks(set(envs))
            assert all(status(a) == "ACK_STATUS_OK" and batch_statuses(a) == ["BATCH_STATUS_STORED"] * 2 for a in acks.values())
            # ack means committed
            rows = await app.store.query("SELECT count(*) FROM ledger WHERE device_id IN ('m-strap', 'm-imu')")
            assert rows[0][0] == 20
            # resend everything (as after a reconnect): all duplicates, nothing written twice
            agent.acks.clear()
            for s in reversed(envs):
                await agent.publish(envs[s])
            acks = await agent.wait_acks(set(envs))
            assert all(batch_statuses(a) == ["BATCH_STATUS_DUPLICATE"] * 2 for a in acks.values())
            rows = await app.store.query("SELECT count(*), count(DISTINCT (device_id, time, channel)) FROM samples_all"
                                         " WHERE device_id IN ('m-strap', 'm-imu')")
            assert rows[0][0] == rows[0][1] == 10 * 10 + 10 * 600
            # topic agent != envelope agent: refused, told on the topic agent's ack topic
            await other.publish(envelope([hr_batch("n-strap", 1)], agent="hub-m1", tenant="gym-m", seq=77))
            refused = (await other.wait_acks({77}))[77]
            assert status(refused) == "ACK_STATUS_REJECTED" and "credential is agent 'hub-n1'" in refused.message
            # unknown agent on its own topic: refused
            async with MqttAgent(mqtt_broker.host, mqtt_broker.port, root=root, tenant="gym-m", agent="ghost") as ghost:
                await ghost.publish(envelope([hr_batch("ghost-strap", 1)], agent="ghost", tenant="gym-m", seq=5))
                assert "unknown agent" in (await ghost.wait_acks({5}))[5].message
            # a device of another tenant inside an otherwise fine envelope
            await other.publish(envelope([hr_batch("n-strap", 2), hr_batch("m-strap", 999)], agent="hub-n1", tenant="gym-n", seq=78))
            part = (await other.wait_acks({78}))[78]
            assert batch_statuses(part) == ["BATCH_STATUS_STORED", "BATCH_STATUS_REJECTED"]
            assert (await app.store.query("SELECT count(*) FROM ledger WHERE device_id IN ('ghost-strap') OR seq = 999"))[0][0] == 0
            # live republish: one LiveEvent per stored batch, on live/{tenant}/{device}/{stream}
            live = []
            try:
                async with asyncio.timeout(3):
                    async for msg in live_client.messages:
                        live.append((str(msg.topic), ingest_pb2.LiveEvent.FromString(msg.payload)))
                        if len(live) == 20:
                            break
            except TimeoutError:
                pass
            assert len(live) == 20
            assert {t for t, _ in live} == {f"{root}/live/gym-m/m-strap/heart_rate", f"{root}/live/gym-m/m-imu/accel"}
            assert sorted(ev.batch.seq for t, ev in live if t.endswith("accel")) == list(range(10))
        dl = await app.store.query("SELECT transport, reason FROM dead_letters ORDER BY id")
        assert [r[0] for r in dl] == ["mqtt"] * 3


def _metric(addr: str, name: str, transport: str) -> float:
    text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and f'transport="{transport}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_two_server_processes_share_the_uplink_and_concurrent_resends_store_once(dsn, mqtt_broker, mqtt_prefix) -> None:
    root = f"{mqtt_prefix}/fittrack/v1"
    token = cli("ingest", "agent", "add", "--db", dsn, "--tenant", "gym-p", "--agent", "hub-p1").stdout.strip()
    assert token.startswith("hub-p1.")
    args = ["--db", dsn, "--grpc", "127.0.0.1:0", "--mqtt", f"{mqtt_broker.host}:{mqtt_broker.port}",
            "--mqtt-topic-root", root, "--metrics", "127.0.0.1:0", "--maintain-interval-s", "0"]
    (p1, a1), (p2, a2) = start_server(args), start_server(args)
    try:
        base = now_s_us() - 3_600_000_000
        envs = [envelope([hr_batch(f"p-strap-{s % 7}", s, t0_us=base + s * 10_000_000)], agent="hub-p1", tenant="gym-p", seq=s)
                for s in range(300)]
        async with MqttAgent(mqtt_broker.host, mqtt_broker.port, root=root, tenant="gym-p", agent="hub-p1") as agent:
            async def over_mqtt() -> None:
                for e in envs + envs[::-1]:
                    await agent.publish(e)

            port1, port2 = int(a1["grpc"].rsplit(":", 1)[1]), int(a2["grpc"].rsplit(":", 1)[1])
            res = await asyncio.gather(over_mqtt(), upload(port1, token, envs), upload(port2, token, envs[::-1]),
                                       upload(port1, token, envs[100:200]))
            await agent.wait_acks(set(range(300)), timeout_s=30)
        grpc_acks = [a for r in res[1:] for a in r]
        assert all(status(a) == "ACK_STATUS_OK" for a in grpc_acks)
        rows = await _query(dsn, "SELECT count(*), count(DISTINCT (device_id, time)) FROM samples WHERE device_id LIKE 'p-strap-%%'")
        assert rows == (3000, 3000)
        assert (await _query(dsn, "SELECT count(*) FROM ledger WHERE device_id LIKE 'p-strap-%%'")) == (300,)
        # the broker split the MQTT uplink between both processes
        m1 = _metric(a1["metrics"], "fittrack_ingest_envelopes_total", "mqtt")
        m2 = _metric(a2["metrics"], "fittrack_ingest_envelopes_total", "mqtt")
        assert m1 + m2 == 600 and m1 > 50 and m2 > 50, (m1, m2)
        stored = sum(_metric(a["metrics"], "fittrack_ingest_batches_stored_total", t) for a in (a1, a2) for t in ("mqtt", "grpc"))
        assert stored == 300
    finally:
        for p in (p1, p2):
            p.terminate()
        for p in (p1, p2):
            assert p.wait(20) == 0


async def _query(dsn: str, sql: str) -> tuple:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        return tuple(await (await conn.execute(sql)).fetchone())


async def test_kill_9_over_mqtt_broker_redelivers_what_was_never_pubacked(dsn, mqtt_broker, mqtt_prefix) -> None:
    """PUBACK only after commit + persistent session: after kill -9 and restart with the same
    client id, the broker hands the un-PUBACKed uplinks to the new process; the agent resends nothing."""
    import os
    import signal
    import uuid

    root = f"{mqtt_prefix}/fittrack/v1"
    cli("ingest", "agent", "add", "--db", dsn, "--tenant", "gym-r", "--agent", "hub-r")
    args = ["--db", dsn, "--mqtt", f"{mqtt_broker.host}:{mqtt_broker.port}", "--mqtt-topic-root", root,
            "--mqtt-client-id", f"ingest-crash-{uuid.uuid4().hex[:8]}", "--maintain-interval-s", "0"]
    proc, _ = start_server(args)
    n = 300
    base = now_s_us() - 3_600_000_000
    envs = [envelope([imu_batch("r-imu", s, n=1000, t0_us=base + s * 10_000_000)], agent="hub-r", tenant="gym-r", seq=s) for s in range(n)]
    try:
        async with MqttAgent(mqtt_broker.host, mqtt_broker.port, root=root, tenant="gym-r", agent="hub-r") as agent:
            for e in envs:
                await agent.publish(e)
            while len(agent.acks) < 20:
                await asyncio.sleep(0.002)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            before = set(agent.acks)
            assert len(before) < n, "the crash came too late to leave anything in flight"
            proc, _ = start_server(args)  # same client id: the broker resumes the session
            await agent.wait_acks(set(range(n)), timeout_s=60)
        assert (await _query(dsn, "SELECT count(*) FROM ledger WHERE device_id = 'r-imu'")) == (n,)
        assert (await _query(dsn, "SELECT count(*), count(DISTINCT (time, channel)) FROM samples_all WHERE device_id = 'r-imu'")) == (n * 3000, n * 3000)
    finally:
        proc.terminate()
        proc.wait(20)
