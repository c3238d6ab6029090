"""gRPC transport (grpc.aio): ``fittrack.v1.Ingest`` Upload/Subscribe, health, reflection, TLS.

``Upload`` takes raw envelope bytes (no protobuf round trip before :func:`decode_envelope`),
handles up to ``max_inflight`` envelopes of one stream concurrently and writes each ack as soon
as its commit is done (acks may come out of order, as the contract allows).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protocols.wire import MAX_ENVELOPE_BYTES
from protocols.wire.gen.fittrack.v1 import envelope_pb2 as epb
from protocols.wire.gen.fittrack.v1 import ingest_pb2

from .auth import Authenticator, AuthError, Principal
from .fanout import LiveHub
from .metrics import Metrics
from .pipeline import Pipeline
from .storage.base import StorageUnavailable

log = logging.getLogger("ingest_server.grpc")

SERVICE = ingest_pb2.DESCRIPTOR.services_by_name["Ingest"].full_name  # "fittrack.v1.Ingest"


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None  # set: mutual TLS (clients must present a cert signed by it)


def _bearer(context: grpc.aio.ServicerContext) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == "authorization":
            v = v if isinstance(v, str) else v.decode()
            if v[:7].lower() == "bearer ":
                return v[7:].strip()
            return None
    return None


class GrpcIngest:
    def __init__(self, pipeline: Pipeline, auth: Authenticator, hub: LiveHub, metrics: Metrics, address: str,
                 tls: TlsFiles | None = None, max_inflight: int = 256, reuseport: bool = False) -> None:
        self.reuseport = reuseport
        self.pipeline = pipeline
        self.auth = auth
        self.hub = hub
        self.metrics = metrics
        self.address = address
        self.tls = tls
        self.max_inflight = max_inflight
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.health = health.aio.HealthServicer()
        self._closing = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._uploads = 0

    async def start(self) -> int:
        opts = [("grpc.max_receive_message_length", MAX_ENVELOPE_BYTES + 4096),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.so_reuseport", 1 if self.reuseport else 0)]
        self.server = grpc.aio.server(options=opts)
        handlers = {
            "Upload": grpc.stream_stream_rpc_method_handler(
                self.upload, request_deserializer=None, response_serializer=epb.Ack.SerializeToString),
            "Subscribe": grpc.unary_stream_rpc_method_handler(
                self.subscribe, request_deserializer=ingest_pb2.SubscribeRequest.FromString,
                response_serializer=ingest_pb2.LiveEvent.SerializeToString),
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection((SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server)
        if self.tls:
            creds = grpc.ssl_server_credentials(
                [(self.tls.key.read_bytes(), self.tls.cert.read_bytes())],
                root_certificates=self.tls.client_ca.read_bytes() if self.tls.client_ca else None,
                require_client_auth=self.tls.client_ca is not None,
            )
            self.port = self.server.add_secure_port(self.address, creds)
        else:
            self.port = self.server.add_insecure_port(self.address)
        if not self.port:
            raise OSError(f"cannot listen for gRPC on {self.address}")
        await self.server.start()
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self.health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def stop(self, grace_s: float = 10.0) -> None:
        """Refuse new calls; in-flight Upload handlers finish their commits and acks (grace)."""
        if self.server is None:
            return
        await self.health.enter_graceful_shutdown()
        self._closing.set()  # Upload streams stop reading, write their last acks and end cleanly
        t0 = asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(self._idle.wait(), grace_s)
        except TimeoutError:
            log.warning("gRPC stop: Upload streams still busy after the grace period", extra={"streams": self._uploads})
        await self.server.stop(max(0.5, grace_s - (asyncio.get_running_loop().time() - t0)))
        self.server = None

    async def _principal(self, context: grpc.aio.ServicerContext, role: str) -> Principal:
        token = _bearer(context)
        if token is None:
            self.metrics.auth_failures.labels("grpc").inc()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "missing metadata 'authorization: Bearer <agent_id>.<secret>'")
        try:
            return await self.auth.verify_token(token, role=role)  # type: ignore[arg-type]
        except AuthError as exc:
            self.metrics.auth_failures.labels("grpc").inc()
            log.warning("gRPC credential refused", extra={"reason": str(exc), "peer": context.peer()})
            code = grpc.StatusCode.PERMISSION_DENIED if exc.code == "permission_denied" else grpc.StatusCode.UNAUTHENTICATED
            await context.abort(code, str(exc))
        except StorageUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot check the credential now: {exc}")
        raise AssertionError("unreachable")

    async def upload(self, request_iterator, context: grpc.aio.ServicerContext) -> None:
        principal = await self._principal(context, "agent")
        # tell the client at once that the credential was accepted (it may wait for this before sending)
        await context.send_initial_metadata((("fittrack-agent", principal.agent_id), ("fittrack-tenant", principal.tenant)))
        sem = asyncio.Semaphore(self.max_inflight)
        wlock = asyncio.Lock()
        tasks: set[asyncio.Task] = set()
        failed: list[BaseException] = []

        async def one(raw: bytes) -> None:
            try:
                ack = await self.pipeline.handle(principal, raw, "grpc")
                async with wlock:
                    await context.write(ack)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failed.append(exc)
            finally:
                sem.release()

        self._uploads += 1
        self._idle.clear()
        closing = asyncio.ensure_future(self._closing.wait())
        it = request_iterator.__aiter__()
        try:
            while not failed:
                nxt = asyncio.ensure_future(it.__anext__())
                await asyncio.wait({nxt, closing}, return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():  # shutting down: take no more envelopes, finish those in flight
                    nxt.cancel()
                    break
                try:
                    raw = nxt.result()
                except StopAsyncIteration:
                    break
                await sem.acquire()
                t = asyncio.create_task(one(raw))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
        finally:
            closing.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self._uploads -= 1
            if self._uploads == 0:
                self._idle.set()
        if failed and not isinstance(failed[0], asyncio.CancelledError):
            log.warning("Upload stream ended with an error", extra={"agent_id": principal.agent_id, "error": repr(failed[0])})

    async def subscribe(self, request: ingest_pb2.SubscribeRequest, context: grpc.aio.ServicerContext):
        principal = await self._principal(context, "service")
        if request.tenant != principal.tenant:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                f"credential {principal.agent_id!r} may subscribe to tenant {principal.tenant!r} only")
        sub = self.hub.subscribe(request.tenant, request.device_ids, request.streams, request.buffer_batches)
        try:
            async for ev in sub.events():
                yield ev
        finally:
            self.hub.unsubscribe(sub)
