"""Storage backends behind one interface: SQLite (embedded default) and TimescaleDB."""

from .base import BatchOutcome, StorageBackend, StorageError, WriteStatus

__all__ = ["BatchOutcome", "StorageBackend", "StorageError", "WriteStatus"]
