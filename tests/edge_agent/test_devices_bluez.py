"""Devices through the simulated BlueZ with real bleak: more straps than connection slots."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent import EdgeAgent
from edge_agent.config import parse_config
from edge_agent.metrics import EdgeMetrics
from firmware_sims.testing import running_sim

pytestmark = pytest.mark.slow


async def test_devices_beyond_the_slot_budget_are_queued_rotated_and_reported(
    tmp_path: Path, monkeypatch: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edge_agent")
    with running_sim("hr:3", seed=21) as sim:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", sim.bus_address)
        cfg = parse_config({
            "agent": {"agent_id": "a", "tenant": "t", "data_dir": str(tmp_path), "status_interval_s": 0.5},
            "bluetooth": {"slots_per_adapter": {"hci0": 2}, "rotation_s": 3.0, "connect_timeout_s": 8.0},
            "devices": [{"address": d.address, "name": d.name} for d in sim.devices],
            "metrics": {"listen": ""},
        })
        m = EdgeMetrics()
        agent = EdgeAgent(cfg, metrics=m)
        task = asyncio.create_task(agent.run())
        max_connected = 0
        queued_seen = False
        for _ in range(26):                                   # 13 s
            await asyncio.sleep(0.5)
            st = agent.status()
            connected = [d for d in st["devices"] if d["state"] == "connected"]
            max_connected = max(max_connected, len(connected))
            assert len(connected) <= 2                        # never more links than the budget
            queued_seen |= any(a["queued"] for a in st["adapters"])
        agent.stop()
        await task
    assert max_connected == 2 and queued_seen
    assert m.devices_queued.labels("hci0")._value.get() == 1
    # every strap was heard (rotation), and the agent said so
    for d in agent.devices.values():
        assert d.session is not None and d.session.status.notifications > 0, d.cfg.name
    assert agent.slots.rotations >= 3
    text = caplog.text
    assert "exceed its 2 connection slots" in text and "rotating" in text


async def test_imu_is_configured_to_100_hz_and_stamped_10_ms_apart(tmp_path: Path, monkeypatch: Any) -> None:
    import numpy as np

    from edge_agent.outbox import Outbox
    from protocols.wire import decode_batches

    with running_sim("imu:1", seed=22) as sim:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", sim.bus_address)
        (d,) = sim.devices
        cfg = parse_config({
            "agent": {"agent_id": "a", "tenant": "t", "data_dir": str(tmp_path)},
            "pipeline": {"imu_batch_s": 1.0},
            "devices": [{"address": d.address, "imu_rate_hz": 100.0, "imu_gyro": True}],
            "metrics": {"listen": ""},
        })
        agent = EdgeAgent(cfg, metrics=EdgeMetrics())
        task = asyncio.create_task(agent.run())
        await asyncio.sleep(6)
        gt = await sim.aground_truth(d.address)
        agent.stop()
        await task
    assert gt["sample_rate_dhz"] == 1000 and gt["gyro"] is True
    with Outbox(tmp_path / "outbox.sqlite", metrics=EdgeMetrics()) as ob:
        accel = [b for e in ob.lease(max_batches=10_000, max_bytes=1 << 30) for b in decode_batches(e.body) if b.stream == "accel"]
    t = np.concatenate([b.t_us for b in sorted(accel, key=lambda b: b.t_us[0])])
    steps = np.diff(t)
    assert len(t) > 300 and np.mean(steps == 10_000) > 0.95, np.unique(steps, return_counts=True)


async def test_power_meter_csc_and_rower_streams_match_the_models(tmp_path: Path, monkeypatch: Any) -> None:
    import numpy as np

    from edge_agent.outbox import Outbox
    from protocols.wire import decode_batches

    with running_sim("power:1,csc:1,rower:1", seed=23) as sim:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", sim.bus_address)
        cfg = parse_config({
            "agent": {"agent_id": "a", "tenant": "t", "data_dir": str(tmp_path)},
            "pipeline": {"batch_s": 2.0},
            "devices": [{"address": d.address, "name": d.name} for d in sim.devices],
            "metrics": {"listen": ""},
        })
        agent = EdgeAgent(cfg, metrics=EdgeMetrics())
        task = asyncio.create_task(agent.run())
        await asyncio.sleep(10)
        truth = {d.kind: await sim.aground_truth(d.address) for d in sim.devices}
        agent.stop()
        await task
    kinds = {d.cfg.name.split()[0]: d.session.status.kind for d in agent.devices.values() if d.session}
    assert kinds == {"FT-Power": "cps", "FT-CSC": "csc", "FT-Rower": "ftms"}
    ids = {d.cfg.name.split()[0]: d.cfg.device_id for d in agent.devices.values()}
    with Outbox(tmp_path / "outbox.sqlite", metrics=EdgeMetrics()) as ob:
        got: dict[tuple[str, str], list[float]] = {}
        for e in ob.lease(max_batches=10_000, max_bytes=1 << 30):
            for b in decode_batches(e.body):
                got.setdefault((b.device_id, b.stream), []).extend(b.physical().tolist())

    def median_rel_err(vals: list[float], true: list[float]) -> float:
        return float(np.median(np.abs(np.asarray(vals) - np.median(true)) / np.median(true)))

    pw, csc, row = truth["power"]["data"], truth["csc"]["data"], truth["rower"]["data"]
    assert set(got[(ids["FT-Power"], "power")]) <= {float(x["power_w"]) for x in pw}
    # cadence and speed come from cumulative revolution counters and event times (protocols.ble.rates)
    assert median_rel_err(got[(ids["FT-Power"], "cadence")], [x["cadence_rpm"] for x in pw]) < 0.1
    assert median_rel_err(got[(ids["FT-Power"], "speed")], [x["speed_kmh"] for x in pw]) < 0.1
    assert median_rel_err(got[(ids["FT-CSC"], "cadence")], [x["cadence_rpm"] for x in csc]) < 0.1
    assert median_rel_err(got[(ids["FT-CSC"], "speed")], [x["speed_kmh"] for x in csc]) < 0.1
    assert set(got[(ids["FT-Rower"], "stroke_rate")]) <= {float(x["stroke_rate_spm"]) for x in row}
    assert set(got[(ids["FT-Rower"], "power")]) <= {float(x["power_w"]) for x in row}
    assert len(got[(ids["FT-Rower"], "distance")]) >= 5
