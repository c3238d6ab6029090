"""The agent's delivery against the REAL ingest server (`fittrack ingest serve`, TimescaleDB),
over each transport, with the faults of issue 8: server down for a while, broker restart,
agent kill -9 mid-stream and restart, outbox full, revoked credential.

Every check is made in the database: each appended sample stored exactly once.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import uuid

import pytest

from edge_agent.delivery import Delivery
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox
from edge_agent.uplink import AuthError, make_uplink

from ._delivery_helpers import (
    ROOT,
    IngestProcess,
    PrivateMosquitto,
    add_agent,
    free_port,
    hr_batch,
    imu_batch,
    ledger_keys,
    recent_t0_us,
    revoke_agent,
    stored_counts,
    uplink_config,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]

TENANT = "gym-edge8"


@pytest.fixture(scope="module")
def ingest_db(pg_database_factory) -> str:
    return pg_database_factory("edge8")


class World:
    """One test's agent identity, devices, server and (for MQTT) private broker."""

    def __init__(self, db: str, transport: str, folder) -> None:
        self.db = db
        self.transport = transport
        tag = uuid.uuid4().hex[:8]
        self.agent_id = f"pi-{tag}"
        self.devices = [f"ble-{tag}{i:04x}" for i in range(5)]
        self.imu = f"ble-{tag}ffff"
        self.token = add_agent(db, TENANT, self.agent_id)
        self.broker = PrivateMosquitto(folder).start() if transport == "mqtt" else None
        self.grpc_port = free_port() if transport == "grpc" else None
        self.server = IngestProcess(db, grpc_port=self.grpc_port, mqtt_port=self.broker.port if self.broker else None)
        self.expected: dict[tuple[str, str], int] = {}
        self.t0 = recent_t0_us(2.0)
        self.round = 0

    def config(self, **kw):
        port = self.grpc_port if self.transport == "grpc" else self.broker.port  # type: ignore[union-attr]
        base = dict(port=port, tenant=TENANT, agent_id=self.agent_id, token=self.token, ack_timeout_s=3.0,
                    max_batches_per_envelope=16, max_in_flight=4, keepalive_s=2)
        base.update(kw)
        return uplink_config(self.transport, **base)

    def batches(self, imu: bool = True):
        t = self.t0 + self.round * 10_000_000
        self.round += 1
        out = [hr_batch(device_id=d, n=10, t0_us=t) for d in self.devices]
        if imu:
            out.append(imu_batch(device_id=self.imu, n=100, t0_us=t))
        for b in out:
            self.expected[(b.device_id, b.stream)] = self.expected.get((b.device_id, b.stream), 0) + len(b)
        return out

    def check_db(self, dropped: dict[tuple[str, str], int] | None = None) -> None:
        got = stored_counts(self.db, self.devices + [self.imu])
        want = {k: v - (dropped or {}).get(k, 0) for k, v in self.expected.items()}
        want = {k: v for k, v in want.items() if v}
        assert {k: n for k, (n, _nd) in got.items()} == want, "samples lost or doubled"
        assert all(n == nd for n, nd in got.values()), "a timestamp is stored twice"

    def close(self) -> None:
        self.server.stop()
        if self.broker:
            self.broker.stop()


@pytest.fixture(params=["grpc", "mqtt"])
def world(request, ingest_db, tmp_path):
    w = World(ingest_db, request.param, tmp_path)
    yield w
    w.close()


class _Recording:
    """Wraps an uplink; records (device, stream) -> seqs in the order they were sent."""

    def __init__(self, inner, log: dict) -> None:
        self.inner, self.log, self.transport = inner, log, inner.transport

    async def __aenter__(self):
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.inner.__aexit__(*exc)

    async def send(self, envelope: bytes, envelope_seq: int) -> None:
        from protocols.wire import decode_envelope

        for b in decode_envelope(envelope).batches:
            self.log.setdefault((b.device_id, b.stream), []).append(b.seq)
        await self.inner.send(envelope, envelope_seq)

    def acks(self):
        return self.inner.acks()


async def _run_delivery(ob: Outbox, cfg, m: EdgeMetrics) -> tuple[Delivery, asyncio.Task]:
    d = Delivery(ob, cfg, metrics=m, poll_s=0.02)
    return d, asyncio.create_task(d.run())


async def _stop(d: Delivery, task: asyncio.Task) -> None:
    d.stop()
    await asyncio.wait_for(task, 10)


async def test_delivers_exactly_once(world: World, tmp_path) -> None:
    world.server.start()
    m = EdgeMetrics()
    with Outbox(tmp_path / "o.db", metrics=m) as ob:
        d, task = await _run_delivery(ob, world.config(), m)
        for _ in range(30):
            ob.append(world.batches())
            d.notify()
            await asyncio.sleep(0.01)
        assert await d.wait_empty(60), d.status
        await _stop(d, task)
    world.check_db()
    assert ledger_keys(world.db, world.devices + [world.imu])  # the ledger has them too
    stored = m.registry.get_sample_value("fittrack_edge_acked_samples_total", {"stream": "heart_rate", "status": "stored"})
    assert stored == 30 * 10 * 5


async def test_server_down_for_a_while(world: World, tmp_path) -> None:
    """Outbox grows while the server is down, drains in order after, nothing lost or doubled."""
    m = EdgeMetrics()
    sent_order: dict[tuple[str, str], list[int]] = {}
    with Outbox(tmp_path / "o.db", metrics=m) as ob:
        d = Delivery(ob, world.config(backoff_cap_s=0.5), metrics=m, poll_s=0.02,
                     uplink_factory=lambda cfg: _Recording(make_uplink(cfg), sent_order))
        task = asyncio.create_task(d.run())
        world.server.start()
        for _ in range(10):
            ob.append(world.batches())
            d.notify()
            await asyncio.sleep(0.02)
        assert await d.wait_empty(60)
        world.server.stop()  # kill -9 of the server
        for _ in range(20):
            ob.append(world.batches())
            await asyncio.sleep(0.02)
        assert ob.stats().batches >= 20 * 6 - 16  # it grew (at most one envelope may have gone out)
        depth_down = ob.stats().batches
        world.server.start()
        assert await d.wait_empty(60), d.status
        await _stop(d, task)
    world.check_db()
    assert depth_down > 0
    # drained oldest first: per (device, stream) the agent sent seqs in increasing order (the
    # server commits envelopes in parallel group transactions, so its commit order is its own)
    for key, seqs in sent_order.items():
        first = list(dict.fromkeys(seqs))
        assert first == sorted(first), f"{key} sent out of order"


async def test_outbox_full_drop_policy(world: World, tmp_path) -> None:
    """Server down, outbox full: IMU dropped first and counted; the rest stored once when back."""
    from protocols.wire import encode_batches

    m = EdgeMetrics()
    sizes = [len(encode_batches([b])) for b in world.batches()]
    world.expected.clear()
    world.round = 0
    bound = int(40 * sum(sizes[:-1]) * 1.2) + 10 * sizes[-1]  # all the HR (sizes vary a little), some IMU
    with Outbox(tmp_path / "o.db", metrics=m, max_bytes=bound) as ob:
        d, task = await _run_delivery(ob, world.config(backoff_cap_s=0.3), m)
        for _ in range(40):
            ob.append(world.batches())
        dropped = {k: ns for k, (_nb, ns) in ob.dropped_counts().items()}
        assert dropped and all(s == "accel" for _d, s in dropped)
        world.server.start()
        assert await d.wait_empty(60), d.status
        await _stop(d, task)
    world.check_db(dropped)
    assert m.registry.get_sample_value("fittrack_edge_dropped_samples_total", {"stream": "accel"}) == sum(dropped.values())


async def test_broker_restart(ingest_db, tmp_path) -> None:
    w = World(ingest_db, "mqtt", tmp_path)
    try:
        w.server.start()
        m = EdgeMetrics()
        with Outbox(tmp_path / "o.db", metrics=m) as ob:
            d, task = await _run_delivery(ob, w.config(backoff_cap_s=0.5), m)
            for i in range(60):
                ob.append(w.batches(imu=False))
                d.notify()
                if i == 20:
                    w.broker.stop()  # type: ignore[union-attr]
                if i == 35:
                    w.broker.start()  # type: ignore[union-attr]
                await asyncio.sleep(0.03)
            assert await d.wait_empty(90), d.status
            await _stop(d, task)
        w.check_db()
        assert d.status.reconnects >= 1
    finally:
        w.close()


CHILD = r"""
import asyncio, sys, json
from edge_agent.delivery import Delivery
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox
from tests.edge_agent._delivery_helpers import hr_batch, uplink_config

path, mode, cfgjson, t0 = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
devices = json.loads(sys.argv[5])

async def main():
    m = EdgeMetrics()
    ob = Outbox(path, metrics=m)
    d = Delivery(ob, uplink_config(**json.loads(cfgjson)), metrics=m, poll_s=0.01)
    task = asyncio.create_task(d.run())
    print("ready", flush=True)
    if mode == "drain":
        ok = await d.wait_empty(60)
        print("drained" if ok else "not-drained %s" % d.status, flush=True)
        d.stop()
        await task
        return
    i = 0
    while True:
        if i >= 110:  # stay inside this run's 600 s window of sample times
            await asyncio.sleep(1)
            continue
        keys = await asyncio.to_thread(ob.append, [hr_batch(device_id=dev, n=5, t0_us=t0 + i * 5_000_000) for dev in devices])
        for k in keys:
            print("K", k[0], k[1], k[2], flush=True)
        d.notify()
        i += 1
        await asyncio.sleep(0.01)

asyncio.run(main())
"""


async def test_agent_kill_9_and_restart(ingest_db, tmp_path) -> None:
    import json

    w = World(ingest_db, "grpc", tmp_path)
    rng = random.Random(9)
    try:
        w.server.start()
        cfg = dict(transport="grpc", host="127.0.0.1", port=w.grpc_port, tenant=TENANT, agent_id=w.agent_id,
                   token=w.token, max_batches_per_envelope=8, max_in_flight=4, ack_timeout_s=3.0)
        reported: list[tuple] = []
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for r in range(4):
            p = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CHILD, str(tmp_path / "agent.db"), "run", json.dumps(cfg),
                str(w.t0 + r * 600_000_000), json.dumps(w.devices), cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE)
            assert (await asyncio.wait_for(p.stdout.readline(), 30)).strip() == b"ready"  # type: ignore[union-attr]
            await asyncio.sleep(rng.uniform(0.5, 1.2))
            os.kill(p.pid, signal.SIGKILL)
            out = (await p.stdout.read()).decode()  # type: ignore[union-attr]
            await p.wait()
            reported += [(a[1], a[2], int(a[3])) for a in (ln.split() for ln in out.splitlines()) if len(a) == 4 and a[0] == "K"]
        p = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, str(tmp_path / "agent.db"), "drain", json.dumps(cfg), "0", "[]",
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE)
        out = (await asyncio.wait_for(p.stdout.read(), 90)).decode()  # type: ignore[union-attr]
        assert await p.wait() == 0 and "drained" in out, out
        ledger = ledger_keys(w.db, w.devices)
        assert len(reported) > 50
        missing = [k for k in reported if k not in ledger]
        assert not missing, f"{len(missing)} batches the agent had appended never reached the database"
        counts = stored_counts(w.db, w.devices)
        assert all(n == nd for n, nd in counts.values()), "a sample is stored twice"
        assert sum(n for n, _ in counts.values()) == 5 * len(ledger)
    finally:
        w.close()


async def test_revoked_token_is_refused(ingest_db, tmp_path) -> None:
    w = World(ingest_db, "grpc", tmp_path)
    try:
        w.server.start()
        revoke_agent(w.db, w.agent_id)
        from protocols.wire import encode_envelope

        env = encode_envelope([hr_batch(device_id=w.devices[0], t0_us=w.t0)], agent_id=w.agent_id, tenant=TENANT, seq=1)
        up = make_uplink(w.config())
        with pytest.raises(AuthError):
            async with up:
                await up.send(env, 1)
                async for _ack in up.acks():
                    pass
    finally:
        w.close()


async def test_mqtt_with_the_shipped_acl_and_password_file(ingest_db, tmp_path) -> None:
    """The production MQTT setup (deploy/mosquitto/acl, a password file written by `fittrack ingest
    agent add --mqtt-password-file`): the agent logs in as tenant/agent_id with its token, delivers,
    and a wrong token is refused as an AuthError."""
    import shutil
    import subprocess

    from ._delivery_helpers import fittrack_cmd

    pw, acl = tmp_path / "passwd", tmp_path / "acl"
    shutil.copy(ROOT / "deploy" / "mosquitto" / "acl", acl)
    tag = uuid.uuid4().hex[:8]
    agent_id = f"pi-{tag}"
    token = add_agent(ingest_db, TENANT, agent_id, "--mqtt-password-file", str(pw))
    server_pw = uuid.uuid4().hex
    subprocess.run(fittrack_cmd("ingest", "mqtt-user", "--password-file", str(pw), "--username", "ingest"),
                   input=server_pw + "\n", text=True, check=True, capture_output=True, cwd=ROOT)
    pw.chmod(0o644)
    acl.chmod(0o644)
    broker = PrivateMosquitto(tmp_path)
    broker.conf.write_text(
        f"listener {broker.port} 127.0.0.1\nallow_anonymous false\npassword_file {pw}\nacl_file {acl}\n"
        "persistence false\nset_tcp_nodelay true\n" + PrivateMosquitto.user_line()
    )
    broker.start()
    server = IngestProcess(ingest_db, mqtt_port=broker.port, extra_args=("--mqtt-username", "ingest"),
                           env={"FITTRACK_INGEST_MQTT_PASSWORD": server_pw})
    try:
        server.start()
        devices = [f"ble-{tag}{i:04x}" for i in range(3)]
        t0 = recent_t0_us(1.0)
        cfg = uplink_config("mqtt", port=broker.port, tenant=TENANT, agent_id=agent_id, token=token)
        m = EdgeMetrics()
        with Outbox(tmp_path / "o.db", metrics=m) as ob:
            for r in range(5):
                ob.append([hr_batch(device_id=dev, n=10, t0_us=t0 + r * 10_000_000) for dev in devices])
            d, task = await _run_delivery(ob, cfg, m)
            assert await d.wait_empty(30), d.status
            await _stop(d, task)
        assert {k: n for k, (n, _) in stored_counts(ingest_db, devices).items()} == {
            (dev, "heart_rate"): 50 for dev in devices}
        bad = make_uplink(uplink_config("mqtt", port=broker.port, tenant=TENANT, agent_id=agent_id,
                                        token=agent_id + ".wrong", connect_timeout_s=3))
        with pytest.raises(AuthError):
            async with bad:
                pass
    finally:
        server.stop()
        broker.stop()
