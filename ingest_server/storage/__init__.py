"""Storage backends behind one interface: SQLite (embedded default) and TimescaleDB."""

from .base import (
    AgentExists,
    AgentRecord,
    BatchOutcome,
    DeadLetter,
    StorageBackend,
    StorageError,
    StorageUnavailable,
    WriteRequest,
    WriteStatus,
    open_storage,
)

__all__ = [
    "AgentExists",
    "AgentRecord",
    "BatchOutcome",
    "DeadLetter",
    "StorageBackend",
    "StorageError",
    "StorageUnavailable",
    "WriteRequest",
    "WriteStatus",
    "open_storage",
]
