"""Bad input never crashes the pipeline; storage outages give RETRY then recover; /healthz, /metrics."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_server.app import IngestApp
from ingest_server.auth import Principal
from ingest_server.config import IngestConfig
from ingest_server.storage.timescale import TimescaleBackend
from protocols.wire.gen.fittrack.v1 import envelope_pb2 as epb

from .helpers import envelope, hr_batch, status, upload


@pytest.fixture(scope="module")
def sqlite_app_loop(tmp_path_factory):
    """One app on SQLite and its own event loop, shared by the hypothesis examples."""
    loop = asyncio.new_event_loop()
    app = IngestApp(IngestConfig(db=f"sqlite:{tmp_path_factory.mktemp('fz') / 'fz.sqlite'}", maintain_interval_s=0))
    loop.run_until_complete(app.start())
    loop.run_until_complete(app.add_agent("gym-z", "hub-z"))
    yield app, loop
    loop.run_until_complete(app.stop())
    loop.close()


GOOD = envelope([hr_batch("z-strap", 1)], agent="hub-z", tenant="gym-z", seq=1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.binary(max_size=400),
    st.builds(lambda i, b: GOOD[:i] + bytes([b]) + GOOD[i + 1:], st.integers(0, len(GOOD) - 1), st.integers(0, 255)),
    st.builds(lambda i: GOOD[:i], st.integers(0, len(GOOD))),
))
def test_arbitrary_bytes_get_an_ack_never_an_exception(sqlite_app_loop, data: bytes) -> None:
    app, loop = sqlite_app_loop
    ack = loop.run_until_complete(app.pipeline.handle(Principal("hub-z", "gym-z", "agent"), data, "grpc"))
    assert isinstance(ack, epb.Ack)
    if ack.status == epb.ACK_STATUS_REJECTED:
        assert ack.message
    else:  # a mutation that still decodes: every batch has a definite status
        assert ack.status in (epb.ACK_STATUS_OK, epb.ACK_STATUS_PARTIAL)
        assert all(b.status != epb.BATCH_STATUS_UNSPECIFIED for b in ack.batches)


async def _get(port: int, path: str) -> bytes:
    """HTTP GET in a thread (the server runs on this test's event loop)."""
    return await asyncio.to_thread(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read())


async def test_storage_outage_acks_retry_then_recovers(pg_database_factory, pg_admin_dsn) -> None:
    dsn = pg_database_factory("outage")
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    store = TimescaleBackend(dsn, timeout_s=1.0)
    cfg = IngestConfig(db=dsn, grpc="127.0.0.1:0", metrics="127.0.0.1:0", maintain_interval_s=0)
    async with IngestApp(cfg, store=store) as app:
        tok = await app.add_agent("gym-o", "hub-o")
        ok = await upload(app.grpc_port, tok, [envelope([hr_batch("o-strap", 1)], agent="hub-o", tenant="gym-o", seq=1)])
        assert status(ok[0]) == "ACK_STATUS_OK"
        health = json.loads(await _get(app.metrics_port, "/healthz"))
        assert health["ok"] and health["storage"] == "timescale"
        with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            acks = await upload(app.grpc_port, tok, [envelope([hr_batch("o-strap", 2)], agent="hub-o", tenant="gym-o", seq=2)])
            assert status(acks[0]) == "ACK_STATUS_RETRY" and acks[0].retry_after_ms > 0, acks[0]
            with pytest.raises(urllib.error.HTTPError) as ei:
                await _get(app.metrics_port, "/healthz")
            assert ei.value.code == 503
        finally:
            with psycopg.connect(pg_admin_dsn, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        for _ in range(50):  # the pool reconnects; the resend is stored
            acks = await upload(app.grpc_port, tok, [envelope([hr_batch("o-strap", 2)], agent="hub-o", tenant="gym-o", seq=2)])
            if status(acks[0]) == "ACK_STATUS_OK":
                break
            await asyncio.sleep(0.2)
        assert status(acks[0]) == "ACK_STATUS_OK" and acks[0].batches[0].status == epb.BATCH_STATUS_STORED
        text = (await _get(app.metrics_port, "/metrics")).decode()
        assert 'fittrack_ingest_envelopes_total{status="ACK_STATUS_RETRY",transport="grpc"} 1.0' in text
        assert "fittrack_ingest_storage_errors_total 1.0" in text
        assert (await app.store.query("SELECT count(*) FROM ledger"))[0][0] == 2


async def test_an_envelope_the_store_refuses_is_rejected_alone_not_retried_forever(tmp_path) -> None:
    from ingest_server.storage.sqlite import SqliteBackend

    class Picky(SqliteBackend):
        async def write_many(self, requests):
            if any(b.device_id == "poison" for r in requests for b in r.batches):
                raise ValueError("cannot store this")
            return await super().write_many(requests)

    cfg = IngestConfig(db="sqlite:unused", grpc="127.0.0.1:0", maintain_interval_s=0)
    async with IngestApp(cfg, store=Picky(tmp_path / "p.sqlite")) as app:
        tok = await app.add_agent("gym-p", "hub-p")
        envs = [envelope([hr_batch("poison" if s == 3 else "fine", s)], agent="hub-p", tenant="gym-p", seq=s) for s in range(8)]
        acks = await upload(app.grpc_port, tok, envs)
        assert [status(a) for a in acks] == ["ACK_STATUS_OK"] * 3 + ["ACK_STATUS_REJECTED"] + ["ACK_STATUS_OK"] * 4
        assert "refused" in acks[3].message
        dl = await app.store.dead_letters()
        assert len(dl) == 1 and "cannot store this" in dl[0]["reason"]
