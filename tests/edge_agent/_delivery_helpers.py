"""Shared helpers of the outbox/delivery/uplink tests (engineer A of issue 8)."""

from __future__ import annotations

import numpy as np

from protocols.wire import SampleBatch

T0_US = 1_780_000_000_000_000


def hr_batch(device_id: str = "ble-000000000001", n: int = 10, t0_us: int = T0_US, bpm0: int = 60,
             stream: str = "heart_rate") -> SampleBatch:
    """``n`` samples at 1 Hz whose values encode their index (bpm0 + i), so loss/duplication shows."""
    t = t0_us + np.arange(n, dtype=np.int64) * 1_000_000
    return SampleBatch(device_id, stream, 0, t, bpm0 + np.arange(n, dtype=np.int64), unit="bpm")


def imu_batch(device_id: str = "ble-0000000000aa", n: int = 100, t0_us: int = T0_US, stream: str = "accel") -> SampleBatch:
    """``n`` 3-channel samples at 100 Hz."""
    t = t0_us + np.arange(n, dtype=np.int64) * 10_000
    v = (np.arange(n * 3, dtype=np.int64).reshape(n, 3) % 4096) - 2048
    return SampleBatch(device_id, stream, 0, t, v, scale=1 / 4096, unit="g")


class SteppingClock:
    """A UTC µs clock the test moves by hand (including backwards)."""

    def __init__(self, t_us: int = T0_US) -> None:
        self.t_us = t_us

    def __call__(self) -> int:
        return self.t_us


# ----------------------------------------------------------------------------- a tiny ingest side

import asyncio  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Callable  # noqa: E402

from protocols.wire import decode_envelope  # noqa: E402
from protocols.wire.gen.fittrack.v1 import envelope_pb2  # noqa: E402


@dataclass
class FakeIngest:
    """What a real ingest server does, in memory: decode, dedupe on (device, stream, seq), Ack.

    ``stored[(device_id, stream)]`` lists the batches in arrival order (for order checks);
    ``rows[(device_id, stream)]`` maps t_us -> value of every stored sample (for loss checks).
    ``policy(envelope) -> str`` may answer "ok" (default), "drop" (not stored, no Ack),
    "lose_ack" (stored, but the Ack is lost), "retry".
    ``reject(batch) -> str | None`` gives a reason to REJECT a batch.
    """

    policy: Callable[[object], str] = lambda env: "ok"
    reject: Callable[[object], str | None] = lambda b: None
    ledger: set = field(default_factory=set)
    stored: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    duplicates: int = 0
    envelopes: int = 0

    def handle(self, data: bytes) -> envelope_pb2.Ack | None:
        env = decode_envelope(data)
        self.envelopes += 1
        what = self.policy(env)
        if what == "drop":
            return None
        if what == "retry":
            return envelope_pb2.Ack(envelope_seq=env.seq, agent_id=env.agent_id, status=envelope_pb2.ACK_STATUS_RETRY,
                                    retry_after_ms=50, message="storage down (test)")
        ack = envelope_pb2.Ack(envelope_seq=env.seq, agent_id=env.agent_id, status=envelope_pb2.ACK_STATUS_OK)
        for b in env.batches:
            key = (b.device_id, b.stream, b.seq)
            reason = self.reject(b)
            if reason:
                st, n = envelope_pb2.BATCH_STATUS_REJECTED, 0
                ack.status = envelope_pb2.ACK_STATUS_PARTIAL
            elif key in self.ledger:
                st, n = envelope_pb2.BATCH_STATUS_DUPLICATE, 0
                self.duplicates += 1
            else:
                self.ledger.add(key)
                self.stored.setdefault((b.device_id, b.stream), []).append(b)
                rows = self.rows.setdefault((b.device_id, b.stream), {})
                for t, v in zip(b.t_us.tolist(), b.values.tolist()):
                    assert t not in rows, f"sample at {t} of {key} stored twice"
                    rows[t] = v
                st, n = envelope_pb2.BATCH_STATUS_STORED, len(b)
            ack.batches.add(device_id=b.device_id, stream=b.stream, seq=b.seq, status=st, samples_stored=n,
                            reason=reason or "")
        return None if what == "lose_ack" else ack

    def n_samples(self) -> int:
        return sum(len(r) for r in self.rows.values())


class FakeUplink:
    """An in-memory uplink to a :class:`FakeIngest` (see edge_agent.uplink.base.Uplink).

    ``hub.up`` False: connecting fails (server down). ``hub.cut()`` ends every live connection.
    """

    transport = "fake"

    def __init__(self, hub: "FakeHub") -> None:
        self.hub = hub
        self.queue: asyncio.Queue = asyncio.Queue()

    async def __aenter__(self):
        from edge_agent.uplink.base import AuthError, Unavailable

        self.hub.connects += 1
        if self.hub.auth_fail:
            raise AuthError("token refused (test)")
        if not self.hub.up:
            raise Unavailable("server down (test)")
        self.hub.live.append(self)
        return self

    async def __aexit__(self, *exc) -> None:
        if self in self.hub.live:
            self.hub.live.remove(self)

    async def send(self, envelope: bytes, envelope_seq: int) -> None:
        from edge_agent.uplink.base import Unavailable

        if self not in self.hub.live:
            raise Unavailable("connection lost (test)")
        self.hub.sent_seqs.append(envelope_seq)
        ack = self.hub.ingest.handle(envelope)
        if ack is not None:
            hub = self.hub
            hub.outstanding += 1
            hub.max_outstanding = max(hub.max_outstanding, hub.outstanding)

            def deliver(data: bytes = ack.SerializeToString()) -> None:
                hub.outstanding -= 1
                self.queue.put_nowait(data)

            if hub.ack_delay_s:
                asyncio.get_running_loop().call_later(hub.ack_delay_s, deliver)
            else:
                deliver()

    async def acks(self):
        from edge_agent.uplink.base import Unavailable, parse_ack

        while True:
            item = await self.queue.get()
            if item is None:
                raise Unavailable("connection lost (test)")
            yield parse_ack(item)


@dataclass
class FakeHub:
    ingest: FakeIngest = field(default_factory=FakeIngest)
    up: bool = True
    auth_fail: bool = False
    ack_delay_s: float = 0.0
    connects: int = 0
    outstanding: int = 0  # envelopes whose Ack has not been delivered yet
    max_outstanding: int = 0
    live: list = field(default_factory=list)
    sent_seqs: list = field(default_factory=list)

    def factory(self, config) -> FakeUplink:
        return FakeUplink(self)

    def cut(self) -> None:
        for u in list(self.live):
            self.live.remove(u)
            u.queue.put_nowait(None)


def uplink_config(transport: str = "mqtt", **kw):
    from edge_agent.uplink.config import UplinkConfig

    base = dict(transport=transport, host="127.0.0.1", port=1, tenant="gym-1", agent_id="agent-1",
                ack_timeout_s=2.0, backoff_base_s=0.05, backoff_cap_s=0.2, connect_timeout_s=3.0)
    base.update(kw)
    return UplinkConfig(**base)


# ----------------------------------------------------------------------------- a private Mosquitto

import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateMosquitto:
    """A Mosquitto of the test's own on a free port (so it can be restarted); stop() by PID."""

    def __init__(self, folder: Path, port: int | None = None, extra_conf: str = "") -> None:
        self.port = port or free_port()
        self.conf = folder / f"mosquitto-{self.port}.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n"
            + self.user_line() + extra_conf
        )
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def user_line() -> str:
        """Run as root would drop to user 'mosquitto', who cannot read the test's files."""
        return "user root\n" if os.geteuid() == 0 else ""

    def start(self) -> "PrivateMosquitto":
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


# ----------------------------------------------------------------------------- the real ingest server

import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def fittrack_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "fittrack", *args]


def add_agent(db: str, tenant: str, agent_id: str, *extra: str) -> str:
    """``fittrack ingest agent add``: the new token (the last line it prints on stdout)."""
    p = subprocess.run(fittrack_cmd("ingest", "agent", "add", "--db", db, "--tenant", tenant, "--agent", agent_id, *extra),
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"agent add failed: {p.stderr}"
    lines = [ln.strip() for ln in p.stdout.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith(agent_id + "."), f"unexpected agent add output: {p.stdout!r}"
    return lines[-1]


def revoke_agent(db: str, agent_id: str) -> None:
    p = subprocess.run(fittrack_cmd("ingest", "agent", "revoke", "--db", db, "--agent", agent_id),
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"agent revoke failed: {p.stderr}"


class IngestProcess:
    """``fittrack ingest serve`` as a child process (the contract's CLI), stopped by its PID."""

    def __init__(self, db: str, *, grpc_port: int | None = None, mqtt_port: int | None = None,
                 extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.db = db
        self.grpc_port = grpc_port
        self.mqtt_port = mqtt_port
        self.extra_args = extra_args
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.stderr: list[str] = []

    def start(self, timeout_s: float = 60.0) -> "IngestProcess":
        args = ["ingest", "serve", "--db", self.db]
        if self.grpc_port:
            args += ["--grpc", f"127.0.0.1:{self.grpc_port}"]
        if self.mqtt_port:
            args += ["--mqtt", f"127.0.0.1:{self.mqtt_port}"]
        args += list(self.extra_args)
        self.stderr = []
        ready = threading.Event()
        self.proc = subprocess.Popen(fittrack_cmd(*args), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **self.env})

        def pump(stream, sink) -> None:
            for line in stream:
                sink.append(line.rstrip("\n"))
                if "ingest ready" in line:
                    ready.set()

        threading.Thread(target=pump, args=(self.proc.stderr, self.stderr), daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while not ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("ingest server did not get ready:\n" + "\n".join(self.stderr[-30:]))
        return self

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


def stored_counts(dsn: str, device_ids: list[str]) -> dict[tuple[str, str], tuple[int, int]]:
    """(device_id, stream) -> (rows of channel 0, distinct times) in the server's samples_all."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT device_id, stream, count(*), count(DISTINCT time) FROM samples_all "
            "WHERE channel = 0 AND device_id = ANY(%s) GROUP BY 1, 2",
            (device_ids,),
        ).fetchall()
    return {(d, s): (n, nd) for d, s, n, nd in rows}


def ledger_keys(dsn: str, device_ids: list[str]) -> set[tuple[str, str, int]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT device_id, stream, seq FROM ledger WHERE device_id = ANY(%s)",
                            (device_ids,)).fetchall()
    return {(d, s, int(q)) for d, s, q in rows}


def recent_t0_us(hours_ago: float = 1.0) -> int:
    """A whole second about ``hours_ago`` in the past (servers refuse far-past / future data)."""
    return (time.time_ns() // 1000 // 1_000_000 - int(hours_ago * 3600)) * 1_000_000
