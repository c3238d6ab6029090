"""Shared helpers of the ingest server tests: envelopes, a gRPC upload client, servers in subprocesses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np

from protocols.wire import SampleBatch, encode_envelope
from protocols.wire.gen.fittrack.v1 import envelope_pb2 as epb

ROOT = Path(__file__).resolve().parents[2]
UPLOAD = "/fittrack.v1.Ingest/Upload"


def now_s_us() -> int:
    """Current time rounded down to a whole second, µs."""
    return time.time_ns() // 1000 // 1_000_000 * 1_000_000


def hr_batch(device: str, seq: int, *, n: int = 10, bpm: int = 70, t0_us: int | None = None) -> SampleBatch:
    t0 = (now_s_us() - 60_000_000) if t0_us is None else t0_us
    return SampleBatch(device, "heart_rate", seq, t0 + np.arange(n) * 1_000_000, np.full(n, bpm), unit="bpm")


def imu_batch(device: str, seq: int, *, n: int = 200, t0_us: int | None = None) -> SampleBatch:
    t0 = (now_s_us() - 60_000_000) if t0_us is None else t0_us
    v = (np.arange(n * 3).reshape(n, 3) % 2000) - 1000
    return SampleBatch(device, "accel", seq, t0 + np.arange(n) * 10_000, v, scale=1 / 4096, unit="g", time_resolution_us=10_000)


def envelope(batches: list[SampleBatch], *, agent: str, tenant: str, seq: int) -> bytes:
    return encode_envelope(batches, agent_id=agent, tenant=tenant, seq=seq)


def status(ack: epb.Ack) -> str:
    return epb.AckStatus.Name(ack.status)


def batch_statuses(ack: epb.Ack) -> list[str]:
    return [epb.BatchStatus.Name(b.status) for b in ack.batches]


async def upload(port: int, token: str | None, envelopes: list[bytes], *, timeout_s: float = 20.0) -> list[epb.Ack]:
    """Send envelopes on one Upload stream, half-close, collect every ack (sorted by envelope_seq)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        up = ch.stream_stream(UPLOAD, request_serializer=None, response_deserializer=epb.Ack.FromString)
        md = (("authorization", f"Bearer {token}"),) if token is not None else ()
        call = up(metadata=md, timeout=timeout_s)
        await call.initial_metadata()  # sent by the server once the credential is accepted, or the refusal
        if call.done():
            await call.read()  # raises the server's status (UNAUTHENTICATED, PERMISSION_DENIED, ...)
        try:
            for e in envelopes:
                await call.write(e)
            await call.done_writing()
        except grpc.aio.AioRpcError:
            pass  # the server ended the call (e.g. refused the credential): reading raises its real status
        acks = [a async for a in call]
    return sorted(acks, key=lambda a: a.envelope_seq)


def start_server(args: list[str], env: dict[str, str] | None = None, timeout_s: float = 30.0) -> tuple[subprocess.Popen, dict[str, str]]:
    """``fittrack ingest serve ARGS`` in a subprocess; waits for the ready line and returns
    (process, {"grpc": "H:P", "mqtt": ..., "metrics": ...})."""
    e = dict(os.environ, **(env or {}))
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    p = subprocess.Popen([sys.executable, "-m", "fittrack", "ingest", "serve", *args], cwd=ROOT, env=e,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout_s
    seen = []
    assert p.stderr is not None
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            if p.poll() is not None:
                raise RuntimeError(f"server exited {p.returncode}: {''.join(seen)}")
            continue
        seen.append(line)
        m = re.search(r"ingest ready grpc=(\S+) mqtt=(\S+)(?: metrics=(\S+))?", line)
        if m:
            _drain(p)
            return p, {"grpc": m.group(1), "mqtt": m.group(2), "metrics": m.group(3) or ""}
    p.kill()
    raise RuntimeError(f"server not ready in {timeout_s} s: {''.join(seen)}")


def _drain(p: subprocess.Popen) -> None:
    """Keep reading the server's stderr so it never blocks on a full pipe."""
    import threading

    def run() -> None:
        assert p.stderr is not None
        for _ in p.stderr:
            pass

    threading.Thread(target=run, daemon=True).start()


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "fittrack", *args], cwd=ROOT, env=e, input=stdin,
                          capture_output=True, text=True, timeout=60)


class MqttAgent:
    """A test agent on MQTT (aiomqtt, MQTT 5): publishes envelopes QoS 1, collects its acks."""

    def __init__(self, host: str, port: int, *, root: str, tenant: str, agent: str, username: str | None = None,
                 password: str | None = None) -> None:
        import aiomqtt

        self.root, self.tenant, self.agent = root, tenant, agent
        self.client = aiomqtt.Client(host, port, username=username, password=password,
                                     protocol=aiomqtt.ProtocolVersion.V5, identifier=f"test-{agent}-{os.getpid()}-{time.monotonic_ns()}")
        self.acks: dict[int, epb.Ack] = {}
        self._task = None
        self.suback = None

    @property
    def up(self) -> str:
        return f"{self.root}/up/{self.tenant}/{self.agent}"

    async def __aenter__(self) -> "MqttAgent":
        import asyncio

        await self.client.__aenter__()
        self.suback = await self.client.subscribe(f"{self.root}/ack/{self.tenant}/{self.agent}", qos=1)
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for msg in self.client.messages:
            ack = epb.Ack.FromString(msg.payload)
            self.acks[ack.envelope_seq] = ack

    async def publish(self, payload: bytes, topic: str | None = None) -> None:
        await self.client.publish(topic or self.up, payload, qos=1)

    async def wait_acks(self, seqs: set[int], timeout_s: float = 15.0) -> dict[int, epb.Ack]:
        import asyncio

        deadline = time.monotonic() + timeout_s
        while not seqs <= set(self.acks):
            if time.monotonic() > deadline:
                raise TimeoutError(f"acks missing for envelopes {sorted(seqs - set(self.acks))[:10]}")
            await asyncio.sleep(0.01)
        return {s: self.acks[s] for s in seqs}

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
        await self.client.__aexit__(None, None, None)
