"""The load generator against small stand-in ingest servers over real sockets.

The stand-ins keep to the contract (gRPC ``Ingest.Upload`` with a Bearer token; MQTT up/ack
topics on the provisioned Mosquitto; one ``Ack`` per envelope with a ``BatchAck`` per batch,
DUPLICATE for a (device_id, stream, seq) seen before) and record what they stored, so the
report can be compared with it. The end-to-end run against the real ingest server is in
test_load_ingest.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import grpc
import numpy as np
import pytest

from firmware_sims.load import LoadConfig, run_load
from protocols.wire import decode_envelope
from protocols.wire.gen.fittrack.v1 import envelope_pb2, ingest_pb2_grpc


class Store:
    """What a stand-in ingest committed: samples per (device_id, stream, seq)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, int], int] = {}
        self.envelopes = 0
        self.t_monotonic: dict[tuple[str, str], bool] = {}

    def ack(self, raw: bytes) -> envelope_pb2.Ack:
        env = decode_envelope(raw)
        self.envelopes += 1
        out = envelope_pb2.Ack(agent_id=env.agent_id, envelope_seq=env.seq, status=envelope_pb2.ACK_STATUS_OK)
        for b in env.batches:
            key = (b.device_id, b.stream, b.seq)
            st = envelope_pb2.BATCH_STATUS_DUPLICATE if key in self.rows else envelope_pb2.BATCH_STATUS_STORED
            if st == envelope_pb2.BATCH_STATUS_STORED:
                self.rows[key] = len(b)
                ok = bool(np.all(np.diff(b.t_us) >= 0))
                self.t_monotonic[key[:2]] = self.t_monotonic.get(key[:2], True) and ok
            out.batches.add(device_id=b.device_id, stream=b.stream, seq=b.seq, status=st, samples_stored=len(b))
        return out


def check_report(rep: dict[str, Any], store: Store) -> None:
    assert rep["errors"] == []
    sent = {(s["device_id"], s["stream"], q) for s in rep["streams"] for q in s["seqs"]}
    assert sent == set(store.rows), "the report must list exactly the batches the server stored"
    per_stream = Counter()
    for (d, s, _q), n in store.rows.items():
        per_stream[(d, s)] += n
    for s in rep["streams"]:
        assert per_stream[(s["device_id"], s["stream"])] == s["samples"]
        assert s["seqs"] == sorted(s["seqs"]) and len(set(s["seqs"])) == len(s["seqs"])
    assert rep["samples_unique"] == sum(store.rows.values())
    assert all(store.t_monotonic.values())
    t = rep["totals"]
    assert t["batch_stored"] == len(store.rows)
    assert t.get("unacked_envelopes", 0) == 0


@pytest.fixture
async def grpc_ingest():
    store = Store()
    tokens = {}

    class Servicer(ingest_pb2_grpc.IngestServicer):
        async def Upload(self, request_iterator, context):  # noqa: N802 - generated name
            md = dict(context.invocation_metadata())
            auth = md.get("authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in tokens.values():
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
            async for env in request_iterator:
                yield store.ack(env.SerializeToString())

    server = grpc.aio.server()
    ingest_pb2_grpc.add_IngestServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", store, tokens
    await server.stop(0)


async def test_grpc_load_with_faults_report_matches_store(grpc_ingest) -> None:
    target, store, tokens = grpc_ingest
    cfg = LoadConfig(transport="grpc", target=target, agents=3, devices=3, kinds="hr,imu,bike,treadmill,rower",
                     seconds=40, batch_s=5, seed=1, duplicate_p=0.3, resend_p=0.2, reorder_p=0.3, outage=(10, 12))
    cfg.tokens = {a: f"{a}.secret{i}" for i, a in enumerate(cfg.agent_ids())}
    tokens.update(cfg.tokens)
    rep = await run_load(cfg)
    check_report(rep, store)
    t = rep["totals"]
    assert t["duplicates_injected"] > 0 and t["batch_duplicate"] >= t["duplicates_injected"]
    assert t["envelopes_resent"] > 0 and t["reordered"] > 0
    streams = {s["stream"] for s in rep["streams"]}
    assert {"heart_rate", "rr_interval", "accel", "gyro", "power", "cadence", "speed", "distance"} <= streams
    # realistic rates: 1 Hz heart rate, 50 Hz accel for 40 simulated seconds
    hr = [s for s in rep["streams"] if s["stream"] == "heart_rate"]
    assert all(35 <= s["samples"] <= 40 for s in hr)
    acc = [s for s in rep["streams"] if s["stream"] == "accel"]
    assert all(1950 <= s["samples"] <= 2000 for s in acc)


async def test_grpc_bad_token_is_an_error_not_a_hang(grpc_ingest) -> None:
    target, _store, tokens = grpc_ingest
    cfg = LoadConfig(transport="grpc", target=target, agents=1, devices=1, kinds="hr", seconds=10, ack_timeout_s=2)
    cfg.tokens = {cfg.agent_ids()[0]: "nobody.wrong"}
    rep = await asyncio.wait_for(run_load(cfg), 20)
    assert rep["errors"] and "UNAUTHENTICATED" in rep["errors"][0]


async def test_missing_tokens_say_how_to_get_them() -> None:
    with pytest.raises(ValueError, match="fittrack ingest agent add"):
        await run_load(LoadConfig(agents=1, devices=1, seconds=5))


async def test_mqtt_load_through_mosquitto(mqtt_broker) -> None:
    import aiomqtt

    tenant = f"t{uuid.uuid4().hex[:8]}"
    store = Store()
    ready = asyncio.Event()

    async def responder() -> None:
        async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port, identifier=f"resp-{tenant}") as c:
            await c.subscribe(f"fittrack/v1/up/{tenant}/+", qos=1)
            ready.set()
            async for msg in c.messages:
                agent = str(msg.topic).rsplit("/", 1)[1]
                ack = store.ack(bytes(msg.payload))
                await c.publish(f"fittrack/v1/ack/{tenant}/{agent}", ack.SerializeToString(), qos=1)

    task = asyncio.create_task(responder())
    try:
        await asyncio.wait_for(ready.wait(), 10)
        cfg = LoadConfig(transport="mqtt", target=f"{mqtt_broker.host}:{mqtt_broker.port}", tenant=tenant, agents=2,
                         devices=2, kinds="hr,bike", seconds=30, batch_s=5, seed=2, duplicate_p=0.3, resend_p=0.3)
        cfg.tokens = {a: f"{a}.x" for a in cfg.agent_ids()}
        rep = await asyncio.wait_for(run_load(cfg), 60)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    check_report(rep, store)
    assert rep["totals"]["batch_duplicate"] > 0
