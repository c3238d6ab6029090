"""End to end: simulated BlueZ -> real bleak -> edge agent -> real ingest server -> TimescaleDB.

Each test starts a private dbus-daemon with the simulated ``org.bluez`` (firmware_sims.testing),
an in-process :class:`ingest_server.app.IngestApp` on a fresh TimescaleDB database (gRPC, or
MQTT through the provisioned Mosquitto), and the agent (in-process, so the host clock can be
made to jump through its timebase's clock source). After the run the agent is stopped with a
drain, and the database is compared with what the simulator delivered and with the models'
ground truth:

* identity: notifications the simulator delivered == notifications the agent received ==
  samples stored (HR, RR, IMU, bike power), no (device, stream, time) stored twice;
* values: the stored HR / RR / power sequences are, in order, the ones the models sent;
* derived: ``hr_zone`` equals the Karvonen zone of the transmitted HR (athlete configured with the
  model's resting/max HR) everywhere, and of the model's *true* HR almost everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, AsyncIterator, Callable

import pytest

from edge_agent.agent import EdgeAgent
from edge_agent.config import parse_config
from edge_agent.metrics import EdgeMetrics
from edge_agent.timebase import OffsetWallClock
from firmware_sims.testing import SimHandle, running_sim
from ingest_server.app import IngestApp
from ingest_server.config import IngestConfig

pytestmark = [pytest.mark.services, pytest.mark.slow]

HR_UUID = "00002a37-0000-1000-8000-00805f9b34fb"
BIKE_UUID = "00002ad2-0000-1000-8000-00805f9b34fb"
IMU_UUID = "f17a0002-7e57-4b1e-9a3e-5c0ffee00000"
TENANT, AGENT = "gym-e2e", "hub-e2e"
KARVONEN_PCT = (0.5, 0.6, 0.7, 0.8, 0.9)


@contextlib.asynccontextmanager
async def ingest(transport: str, dsn: str, mqtt_broker: Any, mqtt_prefix: str) -> AsyncIterator[tuple[IngestApp, dict]]:
    """A real ingest server; yields it and the agent's [uplink] table."""
    root = f"{mqtt_prefix}/fittrack/v1"
    if transport == "grpc":
        cfg = IngestConfig(db=dsn, grpc="127.0.0.1:0", maintain_interval_s=0)
    else:
        cfg = IngestConfig(db=dsn, mqtt=f"{mqtt_broker.host}:{mqtt_broker.port}", mqtt_topic_root=root,
                           maintain_interval_s=0)
    async with IngestApp(cfg) as app:
        token = await app.add_agent(TENANT, AGENT)
        up: dict[str, Any] = {"transport": transport, "token": token, "ack_timeout_s": 5.0, "backoff_cap_s": 2.0}
        if transport == "grpc":
            up.update(host="127.0.0.1", port=app.grpc_port)
        else:
            up.update(host=mqtt_broker.host, port=mqtt_broker.port, topic_root=root)
        yield app, up


def agent_config(sim: SimHandle, tmp_path: Any, uplink: dict, truths: dict[str, dict]) -> Any:
    athletes = {}
    devices = []
    for i, d in enumerate(sim.devices):
        dev: dict[str, Any] = {"address": d.address, "name": d.name}
        gt = truths[d.address]
        if d.kind == "hr":
            aid = f"member{i}"
            athletes[aid] = {"hr_rest_bpm": round(gt["hr_rest_bpm"], 3), "hr_max_bpm": round(gt["hr_max_bpm"], 3)}
            dev["athlete"] = aid
        devices.append(dev)
    return parse_config({
        "agent": {"agent_id": AGENT, "tenant": TENANT, "data_dir": str(tmp_path / "edge"), "status_interval_s": 1.0},
        "bluetooth": {"backoff_initial_s": 0.5, "backoff_max_s": 2.0, "connect_timeout_s": 6.0},
        "pipeline": {"batch_s": 2.0, "imu_batch_s": 1.0, "derived_interval_s": 2.0},
        "outbox": {"synchronous": "NORMAL"},
        "athletes": athletes,
        "devices": devices,
        "uplink": uplink,
        "metrics": {"listen": ""},
    })


async def run_agent(agent: EdgeAgent, seconds: float, during: Callable[[float], Any] | None = None) -> None:
    task = asyncio.create_task(agent.run())
    t0 = asyncio.get_running_loop().time()
    while (elapsed := asyncio.get_running_loop().time() - t0) < seconds:
        if task.done():
            await task  # raises the agent's error
        if during is not None:
            r = during(elapsed)
            if asyncio.iscoroutine(r):
                await r
        await asyncio.sleep(0.5)
    agent.stop(drain_s=30)
    await asyncio.wait_for(task, 60)


async def rows(app: IngestApp, stream: str, device_id: str) -> list[tuple[int, int, float]]:
    return [(int(t), int(c), float(v)) for t, c, v in await app.store.query(
        "SELECT (extract(epoch from time) * 1000000)::bigint, channel, value FROM samples_all"
        " WHERE device_id = %s AND stream = %s ORDER BY time, channel", (device_id, stream))]


def match_blocks(stored: list[Any], sent: list[Any], max_blocks: int) -> list[int]:
    """Index into ``sent`` of each ``stored`` value, where ``stored`` must be at most
    ``max_blocks`` contiguous runs of ``sent`` (one per connection: a link drop loses the
    notifications sent while it is down, nothing else), in order. Each run is matched where it
    extends longest. Times are not used: notifications can arrive in bursts after a stall."""
    out: list[int] = []
    p, g0, blocks = 0, 0, 0
    while p < len(stored):
        best_g, best_n = -1, 0
        for g in range(g0, len(sent)):
            n = 0
            while p + n < len(stored) and g + n < len(sent) and sent[g + n] == stored[p + n]:
                n += 1
            if n > best_n:
                best_g, best_n = g, n
        assert best_n > 0, f"stored value {stored[p]!r} (#{p}) is not among the values sent after #{g0}"
        out += range(best_g, best_g + best_n)
        p += best_n
        g0 = best_g + best_n
        blocks += 1
    assert blocks <= max_blocks, f"stored samples form {blocks} runs of the sent ones, at most {max_blocks} connections"
    return out


def match_hr_blocks(hr: list[int], rr: list[int], notes: list[dict], max_blocks: int) -> list[int]:
    """Like :func:`match_blocks` for HR notifications, matching HR and RR together: notification
    ``g`` matches when its HR is the next stored HR *and* its RR intervals are the next stored RR
    values (HR alone repeats too often to place a run after a link drop)."""
    out: list[int] = []
    p = q = g0 = blocks = 0
    while p < len(hr):
        best: tuple[int, int, int] = (-1, 0, 0)
        for g in range(g0, len(notes)):
            n = k = 0
            while p + n < len(hr) and g + n < len(notes) and notes[g + n]["heart_rate_bpm"] == hr[p + n]:
                r = notes[g + n]["rr_intervals_1024"]
                if rr[q + k:q + k + len(r)] != r:
                    break
                k += len(r)
                n += 1
            if n > best[1]:
                best = (g, n, k)
        g, n, k = best
        assert n > 0, f"stored HR {hr[p]} (#{p}) with the RR that follow is not among the notifications after #{g0}"
        out += range(g, g + n)
        p, q, g0 = p + n, q + k, g + n
        blocks += 1
    assert q == len(rr), f"{len(rr) - q} stored RR values belong to no notification"
    assert blocks <= max_blocks, f"stored samples form {blocks} runs of the sent ones, at most {max_blocks} connections"
    return out


def karvonen_zone(hr: float, rest: float, mx: float) -> int:
    return sum(hr >= rest + p * (mx - rest) for p in KARVONEN_PCT)


async def check_exactly_once(app: IngestApp, sim: SimHandle, agent: EdgeAgent,
                             stop_sim_s: float | None = None) -> dict[str, Any]:
    """The identity and value checks of the module docstring; returns figures for further checks."""
    stats = (await sim.astats())["devices"]
    dup = await app.store.query(
        "SELECT device_id, stream, time, channel, count(*) FROM samples_all GROUP BY 1, 2, 3, 4 HAVING count(*) > 1 LIMIT 5")
    assert dup == [], f"samples stored twice: {dup}"
    by_addr = {d.cfg.address: d for d in agent.devices.values()}
    figures: dict[str, Any] = {}
    for d in sim.devices:
        dev = by_addr[d.address]
        did = dev.cfg.device_id
        received = dev.session.status.notifications if dev.session else 0
        sent = stats[d.address]["sent"]
        gt = await sim.aground_truth(d.address)
        if d.kind == "hr":
            delivered = sent.get(HR_UUID, 0)
            bat = sent.get("00002a19-0000-1000-8000-00805f9b34fb", 0)
            # per stream: every HR notification sent was received, once. Battery may show one more
            # per connection: BlueZ (and the simulator) follow a ReadValue with
            # PropertiesChanged(Value), which bleak delivers as a notification when a battery
            # callback is registered. Once in CI the agent counted 32 notifications against 31 HR +
            # 0 battery sent; this is the likely source (not proven), and the per-stream check
            # below still catches any extra or missing HR notification.
            got = agent.metrics.notifications_total
            rx_hr = got.labels(did, "hr")._value.get()
            rx_bat = got.labels(did, "battery")._value.get()
            assert rx_hr == delivered and received == rx_hr + rx_bat, (d.name, received, rx_hr, delivered)
            assert bat <= rx_bat <= bat + dev.session.status.connects, (d.name, rx_bat, bat)
            notes = gt["notifications"]
            assert all(n["heart_rate_bpm"] > 0 for n in notes), "this seed has contact loss: adjust the test"
            hr = await rows(app, "heart_rate", did)
            assert len(hr) == delivered > 20, (d.name, len(hr), delivered)
            rr = [round(v * 1024) for _, _, v in await rows(app, "rr_interval", did)]
            idx = match_hr_blocks([int(v) for _, _, v in hr], rr, notes, dev.session.status.connects)
            assert rr == [r for i in idx for r in notes[i]["rr_intervals_1024"]], d.name
            zones = [int(v) for _, _, v in await rows(app, "hr_zone", did)]
            assert len(zones) == len(hr)
            rest, mx = round(gt["hr_rest_bpm"], 3), round(gt["hr_max_bpm"], 3)
            assert zones == [karvonen_zone(notes[i]["heart_rate_bpm"], rest, mx) for i in idx], d.name
            true_z = [karvonen_zone(notes[i]["true_hr_bpm"], rest, mx) for i in idx]
            agree = sum(a == b for a, b in zip(zones, true_z)) / len(zones)
            assert agree >= 0.9, (d.name, agree)
            assert len(await rows(app, "calories", did)) > 0 and len(await rows(app, "trimp", did)) > 0
            figures[d.address] = {"hr": hr, "idx": idx, "notes": notes, "zone_agreement": agree}
        elif d.kind == "bike":
            delivered = sent.get(BIKE_UUID, 0)
            assert received == delivered
            data = gt["data"]
            power = [int(v) for _, _, v in await rows(app, "power", did)]
            assert len(power) == delivered > 20
            speed = await rows(app, "speed", did)
            assert len(speed) == len(power)
            match_blocks([(p, round(s, 2)) for p, (_, _, s) in zip(power, speed)],
                         [(x["power_w"], round(x["speed_kmh"], 2)) for x in data], dev.session.status.connects)
        elif d.kind == "imu":
            delivered = sent.get(IMU_UUID, 0)
            assert received == delivered
            per_packet = gt["samples_sent"] / gt["packets_sent"]
            accel = await rows(app, "accel", did)
            gyro = await rows(app, "gyro", did)
            assert len(accel) == len(gyro) == 3 * delivered * per_packet > 0, (len(accel), delivered, per_packet)
            if stop_sim_s is not None:
                # reps: the ones the model completed while the agent listened, within one rep per set
                done = [sum(1 for a, b in st["rep_times_s"] if b <= stop_sim_s - 0.5) for st in gt["sets"]
                        if st["start_s"] < stop_sim_s]
                reps = [int(v) for _, _, v in await rows(app, "rep", did)]
                runs = [reps[i] for i in range(len(reps)) if i + 1 == len(reps) or reps[i + 1] == 1]
                figures[d.address] = {"reps_true": done, "reps_counted": runs}
                if sum(done) >= 3:
                    assert len(runs) == len([n for n in done if n >= 3]), (runs, done)
                    assert all(abs(a - b) <= 1 for a, b in zip(runs, [n for n in done if n >= 3])), (runs, done)
    return figures


@pytest.mark.parametrize("transport", ["mqtt", "grpc"])
async def test_five_devices_every_sample_stored_exactly_once(
    transport: str, tmp_path: Any, pg_database_factory: Any, mqtt_broker: Any, mqtt_prefix: str, monkeypatch: Any,
) -> None:
    with running_sim("hr:3,imu:1,bike:1", seed=3) as sim:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", sim.bus_address)
        truths = {d.address: await sim.aground_truth(d.address) for d in sim.devices}
        async with ingest(transport, pg_database_factory(f"e2e{transport}"), mqtt_broker, mqtt_prefix) as (app, up):
            agent = EdgeAgent(agent_config(sim, tmp_path, up, truths), metrics=EdgeMetrics())
            await run_agent(agent, 32)
            stop_sim_s = await sim.aclock()
            st = agent.status()
            assert all(d["state"] in ("stopped", "disconnected") for d in st["devices"]), st["devices"]
            fig = await check_exactly_once(app, sim, agent, stop_sim_s)
            imu = fig[sim.by_kind("imu")[0].address]
            assert sum(imu["reps_true"]) >= 3, imu  # the model's first set starts at 10 s: there were reps
            ledger = await app.store.query("SELECT count(*) FROM ledger")
            assert ledger[0][0] == agent.appended_batches


async def test_strap_link_drops_and_comes_back(
    tmp_path: Any, pg_database_factory: Any, mqtt_broker: Any, mqtt_prefix: str, monkeypatch: Any,
) -> None:
    with running_sim("hr:2", seed=5) as sim:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", sim.bus_address)
        truths = {d.address: await sim.aground_truth(d.address) for d in sim.devices}
        victim = sim.devices[0].address
        async with ingest("grpc", pg_database_factory("e2edrop"), mqtt_broker, mqtt_prefix) as (app, up):
            agent = EdgeAgent(agent_config(sim, tmp_path, up, truths), metrics=EdgeMetrics())
            faults: list[float] = []

            async def during(t: float) -> None:
                if t >= 7 and not faults:
                    faults.append(t)
                    await sim.afault(victim, "link_drop")
                if t >= 13 and len(faults) == 1:
                    faults.append(t)
                    await sim.afault(victim, "out_of_range", seconds=4)

            await run_agent(agent, 30, during)
            dev = next(d for d in agent.devices.values() if d.cfg.address == victim)
            assert dev.session is not None and dev.session.status.reconnects >= 2, dev.session.status
            assert agent.metrics.reconnects_total.labels(dev.cfg.device_id, "ok")._value.get() >= 2
            fig = await check_exactly_once(app, sim, agent)
            # the gap is visible in the stored HR (nothing invented), data resumed after each drop
            hr_t = [t for t, _, _ in fig[victim]["hr"]]
            gaps = sorted((b - a for a, b in zip(hr_t, hr_t[1:])), reverse=True)
            assert gaps[0] >= 4_000_000 and hr_t[-1] - hr_t[0] >= 20_000_000


async def test_host_clock_jump_does_not_move_sample_times(
    tmp_path: Any, pg_database_factory: Any, mqtt_broker: Any, mqtt_prefix: str, monkeypatch: Any,
) -> None:
    with running_sim("hr:1", seed=7) as sim:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", sim.bus_address)
        truths = {d.address: await sim.aground_truth(d.address) for d in sim.devices}
        addr = sim.devices[0].address
        async with ingest("mqtt", pg_database_factory("e2eclock"), mqtt_broker, mqtt_prefix) as (app, up):
            clock = OffsetWallClock()
            agent = EdgeAgent(agent_config(sim, tmp_path, up, truths), metrics=EdgeMetrics(), clock=clock)

            def during(t: float) -> None:
                if t >= 8 and clock.offset_us == 0:
                    clock.offset_us = -3600 * 1_000_000   # the host clock goes back an hour
                if t >= 15 and clock.offset_us == -3600 * 1_000_000:
                    clock.offset_us = 7200 * 1_000_000    # and then forward two

            t_start = time.time_ns() // 1000
            await run_agent(agent, 24, during)
            t_end = time.time_ns() // 1000
            assert agent.timebase.stats.jumps == 2 and agent.timebase.stats.steps == 0
            fig = await check_exactly_once(app, sim, agent)
            f = fig[addr]
            hr_t = [t for t, _, _ in f["hr"]]
            sent_t = [f["notes"][i]["t_s"] for i in f["idx"]]
            # every stored time is real UTC during the run (no hour back, no two hours forward),
            # increasing, and the stored span is the simulator's span (arrival bursts aside)
            assert all(t_start <= t <= t_end for t in hr_t)
            assert all(b > a for a, b in zip(hr_t, hr_t[1:]))
            assert abs((hr_t[-1] - hr_t[0]) / 1e6 - (sent_t[-1] - sent_t[0])) < 2.0
            derived = await app.store.query(
                "SELECT min(time), max(time) FROM samples_all WHERE stream IN ('trimp', 'calories', 'hr_zone')")
            lo, hi = (int(x.timestamp() * 1e6) for x in derived[0])
            assert t_start <= lo <= hi <= t_end
