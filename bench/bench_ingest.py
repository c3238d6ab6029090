"""Ingest server benchmark (issue 7): end-to-end samples/s and ack latency vs a raw psycopg COPY.

End to end = envelopes (pre-encoded) from a plain client -> server (a separate process:
``fittrack ingest serve``) -> TimescaleDB committed -> ack received by the client. Measured in
the same run, into the same tables of the same database:

* raw psycopg COPY: the rows the server writes, sent with ``cursor.copy()`` + ``write_row`` (the
  usual psycopg way), one connection, no ledger, no decoding, no network hop for the data;
* our COPY alone: the numpy-built binary COPY the server uses (storage ceiling, no server).

Workloads:
  HR-like   envelopes of 20 straps x 60 s of 1 Hz heart rate (1,200 samples, 20 batches) ->
            narrow ``samples`` rows.
  IMU-like  envelopes of one 100 Hz 3-axis accelerometer x 10 s (1,000 samples x 3 channels,
            one batch) -> ``sample_blocks`` (int4 arrays, 80 samples per row).
  10k devices: 10,000 straps at 1 Hz, 20 per agent (500 agents, one envelope of 20 one-sample
            batches per agent per second), for ``--live-s`` seconds: p50/p99 ack latency.

Run: python -m bench.bench_ingest [--quick] [--admin-dsn postgresql://...] [--mqtt 127.0.0.1:1884]
The machine has 2 cores shared with the database, broker and client: figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

from bench.common import print_table
from protocols.wire import SampleBatch, encode_envelope
from protocols.wire.gen.fittrack.v1 import envelope_pb2 as epb

ROOT = Path(__file__).resolve().parents[1]
UPLOAD = "/fittrack.v1.Ingest/Upload"
TENANT = "bench"


# ---------------------------------------------------------------------------- workloads

def hr_envelopes(n_env: int, agent: str, t_base_us: int, straps: int = 20, seconds: int = 60, tag: str = "") -> tuple[list[bytes], list[SampleBatch]]:
    rng = np.random.default_rng(1)
    envs, batches = [], []
    for e in range(n_env):
        bs = []
        for d in range(straps):
            t0 = t_base_us + e * seconds * 1_000_000
            v = 60 + rng.integers(0, 100, seconds)
            bs.append(SampleBatch(f"hr{tag}-{agent}-{d}", "heart_rate", e, t0 + np.arange(seconds) * 1_000_000, v, unit="bpm",
                                  time_resolution_us=1000))
        batches += bs
        envs.append(encode_envelope(bs, agent_id=agent, tenant=TENANT, seq=e))
    return envs, batches


def imu_envelopes(n_env: int, agent: str, t_base_us: int, tag: str = "") -> tuple[list[bytes], list[SampleBatch]]:
    rng = np.random.default_rng(2)
    envs, batches = [], []
    for e in range(n_env):
        t0 = t_base_us + e * 10_000_000
        n = 1000
        v = (rng.normal(0, 200, (n, 3)) + [0, 0, 4096]).astype(np.int64)
        b = SampleBatch(f"imu{tag}-{agent}", "accel", e, t0 + np.arange(n) * 10_000, v, scale=1 / 4096, unit="g",
                        time_resolution_us=10_000)
        batches.append(b)
        envs.append(encode_envelope([b], agent_id=agent, tenant=TENANT, seq=e))
    return envs, batches


# ---------------------------------------------------------------------------- peers

def raw_copy(dsn: str, batches: list[SampleBatch], table: str) -> float:
    """psycopg binary COPY with write_row: the same rows the server writes. Returns seconds."""
    pg_epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        if table == "samples":
            with cur.copy("COPY samples (time, device_id, stream, channel, value) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["timestamptz", "text", "text", "int2", "float8"])
                for b in batches:
                    dev = "raw-" + b.device_id
                    for t, v in zip(b.t_us.tolist(), (b.values * b.scale).tolist()):
                        cp.write_row((pg_epoch + dt.timedelta(microseconds=t), dev, b.stream, 0, v))
        else:
            with cur.copy("COPY sample_blocks (time, device_id, stream, seq, part, period_us, t_off_us, raw, scale)"
                          " FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["timestamptz", "text", "text", "int8", "int2", "int8", "int4[]", "int4[]", "float8"])
                for b in batches:
                    dev = "raw-" + b.device_id
                    period = int(b.t_us[1] - b.t_us[0])
                    for part, i in enumerate(range(0, len(b), 80)):
                        cp.write_row((pg_epoch + dt.timedelta(microseconds=int(b.t_us[i])), dev, b.stream, b.seq, part, period,
                                      None, b.values[i:i + 80].tolist(), b.scale))
        conn.commit()
        return time.perf_counter() - t0


def our_copy(dsn: str, batches: list[SampleBatch]) -> float:
    """The server's storage path alone (ledger + numpy binary COPY), one connection, one transaction per 64 batches."""
    from ingest_server.storage import WriteRequest
    from ingest_server.storage.timescale import TimescaleBackend

    renamed = [SampleBatch._trusted("own-" + b.device_id, b.stream, b.seq, b.t_us, b.values, b.scale, b.unit, b.time_resolution_us)
               for b in batches]

    async def run() -> float:
        async with TimescaleBackend(dsn, max_size=1) as st:
            t0 = time.perf_counter()
            for i in range(0, len(renamed), 64):
                await st.write_many([WriteRequest(TENANT, "own", renamed[i:i + 64])])
            return time.perf_counter() - t0

    return asyncio.run(run())


# ---------------------------------------------------------------------------- server

def start_server(dsn: str, grpc: bool, mqtt: str | None, root: str, processes: int = 1) -> tuple[subprocess.Popen, dict[str, str]]:
    args = [sys.executable, "-m", "fittrack", "ingest", "serve", "--db", dsn, "--maintain-interval-s", "0",
            "--max-age-days", "3650", "--log-level", "WARNING", "--processes", str(processes), "--metrics", "127.0.0.1:0"]
    if grpc:
        args += ["--grpc", "127.0.0.1:0"]
    if mqtt:
        args += ["--mqtt", mqtt, "--mqtt-topic-root", root, "--no-mqtt-live"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert p.stderr is not None
    for line in p.stderr:
        m = re.search(r"ingest ready grpc=(\S+) mqtt=(\S+) metrics=(\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()  # type: ignore[union-attr]
            return p, {"grpc": m.group(1), "mqtt": m.group(2), "metrics": m.group(3)}
    raise RuntimeError(f"server did not start (exit {p.wait()})")


def server_latency(metrics_addr: str, transport: str) -> dict[float, float]:
    """Cumulative histogram of the (first) server process: {upper bound s: count} of ack latency."""
    import urllib.request

    text = urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r'fittrack_ingest_ack_latency_seconds_bucket\{le="([^"]+)",transport="(\w+)"\} (\S+)', line)
        if m and m.group(2) == transport:
            out[float(m.group(1))] = float(m.group(3))
    return out


def hist_quantile(h0: dict[float, float], h1: dict[float, float], q: float) -> float:
    """Upper bucket bound below which a fraction q of the observations between two scrapes fall."""
    bounds = sorted(h1)
    if not bounds:
        return float("nan")
    total = h1[bounds[-1]] - h0.get(bounds[-1], 0.0)
    for b in bounds:
        if total and (h1[b] - h0.get(b, 0.0)) >= q * total:
            return b
    return float("inf")


def add_agents(dsn: str, agents: list[str]) -> dict[str, str]:
    from ingest_server import auth
    from ingest_server.storage.timescale import TimescaleBackend

    async def run() -> dict[str, str]:
        async with TimescaleBackend(dsn) as st:
            return {a: await auth.issue(st, TENANT, a) for a in agents}

    return asyncio.run(run())


# ---------------------------------------------------------------------------- clients

async def grpc_upload(addr: str, tokens: dict[str, str], envs_by_agent: dict[str, list[bytes]], window: int = 64) -> tuple[float, list[float]]:
    """One Upload stream per agent, up to ``window`` unacked envelopes each. (seconds, ack latencies)."""
    import grpc

    lat: list[float] = []
    if True:  # one connection per agent (SO_REUSEPORT spreads connections over server processes)

        async def one(agent: str, envs: list[bytes]) -> None:
            ch = grpc.aio.insecure_channel(addr, options=[("grpc.use_local_subchannel_pool", 1)])
            up = ch.stream_stream(UPLOAD, request_serializer=None, response_deserializer=epb.Ack.FromString)
            call = up(metadata=(("authorization", f"Bearer {tokens[agent]}"),))
            sem = asyncio.Semaphore(window)
            sent: dict[int, float] = {}

            async def reader() -> None:
                async for ack in call:
                    if ack.status != epb.ACK_STATUS_OK:
                        raise RuntimeError(f"ack {ack.status}: {ack.message}")
                    lat.append(time.perf_counter() - sent.pop(ack.envelope_seq))
                    sem.release()

            rt = asyncio.create_task(reader())
            for i, e in enumerate(envs):
                await sem.acquire()
                sent[i] = time.perf_counter()
                await call.write(e)
            await call.done_writing()
            await rt
            await ch.close()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(a, e) for a, e in envs_by_agent.items()))
        return time.perf_counter() - t0, lat


def mqtt_upload(broker: str, root: str, envs_by_agent: dict[str, list[bytes]], window: int = 256) -> tuple[float, list[float]]:
    """paho client (threaded loop), QoS 1 publishes on each agent's uplink, acks from ack/#."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = broker.rsplit(":", 1)
    total = sum(len(v) for v in envs_by_agent.values())
    sent: dict[tuple[str, int], float] = {}
    lat: list[float] = []
    done = threading.Event()
    sem = threading.Semaphore(window)
    subscribed = threading.Event()

    def on_message(c, u, msg):  # noqa: ANN001
        ack = epb.Ack.FromString(msg.payload)
        if ack.status != epb.ACK_STATUS_OK:
            print("bad ack", ack, file=sys.stderr)
        t = sent.pop((ack.agent_id, ack.envelope_seq), None)
        if t is not None:
            lat.append(time.perf_counter() - t)
            sem.release()
        if len(lat) >= total:
            done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(window)
    c.max_queued_messages_set(0)
    c.on_message = on_message
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect(host, int(port))
    c.loop_start()
    c.subscribe(f"{root}/ack/{TENANT}/+", qos=1)
    subscribed.wait(10)
    order = [(a, i, e) for i in range(max(len(v) for v in envs_by_agent.values()))
             for a, v in envs_by_agent.items() if i < len(v) for e in (v[i],)]
    t0 = time.perf_counter()
    for a, i, e in order:
        sem.acquire()
        sent[(a, i)] = time.perf_counter()
        c.publish(f"{root}/up/{TENANT}/{a}", e, qos=1)
    done.wait(600)
    el = time.perf_counter() - t0
    c.loop_stop()
    c.disconnect()
    return el, lat


def live_envelopes(agents: list[str], straps: int, seconds: float, batch_s: int, t_base_us: int, tag: str) -> list[list[bytes]]:
    """envs[k][agent]: the k-th envelope of each agent: one batch of ``batch_s`` 1 Hz samples per strap."""
    out = []
    for k in range(int(seconds // batch_s)):
        t = t_base_us + k * batch_s * 1_000_000 + np.arange(batch_s) * 1_000_000
        out.append([encode_envelope([SampleBatch(f"{tag}-{a}-{d}", "heart_rate", k, t, np.full(batch_s, 70 + d % 50), unit="bpm")
                                     for d in range(straps)], agent_id=a, tenant=TENANT, seq=k) for a in agents])
    return out


async def live_grpc(addr: str, tokens: dict[str, str], agents: list[str], envs: list[list[bytes]], batch_s: int) -> list[float]:
    """Each agent sends its k-th envelope at k * batch_s seconds (agents spread over the period)."""
    import grpc

    lat: list[float] = []
    # one connection per agent, as real agents have (and as SO_REUSEPORT spreads over processes)
    channels = [grpc.aio.insecure_channel(addr, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in agents]
    try:
        calls = [ch.stream_stream(UPLOAD, request_serializer=None, response_deserializer=epb.Ack.FromString)(
            metadata=(("authorization", f"Bearer {tokens[a]}"),)) for ch, a in zip(channels, agents)]
        sent: list[dict[int, float]] = [{} for _ in agents]

        async def reader(i: int) -> None:
            async for ack in calls[i]:
                lat.append(time.perf_counter() - sent[i].pop(ack.envelope_seq))

        readers = [asyncio.create_task(reader(i)) for i in range(len(agents))]
        start = time.perf_counter() + 0.5
        n = len(agents)
        for k, row in enumerate(envs):
            for i in range(n):
                delay = start + k * batch_s + batch_s * i / n - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent[i][k] = time.perf_counter()
                await calls[i].write(row[i])
        for c in calls:
            await c.done_writing()
        await asyncio.gather(*readers)
    finally:
        await asyncio.gather(*(ch.close() for ch in channels))
    return lat


def live_mqtt(broker: str, root: str, agents: list[str], envs: list[list[bytes]], batch_s: int) -> list[float]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = broker.rsplit(":", 1)
    sent: dict[tuple[str, int], float] = {}
    lat: list[float] = []
    subscribed = threading.Event()

    def on_message(c, u, msg):  # noqa: ANN001
        ack = epb.Ack.FromString(msg.payload)
        t = sent.pop((ack.agent_id, ack.envelope_seq), None)
        if t is not None:
            lat.append(time.perf_counter() - t)

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-live-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.on_message = on_message
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect(host, int(port))
    c.loop_start()
    c.subscribe(f"{root}/ack/{TENANT}/+", qos=1)
    subscribed.wait(10)
    start = time.perf_counter() + 0.5
    n = len(agents)
    for k, row in enumerate(envs):
        for i, a in enumerate(agents):
            d = start + k * batch_s + batch_s * i / n - time.perf_counter()
            if d > 0:
                time.sleep(d)
            sent[(a, k)] = time.perf_counter()
            c.publish(f"{root}/up/{TENANT}/{a}", row[i], qos=1)
    deadline = time.time() + 30
    while sent and time.time() < deadline:
        time.sleep(0.05)
    c.loop_stop()
    c.disconnect()
    return lat


# ---------------------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin-dsn", default=os.environ.get("FITTRACK_TEST_PG_DSN", "postgresql://fittrack:fittrack@127.0.0.1:5432/postgres"))
    ap.add_argument("--mqtt", default=os.environ.get("FITTRACK_TEST_MQTT", "127.0.0.1:1884"))
    ap.add_argument("--quick", action="store_true", help="smaller runs (noisier)")
    ap.add_argument("--live-s", type=float, default=20.0, help="seconds of the 10k-device run per transport")
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--per-agent", type=int, default=20)
    ap.add_argument("--processes", type=int, default=1, help="server processes (fittrack ingest serve --processes)")
    ap.add_argument("--batch-s", type=int, default=1, help="seconds of HR per batch in the 10k-device run (agent batching)")
    ap.add_argument("--skip", default="", help="comma list of: hr,imu,live,mqtt,grpc")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"ft_bench_ingest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(args.admin_dsn)
    params["dbname"] = name
    dsn = make_conninfo(**params)
    root = f"bench/{uuid.uuid4().hex[:8]}/fittrack/v1"
    rows = []
    try:
        from ingest_server.storage.timescale import TimescaleBackend

        async def init() -> None:
            async with TimescaleBackend(dsn):
                pass

        asyncio.run(init())
        n_agents = 4
        agents = [f"agent-{i}" for i in range(n_agents)]
        live_agents = [f"live-{i}" for i in range(args.devices // args.per_agent)]
        tokens = add_agents(dsn, agents + live_agents)
        t_base = (time.time_ns() // 1000 // 1_000_000 - 30 * 86_400) * 1_000_000
        scale = 0.25 if args.quick else 1.0
        work = []
        if "hr" not in skip:
            work.append(("HR-like", "samples", int(240 * scale), hr_envelopes))
        if "imu" not in skip:
            work.append(("IMU-like", "sample_blocks", int(1600 * scale), imu_envelopes))
        proc, addr = start_server(dsn, "grpc" not in skip, None if "mqtt" in skip else args.mqtt, root, args.processes)
        try:
            for label, table, n_env, make in work:
                per = n_env // n_agents
                g = {a: make(per, a, t_base, tag="g") for a in agents}
                m = {a: make(per, a, t_base, tag="m") for a in agents}
                batches = [b for a in agents for b in g[a][1]]
                samples = sum(len(b) for b in batches)
                t_raw = raw_copy(dsn, batches, table)
                t_own = our_copy(dsn, batches)
                raw_rate = samples / t_raw
                rows.append([f"{label}: raw psycopg COPY (write_row)", f"{samples:,}", f"{raw_rate:,.0f}", "1.00", ""])
                rows.append([f"{label}: our binary COPY + ledger only", f"{samples:,}", f"{samples / t_own:,.0f}",
                             f"{t_raw / t_own:.2f}", ""])
                if "grpc" not in skip:
                    el, lat = asyncio.run(grpc_upload(addr["grpc"], tokens, {a: g[a][0] for a in agents}))
                    rows.append([f"{label}: gRPC end to end", f"{samples:,}", f"{samples / el:,.0f}", f"{t_raw / el:.2f}",
                                 f"p50 {np.percentile(lat, 50) * 1e3:.0f} / p99 {np.percentile(lat, 99) * 1e3:.0f} ms"])
                if "mqtt" not in skip:
                    el, lat = mqtt_upload(args.mqtt, root, {a: m[a][0] for a in agents})
                    rows.append([f"{label}: MQTT end to end", f"{samples:,}", f"{samples / el:,.0f}", f"{t_raw / el:.2f}",
                                 f"p50 {np.percentile(lat, 50) * 1e3:.0f} / p99 {np.percentile(lat, 99) * 1e3:.0f} ms"])
            if "live" not in skip:
                live_s = args.live_s * (0.5 if args.quick else 1.0)
                bs = args.batch_s
                for transport in ("grpc", "mqtt"):
                    if transport in skip:
                        continue
                    envs = live_envelopes(live_agents, args.per_agent, live_s, bs, t_base + (0 if transport == "grpc" else 86_400_000_000),
                                          f"live{transport}")
                    h0 = server_latency(addr["metrics"], transport)
                    if transport == "grpc":
                        lat = asyncio.run(live_grpc(addr["grpc"], tokens, live_agents, envs, bs))
                    else:
                        lat = live_mqtt(args.mqtt, root, live_agents, envs, bs)
                    h1 = server_latency(addr["metrics"], transport)
                    srv = f"; in server (process 1, bucket bound) p50 <= {hist_quantile(h0, h1, 0.5) * 1e3:g} / p99 <= {hist_quantile(h0, h1, 0.99) * 1e3:g} ms"
                    want = len(envs) * len(live_agents)
                    rows.append([f"{args.devices:,} devices @1 Hz, {args.per_agent}/agent, {bs} s batches: {transport}",
                                 f"{len(lat) * args.per_agent * bs:,}", f"{len(lat) * args.per_agent * bs / live_s:,.0f}", "",
                                 f"p50 {np.percentile(lat, 50) * 1e3:.1f} / p99 {np.percentile(lat, 99) * 1e3:.1f} ms"
                                 f" ({len(lat)}/{want} acks){srv}"])
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        with psycopg.connect(args.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print_table("Ingest end to end (samples/s; ratio = rate / raw psycopg COPY rate of the same rows)",
                ["path", "samples", "samples/s", "vs raw COPY", "ack latency"], rows)
    print(f"cores: {os.cpu_count()}; server = {args.processes} process(es), 2 writers, pool 6 each; client, PostgreSQL and Mosquitto on the same machine")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
