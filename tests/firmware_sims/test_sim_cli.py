"""``fittrack sim bluez``: prints the bus address, serves bleak, and stops both processes by PID."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bleak import BleakScanner

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "fittrack", "sim", "bluez", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_sim_bluez_cli_prints_address_serves_bleak_and_cleans_up(monkeypatch) -> None:
    p = _start("--devices", "hr:2,treadmill:1", "--seed", "3", "--json")
    try:
        assert p.stdout is not None
        info = json.loads(p.stdout.readline())
        assert info["bus_address"].startswith("unix:path=")
        assert [d["kind"] for d in info["devices"]] == ["hr", "hr", "treadmill"]
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", info["bus_address"])
        found = asyncio.run(BleakScanner.discover(timeout=1.0))
        assert {d.address for d in found} == {d["address"] for d in info["devices"]}
    finally:
        os.kill(p.pid, signal.SIGTERM)
        p.wait(15)
    assert p.returncode == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (_alive(info["bus_pid"]) or _alive(info["sim_pid"])):
        time.sleep(0.1)
    assert not _alive(info["bus_pid"]) and not _alive(info["sim_pid"])


def test_sim_bluez_cli_plain_output_and_bad_spec() -> None:
    p = _start("--devices", "hr:1")
    try:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.startswith("export DBUS_SYSTEM_BUS_ADDRESS='unix:path=")
    finally:
        os.kill(p.pid, signal.SIGTERM)
        p.wait(15)
    bad = subprocess.run([sys.executable, "-m", "fittrack", "sim", "bluez", "--devices", "hrm:1"], capture_output=True,
                         text=True, cwd=ROOT)
    assert bad.returncode == 2 and "unknown device kind 'hrm'" in bad.stderr


def test_sim_fault_and_truth_commands(sim_bluez) -> None:
    sim = sim_bluez("hr:1", seed=2, time_scale=10)
    addr = sim.devices[0].address
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DBUS_SYSTEM_BUS_ADDRESS": sim.bus_address}
    r = subprocess.run([sys.executable, "-m", "fittrack", "sim", "fault", addr, "att_error", "char=0x2A38", "code=0x0e"],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"char": "00002a38-0000-1000-8000-00805f9b34fb", "code": 14, "count": 1}
    time.sleep(0.5)
    r = subprocess.run([sys.executable, "-m", "fittrack", "sim", "truth", addr], capture_output=True, text=True, cwd=ROOT,
                       env=env)
    gt = json.loads(r.stdout)
    assert gt["kind"] == "hr" and len(gt["notifications"]) >= 3
    bad = subprocess.run([sys.executable, "-m", "fittrack", "sim", "fault", "00:00:00:00:00:00", "link_drop"],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert bad.returncode == 1 and "no simulated device" in bad.stderr
