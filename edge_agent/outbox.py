"""The durable outbox of the edge agent (DESIGN §5): SQLite in WAL mode, written before sending.

Every batch is stored, encoded once (a one-batch ``BatchList``, see
:func:`protocols.wire.encode_batches`), before :meth:`Outbox.append` returns. The delivery loop
:meth:`~Outbox.lease`\\ s the oldest batches, sends them, and :meth:`~Outbox.ack`\\ s them when the
server has committed them; unacknowledged batches are sent again after a timeout, a reconnect or
a restart (leases live in memory only, so a restart releases everything).

Sequence numbers. ``seq`` is strictly increasing per ``(device_id, stream)`` and is the
idempotency key of delivery. :meth:`Outbox.append` assigns ``seq = max(last + 1, now_us)`` in the
same transaction that stores the batch, where ``last`` is persisted in the ``seqs`` table: it is
never reused after a restart, a crash or the clock going back, and even a deleted outbox file
keeps producing fresh numbers while the clock is sane.

Bound and drop policy. The outbox holds at most ``max_bytes`` of encoded batches. When an append
goes over, the oldest batches of the *lowest* priority class are deleted first:
raw IMU (``accel``, ``gyro``) < other raw streams < ``heart_rate``/``rr_interval`` < derived streams
(zones, TRIMP, calories, HRV, reps). Every dropped sample is counted per ``(device_id, stream)``
in the ``dropped`` table (survives restarts) and in the ``dropped_samples`` metric. Leased
(in-flight) batches are not dropped while others can be.

Durability. ``synchronous="FULL"`` (default) fsyncs the WAL at every commit: an append that
returned survives kill -9 and power loss. ``"NORMAL"`` fsyncs only at checkpoints: it survives
kill -9 (the WAL is in the OS page cache) but a power cut can lose the last transactions -- never
corrupt the file. docs/outbox-and-delivery.md has the measured cost of each.

Thread safety: one connection guarded by a lock; call from any thread (the delivery loop uses
``asyncio.to_thread``). Several processes may append to the same file (WAL, ``BEGIN IMMEDIATE``,
busy timeout); only one process should lease.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Iterable, Literal, Mapping, Sequence

from protocols.wire import SampleBatch, encode_batches

from .metrics import METRICS, EdgeMetrics

__all__ = [
    "BatchKey",
    "DERIVED_STREAMS",
    "Entry",
    "Outbox",
    "OutboxError",
    "OutboxStats",
    "Priority",
    "priority_of",
]

log = logging.getLogger(__name__)

#: (device_id, stream, seq): the idempotency key of a batch.
BatchKey = tuple[str, str, int]


class Priority(IntEnum):
    """Drop order when the outbox is full: lower classes go first."""

    RAW_IMU = 0
    RAW_OTHER = 1
    HEART = 2
    DERIVED = 3


RAW_IMU_STREAMS = frozenset({"accel", "gyro", "mag"})
HEART_STREAMS = frozenset({"heart_rate", "rr_interval"})
DERIVED_STREAMS = frozenset({"hr_zone", "time_in_zone", "trimp", "calories", "hrv_rmssd", "rep"})


def priority_of(stream: str) -> Priority:
    """The drop-policy class of ``stream`` (DESIGN §3 names)."""
    if stream in DERIVED_STREAMS:
        return Priority.DERIVED
    if stream in HEART_STREAMS:
        return Priority.HEART
    if stream in RAW_IMU_STREAMS:
        return Priority.RAW_IMU
    return Priority.RAW_OTHER


class OutboxError(RuntimeError):
    """The outbox cannot do what was asked (closed, bad argument, seq conflict)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored batch, as leased for sending.

    ``body`` is the batch encoded as a one-element ``BatchList`` (concatenate bodies to build an
    envelope with :func:`protocols.wire.codec.encode_envelope_body`). ``created_at_us`` is the
    agent's UTC clock when it was appended. ``attempts`` counts the leases of this batch, this
    one included (persisted: above 1 means it is being sent again, possibly after a restart).
    """

    id: int
    device_id: str
    stream: str
    seq: int
    priority: Priority
    body: bytes
    n_samples: int
    t_first_us: int
    created_at_us: int
    attempts: int = 1

    @property
    def key(self) -> BatchKey:
        return (self.device_id, self.stream, self.seq)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Depth of the outbox. ``oldest_age_s`` is 0 when empty; ``by_priority`` maps class -> (batches, samples)."""

    batches: int
    samples: int
    bytes: int
    oldest_age_s: float
    by_priority: Mapping[Priority, tuple[int, int]]
    dropped_samples: int
    leased_batches: int


_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    body BLOB NOT NULL,
    n_samples INTEGER NOT NULL,
    t_first_us INTEGER NOT NULL,
    created_at_us INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (device_id, stream, seq)
);
CREATE INDEX IF NOT EXISTS batches_drop ON batches (priority, id);
CREATE TABLE IF NOT EXISTS seqs (
    device_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (device_id, stream)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dropped (
    device_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    batches INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    PRIMARY KEY (device_id, stream)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS totals (
    priority INTEGER PRIMARY KEY,
    batches INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals (priority, batches, samples, bytes) VALUES (0, 0, 0, 0), (1, 0, 0, 0), (2, 0, 0, 0), (3, 0, 0, 0);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

#: Rows per SELECT while looking for batches to lease or drop.
_SCAN_CHUNK = 512
#: seq/envelope numbers are kept below 2**63 (SQLite INTEGER is a signed 64-bit value).
_INT63 = (1 << 63) - 1


def _now_us() -> int:
    return time.time_ns() // 1000


class Outbox:
    """A bounded, durable FIFO of encoded :class:`SampleBatch` es (see the module docstring).

    Args:
        path: SQLite file (created with its folder when missing).
        max_bytes: bound on the encoded batch bytes held (the file is somewhat larger:
            SQLite pages, indexes, the WAL).
        synchronous: ``"FULL"`` (fsync at every commit) or ``"NORMAL"`` (fsync at checkpoints).
        metrics: where to count (the agent's :data:`~edge_agent.metrics.METRICS` by default).
        clock_us: UTC clock in µs (tests inject one that jumps back).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 256 * 1024 * 1024,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        metrics: EdgeMetrics | None = None,
        clock_us=_now_us,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise OutboxError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        if not isinstance(max_bytes, int) or max_bytes <= 0:
            raise OutboxError(f"max_bytes must be a positive integer, got {max_bytes!r}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.synchronous = synchronous
        self.metrics = metrics if metrics is not None else METRICS
        self._clock_us = clock_us
        self._lock = threading.RLock()
        self._leases: dict[int, float] = {}  # row id -> monotonic expiry
        # every row with id < _scan_from is leased (or gone) until _earliest_expiry: lease() starts there
        self._scan_from = -1
        self._earliest_expiry = float("inf")
        self._env_seq_next = 0
        self._env_seq_reserved = -1
        self._published_at = -1e9
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        db = self._db
        # on a new file (no effect on an existing one): free pages can be given back to the disk
        # after a long outage has drained (see _shrink_if_drained)
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OutboxError(f"{self.path}: cannot switch SQLite to WAL mode (got {mode!r})")
        db.execute(f"PRAGMA synchronous={synchronous}")
        db.execute("PRAGMA busy_timeout=30000")
        db.executescript(_SCHEMA)
        self._publish_depth()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Checkpoint and close (idempotent). Unacknowledged batches stay for the next run."""
        with self._lock:
            if self._db is not None:
                try:
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    self._db.close()
                    self._db = None

    def __enter__(self) -> "Outbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise OutboxError(f"outbox {self.path} is closed")
        return self._db

    # ------------------------------------------------------------------ append

    def append(
        self, batches: Iterable[SampleBatch], *, assign_seq: bool = True, allow_past: bool = False
    ) -> list[BatchKey]:
        """Store ``batches`` durably (one transaction) and return their keys, in order.

        With ``assign_seq`` (default) each batch gets a fresh ``seq`` (the batch's own is ignored);
        otherwise the batch's ``seq`` must exceed the last one stored for its (device, stream), else
        :class:`OutboxError` and nothing is stored. ``allow_past=True`` (with ``assign_seq=False``)
        is for callers whose seqs are content-derived idempotency keys, such as the FIT importer
        (seq = first sample time): a seq at or below the last one is accepted too, and a batch whose
        key is already queued is skipped (no key returned); the server's ledger deduplicates
        anything sent before. ``last_seq`` never moves backwards, so live seqs stay increasing. Empty batches are skipped (no key). When the
        bound is exceeded the drop policy runs in the same transaction (its victims may include
        batches just appended; their keys are still returned).
        """
        batches = list(batches)
        for b in batches:
            if not isinstance(b, SampleBatch):
                raise OutboxError(f"expected SampleBatch, got {type(b).__name__}")
        keys: list[BatchKey] = []
        appended: dict[str, int] = {}
        with self._lock:
            db = self._conn()
            now = self._clock_us()
            db.execute("BEGIN IMMEDIATE")
            try:
                last_cache: dict[tuple[str, str], int] = {}
                seen: set[BatchKey] = set()
                rows: list[tuple] = []
                add: dict[int, list[int]] = {}  # priority -> [batches, samples, bytes]
                for b in batches:
                    n = len(b)
                    if n == 0:
                        continue
                    ds = (b.device_id, b.stream)
                    last = last_cache.get(ds)
                    if last is None:
                        row = db.execute(
                            "SELECT last_seq FROM seqs WHERE device_id=? AND stream=?", ds
                        ).fetchone()
                        last = -1 if row is None else row[0]
                    if assign_seq:
                        seq = max(last + 1, now)
                        if seq > _INT63:
                            raise OutboxError(f"{ds}: seq space exhausted")
                        if seq != b.seq:  # already validated: rebuild without validating again
                            b = SampleBatch._trusted(  # noqa: SLF001
                                b.device_id, b.stream, seq, b.t_us, b.values, b.scale, b.unit, b.time_resolution_us
                            )
                    else:
                        seq = b.seq
                        if allow_past and 0 <= seq <= _INT63:
                            queued = db.execute(
                                "SELECT 1 FROM batches WHERE device_id=? AND stream=? AND seq=?", (*ds, seq)
                            ).fetchone()
                            if queued is not None or (b.device_id, b.stream, seq) in seen:
                                continue
                            seen.add((b.device_id, b.stream, seq))
                            last_cache[ds] = max(last, seq)
                            seq_checked = True
                        else:
                            seq_checked = False
                        if not seq_checked and seq <= last:
                            raise OutboxError(
                                f"{b.device_id}/{b.stream}: seq {seq} is not above the last stored seq {last}"
                            )
                        if seq > _INT63:
                            raise OutboxError(f"{b.device_id}/{b.stream}: seq {seq} is above 2**63-1")
                    if not (allow_past and not assign_seq):
                        last_cache[ds] = seq
                    body = encode_batches([b])
                    prio = int(priority_of(b.stream))
                    rows.append((b.device_id, b.stream, seq, prio, body, n, int(b.t_us[0]), now))
                    keys.append((b.device_id, b.stream, seq))
                    appended[b.stream] = appended.get(b.stream, 0) + n
                    acc = add.setdefault(prio, [0, 0, 0])
                    acc[0] += 1
                    acc[1] += n
                    acc[2] += len(body)
                db.executemany(
                    "INSERT INTO batches (device_id, stream, seq, priority, body, n_samples, t_first_us,"
                    " created_at_us) VALUES (?,?,?,?,?,?,?,?)",
                    rows,
                )
                if last_cache:
                    db.executemany(
                        "INSERT INTO seqs (device_id, stream, last_seq) VALUES (?,?,?) "
                        "ON CONFLICT (device_id, stream) DO UPDATE SET last_seq=excluded.last_seq",
                        [(d, s, q) for (d, s), q in last_cache.items()],
                    )
                dropped: dict[tuple[str, str], list[int]] = {}
                if add:
                    db.executemany(
                        "UPDATE totals SET batches=batches+?, samples=samples+?, bytes=bytes+? WHERE priority=?",
                        [(nb, ns, nby, p) for p, (nb, ns, nby) in add.items()],
                    )
                    total_bytes = db.execute("SELECT sum(bytes) FROM totals").fetchone()[0]
                    if total_bytes > self.max_bytes:
                        dropped = self._drop_locked(db, total_bytes - self.max_bytes)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        for stream, n in appended.items():
            self.metrics.outbox_appended_samples_total.labels(stream=stream).inc(n)
        for (device_id, stream), (nb, ns) in dropped.items():
            self.metrics.dropped_samples_total.labels(stream=stream).inc(ns)
            log.warning(
                "outbox full (%d bytes): dropped %d batches / %d samples of %s/%s",
                self.max_bytes, nb, ns, device_id, stream,
            )
        self._publish_depth()
        return keys

    def _drop_locked(self, db: sqlite3.Connection, excess: int) -> dict[tuple[str, str], list[int]]:
        """Delete the oldest batches of the lowest priority until ``excess`` bytes are freed."""
        victims: list[tuple[int, str, str, int, int, int]] = []
        freed = 0
        now = time.monotonic()
        for skip_leased in (True, False):
            after_prio, after_id = -1, -1
            while freed < excess:
                rows = db.execute(
                    "SELECT id, device_id, stream, n_samples, length(body), priority FROM batches "
                    "WHERE (priority, id) > (?, ?) ORDER BY priority, id LIMIT ?",
                    (after_prio, after_id, _SCAN_CHUNK),
                ).fetchall()
                if not rows:
                    break
                for rid, dev, stream, n, size, prio in rows:
                    after_prio, after_id = prio, rid
                    if freed >= excess:
                        break
                    # pass 1 takes unleased batches only; pass 2 (everything unleased is gone by
                    # then) takes in-flight ones
                    if (self._leases.get(rid, 0.0) > now) == skip_leased:
                        continue
                    victims.append((rid, dev, stream, n, size, prio))
                    freed += size
            if freed >= excess:
                break
        out: dict[tuple[str, str], list[int]] = {}
        sub: dict[int, list[int]] = {}
        for _rid, dev, stream, n, size, prio in victims:
            acc = out.setdefault((dev, stream), [0, 0])
            acc[0] += 1
            acc[1] += n
            t = sub.setdefault(prio, [0, 0, 0])
            t[0] += 1
            t[1] += n
            t[2] += size
        db.executemany("DELETE FROM batches WHERE id=?", [(v[0],) for v in victims])
        for v in victims:
            self._leases.pop(v[0], None)
        db.executemany(
            "INSERT INTO dropped (device_id, stream, batches, samples) VALUES (?,?,?,?) "
            "ON CONFLICT (device_id, stream) DO UPDATE SET batches=batches+excluded.batches, "
            "samples=samples+excluded.samples",
            [(d, s, nb, ns) for (d, s), (nb, ns) in out.items()],
        )
        db.executemany(
            "UPDATE totals SET batches=batches-?, samples=samples-?, bytes=bytes-? WHERE priority=?",
            [(nb, ns, nby, p) for p, (nb, ns, nby) in sub.items()],
        )
        return out

    # ------------------------------------------------------------------ lease / ack / release

    def lease(
        self, max_batches: int = 256, max_bytes: int = 256 * 1024, lease_s: float = 30.0, *,
        count_attempt: bool = True,
    ) -> list[Entry]:
        """Lease up to ``max_batches`` oldest unleased batches (at least one if any, even when its
        body alone exceeds ``max_bytes``), for ``lease_s`` seconds. Oldest first, so each
        (device, stream) comes in ``seq`` order. Expired leases count as free. With
        ``count_attempt`` the batches' persisted ``attempts`` go up by one (a small write).
        """
        out: list[Entry] = []
        size = 0
        with self._lock:
            db = self._conn()
            now = time.monotonic()
            if now >= self._earliest_expiry:  # some lease ran out: rows below the floor may be free
                self._scan_from = -1
                self._earliest_expiry = min((t for t in self._leases.values() if t > now), default=float("inf"))
            after = self._scan_from - 1
            first_free: int | None = None
            done = False
            while not done:
                rows = db.execute(
                    "SELECT id, device_id, stream, seq, priority, body, n_samples, t_first_us, created_at_us, "
                    "attempts FROM batches WHERE id > ? ORDER BY id LIMIT ?",
                    (after, _SCAN_CHUNK),
                ).fetchall()
                if not rows:
                    break
                for row in rows:
                    after = row[0]
                    if self._leases.get(row[0], 0.0) > now:
                        continue
                    if first_free is None:
                        first_free = row[0]
                    if out and (len(out) >= max_batches or size + len(row[5]) > max_bytes):
                        done = True
                        break
                    out.append(
                        Entry(row[0], row[1], row[2], row[3], Priority(row[4]), row[5], row[6], row[7], row[8],
                              row[9] + int(count_attempt))
                    )
                    size += len(row[5])
                    if len(out) >= max_batches:
                        done = True
                        break
            if out and count_attempt:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany("UPDATE batches SET attempts=attempts+1 WHERE id=?", [(e.id,) for e in out])
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            until = now + lease_s
            for e in out:
                self._leases[e.id] = until
            if out:
                self._earliest_expiry = min(self._earliest_expiry, until)
            # rows before the first free one are leased; the ones just taken are contiguous
            # from it up to the last free one we saw, so the floor moves past them when nothing
            # free was skipped in between (byte/count budget stops at the first one left)
            if first_free is not None:
                self._scan_from = (out[-1].id + 1) if out and out[0].id == first_free else first_free
            elif after >= 0:
                self._scan_from = after + 1
        return out

    def release(self, ids: Iterable[int] | None = None) -> None:
        """Make leased batches (by :attr:`Entry.id`; all when ``None``) available again."""
        with self._lock:
            if ids is None:
                self._leases.clear()
                self._scan_from = -1
            else:
                for i in ids:
                    if self._leases.pop(i, None) is not None and i < self._scan_from:
                        self._scan_from = i

    def ack(self, keys: Sequence[BatchKey]) -> dict[BatchKey, int]:
        """Delete acknowledged batches (one transaction); return ``{key: n_samples}`` of those removed.

        Unknown keys (already acknowledged, or dropped) are ignored, so a late or duplicate ack is
        harmless.
        """
        removed: dict[BatchKey, int] = {}
        if not keys:
            return removed
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                sub: dict[int, list[int]] = {}
                for dev, stream, seq in keys:
                    row = db.execute(
                        "DELETE FROM batches WHERE device_id=? AND stream=? AND seq=? "
                        "RETURNING id, n_samples, length(body), priority",
                        (dev, stream, int(seq)),
                    ).fetchone()
                    if row is None:
                        continue
                    self._leases.pop(row[0], None)
                    t = sub.setdefault(row[3], [0, 0, 0])
                    t[0] += 1
                    t[1] += row[1]
                    t[2] += row[2]
                    removed[(dev, stream, int(seq))] = row[1]
                if sub:
                    db.executemany(
                        "UPDATE totals SET batches=batches-?, samples=samples-?, bytes=bytes-? WHERE priority=?",
                        [(nb, ns, nby, p) for p, (nb, ns, nby) in sub.items()],
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        self._publish_depth()
        if removed:
            self._shrink_if_drained()
        return removed

    #: free pages (4 KiB each) an empty outbox may keep before giving them back to the file system
    SHRINK_FREE_PAGES = 2048

    def _shrink_if_drained(self) -> None:
        """Once the outbox is empty, return the free pages of a past backlog to the disk (a Pi's
        SD card should not stay full after an outage has drained)."""
        with self._lock:
            db = self._conn()
            if db.execute("SELECT sum(batches) FROM totals").fetchone()[0]:
                return
            if db.execute("PRAGMA freelist_count").fetchone()[0] < self.SHRINK_FREE_PAGES:
                return
            db.executescript("PRAGMA incremental_vacuum;")  # execute() would free only one page
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ------------------------------------------------------------------ envelope numbers

    def next_envelope_seq(self) -> int:
        """A fresh envelope number for this agent, strictly increasing across restarts.

        Numbers are reserved durably in blocks of 1024 (one write per block), starting at
        ``max(last reserved + 1, now_us)`` so a lost outbox file does not reuse them either.
        """
        with self._lock:
            if self._env_seq_next > self._env_seq_reserved:
                db = self._conn()
                db.execute("BEGIN IMMEDIATE")
                try:
                    row = db.execute("SELECT value FROM counters WHERE name='envelope_seq'").fetchone()
                    start = max(-1 if row is None else row[0], self._clock_us() - 1) + 1
                    end = start + 1023
                    db.execute(
                        "INSERT INTO counters (name, value) VALUES ('envelope_seq', ?) "
                        "ON CONFLICT (name) DO UPDATE SET value=excluded.value",
                        (end,),
                    )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                self._env_seq_next, self._env_seq_reserved = start, end
            seq = self._env_seq_next
            self._env_seq_next += 1
            return seq

    # ------------------------------------------------------------------ inspection

    def stats(self) -> OutboxStats:
        """Depth, age of the oldest batch and total dropped samples (reads, no write)."""
        with self._lock:
            db = self._conn()
            tot = db.execute("SELECT priority, batches, samples, bytes FROM totals").fetchall()
            batches = sum(r[1] for r in tot)
            samples = sum(r[2] for r in tot)
            nbytes = sum(r[3] for r in tot)
            oldest = db.execute("SELECT created_at_us FROM batches ORDER BY id LIMIT 1").fetchone()
            by = {Priority(p): (nb, ns) for p, nb, ns, _ in tot if nb}
            dropped = db.execute("SELECT coalesce(sum(samples), 0) FROM dropped").fetchone()[0]
            now = time.monotonic()
            leased = sum(1 for t in self._leases.values() if t > now)
        age = 0.0 if oldest is None else max(0.0, (self._clock_us() - oldest[0]) / 1e6)
        return OutboxStats(batches, samples, nbytes, age, by, dropped, leased)

    def dropped_counts(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(device_id, stream) -> (batches, samples) dropped by the policy, since the file was created."""
        with self._lock:
            rows = self._conn().execute("SELECT device_id, stream, batches, samples FROM dropped").fetchall()
        return {(d, s): (nb, ns) for d, s, nb, ns in rows}

    def last_seqs(self) -> dict[tuple[str, str], int]:
        """(device_id, stream) -> last seq assigned."""
        with self._lock:
            rows = self._conn().execute("SELECT device_id, stream, last_seq FROM seqs").fetchall()
        return {(d, s): q for d, s, q in rows}

    def keys(self) -> list[BatchKey]:
        """Keys of every stored batch, oldest first (tests, ``fittrack edge status``)."""
        with self._lock:
            rows = self._conn().execute("SELECT device_id, stream, seq FROM batches ORDER BY id").fetchall()
        return [(d, s, q) for d, s, q in rows]

    def refresh_metrics(self) -> None:
        """Refresh the depth/age gauges now (the delivery loop calls it while idle, so the age of
        the oldest batch keeps growing in the metrics while nothing is appended or acknowledged)."""
        self._publish_depth(force=True)

    def _publish_depth(self, force: bool = False) -> None:
        """Refresh the depth gauges (at most 10 times a second; every read is O(1))."""
        now = time.monotonic()
        if not force and now - self._published_at < 0.1:
            return
        self._published_at = now
        try:
            st = self.stats()
        except (sqlite3.Error, OutboxError):  # closed or busy: metrics are best effort
            return
        m = self.metrics
        for p in Priority:
            nb, ns = st.by_priority.get(p, (0, 0))
            m.outbox_depth_batches.labels(priority=p.name.lower()).set(nb)
            m.outbox_depth_samples.labels(priority=p.name.lower()).set(ns)
        m.outbox_bytes.set(st.bytes)
        m.outbox_oldest_age_s.set(st.oldest_age_s)
