"""kill -9 the server mid-stream, restart it: every acked batch is present, none twice."""

from __future__ import annotations

import asyncio
import os
import signal

import grpc
import psycopg

from protocols.wire.gen.fittrack.v1 import envelope_pb2 as epb

from .helpers import UPLOAD, cli, envelope, hr_batch, imu_batch, now_s_us, start_server, status, upload


async def test_kill_9_mid_stream_then_restart_keeps_every_acked_batch_exactly_once(pg_database_factory) -> None:
    dsn = pg_database_factory("crash")
    token = cli("ingest", "agent", "add", "--db", dsn, "--tenant", "gym-k", "--agent", "hub-k").stdout.strip()
    base = now_s_us() - 7_200_000_000
    n = 400
    envs = [envelope([imu_batch("k-imu", s, n=1000, t0_us=base + s * 10_000_000), hr_batch("k-strap", s, t0_us=base + s * 10_000_000)],
                     agent="hub-k", tenant="gym-k", seq=s) for s in range(n)]
    args = ["--db", dsn, "--grpc", "127.0.0.1:0", "--maintain-interval-s", "0"]
    proc, addr = start_server(args)
    acked: set[int] = set()
    try:
        async with grpc.aio.insecure_channel(addr["grpc"]) as ch:
            call = ch.stream_stream(UPLOAD, request_serializer=None, response_deserializer=epb.Ack.FromString)(
                metadata=(("authorization", f"Bearer {token}"),))

            async def send() -> None:
                for e in envs:
                    await call.write(e)

            sender = asyncio.create_task(send())
            try:
                async for ack in call:
                    assert status(ack) == "ACK_STATUS_OK"
                    acked.add(ack.envelope_seq)
                    if len(acked) == 60:
                        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: more envelopes are in flight
            except grpc.aio.AioRpcError:
                pass
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        assert proc.wait(10) == -signal.SIGKILL
        assert 60 <= len(acked) < n, len(acked)
    finally:
        if proc.poll() is None:
            proc.kill()
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        present = {r[0] for r in await (await conn.execute("SELECT seq FROM ledger WHERE device_id = 'k-imu'")).fetchall()}
        assert acked <= present, sorted(acked - present)[:10]   # acked => committed
        dup = await (await conn.execute(
            "SELECT count(*) FROM (SELECT time, channel FROM samples_all WHERE device_id = 'k-imu' GROUP BY 1, 2 HAVING count(*) > 1) d"
        )).fetchone()
        assert dup[0] == 0
    # restart and resend everything (the agent resends what it has no ack for; here, all of it)
    proc, addr = start_server(args)
    try:
        acks = await upload(int(addr["grpc"].rsplit(":", 1)[1]), token, envs, timeout_s=120)
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
    assert len(acks) == n
    bad = [(a.envelope_seq, status(a), a.message, [b.reason for b in a.batches]) for a in acks if status(a) != "ACK_STATUS_OK"]
    assert not bad, bad[:3]
    for a in acks:
        want = "BATCH_STATUS_DUPLICATE" if a.envelope_seq in present else "BATCH_STATUS_STORED"
        assert [epb.BatchStatus.Name(b.status) for b in a.batches] == [want, want], a.envelope_seq
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        rows = await (await conn.execute(
            "SELECT count(*), count(DISTINCT (time, channel)) FROM samples_all WHERE device_id = 'k-imu'")).fetchone()
        assert rows == (n * 3000, n * 3000)
        rows = await (await conn.execute("SELECT count(*), count(DISTINCT time) FROM samples WHERE device_id = 'k-strap'")).fetchone()
        assert rows == (n * 10, n * 10)


async def test_processes_share_the_grpc_port_and_stop_together(pg_database_factory) -> None:
    dsn = pg_database_factory("procs")
    token = cli("ingest", "agent", "add", "--db", dsn, "--tenant", "gym-w", "--agent", "hub-w").stdout.strip()
    proc, addr = start_server(["--db", dsn, "--grpc", "127.0.0.1:0", "--processes", "2", "--maintain-interval-s", "0"])
    try:
        port = int(addr["grpc"].rsplit(":", 1)[1])
        base = now_s_us() - 3_600_000_000
        jobs = [upload(port, token, [envelope([hr_batch(f"w-strap-{c}", s, t0_us=base + s * 10_000_000)], agent="hub-w",
                                              tenant="gym-w", seq=c * 100 + s) for s in range(20)]) for c in range(8)]
        acks = [a for r in await asyncio.gather(*jobs) for a in r]
        assert len(acks) == 160 and all(status(a) == "ACK_STATUS_OK" for a in acks)
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        assert (await (await conn.execute("SELECT count(*) FROM ledger")).fetchone())[0] == 160
