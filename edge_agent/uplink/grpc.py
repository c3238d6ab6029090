"""gRPC uplink (grpc.aio): one bidirectional ``fittrack.v1.Ingest/Upload`` stream per connection;
envelopes go out as they are (no re-parse), Acks come back after the server's commit.

The agent's token goes in the ``authorization: Bearer <token>`` metadata of the stream; the
server refuses it with UNAUTHENTICATED or PERMISSION_DENIED, which becomes :class:`AuthError`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Self

import grpc
from grpc import aio

from protocols.wire import MAX_ENVELOPE_BYTES
from protocols.wire.gen.fittrack.v1 import envelope_pb2

from .base import Ack, AuthError, Unavailable, UplinkError, ack_from_pb
from .config import UplinkConfig

__all__ = ["GrpcUplink"]

log = logging.getLogger(__name__)

UPLOAD_METHOD = "/fittrack.v1.Ingest/Upload"
_AUTH_CODES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def _identity(b: bytes) -> bytes:
    return b


class GrpcUplink:
    """One gRPC channel + ``Upload`` stream; see :class:`edge_agent.uplink.base.Uplink`."""

    transport = "grpc"

    def __init__(self, config: UplinkConfig) -> None:
        if config.transport != "grpc":
            raise ValueError(f"GrpcUplink needs transport 'grpc', got {config.transport!r}")
        self.config = config
        self._channel: aio.Channel | None = None
        self._call: aio.StreamStreamCall | None = None

    def _error(self, exc: aio.AioRpcError, what: str) -> UplinkError:
        c = self.config
        if exc.code() in _AUTH_CODES:
            return AuthError(
                f"ingest server {c.host}:{c.port} refused agent {c.agent_id!r} ({exc.code().name}: "
                f"{exc.details()}); check uplink.token (`fittrack ingest agent add` issues one)"
            )
        return Unavailable(f"gRPC {what} to {c.host}:{c.port} failed ({exc.code().name}: {exc.details()})")

    async def __aenter__(self) -> Self:
        c = self.config
        target = f"{c.host}:{c.port}"
        options = [
            # the server's decode limit: one batch alone may exceed max_envelope_bytes
            ("grpc.max_send_message_length", MAX_ENVELOPE_BYTES),
            ("grpc.keepalive_time_ms", c.keepalive_s * 1000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.initial_reconnect_backoff_ms", 200),
        ]
        if c.tls:
            root = c.ca_file.read_bytes() if c.ca_file else None
            key = c.key_file.read_bytes() if c.key_file else None
            cert = c.cert_file.read_bytes() if c.cert_file else None
            creds = grpc.ssl_channel_credentials(root, key, cert)
            channel = aio.secure_channel(target, creds, options=options)
        else:
            channel = aio.insecure_channel(target, options=options)
        try:
            await asyncio.wait_for(channel.channel_ready(), c.connect_timeout_s)
        except (asyncio.TimeoutError, aio.AioRpcError) as exc:
            await channel.close()
            raise Unavailable(f"gRPC connect to {target} timed out after {c.connect_timeout_s} s") from exc
        self._channel = channel
        upload = channel.stream_stream(
            UPLOAD_METHOD, request_serializer=_identity, response_deserializer=envelope_pb2.Ack.FromString
        )
        token = c.token.reveal()
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._call = upload(metadata=metadata)
        log.info("grpc uplink connected to %s as %s/%s", target, c.tenant, c.agent_id)
        return self

    async def __aexit__(self, *exc: object) -> None:
        call, self._call = self._call, None
        channel, self._channel = self._channel, None
        if call is not None:
            call.cancel()
        if channel is not None:
            await channel.close(grace=None)

    async def send(self, envelope: bytes, envelope_seq: int) -> None:
        if self._call is None:
            raise Unavailable("gRPC uplink is not connected")
        try:
            await self._call.write(envelope)
        except aio.AioRpcError as exc:
            raise self._error(exc, f"send of envelope {envelope_seq}") from exc
        except asyncio.InvalidStateError as exc:  # the stream already ended
            code = await self._call.code()
            raise Unavailable(f"gRPC Upload stream ended ({code.name}) before envelope {envelope_seq}") from exc

    async def acks(self) -> AsyncIterator[Ack]:
        if self._call is None:
            raise Unavailable("gRPC uplink is not connected")
        call = self._call
        try:
            while True:
                pb = await call.read()
                if pb is aio.EOF:
                    break
                yield ack_from_pb(pb)
        except aio.AioRpcError as exc:
            raise self._error(exc, "Upload stream") from exc
        code = await call.code()
        if code in _AUTH_CODES:
            raise AuthError(f"ingest server refused agent {self.config.agent_id!r}: {await call.details()}")
        raise Unavailable(f"gRPC Upload stream ended ({code.name}: {await call.details()})")
