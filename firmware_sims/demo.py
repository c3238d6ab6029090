"""``fittrack demo``: the product's main job, end to end, on the embedded store (SQLite).

What runs, all in one process, no Bluetooth, broker or database server needed:

  simulated devices (``firmware_sims.models``: HR straps with RR intervals, ectopic and missed
  beats and contact losses; an IMU doing scripted strength sets) -> their notification bytes,
  decoded as the agent's BLE sessions decode them -> the edge agent itself (``EdgeAgent``: stream
  mapper, derived streams - zones, time in zone, TRIMP, calories, RMSSD with artifact
  correction, reps and sets -, batcher, durable SQLite outbox, delivery loop) -> the real gRPC
  uplink on 127.0.0.1 -> the ingest server in-process (``IngestApp``, SQLite backend, an agent
  credential issued through its auth API) -> ``--db``.

Simulated time runs accelerated (``--speed``): the models and the agent's timebase share one
injected clock, so a 15-minute workout takes seconds. ``--drop-acks`` loses some of the
server's Acks, so the agent resends and the server's ledger refuses the duplicates. At the end
the database is queried: samples per device and stream against what the models produced,
derived results against the models' ground truth, and a PNG chart of HR with zones and reps.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.agent import EdgeAgent
from edge_agent.config import (
    AgentSettings,
    AthleteConfig,
    BluetoothConfig,
    DeviceConfig,
    EdgeConfig,
    MetricsConfig,
    OutboxConfig,
    PipelineConfig,
    TimebaseConfig,
    WatchConfig,
)
from edge_agent.devices.profiles import NOTIFY_CHARS

from .models import HeartRateStrap, ImuWearable, address_for
from .models.hr_strap import BATTERY_LEVEL
from .streams import device_id_for

TENANT, AGENT_ID = "demo-gym", "demo-hub"
RAW_STREAMS = ("heart_rate", "rr_interval", "energy_expended", "battery", "accel", "gyro")
DERIVED_STREAMS = ("hr_zone", "time_in_zone", "trimp", "calories", "hrv_rmssd", "rep")

EXAMPLES = """\
examples:
  fittrack demo                                   15 min, 4 straps + 1 IMU, live view, ~15 s
  fittrack demo --minutes 30 --straps 8           a bigger class
  fittrack demo --drop-acks 0.2                   a flaky uplink: 20 % of Acks lost, resends refused as duplicates
  fittrack demo --restart-server-at 7              the ingest server goes down mid-workout and comes back
  fittrack demo --speed 0 --quiet                 as fast as possible, no live view (tests, CI)
  fittrack demo --db run.sqlite --chart run.png   keep the results elsewhere
  sqlite3 fittrack-demo.sqlite "SELECT stream, count(*) FROM samples WHERE channel = 0 GROUP BY 1"

what it prints: a table per device and stream (samples the models produced, stored, duplicate
batches refused), time in zones / RMSSD / reps per set against the models' ground truth, and
"OK: every sample stored exactly once" only when the database query proves it (exit status 1
otherwise).
"""


# ----------------------------------------------------------------------------- simulation
class SimClock:
    """The one clock of the run (a :class:`edge_agent.timebase.ClockSource`): simulated UTC µs."""

    def __init__(self, t0_us: int) -> None:
        self.t0_us = t0_us
        self.t_us = t0_us

    def set(self, t_s: float) -> None:
        self.t_us = self.t0_us + int(round(t_s * 1e6))

    def monotonic_us(self) -> int:
        return self.t_us

    def wall_us(self) -> int:
        return self.t_us


@dataclass
class _Link:
    """What a BLE session is to the agent's callback: the device's address."""

    address: str


def make_models(straps: int, imu: int, seed: int) -> list[Any]:
    """The demo's devices: ``straps`` HR straps then ``imu`` IMUs (50 Hz, gyro on); deterministic."""
    models: list[Any] = []
    for i in range(straps):
        addr = address_for("hr", i, seed)
        models.append(HeartRateStrap(addr, f"FT-HR {addr[-5:].replace(':', '')}", seed * 1000 + len(models)))
    for i in range(imu):
        addr = address_for("imu", i, seed)
        models.append(ImuWearable(addr, f"FT-IMU {addr[-5:].replace(':', '')}", seed * 1000 + len(models), rate_dhz=500))
    return models


def produced(model: Any, battery_notes: int | None = None) -> dict[str, tuple[int, int]]:
    """(samples, sum of raw values of channel 0) per raw stream that ``model`` produced so far."""
    if isinstance(model, HeartRateStrap):
        hr = [s["heart_rate_bpm"] for s in model.sent if s["heart_rate_bpm"]]
        rr = [r for s in model.sent for r in s["rr_intervals_1024"] if r > 0]
        ee = [s["energy_expended_kj"] for s in model.sent if s["energy_expended_kj"] is not None]
        out = {"heart_rate": (len(hr), sum(hr)), "rr_interval": (len(rr), sum(rr)), "energy_expended": (len(ee), sum(ee))}
        bat = battery_notes if battery_notes is not None else max(0, model.battery_start_pct - model._battery_pct)
        if bat:
            out["battery"] = (bat, -1)  # values not summed (they are the level after each step)
        return out
    n0 = model.samples_offset
    acc = model.samples_accel
    out = {"accel": (model._n, sum(a[0] for a in acc) if n0 == 0 else -1)}
    if model.gyro:
        out["gyro"] = (model._n, sum(g[0] for g in model.samples_gyro) if n0 == 0 else -1)
    return out


def athlete_for(model: HeartRateStrap, name: str) -> AthleteConfig:
    """What the athlete wearing the strap entered in the app: rest and max HR, weight, age."""
    return AthleteConfig(athlete_id=name, name=name, age_years=float(model.age_y), weight_kg=model.weight_kg,
                         hr_rest_bpm=round(model.hr_rest_bpm), hr_max_bpm=round(model.hr_max_bpm))


class SimulatedAgent(EdgeAgent):
    """The real :class:`EdgeAgent` (outbox, delivery, batcher, mappers, derived pipelines, shutdown
    flush and drain) whose BLE sessions are replaced by the device models stepped in simulated
    time: their notifications are decoded with the same decoders the sessions use and handed to
    the agent's own ``_on_measurement``."""

    def __init__(self, config: EdgeConfig, models: list[Any], clock: SimClock, *, duration_s: float, speed: float,
                 drain_s: float, on_step: Any = None, **kw: Any) -> None:
        super().__init__(config, clock=clock, **kw)
        self.models = models
        self.sim_clock = clock
        self.duration_s = duration_s
        self.speed = speed
        self.drain_s = drain_s
        self.on_step = on_step
        self.sim_t_s = 0.0
        self.battery_notes: dict[str, int] = {}
        self.decode_errors = 0

    async def _loop(self) -> None:
        step_s = 0.5
        derived_s = self.config.pipeline.derived_interval_s
        links = {m.address: _Link(m.address) for m in self.models}
        next_derived = derived_s
        wall0 = time.monotonic()
        t = 0.0
        while t < self.duration_s and not self._stop.is_set():
            t = min(t + step_s, self.duration_s)
            self.sim_t_s = t
            self.sim_clock.set(t)
            t0 = self.sim_clock.t0_us
            for m in self.models:
                for n in m.advance(t):
                    entry = NOTIFY_CHARS.get(n.char_uuid)
                    if entry is None:
                        continue
                    if n.char_uuid == BATTERY_LEVEL:
                        self.battery_notes[m.address] = self.battery_notes.get(m.address, 0) + 1
                    try:
                        meas = entry[1](n.payload)
                    except ValueError:
                        self.decode_errors += 1
                        continue
                    self._on_measurement(links[m.address], entry[0], meas, t0 + int(round(n.t_s * 1e6)))  # type: ignore[arg-type]
            now_us = self.timebase.now_us()
            if t >= next_derived:
                next_derived += derived_s
                for dev in self.devices.values():
                    self._add_samples(dev, dev.pipeline.tick(now_us), feed=False)
            self._pending += self.batcher.due(now_us)
            if self._pending:
                await self._append()
            if self.on_step is not None:
                await self.on_step(self)
            # pace simulated time against the wall clock (speed 0: as fast as possible); the
            # delivery loop runs meanwhile
            ahead = (t / self.speed - (time.monotonic() - wall0)) if self.speed > 0 else 0.0
            await asyncio.sleep(max(0.0, ahead))
        self.sim_clock.set(self.duration_s + 1)
        self.stop(drain_s=self.drain_s)  # _shutdown: final derived samples, flush, drain the outbox


class FlakyUplink:
    """Wraps the real uplink and loses a fraction of the server's Acks (a flaky Wi-Fi link)."""

    def __init__(self, inner: Any, drop_rate: float, rng: np.random.Generator, stats: "RunStats") -> None:
        self.inner = inner
        self.transport = inner.transport
        self.drop_rate = drop_rate
        self.rng = rng
        self.stats = stats

    async def __aenter__(self) -> "FlakyUplink":
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)

    async def send(self, envelope: bytes, envelope_seq: int) -> None:
        self.stats.envelopes += 1
        self.stats.wire_bytes += len(envelope)
        await self.inner.send(envelope, envelope_seq)

    async def acks(self):  # type: ignore[no-untyped-def]
        from edge_agent.uplink.base import BatchStatus

        async for ack in self.inner.acks():
            for b in ack.batches:
                k = (b.device_id, b.stream)
                if b.status == BatchStatus.DUPLICATE:
                    self.stats.duplicates[k] = self.stats.duplicates.get(k, 0) + 1
                elif b.status == BatchStatus.STORED:
                    self.stats.stored_batches[k] = self.stats.stored_batches.get(k, 0) + 1
                elif b.status == BatchStatus.REJECTED:
                    self.stats.rejected += 1
            if self.drop_rate > 0 and self.rng.random() < self.drop_rate:
                self.stats.dropped_acks += 1
                continue
            yield ack


@dataclass
class RunStats:
    envelopes: int = 0
    wire_bytes: int = 0
    dropped_acks: int = 0
    rejected: int = 0
    duplicates: dict[tuple[str, str], int] = field(default_factory=dict)
    stored_batches: dict[tuple[str, str], int] = field(default_factory=dict)


# ----------------------------------------------------------------------------- ground truth
def reps_vs_truth(rep_rows: list[tuple[int, int]], sets: list[dict[str, Any]], t0_us: int) -> list[tuple[str, int, int]]:
    """(exercise, reps counted, true reps) per true set; a rep event belongs to the set whose
    [first rep start - 2 s, last rep end + 5 s] holds it."""
    out = []
    for s in sets:
        lo = t0_us + int((s["start_s"] - 2) * 1e6)
        hi = t0_us + int((s["end_s"] + 5) * 1e6)
        out.append((s["exercise"], sum(1 for t, _ in rep_rows if lo <= t <= hi), int(s["reps"])))
    return out


def true_time_in_zone(model: HeartRateStrap, athlete: AthleteConfig) -> np.ndarray:
    """Seconds below Z1 and in Z1..Z5 of the model's true HR (1 Hz), with the agent's zone model."""
    import dsp

    zm = dsp.karvonen_zones(athlete.hr_rest_bpm, athlete.hr_max)
    t = np.array([int(s["t_s"] * 1e6) for s in model.sent], dtype=np.int64)
    hr = np.array([s["true_hr_bpm"] for s in model.sent], dtype=np.float64)
    return dsp.TimeInZone(zm).update(t, hr).seconds if t.size else np.zeros(6)


def true_rmssd_ms(model: HeartRateStrap, window_s: float = 60.0) -> float:
    """Median RMSSD over ``window_s`` windows of the true beats, ectopic beats (and the
    compensatory interval after them) excluded, as the artifact correction intends."""
    b = np.asarray(model.beats_s)
    if b.size < 10:
        return float("nan")
    rr = np.diff(b) * 1000.0
    ends = b[1:]
    ect = np.zeros(rr.size, bool)
    for e in model.ectopic_s:
        i = int(np.searchsorted(ends, e - 1e-9))
        ect[max(0, i - 0): min(rr.size, i + 2)] = True
    ok = ~ect[1:] & ~ect[:-1]
    d2 = np.diff(rr) ** 2
    t = ends[1:]
    vals = []
    w = window_s
    while w <= t[-1]:
        sel = ok & (t > w - window_s) & (t <= w)
        if sel.sum() > 10:
            vals.append(math.sqrt(float(d2[sel].mean())))
        w += 5.0
    return float(np.median(vals)) if vals else float("nan")


# ----------------------------------------------------------------------------- run
async def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from edge_agent.metrics import EdgeMetrics
    from edge_agent.uplink import make_uplink
    from edge_agent.uplink.config import Secret, UplinkConfig
    from ingest_server.config import IngestConfig

    console = Console()

    def on_loop_error(loop: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        # grpc.aio leaves an ack read task ending in StopAsyncIteration when the channel closes: not an error
        if isinstance(ctx.get("exception"), StopAsyncIteration):
            return
        loop.default_exception_handler(ctx)

    asyncio.get_running_loop().set_exception_handler(on_loop_error)
    for name in ("edge_agent", "ingest_server", "grpc"):
        logging.getLogger(name).setLevel(logging.ERROR if not args.verbose else logging.INFO)
    if args.verbose:
        logging.basicConfig(level=logging.INFO)
    db_path = Path(args.db)
    for suffix in ("", "-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    duration_s = args.minutes * 60.0
    # the workout ended just now: every sample is in the past, within the server's limits
    t0_us = (int(time.time()) - int(math.ceil(duration_s)) - 5) * 1_000_000
    clock = SimClock(t0_us)
    models = make_models(args.straps, args.imu, args.seed)
    names: dict[str, str] = {}
    devices, athletes = [], {}
    for i, m in enumerate(models):
        did = device_id_for(m)
        if isinstance(m, HeartRateStrap):
            name = f"athlete-{i + 1}"
            athletes[name] = athlete_for(m, name)
            devices.append(DeviceConfig(m.address, did, name=m.name, kind="hr", athlete=name))
        else:
            name = f"imu-{i - args.straps + 1}"
            devices.append(DeviceConfig(m.address, did, name=m.name, kind="imu"))
        names[did] = name
    stats = RunStats()
    rng = np.random.default_rng([args.seed, 99])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fittrack-demo-") as tmp:
        server = Server(IngestConfig(db=f"sqlite:{db_path}", grpc="127.0.0.1:0", maintain_interval_s=0, shutdown_grace_s=1.0))
        await server.start()
        try:
            token = await server.app.add_agent(TENANT, AGENT_ID)
            uplink = UplinkConfig(transport="grpc", host="127.0.0.1", port=server.port, tenant=TENANT,
                                  agent_id=AGENT_ID, token=Secret(token), ack_timeout_s=1.0,
                                  backoff_base_s=0.1, backoff_cap_s=1.0, connect_timeout_s=5.0)
            config = EdgeConfig(
                agent=AgentSettings(AGENT_ID, TENANT, data_dir=Path(tmp)),
                timebase=TimebaseConfig(), bluetooth=BluetoothConfig(enabled=False), devices=tuple(devices),
                athletes=athletes, pipeline=PipelineConfig(batch_s=args.batch_seconds), watch=WatchConfig(),
                outbox=OutboxConfig(), metrics=MetricsConfig(listen=""), uplink=uplink, source="fittrack demo",
            )
            live = LiveView(console, names, stats, args.quiet, server)
            restart_at_s = args.restart_server_at * 60 if args.restart_server_at is not None else None

            async def on_step(agent: SimulatedAgent) -> None:
                nonlocal restart_at_s
                if restart_at_s is not None and agent.sim_t_s >= restart_at_s:
                    restart_at_s = None
                    server.restart_soon(down_s=2.0)
                await live.update(agent)

            agent = SimulatedAgent(
                config, models, clock, duration_s=duration_s, speed=args.speed, drain_s=60.0, on_step=on_step,
                metrics=EdgeMetrics(), uplink_factory=lambda c: FlakyUplink(make_uplink(c), args.drop_acks, rng, stats),
            )
            with live:
                await agent.run()
            await server.settled()
            report = await summarize(server.app.store, agent, models, names, stats, t0_us)
            report["restarts"] = server.restarts
        finally:
            await server.stop()
    elapsed = time.perf_counter() - started
    return print_report(console, args, report, agent, stats, elapsed)


class Server:
    """The in-process ingest server (``IngestApp``); ``restart_soon`` stops it, waits, and starts a
    new one on the same port and database (a server crash or deploy in the middle of a workout)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.app: Any = None
        self.port = 0
        self.restarts = 0
        self.down = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from ingest_server.app import IngestApp

        self.app = IngestApp(self.config)
        await self.app.start()
        self.port = int(self.app.grpc_port or 0)
        self.config = dataclasses.replace(self.config, grpc=f"127.0.0.1:{self.port}")

    def restart_soon(self, down_s: float) -> None:
        async def _restart() -> None:
            self.down = True
            await self.app.stop()
            await asyncio.sleep(down_s)
            await self.start()
            self.restarts += 1
            self.down = False

        self._task = asyncio.create_task(_restart(), name="demo.server-restart")

    async def settled(self) -> None:
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        await self.settled()
        if self.app is not None:
            await self.app.stop()
            self.app = None


class LiveView:
    """rich.live view during the run: per device HR, zone, reps; outbox depth, acked batches."""

    def __init__(self, console: Any, names: dict[str, str], stats: RunStats, quiet: bool, server: Server) -> None:
        self.server = server
        self.console = console
        self.names = names
        self.stats = stats
        self.quiet = quiet
        self._live: Any = None
        self._at = 0.0
        self._depth = 0

    def __enter__(self) -> "LiveView":
        if not self.quiet:
            from rich.live import Live

            self._live = Live(console=self.console, refresh_per_second=8, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    async def update(self, agent: SimulatedAgent) -> None:
        if self._live is None:
            return
        now = time.monotonic()
        if now - self._at < 0.15:
            return
        self._at = now
        if agent.outbox is not None:
            self._depth = (await asyncio.to_thread(agent.outbox.stats)).batches
        self._live.update(self.render(agent))

    def render(self, agent: SimulatedAgent) -> Any:
        from rich.table import Table

        t = agent.sim_t_s
        d = agent.delivery.status if agent.delivery is not None else None
        title = (f"simulated {int(t // 60):02d}:{int(t % 60):02d} of {agent.duration_s / 60:.0f} min | outbox {self._depth} batches | "
                 f"sent {d.sent_envelopes if d else 0} envelopes, acked {d.acked_batches if d else 0} batches | "
                 f"{self.stats.dropped_acks} Acks lost, {sum(self.stats.duplicates.values())} duplicates refused"
                 + (" | [red]ingest server DOWN (restarting)[/red]" if self.server.down else ""))
        tab = Table(title=title, title_justify="left")
        for c in ("device", "HR", "zone", "RMSSD ms", "TRIMP", "kcal", "reps (set)", "sets"):
            tab.add_column(c, justify="left" if c == "device" else "right")
        for dev in agent.devices.values():
            lv = dev.pipeline.live
            is_imu = dev.cfg.kind == "imu"
            tab.add_row(
                self.names.get(dev.cfg.device_id, dev.cfg.device_id),
                "" if is_imu else f"{lv.hr_bpm or '-'}", "" if is_imu else ("-" if lv.zone is None else f"Z{lv.zone}" if lv.zone else "<Z1"),
                "" if is_imu or lv.rmssd_ms is None else f"{lv.rmssd_ms:.0f}",
                "" if is_imu else f"{lv.trimp:.1f}", "" if is_imu else f"{lv.kcal:.0f}",
                f"{lv.reps} ({lv.reps_in_set})" if is_imu else "", f"{lv.sets}" if is_imu else "",
            )
        return tab


async def summarize(store: Any, agent: SimulatedAgent, models: list[Any], names: dict[str, str], stats: RunStats,
                    t0_us: int) -> dict[str, Any]:
    """Everything the report shows, queried from the database."""
    rows = await store.query(
        "SELECT device_id, stream, count(*), sum(raw), count(DISTINCT t_us) FROM samples WHERE channel = 0 GROUP BY 1, 2")
    db = {(r[0], r[1]): (int(r[2]), int(r[3]), int(r[4])) for r in rows}
    dup_rows = (await store.query(
        "SELECT count(*) FROM (SELECT device_id, stream, t_us, channel FROM samples GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) AS d"))[0][0]
    ledger = await store.query("SELECT device_id, stream, count(*), sum(samples) FROM ledger GROUP BY 1, 2")
    led = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in ledger}
    lines = []
    exact = dup_rows == 0
    for m in models:
        did = device_id_for(m)
        want = produced(m, agent.battery_notes.get(m.address, 0) if isinstance(m, HeartRateStrap) else None)
        for stream in RAW_STREAMS:
            if stream not in want and (did, stream) not in db:
                continue
            n_model, s_model = want.get(stream, (0, 0))
            n_db, s_db, n_t = db.get((did, stream), (0, 0, 0))
            ok = n_db == n_model and n_t == n_db and (s_model < 0 or s_db == s_model)
            exact &= ok
            lines.append((names[did], stream, n_model, n_db, stats.duplicates.get((did, stream), 0), ok))
        for stream in DERIVED_STREAMS:
            if (did, stream) in db:
                n_db, _, n_t = db[(did, stream)]
                ok = n_t == n_db
                exact &= ok
                lines.append((names[did], stream, None, n_db, stats.duplicates.get((did, stream), 0), ok))
    total_db = sum(v[0] for v in db.values())
    total_ledger = sum(v[1] for v in led.values())
    exact &= total_db == agent.appended_samples == total_ledger
    # derived vs truth
    hr_truth = []
    imu_truth = []
    set_marks: list[tuple[float, str]] = []
    for m in models:
        did = device_id_for(m)
        if isinstance(m, HeartRateStrap):
            ath = agent.devices[m.address].pipeline.athlete
            tiz = await store.query(
                "SELECT channel, raw FROM samples WHERE device_id = ? AND stream = 'time_in_zone' AND "
                "t_us = (SELECT max(t_us) FROM samples WHERE device_id = ? AND stream = 'time_in_zone') ORDER BY channel",
                (did, did))
            agent_tiz = np.zeros(6)
            for ch, raw in tiz:
                if ch < 6:
                    agent_tiz[ch] = raw / 1000.0
            rm = await store.query("SELECT raw FROM samples WHERE device_id = ? AND stream = 'hrv_rmssd' AND channel = 0", (did,))
            agent_rmssd = float(np.median([r[0] / 100 for r in rm])) if rm else float("nan")
            hr_truth.append((names[did], agent_tiz, true_time_in_zone(m, ath), agent_rmssd, true_rmssd_ms(m),
                             len(m.ectopic_s), len(m.missed_s)))
        else:
            reps = await store.query("SELECT t_us, raw FROM samples WHERE device_id = ? AND stream = 'rep' AND channel = 0 ORDER BY t_us", (did,))
            sets = m.ground_truth()["sets"]
            sets = [s for s in sets if s["end_s"] <= m.t_s]
            if not set_marks:
                set_marks = [(s["start_s"], s["exercise"]) for s in sets]
            imu_truth.append((names[did], reps_vs_truth([(int(a), int(b)) for a, b in reps], sets, t0_us)))
    hr = await store.query("SELECT device_id, t_us, raw FROM samples WHERE stream = 'heart_rate' AND channel = 0 ORDER BY device_id, t_us")
    traces: dict[str, list[tuple[int, int]]] = {}
    for did, t, v in hr:
        traces.setdefault(names.get(did, did), []).append((int(t), int(v)))
    rep_t = await store.query("SELECT t_us FROM samples WHERE stream = 'rep' AND channel = 0 ORDER BY t_us")
    first = next((a for a in agent.devices.values() if a.cfg.kind == "hr"), None)
    zone_edges = list(first.pipeline.zone_model.edges) if first is not None else []
    return {"lines": lines, "exact": exact, "dup_rows": dup_rows, "total_db": total_db, "total_ledger": total_ledger,
            "hr_truth": hr_truth, "imu_truth": imu_truth, "traces": traces, "rep_t": [int(r[0]) for r in rep_t],
            "zone_edges": zone_edges, "t0_us": t0_us, "set_marks": set_marks, "produced_raw": sum(x[2] for x in lines if x[2] is not None)}


def print_report(console: Any, args: argparse.Namespace, r: dict[str, Any], agent: SimulatedAgent, stats: RunStats,
                 elapsed: float) -> int:
    from rich.table import Table

    table = Table(title=f"fittrack demo: {args.minutes:g} min, {args.straps} straps + {args.imu} IMU -> edge agent -> gRPC -> "
                        f"ingest server -> {args.db}", title_justify="left")
    for col in ("device", "stream", "produced by models", "stored", "duplicates refused", ""):
        table.add_column(col, justify="left" if col in ("device", "stream") else "right")
    for name, stream, n_model, n_db, dups, ok in r["lines"]:
        table.add_row(name, stream, f"{n_model:,}" if n_model is not None else "(derived)", f"{n_db:,}", f"{dups}",
                      "[green]ok[/green]" if ok else "[red]MISMATCH[/red]")
    console.print(table)
    if r["hr_truth"]:
        t2 = Table(title="derived at the edge vs the models' ground truth: minutes in zone, median RMSSD",
                   title_justify="left")
        for col in ("athlete", "", "<Z1", "Z1", "Z2", "Z3", "Z4", "Z5", "RMSSD ms", "ect/miss"):
            t2.add_column(col, justify="left" if col in ("athlete", "") else "right", no_wrap=True, min_width=len(col) or 5)
        for name, a, tr, ra, rt, ne, nm in r["hr_truth"]:
            t2.add_row(name, "agent", *(f"{x / 60:.1f}" for x in a), f"{ra:.1f}", "")
            t2.add_row("", "truth", *(f"{y / 60:.1f}" for y in tr), f"{rt:.1f}", f"{ne}/{nm}", end_section=True)
        console.print(t2)
    for name, sets in r["imu_truth"]:
        within = sum(1 for _, c, t in sets if abs(c - t) <= 1)
        console.print(f"{name}: reps per set counted/true: " + ", ".join(f"{ex} {c}/{t}" for ex, c, t in sets)
                      + f"  ({within}/{len(sets)} sets within +-1)")
    d = agent.delivery.status if agent.delivery is not None else None
    dups = sum(stats.duplicates.values())
    console.print(
        f"{r['produced_raw']:,} raw samples from the models + derived = {agent.appended_samples:,} samples into the outbox; "
        f"{stats.envelopes} envelopes ({stats.wire_bytes:,} bytes) over gRPC, {stats.dropped_acks} Acks lost, "
        f"{dups} resent batches refused as duplicates; {r['total_db']:,} samples in {args.db}; "
        f"{agent.duration_s / 60:g} simulated min in {elapsed:.1f} s"
        + (f"; delivery reconnects {d.reconnects}" if d and d.reconnects else "")
        + (f"; ingest server restarted {r.get('restarts', 0)}x" if r.get("restarts") else ""))
    if args.chart:
        chart = draw_chart(r, Path(args.chart))
        if chart:
            console.print(f"HR chart: {chart}")
    if r["exact"]:
        console.print("[green]OK: every sample stored exactly once[/green] (checked in the database: counts and sums per "
                      "device and stream, no repeated timestamps, ledger = outbox appends)")
        return 0
    console.print("[red]MISMATCH: the database does not hold every sample exactly once (see the table)[/red]")
    return 1


def draw_chart(r: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    t0 = r["t0_us"]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 5.5), dpi=100, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    edges = r["zone_edges"]
    colors = ("#9ecae1", "#a1d99b", "#fdd0a2", "#fc9272", "#de2d26")
    for i, lo in enumerate(edges):
        hi = edges[i + 1] if i + 1 < len(edges) else 230
        ax.axhspan(lo, hi, color=colors[i % len(colors)], alpha=0.25, linewidth=0)
        ax.text(0.002, lo + 1, f"Z{i + 1}", transform=ax.get_yaxis_transform(), fontsize=8, color="#555")
    for name, pts in sorted(r["traces"].items()):
        if pts:
            ax.plot((np.array([p[0] for p in pts]) - t0) / 60e6, [p[1] for p in pts], label=name, linewidth=1)
    ax.set_ylabel("heart rate (bpm)")
    ax.set_ylim(40, 210)
    ax.set_title("fittrack demo: heart rate as stored (zone bands: athlete-1, Karvonen)")
    ax.grid(alpha=0.3)
    if r["traces"]:
        ax.legend(loc="lower right", fontsize=8)
    reps = (np.array(r["rep_t"], dtype=np.int64) - t0) / 60e6
    ax2.vlines(reps, 0, 1, color="#333", linewidth=0.8)
    for start_s, ex in r.get("set_marks", []):
        ax2.text(start_s / 60, 1.05, ex, fontsize=7, color="#333", va="bottom")
    ax2.set_ylim(0, 1.6)
    ax2.set_yticks([])
    ax2.set_ylabel("reps", rotation=0, labelpad=18)
    ax2.set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str], prog: str = "fittrack demo") -> int:
    ap = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.replace("``", ""),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--minutes", type=float, default=15, help="simulated workout length (default 15)")
    ap.add_argument("--straps", type=int, default=4, help="heart-rate straps, one athlete each (default 4)")
    ap.add_argument("--imu", type=int, default=1, help="IMUs doing strength sets, 50 Hz accel + gyro (default 1)")
    ap.add_argument("--speed", type=float, default=60, help="simulated seconds per wall second; 0 = as fast as possible (default 60)")
    ap.add_argument("--drop-acks", type=float, default=0.05,
                    help="fraction of the server's Acks the flaky uplink loses; the agent resends after 1 s and the "
                         "server refuses the duplicates (default 0.05)")
    ap.add_argument("--restart-server-at", type=float, default=None, metavar="MIN",
                    help="stop the ingest server at this simulated minute and start it again 2 s (wall) later: the "
                         "agent reconnects, the outbox absorbs the gap, resends are refused as duplicates")
    ap.add_argument("--batch-seconds", type=float, default=10, help="the agent's batch length for HR/RR/derived streams (default 10)")
    ap.add_argument("--db", default="fittrack-demo.sqlite", help="SQLite file of the ingest server (replaced; default fittrack-demo.sqlite)")
    ap.add_argument("--chart", default="fittrack-demo-hr.png", help="PNG chart of the stored HR with zones and reps ('' for none)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the device models (default 1)")
    ap.add_argument("--quiet", action="store_true", help="no live view (tests)")
    ap.add_argument("--verbose", action="store_true", help="log the agent's and the server's INFO lines")
    ap.add_argument("--resend-rate", type=float, default=None, help=argparse.SUPPRESS)  # old name of --drop-acks
    args = ap.parse_args(argv)
    if args.resend_rate is not None:
        args.drop_acks = args.resend_rate
    if args.minutes <= 0 or args.straps < 0 or args.imu < 0 or args.batch_seconds <= 0 or args.speed < 0:
        ap.error("--minutes and --batch-seconds must be positive; --straps, --imu and --speed not negative")
    if not 0 <= args.drop_acks < 1:
        ap.error("--drop-acks must be in [0, 1)")
    if args.straps == 0 and args.imu == 0:
        ap.error("nothing to simulate: give --straps or --imu")
    try:
        import grpc  # noqa: F401
    except ImportError:
        ap.error("the demo runs the gRPC uplink and the ingest server: pip install 'fittracker-gateway[uplink,server]'")
    return asyncio.run(run(args))
