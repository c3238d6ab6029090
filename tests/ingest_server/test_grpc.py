"""gRPC ingest end to end against real TimescaleDB: acks after commit, auth, tenancy, validation,
dead letters, Subscribe with lag signalling, health and reflection."""

from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ingest_server.app import IngestApp
from ingest_server.config import IngestConfig
from protocols.wire import SampleBatch, encode_envelope
from protocols.wire.gen.fittrack.v1 import envelope_pb2 as epb
from protocols.wire.gen.fittrack.v1 import ingest_pb2

from .helpers import UPLOAD, batch_statuses, envelope, hr_batch, imu_batch, now_s_us, status, upload


@pytest.fixture(scope="module")
def dsn(pg_database_factory) -> str:
    return pg_database_factory("grpc")


@pytest.fixture
async def app(dsn: str):
    async with IngestApp(IngestConfig(db=dsn, grpc="127.0.0.1:0", maintain_interval_s=0)) as a:
        yield a


async def test_ack_only_after_the_batch_is_queryable(app: IngestApp) -> None:
    tok = await app.add_agent("gym-a", "hub-a1")
    # every ack must find its samples already committed: query right when each ack arrives
    base = now_s_us() - 3_600_000_000
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as ch:
        call = ch.stream_stream(UPLOAD, request_serializer=None, response_deserializer=epb.Ack.FromString)(
            metadata=(("authorization", f"Bearer {tok}"),))
        for s in range(20):
            await call.write(envelope([hr_batch("a1-strap", s, t0_us=base + s * 10_000_000),
                                       imu_batch("a1-imu", s, t0_us=base + s * 2_000_000)],
                                      agent="hub-a1", tenant="gym-a", seq=s))
        await call.done_writing()
        n = 0
        async for ack in call:
            assert status(ack) == "ACK_STATUS_OK", ack
            seqs = [b.seq for b in ack.batches]
            rows = await app.store.query(
                "SELECT count(*) FROM ledger WHERE device_id IN ('a1-strap', 'a1-imu') AND seq = %s", (seqs[0],))
            assert rows[0][0] == 2
            got = await app.store.query(
                "SELECT count(*) FROM samples_all WHERE device_id = 'a1-imu' AND time >= to_timestamp(%s / 1e6)"
                " AND time < to_timestamp(%s / 1e6)",
                (base + seqs[0] * 2_000_000, base + seqs[0] * 2_000_000 + 2_000_000))
            assert got[0][0] == 600
            n += 1
    assert n == 20


async def test_resends_are_acked_duplicate_and_stored_once(app: IngestApp) -> None:
    tok = await app.add_agent("gym-b", "hub-b1")
    b = [hr_batch("b1-strap", s, t0_us=now_s_us() - 7_200_000_000 + s * 10_000_000) for s in range(6)]
    envs = [envelope([b[i], b[i + 1]], agent="hub-b1", tenant="gym-b", seq=i) for i in range(0, 6, 2)]
    acks = await upload(app.grpc_port, tok, envs)
    assert [batch_statuses(a) for a in acks] == [["BATCH_STATUS_STORED"] * 2] * 3
    # the same envelopes again, reordered, plus a new envelope mixing old and new batches, twice over
    mixed = envelope([b[5], b[0]], agent="hub-b1", tenant="gym-b", seq=10)
    acks = await upload(app.grpc_port, tok, [envs[2], envs[0], mixed, envs[1], mixed])
    assert all(s == "BATCH_STATUS_DUPLICATE" for a in acks for s in batch_statuses(a))
    rows = await app.store.query("SELECT count(*), count(DISTINCT time) FROM samples_all WHERE device_id = 'b1-strap'")
    assert tuple(rows[0]) == (60, 60)
    assert app.metrics.batches_duplicate.labels("grpc")._value.get() >= 8


async def test_wrong_missing_and_revoked_credentials_are_refused(app: IngestApp) -> None:
    tok = await app.add_agent("gym-c", "hub-c1")
    env = envelope([hr_batch("c1-strap", 1)], agent="hub-c1", tenant="gym-c", seq=1)
    for bad, code in ((None, grpc.StatusCode.UNAUTHENTICATED), ("hub-c1.wrongsecret", grpc.StatusCode.UNAUTHENTICATED),
                      ("nosuch.abc", grpc.StatusCode.UNAUTHENTICATED), ("garbage", grpc.StatusCode.UNAUTHENTICATED)):
        with pytest.raises(grpc.aio.AioRpcError) as ei:
            await upload(app.grpc_port, bad, [env])
        assert ei.value.code() == code, bad
        if bad and "." in bad:  # the refusal never echoes the secret
            assert bad.rpartition(".")[2] not in ei.value.details()
    # a service credential cannot upload
    svc = await app.add_agent("gym-c", "svc-c", "service")
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await upload(app.grpc_port, svc, [env])
    assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # revoked: a new stream is refused; an open stream's next envelopes are rejected
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as ch:
        call = ch.stream_stream(UPLOAD, request_serializer=None, response_deserializer=epb.Ack.FromString)(
            metadata=(("authorization", f"Bearer {tok}"),))
        await call.write(env)
        first = await call.read()
        assert status(first) == "ACK_STATUS_OK"
        assert await app.store.revoke_agent("hub-c1")
        await asyncio.sleep(app.config.auth_cache_s + 0.1)
        await call.write(envelope([hr_batch("c1-strap", 2)], agent="hub-c1", tenant="gym-c", seq=2))
        second = await call.read()
        assert status(second) == "ACK_STATUS_REJECTED" and "revoked" in second.message
        await call.done_writing()
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await upload(app.grpc_port, tok, [env])
    assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED and "revoked" in ei.value.details()
    rows = await app.store.query("SELECT count(*) FROM ledger WHERE device_id = 'c1-strap'")
    assert rows[0][0] == 1


async def test_envelope_of_another_agent_and_device_of_another_tenant_are_refused(app: IngestApp) -> None:
    tok_d = await app.add_agent("gym-d", "hub-d1")
    tok_e = await app.add_agent("gym-e", "hub-e1")
    await upload(app.grpc_port, tok_e, [envelope([hr_batch("e-strap", 1)], agent="hub-e1", tenant="gym-e", seq=1)])
    # hub-d1 claims to be hub-e1
    acks = await upload(app.grpc_port, tok_d, [envelope([hr_batch("d-strap", 1)], agent="hub-e1", tenant="gym-e", seq=1)])
    assert status(acks[0]) == "ACK_STATUS_REJECTED" and "credential is agent 'hub-d1'" in acks[0].message
    # hub-d1 sends its own device and gym-e's device: its own is stored, the other refused
    acks = await upload(app.grpc_port, tok_d, [envelope([hr_batch("d-strap", 2), hr_batch("e-strap", 99)],
                                                        agent="hub-d1", tenant="gym-d", seq=2)])
    assert status(acks[0]) == "ACK_STATUS_PARTIAL"
    assert batch_statuses(acks[0]) == ["BATCH_STATUS_STORED", "BATCH_STATUS_REJECTED"]
    assert "belongs to another tenant" in acks[0].batches[1].reason
    rows = await app.store.query("SELECT count(*) FROM ledger WHERE device_id = 'e-strap'")
    assert rows[0][0] == 1
    dl = await app.store.query("SELECT agent_id, reason FROM dead_letters WHERE agent_id = 'hub-d1' ORDER BY id")
    assert len(dl) == 2 and "credential" in dl[0][1] and "another tenant" in dl[1][1]


async def test_every_validation_reject_lands_in_the_dead_letter_table(app: IngestApp) -> None:
    tok = await app.add_agent("gym-f", "hub-f1")
    now = now_s_us()
    good = hr_batch("f-strap", 1)
    cases = {
        "physical range": hr_batch("f-strap", 2, bpm=300),
        "in the future": hr_batch("f-strap", 3, t0_us=now + 3_600_000_000),
        "days old": hr_batch("f-strap", 4, t0_us=now - 500 * 86_400_000_000),
        "empty batch": SampleBatch("f-strap", "heart_rate", 5, np.empty(0, np.int64), np.empty(0, np.int64)),
        "2**63-1": hr_batch("f-strap", 2**63 + 5),
        "physical range ": SampleBatch("f-imu", "accel", 1, now - 10**6 + np.arange(100) * 10_000,
                                       np.full((100, 3), 400_000), scale=1 / 4096, unit="g"),
    }
    env = envelope([good, *cases.values()], agent="hub-f1", tenant="gym-f", seq=1)
    acks = await upload(app.grpc_port, tok, [env, b"\x0a\x03abc not an envelope"])
    ack = acks[1] if acks[1].envelope_seq == 1 else acks[0]
    bad = acks[0] if ack is acks[1] else acks[1]
    assert status(ack) == "ACK_STATUS_PARTIAL"
    assert batch_statuses(ack) == ["BATCH_STATUS_STORED"] + ["BATCH_STATUS_REJECTED"] * len(cases)
    for want, b in zip(cases, ack.batches[1:]):
        assert want.strip() in b.reason, (want, b.reason)
    assert status(bad) == "ACK_STATUS_REJECTED" and "malformed envelope" in bad.message
    rows = await app.store.query("SELECT device_id, seq, reason, payload FROM dead_letters WHERE agent_id = 'hub-f1' ORDER BY id")
    assert len(rows) == len(cases) + 1
    reasons = [r[2] for r in rows]
    for want in cases:
        assert any(want.strip() in r for r in reasons), want
    assert any("malformed" in r for r in reasons)
    # the dead letter keeps the raw batch: it decodes back to what was sent
    from protocols.wire import decode_batches

    rng_row = next(r for r in rows if r[1] == 2 and r[0] == "f-strap")
    back = decode_batches(bytes(rng_row[3]))[0]
    assert back.seq == 2 and int(back.values[0]) == 300
    assert app.metrics.batches_rejected.labels("grpc", "range")._value.get() == 2
    assert app.metrics.batches_rejected.labels("grpc", "time")._value.get() == 2
    assert (await app.store.query("SELECT count(*) FROM ledger WHERE device_id = 'f-strap'"))[0][0] == 1


async def test_subscribe_filters_and_signals_lag(app: IngestApp) -> None:
    tok = await app.add_agent("gym-g", "hub-g1")
    svc = await app.add_agent("gym-g", "svc-g", "service")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as ch:
        sub = ch.unary_stream("/fittrack.v1.Ingest/Subscribe", request_serializer=ingest_pb2.SubscribeRequest.SerializeToString,
                              response_deserializer=ingest_pb2.LiveEvent.FromString)
        with pytest.raises(grpc.aio.AioRpcError) as ei:  # other tenant
            async for _ in sub(ingest_pb2.SubscribeRequest(tenant="gym-a"), metadata=(("authorization", f"Bearer {svc}"),)):
                pass
        assert ei.value.code() == grpc.StatusCode.PERMISSION_DENIED
        call = sub(ingest_pb2.SubscribeRequest(tenant="gym-g", streams=["heart_rate"], buffer_batches=4),
                   metadata=(("authorization", f"Bearer {svc}"),))
        await asyncio.sleep(0.3)
        assert app.metrics.subscribers._value.get() == 1
        t0 = now_s_us() - 3_600_000_000
        await upload(app.grpc_port, tok, [envelope([hr_batch("g-strap", s, t0_us=t0 + s * 10_000_000), imu_batch("g-imu", s)],
                                                   agent="hub-g1", tenant="gym-g", seq=s) for s in range(3)])
        got = [await asyncio.wait_for(call.read(), 5) for _ in range(3)]
        assert sorted(e.batch.seq for e in got) == [0, 1, 2]
        assert {e.batch.stream for e in got} == {"heart_rate"} and all(e.agent_id == "hub-g1" for e in got)
        # a subscriber that does not read: its buffer (4) fills, ingest goes on, it is told what it missed
        app.hub.publish("gym-g", "hub-g1", [hr_batch("g-strap", 100 + i) for i in range(50)])
        events = [await asyncio.wait_for(call.read(), 5) for _ in range(5)]
        lagged = [e for e in events if e.WhichOneof("event") == "lagged"]
        assert lagged and sum(e.lagged.dropped_batches for e in lagged) == 46
        call.cancel()


async def test_health_and_reflection(app: IngestApp) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as ch:
        h = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service="fittrack.v1.Ingest"))
        assert h.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        async for resp in call:
            names = {s.name for s in resp.list_services_response.service}
            break
        assert "fittrack.v1.Ingest" in names and "grpc.health.v1.Health" in names


async def test_graceful_stop_finishes_in_flight_commits(dsn: str) -> None:
    app = IngestApp(IngestConfig(db=dsn, grpc="127.0.0.1:0", maintain_interval_s=0))
    await app.start()
    tok = await app.add_agent("gym-h", "hub-h1")
    t0 = now_s_us() - 3_600_000_000
    envs = [envelope([imu_batch(f"h-imu", s, n=2000, t0_us=t0 + s * 20_000_000)], agent="hub-h1", tenant="gym-h", seq=s)
            for s in range(30)]
    task = asyncio.create_task(upload(app.grpc_port, tok, envs))
    while app.metrics.envelopes.labels("grpc", "ACK_STATUS_OK")._value.get() < 3:
        await asyncio.sleep(0.005)
    await app.stop()  # the stream stops taking envelopes, acks those in flight, ends cleanly
    acks = await task
    assert 3 <= len(acks) <= 30 and all(status(a) == "ACK_STATUS_OK" for a in acks)
    acked = {a.envelope_seq for a in acks}
    async with IngestApp(IngestConfig(db=dsn, grpc="127.0.0.1:0", maintain_interval_s=0)) as again:
        rows = await again.store.query("SELECT seq FROM ledger WHERE device_id = 'h-imu'")
        assert {r[0] for r in rows} == acked  # committed <=> acked: nothing half-done
        # the agent resends what got no ack to the next server
        rest = await upload(again.grpc_port, tok, [e for s, e in enumerate(envs) if s not in acked])
        assert all(b.status == epb.BATCH_STATUS_STORED for a in rest for b in a.batches)
        n = await again.store.query("SELECT count(*) FROM ledger WHERE device_id = 'h-imu'")
    assert n[0][0] == 30
