"""Errors and problems of FIT import.

A damaged file is not an exception by default: :func:`protocols.fit.read` keeps the valid
prefix and lists what was wrong as :class:`Problem` values, each with the byte offset where it
was found. ``strict=True`` turns the first problem into a :class:`FitError` instead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ProblemKind(str, enum.Enum):
    """What can be wrong with a FIT file (the ``kind`` of a :class:`Problem`)."""

    #: The first bytes are not a FIT header (size byte, ``.FIT`` signature) or it is cut short.
    BAD_HEADER = "bad_header"
    #: The header CRC (bytes 12-13 of a 14-byte header) does not match bytes 0-11.
    BAD_HEADER_CRC = "bad_header_crc"
    #: The file CRC after the data does not match header + data. The data is kept.
    BAD_FILE_CRC = "bad_file_crc"
    #: The file ends inside a message, or before the file CRC. Complete messages are kept.
    TRUNCATED = "truncated"
    #: A definition names a base type that the FIT protocol does not have (read as bytes).
    UNKNOWN_BASE_TYPE = "unknown_base_type"
    #: A data message uses a local message type that no definition has declared.
    UNDEFINED_LOCAL_MESSAGE = "undefined_local_message"
    #: A message runs past the data size the header declared.
    MESSAGE_OVERRUNS_DATA = "message_overruns_data"
    #: Bytes after a complete FIT file are not a valid chained FIT file.
    INVALID_CHAINED_FILE = "invalid_chained_file"
    #: The reference decoder (fitdecode) stopped where the structure pass saw no problem.
    DECODER_ERROR = "decoder_error"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input: its ``kind``, the byte ``offset`` (from the start of the
    whole input) where it was found, and a human ``message``."""

    kind: ProblemKind
    offset: int
    message: str

    def __str__(self) -> str:
        return f"{self.kind.value} @ byte {self.offset}: {self.message}"


class FitError(ValueError):
    """A FIT file is invalid (raised only with ``strict=True`` or for unusable input).

    Attributes: ``offset`` (byte offset of the problem), ``kind`` (:class:`ProblemKind` or None),
    ``problems`` (every problem found).
    """

    def __init__(self, message: str, *, offset: int = 0, kind: ProblemKind | None = None,
                 problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.offset = offset
        self.kind = kind
        self.problems = problems

    @classmethod
    def from_problems(cls, problems: list[Problem] | tuple[Problem, ...]) -> "FitError":
        first = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return cls(f"invalid FIT data: {first}{more}", offset=first.offset, kind=first.kind,
                   problems=tuple(problems))
