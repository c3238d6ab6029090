"""``fittrack sim load``: many edge agents at the uplink level (MQTT or gRPC), with faults.

N agents × M devices run the device models (no BLE), decode the notifications as an agent
does (:mod:`firmware_sims.streams`), cut them into ``SampleBatch`` windows of ``--batch-s``
simulated seconds with ``seq`` = the window's start in µs (strictly increasing per
(device_id, stream), never reused by a rerun), pack each agent's ready batches into
``fittrack.v1`` envelopes and send them with the agent's credentials:

* gRPC: one ``Ingest.Upload`` stream per agent, metadata ``authorization: Bearer <token>``;
* MQTT: one client per agent, username ``<tenant>/<agent_id>``, password = token, envelopes
  (QoS 1) to ``fittrack/v1/up/{tenant}/{agent_id}``, acks from ``fittrack/v1/ack/{tenant}/{agent_id}``.

Acks are matched by ``envelope_seq``; an envelope not acked within ``--ack-timeout-s`` or
answered RETRY is re-sent (new envelope seq, same batches). Faults: ``--duplicate-p`` repeats
a batch in a later envelope, ``--resend-p`` sends an envelope twice, ``--reorder-p`` swaps an
envelope with the next one, ``--outage AT:DUR`` (simulated s) holds everything back and then
sends it as a burst. The JSON report says exactly what was sent (per device and stream: the
seqs and the unique sample count) and what the acks said, so a test can compare with storage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from protocols.wire import MAX_ENVELOPE_BYTES, SampleBatch, encode_envelope
from protocols.wire.gen.fittrack.v1 import envelope_pb2

from .models import DeviceModel, build_devices
from .streams import STREAMS, StreamDecoder, as_arrays, device_id_for

ACK_NAMES = {1: "STORED", 2: "DUPLICATE", 3: "REJECTED"}


@dataclass
class LoadConfig:
    """What to send. Durations in simulated seconds unless named ``_wall``."""

    transport: str = "grpc"
    target: str = "127.0.0.1:50051"
    tenant: str = "loadtest"
    agents: int = 2
    devices: int = 3
    kinds: str = "hr,hr,imu,bike,treadmill"
    seconds: float = 60.0
    batch_s: float = 5.0
    time_scale: float = 0.0  # simulated s per wall s; 0 = as fast as acks allow
    seed: int = 0
    agent_prefix: str = "load-agent"
    tokens: dict[str, str] = field(default_factory=dict)
    duplicate_p: float = 0.0
    resend_p: float = 0.0
    reorder_p: float = 0.0
    outage: tuple[float, float] | None = None
    ack_timeout_s: float = 10.0
    max_inflight: int = 16
    t0_us: int = 0  # data start (µs since epoch); 0 = now - seconds
    topic_root: str = "fittrack/v1"  # MQTT only; tests isolate themselves on a shared broker with it

    def agent_ids(self) -> list[str]:
        return [f"{self.agent_prefix}-{i:04d}" for i in range(self.agents)]


class Uplink(Protocol):
    async def connect(self) -> None: ...
    async def send(self, envelope: bytes) -> None: ...
    async def next_ack(self) -> envelope_pb2.Ack: ...
    async def close(self) -> None: ...


class GrpcUplink:
    def __init__(self, target: str, token: str) -> None:
        self.target, self.token = target, token
        self._q: asyncio.Queue[Any] = asyncio.Queue()
        self._first = asyncio.Event()
        self._sent_first = False
        self.error: BaseException | None = None

    async def connect(self) -> None:
        import grpc

        from protocols.wire.gen.fittrack.v1 import ingest_pb2_grpc

        self.channel = grpc.aio.insecure_channel(self.target)
        stub = ingest_pb2_grpc.IngestStub(self.channel)
        self.call = stub.Upload(metadata=(("authorization", f"Bearer {self.token}"),))
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for ack in self.call:
                self._first.set()
                self._q.put_nowait(ack)
        except Exception as e:  # noqa: BLE001 - surfaced to the agent loop
            self.error = ConnectionError(f"Upload ended by the server: {getattr(e, 'code', lambda: '?')()}: "
                                         f"{getattr(e, 'details', lambda: str(e))()}")
            self._q.put_nowait(self.error)
        else:
            self.error = ConnectionError("Upload stream closed by the server")
            self._q.put_nowait(self.error)
        self._first.set()

    async def send(self, envelope: bytes) -> None:
        if self.error is not None:
            raise self.error
        try:
            await self.call.write(envelope_pb2.Envelope.FromString(envelope))
            if not self._sent_first:
                # the first envelope is a handshake: wait for its ack (or the refusal, e.g.
                # UNAUTHENTICATED) before pipelining, so a refused token is reported as such
                self._sent_first = True
                await asyncio.wait_for(self._first.wait(), 30)
                if self.error is not None:
                    raise self.error
        except ConnectionError:
            raise
        except Exception as e:  # noqa: BLE001 - a write after the server ended the call: report its status
            import grpc

            try:
                code = await asyncio.wait_for(self.call.code(), 5)
                details = await self.call.details()
            except Exception:  # noqa: BLE001
                raise e from None
            if code == grpc.StatusCode.OK:
                raise
            raise ConnectionError(f"Upload ended by the server: {code.name}: {details}") from None

    async def next_ack(self) -> envelope_pb2.Ack:
        a = await self._q.get()
        if isinstance(a, BaseException):
            raise a
        return a

    async def close(self) -> None:
        try:
            await self.call.done_writing()
        except Exception:  # noqa: BLE001
            pass
        self._reader.cancel()
        await self.channel.close()


class MqttUplink:
    def __init__(self, target: str, tenant: str, agent_id: str, token: str, topic_root: str = "fittrack/v1") -> None:
        host, _, port = target.rpartition(":")
        self.host, self.port = host or "127.0.0.1", int(port)
        self.tenant, self.agent_id, self.token = tenant, agent_id, token
        root = topic_root.rstrip("/")
        self.up = f"{root}/up/{tenant}/{agent_id}"
        self.ack = f"{root}/ack/{tenant}/{agent_id}"

    async def connect(self) -> None:
        import aiomqtt

        self.client = aiomqtt.Client(self.host, self.port, username=f"{self.tenant}/{self.agent_id}",
                                     password=self.token, identifier=f"{self.agent_id}-load", clean_session=True)
        await self.client.__aenter__()
        await self.client.subscribe(self.ack, qos=1)
        self._it = self.client.messages.__aiter__()

    async def send(self, envelope: bytes) -> None:
        await self.client.publish(self.up, envelope, qos=1)

    async def next_ack(self) -> envelope_pb2.Ack:
        msg = await self._it.__anext__()
        return envelope_pb2.Ack.FromString(bytes(msg.payload))  # type: ignore[arg-type]

    async def close(self) -> None:
        await self.client.__aexit__(None, None, None)


@dataclass
class StreamReport:
    agent_id: str
    device_id: str
    kind: str
    stream: str
    seqs: list[int] = field(default_factory=list)
    samples: int = 0
    sends: int = 0
    statuses: Counter[str] = field(default_factory=Counter)


class Agent:
    """One simulated edge agent: its devices, batching, envelopes and ack bookkeeping."""

    def __init__(self, cfg: LoadConfig, agent_id: str, index: int, report: dict[tuple[str, str], StreamReport],
                 totals: Counter[str]) -> None:
        self.cfg, self.agent_id = cfg, agent_id
        kinds = [k.strip() for k in cfg.kinds.split(",") if k.strip()]
        spec = ",".join(f"{kinds[(index * cfg.devices + j) % len(kinds)]}:1" for j in range(cfg.devices))
        self.models: list[DeviceModel] = build_devices(spec, seed=cfg.seed * 100_003 + index)
        self.decoders = [StreamDecoder(m, cfg.t0_us) for m in self.models]
        self.rng = random.Random(f"{cfg.seed}/{agent_id}")
        self.report, self.totals = report, totals
        self.env_seq = 0
        self.inflight: dict[int, tuple[list[SampleBatch], float]] = {}
        self.final: dict[tuple[str, str, int], str] = {}
        self.pending_dups: list[SampleBatch] = []
        self.held: list[list[SampleBatch]] = []
        self.error: str | None = None

    def batches_for_window(self, t_a: float, t_b: float) -> list[SampleBatch]:
        out: list[SampleBatch] = []
        for m, dec in zip(self.models, self.decoders):
            did = device_id_for(m)
            for stream, buf in dec(m.advance(t_b)).items():
                t, v = as_arrays(buf, stream)
                scale, unit, _ch = STREAMS[stream]
                seq = self.cfg.t0_us + int(round(t_a * 1e6))
                b = SampleBatch(did, stream, seq, t, v, scale=scale, unit=unit)
                out.append(b)
                r = self.report.setdefault((did, stream), StreamReport(self.agent_id, did, m.kind, stream))
                r.seqs.append(seq)
                r.samples += len(t)
        return out

    def _envelopes(self, batches: list[SampleBatch]) -> list[tuple[int, bytes, list[SampleBatch]]]:
        """Pack batches into as few envelopes as fit under the size limit."""
        out = []
        group: list[SampleBatch] = []
        for b in batches:
            group.append(b)
            if len(group) > 1 and len(encode_envelope(group, agent_id=self.agent_id, tenant=self.cfg.tenant, seq=0)) > MAX_ENVELOPE_BYTES * 0.8:
                group.pop()
                out.append(group)
                group = [b]
        if group:
            out.append(group)
        res = []
        for g in out:
            self.env_seq += 1
            res.append((self.env_seq, encode_envelope(g, agent_id=self.agent_id, tenant=self.cfg.tenant, seq=self.env_seq), g))
        return res

    async def _send(self, up: Uplink, batches: list[SampleBatch]) -> None:
        for seq, env, group in self._envelopes(batches):
            while len(self.inflight) >= self.cfg.max_inflight:
                await asyncio.sleep(0.002)
            self.inflight[seq] = (group, time.monotonic())
            await up.send(env)
            self.totals["envelopes"] += 1
            self.totals["bytes"] += len(env)
            for b in group:
                self.report[(b.device_id, b.stream)].sends += 1
            if self.rng.random() < self.cfg.resend_p:
                await up.send(env)  # the same envelope twice (a lost PUBACK / retransmission)
                self.totals["envelopes_resent"] += 1
                self.totals["bytes"] += len(env)

    async def _ack_loop(self, up: Uplink) -> None:
        while True:
            ack = await up.next_ack()
            entry = self.inflight.pop(ack.envelope_seq, None)
            self.totals["acks"] += 1
            if ack.status == envelope_pb2.ACK_STATUS_RETRY:
                self.totals["retry"] += 1
                if entry is not None:
                    await asyncio.sleep(ack.retry_after_ms / 1000)
                    self.held.append(entry[0])
                continue
            if ack.status == envelope_pb2.ACK_STATUS_REJECTED and not ack.batches:
                self.totals["envelopes_rejected"] += 1
                self.error = ack.message or "envelope rejected"
                continue
            for ba in ack.batches:
                name = ACK_NAMES.get(ba.status, "UNSPECIFIED")
                r = self.report.get((ba.device_id, ba.stream))
                if r is not None:
                    r.statuses[name] += 1
                self.totals[f"batch_{name.lower()}"] += 1
                key = (ba.device_id, ba.stream, ba.seq)
                if self.final.get(key) != "STORED":
                    self.final[key] = name

    async def run(self, up: Uplink) -> None:
        cfg = self.cfg
        ack_task = asyncio.create_task(self._ack_loop(up))
        try:
            t = 0.0
            wall0 = time.monotonic()
            reorder_hold: list[SampleBatch] | None = None
            while t < cfg.seconds - 1e-9:
                t_b = min(t + cfg.batch_s, cfg.seconds)
                batches = self.batches_for_window(t, t_b)
                if cfg.time_scale > 0:
                    delay = wall0 + t_b / cfg.time_scale - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                send = batches + self.pending_dups
                self.pending_dups = [b for b in batches if self.rng.random() < cfg.duplicate_p]
                self.totals["duplicates_injected"] += len(self.pending_dups)
                in_outage = cfg.outage is not None and cfg.outage[0] <= t < cfg.outage[0] + cfg.outage[1]
                if in_outage:
                    self.held.append(send)
                    t = t_b
                    continue
                if self.held:  # back from an outage (or RETRY): burst everything held
                    held, self.held = self.held, []
                    for h in held:
                        await self._send(up, h)
                if reorder_hold is not None:
                    await self._send(up, send)
                    await self._send(up, reorder_hold)
                    reorder_hold = None
                elif self.rng.random() < cfg.reorder_p:
                    reorder_hold = send
                    self.totals["reordered"] += 1
                else:
                    await self._send(up, send)
                t = t_b
                self._resend_timed_out()
            if reorder_hold is not None:
                await self._send(up, reorder_hold)
            if self.pending_dups:
                await self._send(up, self.pending_dups)
                self.pending_dups = []
            deadline = time.monotonic() + cfg.ack_timeout_s * 3
            while (self.inflight or self.held) and time.monotonic() < deadline:
                if self.held:
                    held, self.held = self.held, []
                    for h in held:
                        await self._send(up, h)
                self._resend_timed_out()
                if ack_task.done():
                    ack_task.result()
                await asyncio.sleep(0.01)
            self.totals["unacked_envelopes"] += len(self.inflight)
        finally:
            ack_task.cancel()
            await asyncio.gather(ack_task, return_exceptions=True)

    def _resend_timed_out(self) -> None:
        now = time.monotonic()
        for seq, (group, sent) in list(self.inflight.items()):
            if now - sent > self.cfg.ack_timeout_s:
                del self.inflight[seq]
                self.held.append(group)
                self.totals["timeouts"] += 1


async def run_load(cfg: LoadConfig) -> dict[str, Any]:
    """Run the load and return the report (also what ``--report`` writes)."""
    if cfg.t0_us == 0:
        cfg.t0_us = (int(time.time() - cfg.seconds) // 1) * 1_000_000
    report: dict[tuple[str, str], StreamReport] = {}
    totals: Counter[str] = Counter()
    agents = [Agent(cfg, a, i, report, totals) for i, a in enumerate(cfg.agent_ids())]
    missing = [a.agent_id for a in agents if a.agent_id not in cfg.tokens]
    if missing:
        raise ValueError(f"no token for agent(s) {', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}: "
                         "pass --tokens FILE or --db DSN (creates them with 'fittrack ingest agent add')")

    async def one(agent: Agent) -> None:
        token = cfg.tokens[agent.agent_id]
        up: Uplink = GrpcUplink(cfg.target, token) if cfg.transport == "grpc" else MqttUplink(
            cfg.target, cfg.tenant, agent.agent_id, token, cfg.topic_root)
        await up.connect()
        try:
            await agent.run(up)
        finally:
            await up.close()

    wall0 = time.monotonic()
    results = await asyncio.gather(*(one(a) for a in agents), return_exceptions=True)
    wall = time.monotonic() - wall0
    errors = [f"{a.agent_id}: {r!r}" for a, r in zip(agents, results) if isinstance(r, BaseException)]
    errors += [f"{a.agent_id}: {a.error}" for a in agents if a.error]
    samples = sum(r.samples for r in report.values())
    cfg_out = asdict(cfg)
    cfg_out["tokens"] = f"<{len(cfg.tokens)} tokens>"
    return {
        "config": cfg_out, "wall_s": wall, "errors": errors, "totals": dict(totals),
        "batches_unique": sum(len(r.seqs) for r in report.values()), "samples_unique": samples,
        "samples_per_s": samples / wall if wall > 0 else 0.0,
        "streams": [{**{k: v for k, v in asdict(r).items() if k != "statuses"}, "statuses": dict(r.statuses)}
                    for r in report.values()],
    }


def _create_tokens(db: str, tenant: str, agent_ids: list[str]) -> dict[str, str]:
    import subprocess

    tokens = {}
    for a in agent_ids:
        p = subprocess.run([sys.executable, "-m", "fittrack", "ingest", "agent", "add", "--db", db, "--tenant", tenant,
                            "--agent", a], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"'fittrack ingest agent add' failed for {a}: {p.stderr.strip()}")
        tokens[a] = p.stdout.strip().splitlines()[-1]
    return tokens


def main(argv: list[str], prog: str = "fittrack sim load") -> int:
    ap = argparse.ArgumentParser(prog=prog, description="Stand in for many edge agents at the uplink (MQTT or gRPC) "
                                 "and report exactly what was sent.")
    ap.add_argument("--transport", choices=["grpc", "mqtt"], default="grpc")
    ap.add_argument("--target", default=None, help="HOST:PORT of the ingest gRPC server or MQTT broker")
    ap.add_argument("--tenant", default="loadtest")
    ap.add_argument("--agents", type=int, default=2)
    ap.add_argument("--devices", type=int, default=3, help="devices per agent")
    ap.add_argument("--kinds", default=LoadConfig.kinds, help="device kinds, assigned round-robin (hr,imu,bike,treadmill,rower,power)")
    ap.add_argument("--seconds", type=float, default=60.0, help="simulated seconds of data per device")
    ap.add_argument("--batch-s", type=float, default=5.0, help="batch window, simulated seconds")
    ap.add_argument("--time-scale", type=float, default=0.0, help="simulated s per wall s (0: as fast as acks allow)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--agent-prefix", default="load-agent")
    ap.add_argument("--tokens", type=Path, help="JSON file {agent_id: token}")
    ap.add_argument("--db", help="create the agents' tokens with 'fittrack ingest agent add --db DSN'")
    ap.add_argument("--duplicate-p", type=float, default=0.0)
    ap.add_argument("--resend-p", type=float, default=0.0)
    ap.add_argument("--reorder-p", type=float, default=0.0)
    ap.add_argument("--outage", default=None, help="AT:DURATION in simulated seconds, e.g. 20:15")
    ap.add_argument("--ack-timeout-s", type=float, default=10.0)
    ap.add_argument("--topic-root", default="fittrack/v1", help="MQTT topic root (default %(default)s)")
    ap.add_argument("--report", type=Path, help="write the JSON report here (default: stdout)")
    a = ap.parse_args(argv)
    outage = None
    if a.outage:
        try:
            at, dur = (float(x) for x in a.outage.split(":"))
            outage = (at, dur)
        except ValueError:
            ap.error(f"--outage {a.outage!r}: expected AT:DURATION in seconds, e.g. 20:15")
    target = a.target or ("127.0.0.1:50051" if a.transport == "grpc" else "127.0.0.1:1883")
    cfg = LoadConfig(transport=a.transport, target=target, tenant=a.tenant, agents=a.agents, devices=a.devices,
                     kinds=a.kinds, seconds=a.seconds, batch_s=a.batch_s, time_scale=a.time_scale, seed=a.seed,
                     agent_prefix=a.agent_prefix, duplicate_p=a.duplicate_p, resend_p=a.resend_p, reorder_p=a.reorder_p,
                     outage=outage, ack_timeout_s=a.ack_timeout_s, topic_root=a.topic_root)
    try:
        if a.tokens:
            cfg.tokens = json.loads(a.tokens.read_text())
        elif a.db:
            cfg.tokens = _create_tokens(a.db, a.tenant, cfg.agent_ids())
        rep = asyncio.run(run_load(cfg))
    except (ValueError, RuntimeError, OSError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    text = json.dumps(rep, indent=1)
    if a.report:
        a.report.write_text(text)
        t = rep["totals"]
        print(f"sent {rep['batches_unique']} batches / {rep['samples_unique']} samples in {t.get('envelopes', 0)} envelopes "
              f"({t.get('bytes', 0)} B) in {rep['wall_s']:.1f} s; acks: stored {t.get('batch_stored', 0)}, duplicate "
              f"{t.get('batch_duplicate', 0)}, rejected {t.get('batch_rejected', 0)}; errors {len(rep['errors'])}",
              file=sys.stderr)
    else:
        print(text)
    return 1 if rep["errors"] or rep["totals"].get("batch_rejected", 0) else 0
