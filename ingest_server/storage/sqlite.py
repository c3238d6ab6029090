"""SQLite storage: the embedded default for one hub or the demo (no server to install).

One file, WAL mode. Tables: ``ledger`` (the dedup ledger, primary key device_id, stream, seq)
and ``samples`` (one row per sample and channel, raw integer value with its scale), written in
the same transaction; ``agents``, ``devices``, ``dead_letters``, ``hr_1m`` (per-minute HR
rollup refreshed by :meth:`SqliteBackend.maintain`). The view ``samples_all`` presents every
stream as ``(time_us, device_id, stream, channel, value)`` like the TimescaleDB view.
The blocking sqlite3 calls run in a worker thread, one at a time.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import numpy as np

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

T = TypeVar("T")

#: Schema versions, applied in order at open() (PRAGMA user_version records the last one).
MIGRATIONS: list[str] = [
    # 1: the seed schema (kept as it was: firmware_sims/demo.py and the FIT importer read it)
    """
    CREATE TABLE IF NOT EXISTS ledger (
        device_id TEXT NOT NULL,
        stream TEXT NOT NULL,
        seq INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        samples INTEGER NOT NULL,
        committed_at_us INTEGER NOT NULL,
        PRIMARY KEY (device_id, stream, seq)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS samples (
        t_us INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        device_id TEXT NOT NULL,
        stream TEXT NOT NULL,
        channel INTEGER NOT NULL,
        raw INTEGER NOT NULL,
        scale REAL NOT NULL,
        unit TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS samples_by_device ON samples (device_id, stream, t_us);
    CREATE VIEW IF NOT EXISTS samples_physical AS
        SELECT t_us, tenant, device_id, stream, channel, raw * scale AS value, unit FROM samples;
    """,
    # 2: auth, tenancy, dead letters, the common view, HR rollups
    """
    CREATE TABLE IF NOT EXISTS agents (
        agent_id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT 'agent',
        secret_sha256 BLOB NOT NULL,
        created_at_us INTEGER NOT NULL,
        revoked_at_us INTEGER
    );
    CREATE TABLE IF NOT EXISTS devices (
        device_id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        first_seen_us INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at_us INTEGER NOT NULL,
        tenant TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        transport TEXT NOT NULL,
        device_id TEXT,
        stream TEXT,
        seq INTEGER,
        reason TEXT NOT NULL,
        payload BLOB NOT NULL
    );
    CREATE VIEW IF NOT EXISTS samples_all AS
        SELECT t_us AS time_us, device_id, stream, channel, raw * scale AS value FROM samples;
    CREATE TABLE IF NOT EXISTS hr_1m (
        device_id TEXT NOT NULL,
        bucket_us INTEGER NOT NULL,
        n INTEGER NOT NULL,
        min_bpm REAL NOT NULL,
        max_bpm REAL NOT NULL,
        avg_bpm REAL NOT NULL,
        PRIMARY KEY (device_id, bucket_us)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS maintenance_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    """,
    # 3: first sample time per batch, so the HR rollup refresh knows which minutes changed
    """
    ALTER TABLE ledger ADD COLUMN t_min_us INTEGER;
    CREATE INDEX IF NOT EXISTS ledger_committed ON ledger (committed_at_us)
    """,
]


def _now_us() -> int:
    return time.time_ns() // 1000


class SqliteBackend(StorageBackend):
    """SQLite file store; ``path=":memory:"`` for a throw-away store."""

    kind = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        def _open() -> sqlite3.Connection:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                for i, sql in enumerate(MIGRATIONS[version:], start=version + 1):
                    for stmt in sql.split(";"):
                        if stmt.strip():
                            db.execute(stmt)
                    db.execute(f"PRAGMA user_version = {i}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return db

        try:
            self._db = await asyncio.to_thread(_open)
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot open SQLite store {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._db is not None:
            async with self._lock:
                db, self._db = self._db, None
                await asyncio.to_thread(db.close)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            raise StorageUnavailable("SQLite store is not open")
        db = self._db
        async with self._lock:
            try:
                return await asyncio.to_thread(fn, db)
            except sqlite3.OperationalError as exc:
                if not any(w in str(exc) for w in ("locked", "unable to open", "disk", "readonly")):
                    raise
                raise StorageUnavailable(f"SQLite store {self.path}: {exc}") from exc

    # ------------------------------------------------------------------------------ writes
    async def write_many(self, requests: Sequence[WriteRequest]) -> list[list[BatchOutcome]]:
        reqs = list(requests)
        return await self._run(lambda db: self._write(db, reqs))

    @staticmethod
    def _write(db: sqlite3.Connection, requests: list[WriteRequest]) -> list[list[BatchOutcome]]:
        now = _now_us()
        result: list[list[BatchOutcome]] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for req in requests:
                out = []
                tenant = req.tenant
                for b in req.batches:
                    cur = db.execute(
                        "INSERT OR IGNORE INTO ledger (device_id, stream, seq, tenant, agent_id, samples, committed_at_us, t_min_us)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (b.device_id, b.stream, b.seq, tenant, req.agent_id, len(b), now, int(b.t_us.min()) if len(b) else None),
                    )
                    if cur.rowcount == 0:
                        out.append(BatchOutcome(b.device_id, b.stream, b.seq, WriteStatus.DUPLICATE, 0))
                        continue
                    vals = b.values if b.values.ndim == 2 else b.values[:, None]
                    n, ch = vals.shape
                    t = np.repeat(b.t_us, ch).tolist()
                    chans = np.tile(np.arange(ch), n).tolist()
                    raws = vals.reshape(-1).tolist()
                    k = len(t)
                    db.executemany(
                        "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        zip(t, [tenant] * k, [b.device_id] * k, [b.stream] * k, chans, raws, [b.scale] * k, [b.unit] * k),
                    )
                    out.append(BatchOutcome(b.device_id, b.stream, b.seq, WriteStatus.STORED, len(b)))
                SqliteBackend._insert_dead(db, req.dead_letters, now)
                result.append(out)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return result

    @staticmethod
    def _insert_dead(db: sqlite3.Connection, letters: Sequence[DeadLetter], now: int) -> None:
        if letters:
            db.executemany(
                "INSERT INTO dead_letters (received_at_us, tenant, agent_id, transport, device_id, stream, seq, reason, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(now, d.tenant, d.agent_id, d.transport, d.device_id, d.stream, d.seq, d.reason, d.payload) for d in letters],
            )

    async def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        letters = list(letters)

        def fn(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                self._insert_dead(db, letters, _now_us())
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._run(fn)

    async def dead_letters(self, limit: int = 100) -> list[dict[str, object]]:
        cols = ("received_at_us", "tenant", "agent_id", "transport", "device_id", "stream", "seq", "reason", "payload")
        rows = await self._run(
            lambda db: db.execute(f"SELECT {', '.join(cols)} FROM dead_letters ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        )
        return [dict(zip(cols, r)) for r in rows]

    # ------------------------------------------------------------------------------ agents
    async def add_agent(self, agent_id: str, tenant: str, secret_sha256: bytes, role: str = "agent") -> None:
        def fn(db: sqlite3.Connection) -> None:
            try:
                db.execute(
                    "INSERT INTO agents (agent_id, tenant, role, secret_sha256, created_at_us) VALUES (?, ?, ?, ?, ?)",
                    (agent_id, tenant, role, secret_sha256, _now_us()),
                )
            except sqlite3.IntegrityError as exc:
                raise AgentExists(f"agent {agent_id!r} already exists (revoke it and pick a new id)") from exc

        await self._run(fn)

    async def revoke_agent(self, agent_id: str) -> bool:
        cur = await self._run(
            lambda db: db.execute(
                "UPDATE agents SET revoked_at_us = ? WHERE agent_id = ? AND revoked_at_us IS NULL", (_now_us(), agent_id)
            )
        )
        return cur.rowcount > 0

    _AGENT_COLS = "agent_id, tenant, role, secret_sha256, created_at_us, revoked_at_us"

    async def get_agent(self, agent_id: str) -> AgentRecord | None:
        row = await self._run(
            lambda db: db.execute(f"SELECT {self._AGENT_COLS} FROM agents WHERE agent_id = ?", (agent_id,)).fetchone()
        )
        return AgentRecord(*row) if row else None

    async def list_agents(self) -> list[AgentRecord]:
        rows = await self._run(lambda db: db.execute(f"SELECT {self._AGENT_COLS} FROM agents ORDER BY tenant, agent_id").fetchall())
        return [AgentRecord(*r) for r in rows]

    async def claim_devices(self, tenant: str, agent_id: str, device_ids: Sequence[str]) -> dict[str, str]:
        ids = sorted(set(device_ids))

        def fn(db: sqlite3.Connection) -> dict[str, str]:
            now = _now_us()
            db.executemany(
                "INSERT OR IGNORE INTO devices VALUES (?, ?, ?, ?)", [(d, tenant, agent_id, now) for d in ids]
            )
            marks = ",".join("?" * len(ids))
            return dict(db.execute(f"SELECT device_id, tenant FROM devices WHERE device_id IN ({marks})", ids).fetchall())

        return await self._run(fn) if ids else {}

    # ------------------------------------------------------------------------------ upkeep
    async def maintain(self, *, retention_days: float | None = None) -> dict[str, object]:
        """Refresh ``hr_1m`` for minutes touched since the last run; delete samples older than
        ``retention_days`` (ledger rows are kept: they are what makes late resends duplicates)."""

        def fn(db: sqlite3.Connection) -> dict[str, object]:
            done: dict[str, object] = {}
            db.execute("BEGIN IMMEDIATE")
            try:
                last = db.execute("SELECT value FROM maintenance_state WHERE key = 'hr_1m'").fetchone()
                last_us = last[0] if last else -1
                now = _now_us()
                # minutes of HR data committed since the last refresh
                lo = db.execute(
                    "SELECT min(t_min_us) FROM ledger WHERE stream = 'heart_rate' AND committed_at_us > ?", (last_us,)
                ).fetchone()[0]
                if lo is not None:
                    lo = lo - lo % 60_000_000
                    cur = db.execute(
                        "INSERT OR REPLACE INTO hr_1m SELECT device_id, t_us - t_us % 60000000, count(*), min(raw * scale),"
                        " max(raw * scale), avg(raw * scale) FROM samples WHERE stream = 'heart_rate' AND t_us >= ?"
                        " GROUP BY device_id, t_us - t_us % 60000000",
                        (lo,),
                    )
                    done["hr_1m_rows"] = cur.rowcount
                db.execute("INSERT OR REPLACE INTO maintenance_state VALUES ('hr_1m', ?)", (now,))
                if retention_days is not None:
                    cut = now - int(retention_days * 86_400e6)
                    done["samples_deleted"] = db.execute("DELETE FROM samples WHERE t_us < ?", (cut,)).rowcount
                    db.execute("DELETE FROM hr_1m WHERE bucket_us < ?", (cut,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return done

        return await self._run(fn)

    async def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        """Run a read-only query (reports, tests)."""
        return await self._run(lambda db: db.execute(sql, tuple(params)).fetchall())
