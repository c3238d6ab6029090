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
