"""The storage interface: write an envelope's batches exactly once, in one transaction."""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
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


class StorageBackend(abc.ABC):
    """Async store of sample batches with a dedup ledger on (device_id, stream, seq).

    ``write_batches`` commits all given batches and their ledger rows in one transaction and
    returns only after the commit: the caller may then acknowledge them (DESIGN §5).
    """

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def write_batches(self, tenant: str, agent_id: str, batches: Sequence[SampleBatch]) -> list[BatchOutcome]: ...

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()
