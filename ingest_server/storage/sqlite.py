"""SQLite storage: the embedded default for one hub or the demo (no server to install).

One file, WAL mode. Tables: ``ledger`` (the dedup ledger, primary key device_id, stream, seq)
and ``samples`` (one row per sample and channel, raw integer value with its scale), written in
the same transaction. The blocking sqlite3 calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from protocols.wire import SampleBatch

from .base import BatchOutcome, StorageBackend, StorageUnavailable, WriteStatus

SCHEMA = """
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
"""


class SqliteBackend(StorageBackend):
    """SQLite file store; ``path=":memory:"`` for a throw-away store."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        def _open() -> sqlite3.Connection:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(SCHEMA)
            return db

        try:
            self._db = await asyncio.to_thread(_open)
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot open SQLite store {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)

    async def write_batches(self, tenant: str, agent_id: str, batches: Sequence[SampleBatch]) -> list[BatchOutcome]:
        if self._db is None:
            raise StorageUnavailable("SQLite store is not open")
        async with self._lock:
            return await asyncio.to_thread(self._write, tenant, agent_id, list(batches))

    def _write(self, tenant: str, agent_id: str, batches: list[SampleBatch]) -> list[BatchOutcome]:
        db = self._db
        assert db is not None
        now = time.time_ns() // 1000
        out = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for b in batches:
                cur = db.execute(
                    "INSERT OR IGNORE INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (b.device_id, b.stream, b.seq, tenant, agent_id, len(b), now),
                )
                if cur.rowcount == 0:
                    out.append(BatchOutcome(b.device_id, b.stream, b.seq, WriteStatus.DUPLICATE, 0))
                    continue
                vals = b.values if b.values.ndim == 2 else b.values[:, None]
                n, ch = vals.shape
                t = np.repeat(b.t_us, ch).tolist()
                chans = np.tile(np.arange(ch), n).tolist()
                raws = vals.reshape(-1).tolist()
                db.executemany(
                    "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    zip(t, [tenant] * len(t), [b.device_id] * len(t), [b.stream] * len(t), chans, raws,
                        [b.scale] * len(t), [b.unit] * len(t)),
                )
                out.append(BatchOutcome(b.device_id, b.stream, b.seq, WriteStatus.STORED, len(b)))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return out

    async def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        """Run a read-only query (reports, tests)."""
        if self._db is None:
            raise StorageUnavailable("SQLite store is not open")
        db = self._db
        return await asyncio.to_thread(lambda: db.execute(sql, params).fetchall())
