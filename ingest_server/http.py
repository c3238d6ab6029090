"""A tiny HTTP endpoint: ``/metrics`` (Prometheus text format) and ``/healthz`` (200 / 503)."""

from __future__ import annotations

import asyncio
import json
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .metrics import Metrics


class HttpEndpoint:
    def __init__(self, metrics: Metrics, health: Callable[[], dict[str, object]], host: str, port: int) -> None:
        self.metrics = metrics
        self.health = health
        self.host, self.port = host, port
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) > 1 else "/"
            if path == "/metrics":
                body, ctype, status = generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST, "200 OK"
            elif path == "/healthz":
                h = self.health()
                body, ctype = json.dumps(h).encode(), "application/json"
                status = "200 OK" if h.get("ok") else "503 Service Unavailable"
            else:
                body, ctype, status = b"not found: try /metrics or /healthz\n", "text/plain", "404 Not Found"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
