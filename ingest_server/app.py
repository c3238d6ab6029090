"""The in-process entry point: :class:`IngestApp`, an async context manager.

    from ingest_server.app import IngestApp
    from ingest_server.config import IngestConfig

    async with IngestApp(IngestConfig(db="sqlite:/tmp/x.sqlite", grpc="127.0.0.1:0")) as app:
        token = await app.add_agent("gym-1", "hub-1")        # '<agent_id>.<secret>'
        print(app.grpc_port)                                 # bound port
        ...                                                  # upload over gRPC / MQTT
    # leaving: stops taking new envelopes, finishes in-flight commits and acks, closes the store

``fittrack ingest serve`` is this plus signal handling (SIGTERM/SIGINT: graceful stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from . import auth as _auth
from .auth import Authenticator
from .config import IngestConfig
from .fanout import LiveHub
from .grpc_server import GrpcIngest, TlsFiles
from .http import HttpEndpoint
from .metrics import Metrics
from .pipeline import Pipeline
from .storage.base import StorageBackend, open_storage
from .validate import Limits

log = logging.getLogger("ingest_server.app")


def split_addr(addr: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise ValueError(f"address {addr!r}: expected HOST:PORT")
    return (host.strip("[]") or default_host), int(port)


class IngestApp:
    """Storage + pipeline + gRPC and/or MQTT transports + metrics endpoint, started together."""

    def __init__(self, config: IngestConfig, *, store: StorageBackend | None = None) -> None:
        self.config = config
        self.metrics = Metrics()
        self.store = store or open_storage(config.db, **({"max_size": config.pool_size} if config.db.startswith("postgres") else {}))
        self.auth = Authenticator(self.store, ttl_s=config.auth_cache_s)
        self.hub = LiveHub(self.metrics)
        limits = Limits(max_future_us=int(config.max_future_s * 1e6), max_age_days=config.max_age_days)
        self.pipeline = Pipeline(self.store, self.auth, self.metrics, self.hub, limits=limits, writers=config.writers,
                                 max_group_envelopes=config.max_group_envelopes)
        self.grpc: GrpcIngest | None = None
        self.mqtt = None
        self.http: HttpEndpoint | None = None
        self.grpc_port: int | None = None
        self.metrics_port: int | None = None
        self._maint: asyncio.Task | None = None
        self._started_at = 0.0
        self._stop = asyncio.Event()

    # ---------------------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        c = self.config
        self._started_at = time.time()
        await self.store.open()
        await self.pipeline.start()
        try:
            if c.grpc:
                tls = None
                if c.tls_cert or c.tls_key:
                    if not (c.tls_cert and c.tls_key):
                        raise ValueError("TLS needs both --tls-cert and --tls-key")
                    tls = TlsFiles(Path(c.tls_cert), Path(c.tls_key), Path(c.tls_client_ca) if c.tls_client_ca else None)
                self.grpc = GrpcIngest(self.pipeline, self.auth, self.hub, self.metrics, c.grpc, tls, reuseport=c.grpc_reuseport)
                self.grpc_port = await self.grpc.start()
            if c.mqtt:
                from .mqtt_consumer import MqttIngest

                host, port = split_addr(c.mqtt)
                self.mqtt = MqttIngest(self.pipeline, self.auth, self.hub, self.metrics, host=host, port=port,
                                       username=c.mqtt_username, password=c.mqtt_password, client_id=c.mqtt_client_id,
                                       topic_root=c.mqtt_topic_root, share_group=c.mqtt_share_group, live=c.mqtt_live,
                                       tls_ca=c.mqtt_tls_ca)
                await self.mqtt.start()
            if c.metrics:
                host, port = split_addr(c.metrics)
                self.http = HttpEndpoint(self.metrics, self.health, host, port)
                self.metrics_port = await self.http.start()
            if c.maintain_interval_s > 0:
                self._maint = asyncio.create_task(self._maintain_loop(), name="ingest.maintain")
        except BaseException:
            await self.stop()
            raise

    def ready_line(self) -> str:
        c = self.config
        grpc = f"{split_addr(c.grpc)[0]}:{self.grpc_port}" if self.grpc else "off"
        mqtt = c.mqtt if self.mqtt else "off"
        line = f"ingest ready grpc={grpc} mqtt={mqtt}"
        if self.http:
            line += f" metrics={self.http.host}:{self.metrics_port}"
        return line

    async def stop(self) -> None:
        """Graceful: transports stop taking input and finish in-flight envelopes (commit + ack),
        the writers drain the queue, then the store closes."""
        grace = self.config.shutdown_grace_s
        if self._maint:
            self._maint.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._maint
            self._maint = None
        jobs = []
        if self.grpc:
            jobs.append(self.grpc.stop(grace))
        if self.mqtt:
            jobs.append(self.mqtt.stop(grace))
        await asyncio.gather(*jobs, return_exceptions=True)
        self.grpc = self.mqtt = None
        await self.pipeline.stop()
        if self.http:
            await self.http.stop()
            self.http = None
        await self.store.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    # ---------------------------------------------------------------------------- helpers
    def health(self) -> dict[str, object]:
        return {
            "ok": self.pipeline.healthy,
            "storage": self.store.kind,
            "grpc": self.grpc_port,
            "mqtt": self.config.mqtt if self.mqtt else None,
            "queue_depth": self.pipeline.queue.qsize(),
            "uptime_s": round(time.time() - self._started_at, 1),
        }

    async def add_agent(self, tenant: str, agent_id: str, role: str = "agent") -> str:
        """Issue a credential; returns the token ``<agent_id>.<secret>``."""
        return await _auth.issue(self.store, tenant, agent_id, role)

    async def _maintain_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.maintain_interval_s)
            try:
                done = await self.store.maintain(retention_days=self.config.retention_days)
                log.info("maintenance", extra={"done": done})
            except Exception as exc:  # noqa: BLE001 - keep serving; try again next time
                log.warning("maintenance failed", extra={"error": repr(exc)})

    def request_stop(self) -> None:
        self._stop.set()

    async def serve_forever(self) -> None:
        """Run until SIGTERM/SIGINT (or :meth:`request_stop`), then stop gracefully."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stop.set)
        print(self.ready_line(), file=sys.stderr, flush=True)
        await self._stop.wait()
        log.info("stopping: finishing in-flight commits and acks")
