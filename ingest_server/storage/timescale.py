"""TimescaleDB storage (PostgreSQL 15 + timescaledb, Apache or full edition), psycopg 3 async pool.

Tables (migrations in :data:`MIGRATIONS`, applied at ``open()`` under an advisory lock):

``ledger``         dedup ledger, PRIMARY KEY (device_id, stream, seq), written in the same
                   transaction as the samples (``INSERT ... ON CONFLICT DO NOTHING RETURNING``
                   tells which batches are new; only those are copied).
``samples``        hypertable, one narrow row per sample and channel:
                   ``(time, device_id, stream, channel, value)``, value physical (raw * scale).
                   Low-rate streams (HR, RR, power, ...) land here.
``sample_blocks``  hypertable, one row per part of a high-rate batch (>= BLOCK_MIN_VALUES values)
                   with int4 raw value arrays ``raw[sample][channel]``, ``scale``, and either a
                   fixed ``period_us`` or per-sample ``t_off_us``; parts hold <= 240 values so
                   rows stay out of TOAST (DESIGN §7).
``samples_all``    view presenting both as ``(time, device_id, stream, channel, value)``.
``hr_1m``          per-minute HR rollup (count, min, max, avg), refreshed by :meth:`maintain`
                   (Apache edition: no continuous aggregates); with the full edition (license
                   'timescale') a continuous aggregate ``hr_1m_cagg`` and a retention policy
                   are created as well.
``agents``, ``devices``, ``dead_letters``, ``schema_migrations``, ``maintenance_state``.

Samples are written with binary COPY; the COPY stream is built with numpy (no per-row Python).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from typing import Sequence

import numpy as np
import psycopg
from psycopg import sql as _sql  # noqa: F401  (re-exported for callers building queries)
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from protocols.wire import SampleBatch

from .base import (
    AgentExists,
    AgentRecord,
    BatchOutcome,
    DeadLetter,
    StorageBackend,
    StorageUnavailable,
    WriteRequest,
    WriteStatus,
)

log = logging.getLogger("ingest_server.storage.timescale")

#: A batch with at least this many values (samples x channels) and int32-sized raw values goes to
#: ``sample_blocks`` (one row per <= 240 values); smaller ones to the narrow ``samples``.
BLOCK_MIN_VALUES = 64
#: Values per ``sample_blocks`` row: 240 x 8 bytes (binary int4 array) stays below the TOAST
#: threshold (~2 kB), measured in DESIGN §7 as the fast regime.
BLOCK_ROW_VALUES = 240
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC in Unix µs: PostgreSQL's timestamp origin
INT4_OID = 23

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE EXTENSION IF NOT EXISTS timescaledb;
CREATE TABLE ledger (
    device_id text COLLATE "C" NOT NULL,
    stream text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    tenant text NOT NULL,
    agent_id text NOT NULL,
    samples integer NOT NULL,
    t_min timestamptz,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, stream, seq)
);
CREATE INDEX ledger_committed ON ledger (committed_at);
CREATE TABLE samples (
    time timestamptz NOT NULL,
    device_id text COLLATE "C" NOT NULL,
    stream text COLLATE "C" NOT NULL,
    channel smallint NOT NULL,
    value double precision NOT NULL
);
SELECT create_hypertable('samples', 'time', chunk_time_interval => interval '1 day', create_default_indexes => false);
CREATE INDEX samples_device_time ON samples (device_id, stream, time DESC);
CREATE TABLE sample_blocks (
    time timestamptz NOT NULL,
    device_id text COLLATE "C" NOT NULL,
    stream text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    part smallint NOT NULL,
    period_us bigint,
    t_off_us integer[],
    raw integer[] NOT NULL,
    scale double precision NOT NULL
);
SELECT create_hypertable('sample_blocks', 'time', chunk_time_interval => interval '1 day', create_default_indexes => false);
CREATE INDEX sample_blocks_device_time ON sample_blocks (device_id, stream, time DESC);
CREATE VIEW samples_all AS
    SELECT time, device_id, stream, channel, value FROM samples
    UNION ALL
    SELECT b.time + (CASE WHEN b.t_off_us IS NULL THEN (i - 1) * b.period_us ELSE b.t_off_us[i] END) * interval '1 microsecond',
           b.device_id, b.stream, (c - 1)::smallint, b.raw[i][c] * b.scale
    FROM sample_blocks b,
         generate_series(1, array_length(b.raw, 1)) AS i,
         generate_series(1, array_length(b.raw, 2)) AS c;
CREATE TABLE agents (
    agent_id text PRIMARY KEY,
    tenant text NOT NULL,
    role text NOT NULL DEFAULT 'agent',
    secret_sha256 bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE TABLE devices (
    device_id text PRIMARY KEY,
    tenant text NOT NULL,
    agent_id text NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE dead_letters (
    id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    tenant text NOT NULL,
    agent_id text NOT NULL,
    transport text NOT NULL,
    device_id text,
    stream text,
    seq bigint,
    reason text NOT NULL,
    payload bytea NOT NULL
);
CREATE TABLE hr_1m (
    device_id text NOT NULL,
    bucket timestamptz NOT NULL,
    n integer NOT NULL,
    min_bpm double precision NOT NULL,
    max_bpm double precision NOT NULL,
    avg_bpm double precision NOT NULL,
    PRIMARY KEY (device_id, bucket)
);
CREATE TABLE maintenance_state (key text PRIMARY KEY, value timestamptz NOT NULL);
"""),
]

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)


def _us(t: float | None = None) -> int:
    return time.time_ns() // 1000 if t is None else int(t * 1e6)


# ------------------------------------------------------------------------- binary COPY rows


def narrow_rows(b: SampleBatch) -> bytes:
    """Binary COPY tuples of ``samples (time, device_id, stream, channel, value)`` for batch ``b``."""
    return narrow_copy([b])


def narrow_copy(batches: Sequence[SampleBatch]) -> bytes:
    """Binary COPY tuples of ``samples`` for many batches, built with numpy: one structured array
    per distinct (device_id length, stream length), no per-row Python."""
    groups: dict[tuple[int, int], list[tuple[bytes, bytes, SampleBatch]]] = {}
    for b in batches:
        dev, st = b.device_id.encode(), b.stream.encode()
        groups.setdefault((len(dev), len(st)), []).append((dev, st, b))
    out = []
    for (ld, ls), items in groups.items():
        dt = np.dtype([
            ("nf", ">i2"), ("l1", ">i4"), ("t", ">i8"), ("l2", ">i4"), ("dev", f"S{ld}"),
            ("l3", ">i4"), ("st", f"S{ls}"), ("l4", ">i4"), ("ch", ">i2"), ("l5", ">i4"), ("v", ">f8"),
        ])
        ts, chs, vs, counts = [], [], [], []
        for _, _, b in items:
            n, ch = b.t_us.shape[0], b.channels
            if ch == 1:
                ts.append(b.t_us)
                vs.append(b.values.reshape(-1) * b.scale if b.scale != 1.0 else b.values.reshape(-1))
            else:
                ts.append(np.repeat(b.t_us, ch))
                vs.append(b.values.reshape(-1) * b.scale)
            chs.append(ch)
            counts.append(n * ch)
        total = sum(counts)
        rows = np.empty(total, dt)
        rows["nf"] = 5
        rows["l1"] = 8
        rows["t"] = np.concatenate(ts) - PG_EPOCH_US
        rows["l2"] = ld
        rows["dev"] = np.repeat(np.array([d for d, _, _ in items], dtype=f"S{ld}"), counts)
        rows["l3"] = ls
        rows["st"] = np.repeat(np.array([x for _, x, _ in items], dtype=f"S{ls}"), counts)
        rows["l4"] = 2
        if max(chs) == 1:
            rows["ch"] = 0
        else:
            rows["ch"] = np.concatenate([np.tile(np.arange(c, dtype=np.int16), k // c) for c, k in zip(chs, counts)])
        rows["l5"] = 8
        rows["v"] = np.concatenate(vs).astype(np.float64, copy=False)
        out.append(rows.tobytes())
    return b"".join(out)


def _int4_array(a: np.ndarray) -> bytes:
    """PostgreSQL binary array of int4, 1-D or 2-D (row-major), no NULLs."""
    dims = a.shape
    head = struct.pack(">iii", a.ndim, 0, INT4_OID) + b"".join(struct.pack(">ii", d, 1) for d in dims)
    el = np.empty((a.size, 2), ">i4")
    el[:, 0] = 4
    el[:, 1] = a.reshape(-1)
    return head + el.tobytes()


def _field(data: bytes | None) -> bytes:
    return b"\xff\xff\xff\xff" if data is None else struct.pack(">i", len(data)) + data


def fits_blocks(b: SampleBatch) -> bool:
    """True if ``b`` goes to ``sample_blocks``: big enough and raw values fit int4."""
    if len(b) * b.channels < BLOCK_MIN_VALUES:
        return False
    v = b.values
    if int(v.min()) < -(2**31) or int(v.max()) >= 2**31:
        return False
    return True


def block_rows(b: SampleBatch) -> bytes:
    """Binary COPY tuples of ``sample_blocks`` for batch ``b`` (one per <= 240 values).

    Regularly spaced batches (the usual IMU case) are built as one numpy structured array for
    all full parts; irregular ones and the last partial part row by row."""
    vals = b.values if b.values.ndim == 2 else b.values[:, None]
    n, ch = vals.shape
    per = max(1, BLOCK_ROW_VALUES // ch)
    t = b.t_us
    d = np.diff(t)
    regular = n < 2 or bool(np.all(d == d[0]))
    period = int(d[0]) if n >= 2 else 0
    nfull = n // per if regular else 0
    out = []
    if nfull:
        dev, st = b.device_id.encode(), b.stream.encode()
        m = per * ch
        dt = np.dtype([
            ("nf", ">i2"), ("l1", ">i4"), ("t", ">i8"), ("l2", ">i4"), ("dev", f"S{len(dev)}"), ("l3", ">i4"),
            ("st", f"S{len(st)}"), ("l4", ">i4"), ("seq", ">i8"), ("l5", ">i4"), ("part", ">i2"), ("l6", ">i4"),
            ("period", ">i8"), ("l7", ">i4"), ("l8", ">i4"), ("hdr", ">i4", (7,)), ("el", ">i4", (m, 2)),
            ("l9", ">i4"), ("scale", ">f8"),
        ])
        rows = np.empty(nfull, dt)
        rows["nf"] = 9
        rows["l1"] = 8
        rows["t"] = t[: nfull * per: per] - PG_EPOCH_US
        rows["l2"], rows["dev"] = len(dev), dev
        rows["l3"], rows["st"] = len(st), st
        rows["l4"], rows["seq"] = 8, b.seq
        rows["l5"], rows["part"] = 2, np.arange(nfull, dtype=np.int16)
        rows["l6"], rows["period"] = 8, period
        rows["l7"] = -1  # t_off_us NULL
        rows["l8"] = 28 + 8 * m
        rows["hdr"] = (2, 0, INT4_OID, per, 1, ch, 1)
        el = rows["el"]
        el[:, :, 0] = 4
        el[:, :, 1] = vals[: nfull * per].reshape(nfull, m)
        rows["l9"], rows["scale"] = 8, b.scale
        out.append(rows.tobytes())
    if nfull * per < n:
        dev_f = _field(b.device_id.encode())
        st_f = _field(b.stream.encode())
        seq_f = _field(struct.pack(">q", b.seq))
        scale_f = _field(struct.pack(">d", b.scale))
        for part, i in enumerate(range(nfull * per, n, per), start=nfull):
            j = min(n, i + per)
            t0 = int(t[i])
            if regular:
                per_f, off_f = _field(struct.pack(">q", period)), _field(None)
            else:
                per_f, off_f = _field(None), _field(_int4_array(t[i:j] - t0))
            out.append(
                struct.pack(">h", 9) + _field(struct.pack(">q", t0 - PG_EPOCH_US)) + dev_f + st_f + seq_f
                + _field(struct.pack(">h", part)) + per_f + off_f + _field(_int4_array(vals[i:j])) + scale_f
            )
    return b"".join(out)


def _block_ok(b: SampleBatch) -> bool:
    if not fits_blocks(b):
        return False
    span = int(b.t_us.max() - b.t_us.min()) if len(b) else 0
    return span < 2**31


class TimescaleBackend(StorageBackend):
    """TimescaleDB via an ``AsyncConnectionPool`` (``min_size``..``max_size`` connections)."""

    kind = "timescale"

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 4, timeout_s: float = 10.0) -> None:
        self.dsn = dsn
        self.pool = AsyncConnectionPool(dsn, min_size=min_size, max_size=max_size, timeout=timeout_s, open=False,
                                        kwargs={"autocommit": True})
        self.full_edition = False

    async def open(self) -> None:
        try:
            await self.pool.open(wait=True, timeout=self.pool.timeout)
        except PoolTimeout as exc:
            await self.pool.close()
            raise StorageUnavailable(f"cannot connect to PostgreSQL ({_redact(self.dsn)}): {exc}") from exc
        await self.migrate()

    async def close(self) -> None:
        await self.pool.close()

    async def migrate(self) -> list[int]:
        """Apply pending migrations (advisory lock: several servers may start at once)."""
        applied = []
        async with self.pool.connection() as conn:
            async with conn.transaction():
                await conn.execute("SET LOCAL client_min_messages = warning")
                await conn.execute("SELECT pg_advisory_xact_lock(7007001)")
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                done = {r[0] for r in await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()}
                for version, ddl in MIGRATIONS:
                    if version in done:
                        continue
                    await conn.execute(ddl)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                    applied.append(version)
            row = await (await conn.execute("SELECT current_setting('timescaledb.license', true)")).fetchone()
            self.full_edition = bool(row and row[0] == "timescale")
            if self.full_edition:
                await self._full_edition_extras(conn)
        if applied:
            log.info("schema migrations applied", extra={"versions": applied})
        return applied

    async def _full_edition_extras(self, conn: psycopg.AsyncConnection) -> None:  # pragma: no cover - Apache here
        """With the full (TSL) edition: a continuous aggregate and policies instead of our jobs."""
        await conn.execute(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS hr_1m_cagg WITH (timescaledb.continuous) AS"
            " SELECT device_id, time_bucket('1 minute', time) AS bucket, count(*) AS n, min(value) AS min_bpm,"
            " max(value) AS max_bpm, avg(value) AS avg_bpm FROM samples WHERE stream = 'heart_rate'"
            " GROUP BY device_id, bucket WITH NO DATA"
        )
        await conn.execute(
            "SELECT add_continuous_aggregate_policy('hr_1m_cagg', start_offset => interval '1 day',"
            " end_offset => interval '1 minute', schedule_interval => interval '1 minute', if_not_exists => true)"
        )

    # ------------------------------------------------------------------------------ writes
    async def write_many(self, requests: Sequence[WriteRequest]) -> list[list[BatchOutcome]]:
        for attempt in range(5):
            try:
                return await self._write_many(requests)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                await asyncio.sleep(0.01 * (attempt + 1))
            except (psycopg.OperationalError, PoolTimeout) as exc:
                raise StorageUnavailable(f"PostgreSQL unavailable: {exc}") from exc
        return await self._write_many(requests)

    async def _write_many(self, requests: Sequence[WriteRequest]) -> list[list[BatchOutcome]]:
        # Candidate keys: first occurrence within this call; later ones are duplicates outright.
        seen: set[tuple[str, str, int]] = set()
        first: list[tuple[tuple[str, str, int], int, SampleBatch]] = []
        for ri, req in enumerate(requests):
            for b in req.batches:
                key = (b.device_id, b.stream, b.seq)
                if key not in seen:
                    seen.add(key)
                    first.append((key, ri, b))
        # sorted key order: concurrent transactions lock ledger rows in the same order (no deadlocks)
        first.sort(key=lambda x: x[0])
        new: set[tuple[str, str, int]] = set()
        async with self.pool.connection() as conn:
            async with conn.transaction():
                if first:
                    sizes = [b.t_us.shape[0] for _, _, b in first]
                    # keys as separator-joined strings split by PostgreSQL: far cheaper than
                    # dumping Python lists element by element (ids never contain \x1f: validated)
                    us = "\x1f"
                    params = (
                        us.join([k[0] for k, _, _ in first]),
                        us.join([k[1] for k, _, _ in first]),
                        ",".join([str(k[2]) for k, _, _ in first]),
                        us.join([requests[ri].tenant for _, ri, _ in first]),
                        us.join([requests[ri].agent_id for _, ri, _ in first]),
                        ",".join(map(str, sizes)),
                        ",".join([(str(int(b.t_us[0])) if n == 1 else str(int(b.t_us.min()))) if n else ""
                                  for (_, _, b), n in zip(first, sizes)]),
                    )
                    if any(p.count(us) != len(first) - 1 for p in (params[0], params[1], params[3], params[4])):
                        raise ValueError("an id contains the control character \\x1f; refused (ids must be printable)")
                    cur = await conn.execute(
                        "INSERT INTO ledger (device_id, stream, seq, tenant, agent_id, samples, t_min)"
                        " SELECT d, s, q, tn, a, n, to_timestamp(tm / 1e6) FROM unnest("
                        "string_to_array(%s, E'\\x1f'), string_to_array(%s, E'\\x1f'), string_to_array(%s, ',')::bigint[],"
                        " string_to_array(%s, E'\\x1f'), string_to_array(%s, E'\\x1f'), string_to_array(%s, ',')::int[],"
                        " string_to_array(%s, ',', '')::bigint[]) AS u(d, s, q, tn, a, n, tm)"
                        " ON CONFLICT DO NOTHING RETURNING device_id, stream, seq",
                        params,
                    )
                    new = set(await cur.fetchall())
                    narrow, blocks = [], []
                    for (key, _, b), n in zip(first, sizes):
                        if n and key in new:
                            (blocks if _block_ok(b) else narrow).append(b)
                    async with conn.cursor() as c:
                        if narrow:
                            async with c.copy("COPY samples (time, device_id, stream, channel, value) FROM STDIN (FORMAT BINARY)") as cp:
                                await cp.write(_HEADER + narrow_copy(narrow) + _TRAILER)
                        if blocks:
                            async with c.copy(
                                "COPY sample_blocks (time, device_id, stream, seq, part, period_us, t_off_us, raw, scale)"
                                " FROM STDIN (FORMAT BINARY)"
                            ) as cp:
                                await cp.write(_HEADER + b"".join(block_rows(b) for b in blocks) + _TRAILER)
                dead = [d for r in requests for d in r.dead_letters]
                if dead:
                    await self._insert_dead(conn, dead)
        # each new key is STORED for its first occurrence only
        out = []
        for req in requests:
            res = []
            for b in req.batches:
                key = (b.device_id, b.stream, b.seq)
                if key in new:
                    new.discard(key)
                    res.append(BatchOutcome(b.device_id, b.stream, b.seq, WriteStatus.STORED, b.t_us.shape[0]))
                else:
                    res.append(BatchOutcome(b.device_id, b.stream, b.seq, WriteStatus.DUPLICATE, 0))
            out.append(res)
        return out

    @staticmethod
    async def _insert_dead(conn: psycopg.AsyncConnection, letters: Sequence[DeadLetter]) -> None:
        async with conn.cursor() as c:
            await c.executemany(
                "INSERT INTO dead_letters (tenant, agent_id, transport, device_id, stream, seq, reason, payload)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(d.tenant, d.agent_id, d.transport, d.device_id, d.stream, d.seq, d.reason, d.payload) for d in letters],
            )

    async def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        try:
            async with self.pool.connection() as conn:
                async with conn.transaction():
                    await self._insert_dead(conn, list(letters))
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StorageUnavailable(f"PostgreSQL unavailable: {exc}") from exc

    async def dead_letters(self, limit: int = 100) -> list[dict[str, object]]:
        cols = ("received_at_us", "tenant", "agent_id", "transport", "device_id", "stream", "seq", "reason", "payload")
        rows = await self.query(
            "SELECT (extract(epoch FROM received_at) * 1e6)::bigint, tenant, agent_id, transport, device_id, stream, seq,"
            " reason, payload FROM dead_letters ORDER BY id DESC LIMIT %s",
            (limit,),
        )
        return [dict(zip(cols, (bytes(v) if isinstance(v, memoryview) else v for v in r))) for r in rows]

    # ------------------------------------------------------------------------------ agents
    async def add_agent(self, agent_id: str, tenant: str, secret_sha256: bytes, role: str = "agent") -> None:
        try:
            async with self.pool.connection() as conn:
                await conn.execute(
                    "INSERT INTO agents (agent_id, tenant, role, secret_sha256) VALUES (%s, %s, %s, %s)",
                    (agent_id, tenant, role, secret_sha256),
                )
        except psycopg.errors.UniqueViolation as exc:
            raise AgentExists(f"agent {agent_id!r} already exists (revoke it and pick a new id)") from exc

    async def revoke_agent(self, agent_id: str) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute("UPDATE agents SET revoked_at = now() WHERE agent_id = %s AND revoked_at IS NULL", (agent_id,))
            return cur.rowcount > 0

    _AGENT_SQL = (
        "SELECT agent_id, tenant, role, secret_sha256, (extract(epoch FROM created_at) * 1e6)::bigint,"
        " (extract(epoch FROM revoked_at) * 1e6)::bigint FROM agents"
    )

    async def get_agent(self, agent_id: str) -> AgentRecord | None:
        rows = await self.query(self._AGENT_SQL + " WHERE agent_id = %s", (agent_id,))
        return AgentRecord(*rows[0]) if rows else None

    async def list_agents(self) -> list[AgentRecord]:
        return [AgentRecord(*r) for r in await self.query(self._AGENT_SQL + " ORDER BY tenant, agent_id")]

    async def claim_devices(self, tenant: str, agent_id: str, device_ids: Sequence[str]) -> dict[str, str]:
        ids = sorted(set(device_ids))
        if not ids:
            return {}
        try:
            async with self.pool.connection() as conn:
                await conn.execute(
                    "INSERT INTO devices (device_id, tenant, agent_id) SELECT d, %s, %s FROM unnest(%s::text[]) AS d"
                    " ON CONFLICT DO NOTHING",
                    (tenant, agent_id, ids),
                )
                cur = await conn.execute("SELECT device_id, tenant FROM devices WHERE device_id = ANY(%s)", (ids,))
                return {r[0]: r[1] for r in await cur.fetchall()}
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StorageUnavailable(f"PostgreSQL unavailable: {exc}") from exc

    # ------------------------------------------------------------------------------ upkeep
    async def maintain(self, *, retention_days: float | None = None) -> dict[str, object]:
        """Refresh ``hr_1m`` for the minutes of HR batches committed since the last run, and drop
        chunks older than ``retention_days`` (``drop_chunks`` works on the Apache edition)."""
        done: dict[str, object] = {}
        async with self.pool.connection() as conn:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(7007002)")
                row = await (await conn.execute("SELECT value FROM maintenance_state WHERE key = 'hr_1m'")).fetchone()
                since = row[0] if row else None
                cur = await conn.execute(
                    "SELECT min(t_min), now() FROM ledger WHERE stream = 'heart_rate'"
                    + (" AND committed_at > %s" if since else ""),
                    (since,) if since else (),
                )
                lo, now = await cur.fetchone()
                if lo is not None:
                    cur = await conn.execute(
                        "INSERT INTO hr_1m SELECT device_id, time_bucket('1 minute', time) AS b, count(*), min(value),"
                        " max(value), avg(value) FROM samples_all WHERE stream = 'heart_rate'"
                        " AND time >= time_bucket('1 minute', %s::timestamptz) GROUP BY device_id, b"
                        " ON CONFLICT (device_id, bucket) DO UPDATE SET n = excluded.n, min_bpm = excluded.min_bpm,"
                        " max_bpm = excluded.max_bpm, avg_bpm = excluded.avg_bpm",
                        (lo,),
                    )
                    done["hr_1m_rows"] = cur.rowcount
                await conn.execute(
                    "INSERT INTO maintenance_state VALUES ('hr_1m', %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (now,),
                )
                if retention_days is not None:
                    older = f"{float(retention_days)} days"
                    dropped = []
                    for table in ("samples", "sample_blocks"):
                        cur = await conn.execute("SELECT drop_chunks(%s, older_than => now() - %s::interval)", (table, older))
                        dropped += [r[0] for r in await cur.fetchall()]
                    done["chunks_dropped"] = dropped
                    cur = await conn.execute("DELETE FROM hr_1m WHERE bucket < now() - %s::interval", (older,))
                    done["hr_1m_deleted"] = cur.rowcount
        return done

    async def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(sql, tuple(params))
                return await cur.fetchall() if cur.description else []
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise StorageUnavailable(f"PostgreSQL unavailable: {exc}") from exc


def _redact(dsn: str) -> str:
    """The DSN without its password (never log a secret)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable dsn>"
    if "password" in params:
        params["password"] = "***"
    return make_conninfo(**params)
