"""The real uplinks over real sockets: gRPC (grpc.aio server in-process, plain and TLS) and MQTT
(the provisioned Mosquitto, with a test-side responder that publishes Acks like the server)."""

from __future__ import annotations

import asyncio
import subprocess

import aiomqtt
import grpc
import pytest
from grpc import aio

from edge_agent.delivery import Delivery
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox
from edge_agent.uplink import AuthError, Unavailable, make_uplink
from protocols.wire.gen.fittrack.v1 import ingest_pb2_grpc

from ._delivery_helpers import FakeIngest, hr_batch, imu_batch, uplink_config

pytestmark = pytest.mark.services

TOKEN = "agent-1.correct-horse"


class _Servicer(ingest_pb2_grpc.IngestServicer):
    def __init__(self, ingest: FakeIngest) -> None:
        self.ingest = ingest

    async def Upload(self, request_iterator, context):  # noqa: N802 (generated name)
        md = dict(context.invocation_metadata())
        if md.get("authorization") != f"Bearer {TOKEN}":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked agent token")
        async for env in request_iterator:
            ack = self.ingest.handle(env.SerializeToString())
            if ack is not None:
                yield ack


async def _grpc_server(ingest: FakeIngest, creds: grpc.ServerCredentials | None = None) -> tuple[aio.Server, int]:
    server = aio.server()
    ingest_pb2_grpc.add_IngestServicer_to_server(_Servicer(ingest), server)
    port = server.add_secure_port("127.0.0.1:0", creds) if creds else server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


def _fill(ob: Outbox, rounds: int) -> int:
    n = 0
    for r in range(rounds):
        t = 1_780_000_000_000_000 + r * 10_000_000
        ob.append([hr_batch(device_id=f"ble-{i:012x}", n=10, t0_us=t) for i in range(5)] + [imu_batch(n=100, t0_us=t)])
        n += 150
    return n


async def _deliver_all(ob: Outbox, cfg, metrics: EdgeMetrics) -> None:
    d = Delivery(ob, cfg, metrics=metrics, poll_s=0.02)
    task = asyncio.create_task(d.run())
    try:
        assert await d.wait_empty(20), f"not drained: {d.status}"
    finally:
        d.stop()
        await asyncio.wait_for(task, 5)


async def test_grpc_delivers_everything_once(tmp_path) -> None:
    ingest = FakeIngest()
    server, port = await _grpc_server(ingest)
    m = EdgeMetrics()
    try:
        with Outbox(tmp_path / "o.db", metrics=m) as ob:
            n = _fill(ob, 30)
            await _deliver_all(ob, uplink_config("grpc", port=port, token=TOKEN, max_batches_per_envelope=20), m)
    finally:
        await server.stop(None)
    assert ingest.n_samples() == n and ingest.duplicates == 0
    assert m.registry.get_sample_value("fittrack_edge_sent_envelopes_total", {"transport": "grpc"}) >= 9


async def test_grpc_refused_token_is_an_auth_error(tmp_path) -> None:
    server, port = await _grpc_server(FakeIngest())
    try:
        up = make_uplink(uplink_config("grpc", port=port, token="agent-1.wrong"))
        with pytest.raises(AuthError, match="UNAUTHENTICATED.*check uplink.token"):
            async with up:
                await up.send(b"", 1)
                async for _ack in up.acks():
                    pass
    finally:
        await server.stop(None)


async def test_grpc_server_not_there_is_unavailable() -> None:
    up = make_uplink(uplink_config("grpc", port=1, connect_timeout_s=0.5))
    with pytest.raises(Unavailable, match="timed out"):
        async with up:
            pass


async def test_grpc_over_tls(tmp_path) -> None:
    key, crt = tmp_path / "srv.key", tmp_path / "srv.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    creds = grpc.ssl_server_credentials([(key.read_bytes(), crt.read_bytes())])
    ingest = FakeIngest()
    server, port = await _grpc_server(ingest, creds)
    m = EdgeMetrics()
    try:
        with Outbox(tmp_path / "o.db", metrics=m) as ob:
            n = _fill(ob, 3)
            cfg = uplink_config("grpc", host="localhost", port=port, token=TOKEN, tls=True, ca_file=crt)
            await _deliver_all(ob, cfg, m)
            # without the CA the server's certificate is not trusted: no connection
            bad = make_uplink(uplink_config("grpc", host="localhost", port=port, tls=True, connect_timeout_s=1))
            with pytest.raises(Unavailable):
                async with bad:
                    pass
    finally:
        await server.stop(None)
    assert ingest.n_samples() == n


async def _mqtt_responder(broker, cfg, ingest: FakeIngest, ready: asyncio.Event) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as c:
        await c.subscribe(cfg.up_topic, qos=1)
        ready.set()
        async for msg in c.messages:
            ack = ingest.handle(msg.payload)
            if ack is not None:
                await c.publish(cfg.ack_topic, ack.SerializeToString(), qos=1)


async def test_mqtt_delivers_everything_once(tmp_path, mqtt_broker, mqtt_prefix) -> None:
    ingest = FakeIngest()
    cfg = uplink_config("mqtt", host=mqtt_broker.host, port=mqtt_broker.port, topic_root=f"{mqtt_prefix}/fittrack/v1",
                        max_batches_per_envelope=20, token="")
    ready = asyncio.Event()
    responder = asyncio.create_task(_mqtt_responder(mqtt_broker, cfg, ingest, ready))
    await asyncio.wait_for(ready.wait(), 5)
    m = EdgeMetrics()
    try:
        with Outbox(tmp_path / "o.db", metrics=m) as ob:
            n = _fill(ob, 30)
            await _deliver_all(ob, cfg, m)
    finally:
        responder.cancel()
    assert ingest.n_samples() == n and ingest.duplicates == 0
    assert m.registry.get_sample_value("fittrack_edge_sent_envelopes_total", {"transport": "mqtt"}) >= 9


async def test_mqtt_broker_not_there_is_unavailable() -> None:
    up = make_uplink(uplink_config("mqtt", port=1, connect_timeout_s=0.5))
    with pytest.raises(Unavailable, match="MQTT connect"):
        async with up:
            pass


def _self_signed(folder) -> tuple:
    key, crt = folder / "srv.key", folder / "srv.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return key, crt


async def test_mqtt_tls_and_password(tmp_path) -> None:
    """A broker with TLS and a password file, as a production broker: the agent's username is
    tenant/agent_id and its password the token; a wrong token is an AuthError."""
    from ._delivery_helpers import PrivateMosquitto, free_port

    key, crt = _self_signed(tmp_path)
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "gym-1/agent-1", TOKEN], check=True, capture_output=True)
    pw.chmod(0o644)
    port = free_port()
    broker = PrivateMosquitto(tmp_path, port=port, extra_conf="").start()  # plain listener for the responder
    broker.stop()
    tls_port = free_port()
    broker.conf.write_text(
        f"per_listener_settings true\n"
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        f"listener {tls_port} 127.0.0.1\nallow_anonymous false\npassword_file {pw}\n"
        f"certfile {crt}\nkeyfile {key}\n"
        "persistence false\nset_tcp_nodelay true\n" + PrivateMosquitto.user_line()
    )
    broker.start()
    ingest = FakeIngest()
    try:
        cfg = uplink_config("mqtt", host="localhost", port=tls_port, tls=True, ca_file=crt, token=TOKEN,
                            max_batches_per_envelope=5)

        ready = asyncio.Event()

        async def responder() -> None:
            async with aiomqtt.Client("127.0.0.1", port) as c:
                await c.subscribe(cfg.up_topic, qos=1)
                ready.set()
                async for msg in c.messages:
                    ack = ingest.handle(msg.payload)
                    if ack is not None:
                        await c.publish(cfg.ack_topic, ack.SerializeToString(), qos=1)

        rt = asyncio.create_task(responder())
        await asyncio.wait_for(ready.wait(), 5)
        m = EdgeMetrics()
        with Outbox(tmp_path / "o.db", metrics=m) as ob:
            n = _fill(ob, 3)
            await _deliver_all(ob, cfg, m)
        rt.cancel()
        assert ingest.n_samples() == n
        bad = make_uplink(uplink_config("mqtt", host="localhost", port=tls_port, tls=True, ca_file=crt,
                                        token="agent-1.wrong", connect_timeout_s=3))
        with pytest.raises(AuthError, match="refused user 'gym-1/agent-1'"):
            async with bad:
                pass
    finally:
        broker.stop()
