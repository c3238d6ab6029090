"""The storage interface: write envelopes' batches exactly once, in one transaction.

Both backends (:mod:`.sqlite`, :mod:`.timescale`) implement the same behaviour:

* a dedup ledger keyed by ``(device_id, stream, seq)`` written in the same transaction as the
  samples, so a resent batch is reported ``DUPLICATE`` and never written twice;
* agents (credentials stored as a hash), devices (owned by the tenant that first sent them),
  dead letters (rejected payloads with the reason), schema migrations applied at ``open()``.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self, Sequence

from protocols.wire import SampleBatch


class StorageError(Exception):
    """Root of storage errors. ``StorageUnavailable``: the store cannot be reached (retry later)."""


class StorageUnavailable(StorageError):
    pass


class WriteStatus(enum.Enum):
    STORED = "stored"        # committed by this call
    DUPLICATE = "duplicate"  # (device_id, stream, seq) was committed before; nothing written


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    device_id: str
    stream: str
    seq: int
    status: WriteStatus
    samples: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected payload: the raw bytes (a one-batch ``BatchList`` or the whole envelope) and why."""

    tenant: str
    agent_id: str
    transport: str            # "grpc", "mqtt", "local"
    reason: str
    payload: bytes
    device_id: str | None = None
    stream: str | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """One envelope's worth of work: batches to store and dead letters to record, same transaction."""

    tenant: str
    agent_id: str
    batches: Sequence[SampleBatch]
    dead_letters: Sequence[DeadLetter] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """An agent (edge install) or service credential. ``secret_sha256`` is the hash, never the secret."""

    agent_id: str
    tenant: str
    role: str                 # "agent" (uploads) or "service" (subscribes to live data)
    secret_sha256: bytes
    created_at_us: int
    revoked_at_us: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at_us is not None


class AgentExists(StorageError):
    pass


class StorageBackend(abc.ABC):
    """Async store of sample batches with a dedup ledger on (device_id, stream, seq).

    ``write_many`` commits the batches and ledger rows of several envelopes in ONE transaction
    and returns only after the commit: the caller may then acknowledge them (DESIGN §5).
    """

    #: "sqlite" or "timescale"
    kind: str = ""

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def write_many(self, requests: Sequence[WriteRequest]) -> list[list[BatchOutcome]]:
        """Store every request in one transaction; one outcome list per request, in order.

        Within the call, a key present in several requests is STORED for the first and
        DUPLICATE for the others."""

    async def write_batches(self, tenant: str, agent_id: str, batches: Sequence[SampleBatch]) -> list[BatchOutcome]:
        """Store one envelope's batches (one transaction)."""
        return (await self.write_many([WriteRequest(tenant, agent_id, batches)]))[0]

    # -- agents and devices ---------------------------------------------------------------
    @abc.abstractmethod
    async def add_agent(self, agent_id: str, tenant: str, secret_sha256: bytes, role: str = "agent") -> None:
        """Create a credential; raises :class:`AgentExists` if ``agent_id`` is taken."""

    @abc.abstractmethod
    async def revoke_agent(self, agent_id: str) -> bool:
        """Revoke; False if no such (non-revoked) agent."""

    @abc.abstractmethod
    async def get_agent(self, agent_id: str) -> AgentRecord | None: ...

    @abc.abstractmethod
    async def list_agents(self) -> list[AgentRecord]: ...

    @abc.abstractmethod
    async def claim_devices(self, tenant: str, agent_id: str, device_ids: Sequence[str]) -> dict[str, str]:
        """Register unknown devices to ``tenant``; return ``{device_id: owner tenant}`` for all."""

    # -- dead letters, maintenance, queries --------------------------------------------------
    @abc.abstractmethod
    async def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None: ...

    @abc.abstractmethod
    async def dead_letters(self, limit: int = 100) -> list[dict[str, object]]:
        """Most recent dead letters first: received_at_us, tenant, agent_id, transport, device_id,
        stream, seq, reason, payload (bytes)."""

    async def maintain(self, *, retention_days: float | None = None) -> dict[str, object]:
        """Refresh rollups and apply retention; returns what was done."""
        return {}

    @abc.abstractmethod
    async def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        """Run a read-only query (reports, tests). Placeholders: ``?`` (SQLite), ``%s`` (PostgreSQL)."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


def open_storage(dsn: str, **kwargs: object) -> StorageBackend:
    """A backend for ``dsn``: ``postgresql://...`` (TimescaleDB) or ``sqlite:PATH`` / a file path."""
    if dsn.startswith(("postgresql://", "postgres://")) or "dbname=" in dsn:
        from .timescale import TimescaleBackend

        return TimescaleBackend(dsn, **kwargs)  # type: ignore[arg-type]
    from .sqlite import SqliteBackend

    path = dsn[len("sqlite:"):] if dsn.startswith("sqlite:") else dsn
    if path.startswith("//"):
        path = path[2:]
    return SqliteBackend(path or ":memory:")
