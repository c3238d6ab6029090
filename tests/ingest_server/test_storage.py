"""Both storage backends: exactly-once writes, the common view, rollups, agents, devices, dead letters."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ingest_server.storage import DeadLetter, WriteRequest, WriteStatus, open_storage
from ingest_server.storage.timescale import TimescaleBackend

from .helpers import hr_batch, imu_batch, now_s_us


@pytest.fixture(params=["sqlite", "timescale"])
def dsn(request: pytest.FixtureRequest, tmp_path, pg_database_factory) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'store.sqlite'}"
    return pg_database_factory("ingst")


def _q(store, sql: str) -> str:
    return sql.replace("%s", "?") if store.kind == "sqlite" else sql


async def _count(store, device: str, stream: str) -> int:
    col = "time_us" if store.kind == "sqlite" else "time"
    rows = await store.query(_q(store, f"SELECT count(DISTINCT {col}) FROM samples_all WHERE device_id = %s AND stream = %s"),
                             (device, stream))
    return rows[0][0]


async def test_resends_same_seq_reordered_and_within_one_group_are_stored_once(dsn: str) -> None:
    async with open_storage(dsn) as store:
        b = [hr_batch("strap-1", s, t0_us=now_s_us() - 600_000_000 + s * 10_000_000) for s in range(5)]
        first = await store.write_many([WriteRequest("gym", "hub", [b[0], b[1]]), WriteRequest("gym", "hub", [b[1], b[2]])])
        assert [o.status for o in first[0]] == [WriteStatus.STORED, WriteStatus.STORED]
        assert [o.status for o in first[1]] == [WriteStatus.DUPLICATE, WriteStatus.STORED]
        again = await store.write_batches("gym", "hub", [b[4], b[2], b[3], b[0]])  # reordered resend + new
        assert [o.status for o in again] == [WriteStatus.STORED, WriteStatus.DUPLICATE, WriteStatus.STORED, WriteStatus.DUPLICATE]
        assert await _count(store, "strap-1", "heart_rate") == 50
        ledger = await store.query("SELECT count(*) FROM ledger")
        assert ledger[0][0] == 5


async def test_high_rate_batches_round_trip_through_the_view(dsn: str) -> None:
    async with open_storage(dsn) as store:
        b = imu_batch("imu-1", 7, n=500)
        await store.write_batches("gym", "hub", [b])
        col = "time_us" if store.kind == "sqlite" else "(extract(epoch FROM time) * 1e6)::bigint"
        rows = await store.query(_q(store, f"SELECT {col}, channel, value FROM samples_all WHERE device_id = %s ORDER BY 1, 2"),
                                 ("imu-1",))
        assert len(rows) == 1500
        t = np.array([r[0] for r in rows]).reshape(500, 3)[:, 0]
        v = np.array([r[2] for r in rows]).reshape(500, 3)
        assert np.array_equal(t, b.t_us)
        np.testing.assert_allclose(v, b.values * b.scale)
        if store.kind == "timescale":  # one row per <= 240 values, not per sample
            parts = await store.query("SELECT count(*) FROM sample_blocks WHERE device_id = 'imu-1'")
            assert parts[0][0] == 7  # 500 samples x 3 channels / (80 samples per row)


async def test_irregular_high_rate_timestamps_survive(pg_database_factory) -> None:
    async with TimescaleBackend(pg_database_factory("irr")) as store:
        t0 = now_s_us() - 3_600_000_000
        t = t0 + np.cumsum(np.random.default_rng(1).integers(700_000, 1_100_000, 100))
        from protocols.wire import SampleBatch

        b = SampleBatch("strap-9", "rr_interval", 1, t, np.full(100, 900), scale=1 / 1024, unit="s")
        await store.write_batches("gym", "hub", [b])
        rows = await store.query("SELECT (extract(epoch FROM time) * 1e6)::bigint FROM samples_all WHERE device_id = 'strap-9' ORDER BY 1")
        assert [r[0] for r in rows] == t.tolist()


async def test_concurrent_writers_on_two_connections_store_each_batch_once(pg_database_factory) -> None:
    dsn = pg_database_factory("conc")
    async with TimescaleBackend(dsn) as a, TimescaleBackend(dsn) as b:
        base = now_s_us() - 600_000_000
        batches = [hr_batch(f"strap-{d}", s, t0_us=base + s * 10_000_000) for d in range(20) for s in range(5)]
        rng = np.random.default_rng(0)

        async def writer(store, order):
            out = []
            for i in range(0, len(order), 10):
                out += await store.write_batches("gym", "hub", [batches[j] for j in order[i:i + 10]])
            return out

        res = await asyncio.gather(*(writer(s, rng.permutation(len(batches))) for s in (a, b, a, b)))
        stored = sum(o.status is WriteStatus.STORED for r in res for o in r)
        assert stored == len(batches)
        rows = await a.query("SELECT count(*), count(DISTINCT (device_id, time)) FROM samples")
        assert rows[0] == (len(batches) * 10, len(batches) * 10)


async def test_hr_rollup_and_retention(dsn: str) -> None:
    async with open_storage(dsn) as store:
        t0 = now_s_us() // 60_000_000 * 60_000_000 - 3 * 60_000_000
        await store.write_batches("gym", "hub", [hr_batch("strap-1", 1, n=120, bpm=100, t0_us=t0)])
        await store.maintain()
        rows = await store.query("SELECT n, min_bpm, max_bpm, avg_bpm FROM hr_1m ORDER BY 1")
        assert [tuple(r) for r in rows] == [(60, 100.0, 100.0, 100.0), (60, 100.0, 100.0, 100.0)]
        # new data in an already rolled-up minute is picked up by the next run
        await store.write_batches("gym", "hub", [hr_batch("strap-1", 2, n=1, bpm=160, t0_us=t0 + 500_000)])
        await store.maintain()
        rows = await store.query("SELECT n, max_bpm FROM hr_1m ORDER BY n DESC")
        assert tuple(rows[0]) == (61, 160.0)
        # retention: whole chunks (1 day) older than the limit are dropped (drop_chunks), recent data stays
        await store.write_batches("gym", "hub", [hr_batch("strap-old", 1, n=30, t0_us=t0 - 3 * 86_400_000_000)])
        done = await store.maintain(retention_days=1.5)
        assert await _count(store, "strap-old", "heart_rate") == 0, done
        assert await _count(store, "strap-1", "heart_rate") == 121


async def test_agents_devices_and_dead_letters(dsn: str) -> None:
    async with open_storage(dsn) as store:
        await store.add_agent("hub-1", "gym", b"h" * 32)
        from ingest_server.storage import AgentExists

        with pytest.raises(AgentExists):
            await store.add_agent("hub-1", "other", b"x" * 32)
        assert (await store.get_agent("hub-1")).tenant == "gym"
        assert await store.revoke_agent("hub-1") and not await store.revoke_agent("hub-1")
        assert (await store.get_agent("hub-1")).revoked
        assert await store.claim_devices("gym", "hub-1", ["a", "b"]) == {"a": "gym", "b": "gym"}
        assert await store.claim_devices("rival", "x", ["b", "c"]) == {"b": "gym", "c": "rival"}
        await store.add_dead_letters([DeadLetter("gym", "hub-1", "grpc", "bad thing", b"\x00\x01", "a", "heart_rate", 3)])
        dl = await store.dead_letters()
        assert dl[0]["reason"] == "bad thing" and dl[0]["payload"] == b"\x00\x01" and dl[0]["seq"] == 3
