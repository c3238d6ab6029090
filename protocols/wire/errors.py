"""Errors of the wire codec."""

from __future__ import annotations


class WireError(ValueError):
    """Malformed batch or envelope: the message says what was wrong and where.

    ``batch_index`` is the position of the offending batch in its envelope when known.
    """

    def __init__(self, message: str, *, batch_index: int | None = None) -> None:
        self.batch_index = batch_index
        if batch_index is not None:
            message = f"batch {batch_index}: {message}"
        super().__init__(message)
