"""What every uplink offers, its errors, the Ack record and the reconnect backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import IntEnum
from typing import AsyncIterator, Protocol, Self

from google.protobuf.message import DecodeError

from protocols.wire.gen.fittrack.v1 import envelope_pb2

__all__ = [
    "Ack",
    "AckStatus",
    "AuthError",
    "BatchResult",
    "BatchStatus",
    "Unavailable",
    "Uplink",
    "UplinkError",
    "backoff_s",
    "parse_ack",
]


class UplinkError(Exception):
    """The uplink failed; the delivery loop reconnects with backoff and resends."""


class Unavailable(UplinkError):
    """The server or broker cannot be reached or dropped the connection."""


class AuthError(UplinkError):
    """The server refused the agent's credential. Retried only after a long back-off: a wrong or
    revoked token does not fix itself, and hammering the server helps nobody."""


class AckStatus(IntEnum):
    """``fittrack.v1.AckStatus``."""

    UNSPECIFIED = 0
    OK = 1
    PARTIAL = 2
    REJECTED = 3
    RETRY = 4


class BatchStatus(IntEnum):
    """``fittrack.v1.BatchStatus``."""

    UNSPECIFIED = 0
    STORED = 1
    DUPLICATE = 2
    REJECTED = 3


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The server's verdict on one batch (``BatchAck``)."""

    device_id: str
    stream: str
    seq: int
    status: BatchStatus
    reason: str = ""
    samples_stored: int = 0

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.device_id, self.stream, self.seq)


@dataclass(frozen=True, slots=True)
class Ack:
    """The server's answer to one envelope (``fittrack.v1.Ack``)."""

    envelope_seq: int
    status: AckStatus
    batches: tuple[BatchResult, ...] = ()
    message: str = ""
    retry_after_ms: int = 0
    agent_id: str = ""
    committed_at_us: int = 0


def _enum(cls: type[IntEnum], v: int) -> IntEnum:
    try:
        return cls(v)
    except ValueError:
        return cls(0)


def ack_from_pb(pb: envelope_pb2.Ack) -> Ack:
    return Ack(
        envelope_seq=pb.envelope_seq,
        status=_enum(AckStatus, pb.status),  # type: ignore[arg-type]
        batches=tuple(
            BatchResult(b.device_id, b.stream, b.seq, _enum(BatchStatus, b.status), b.reason, b.samples_stored)  # type: ignore[arg-type]
            for b in pb.batches
        ),
        message=pb.message,
        retry_after_ms=pb.retry_after_ms,
        agent_id=pb.agent_id,
        committed_at_us=pb.committed_at_us,
    )


def parse_ack(data: bytes) -> Ack:
    """Decode a serialized ``fittrack.v1.Ack``; :class:`UplinkError` when it is not one."""
    pb = envelope_pb2.Ack()
    try:
        pb.ParseFromString(bytes(data))
    except DecodeError as exc:
        raise UplinkError(f"malformed Ack ({len(data)} bytes): {exc}") from exc
    return ack_from_pb(pb)


class Uplink(Protocol):
    """One connection to the ingest side. ``async with`` connects (and for MQTT subscribes to the
    ack topic) and raises :class:`AuthError` / :class:`Unavailable`; leaving it disconnects.
    A lost connection ends :meth:`acks` with :class:`Unavailable`; reconnecting means a new
    ``async with``.
    """

    transport: str

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def send(self, envelope: bytes, envelope_seq: int) -> None:
        """Hand one serialized envelope to the transport (waits while the transport pushes back)."""
        ...

    def acks(self) -> AsyncIterator[Ack]:
        """The server's Acks, in arrival order, until the connection ends."""
        ...


def backoff_s(attempt: int, *, base: float = 0.5, cap: float = 30.0, jitter: float = 1.0,
              rng: random.Random | None = None) -> float:
    """Delay before reconnect ``attempt`` (0-based): ``min(cap, base * 2**attempt)``, of which the
    fraction ``jitter`` (0..1) is randomised (full jitter at 1.0) so a fleet does not reconnect in
    lockstep after a broker restart.
    """
    if attempt < 0 or base <= 0 or cap <= 0 or not 0.0 <= jitter <= 1.0:
        raise ValueError(f"bad backoff arguments: attempt={attempt} base={base} cap={cap} jitter={jitter}")
    d = min(cap, base * (2.0 ** min(attempt, 62)))
    r = (rng or random).random()
    return d * (1.0 - jitter) + d * jitter * r
