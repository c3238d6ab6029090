"""fittrack edge check-config / status / run and fittrack pair, as a user runs them."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from edge_agent.cli import JsonLogFormatter, main as edge_main, render_status
from firmware_sims.testing import running_sim

ROOT = Path(__file__).resolve().parents[2]
FITTRACK = [sys.executable, "-m", "fittrack"] if (ROOT / "fittrack" / "__main__.py").exists() else [
    sys.executable, "-c", "import sys; from fittrack.cli import main; sys.exit(main())"]


def run(args: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(FITTRACK + args, capture_output=True, text=True, cwd=ROOT, timeout=120, **kw)


def test_check_config_ok_and_every_problem_listed(tmp_path: Path) -> None:
    good = tmp_path / "edge.toml"
    good.write_text((ROOT / "docs" / "edge.example.toml").read_text().replace('token_file = "agent.token"', 'token = "x.y"'))
    r = run(["edge", "check-config", "--config", str(good)])
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout and "1 device(s)" in r.stdout and "mqtt ingest.example.net:8883" in r.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[agent]\nagent_id = "a"\n[[devices]]\naddress = "nope"\n[bluetooth]\nslots = 3\n')
    r = run(["edge", "check-config", "--config", str(bad)])
    assert r.returncode == 2
    for s in ("agent.tenant: required", "devices[0].address:", "bluetooth.slots: unknown key"):
        assert s in r.stderr


def test_status_renders_devices_live_values_outbox_and_uplink(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time_ns() // 1000
    doc = {
        "agent_id": "hub", "tenant": "gym", "pid": 1, "updated_at_us": now, "wall_clock_us": now,
        "timebase": {"pending_jump_us": -3_600_000_000},
        "adapters": [{"adapter": "hci0", "slots": 1, "allocated": 1, "free": 0, "queued": ["AA:AA:AA:AA:AA:02"]}],
        "devices": [
            {"address": "AA:AA:AA:AA:AA:01", "name": "Alice H10", "kind": "hr", "athlete": "alice", "state": "connected",
             "battery_pct": 87, "last_seen_s": 0.4, "notifications": 321, "reconnects": 2,
             "live": {"hr_bpm": 152, "zone": 4, "rmssd_ms": 23.4, "reps": 0, "sets": 0, "kcal": 81.2}},
            {"address": "AA:AA:AA:AA:AA:02", "name": "Bob IMU", "kind": "imu", "athlete": "bob", "state": "queued",
             "live": {"hr_bpm": None, "zone": None, "reps": 17, "sets": 2}},
        ],
        "outbox": {"batches": 12, "samples": 3400, "bytes": 52000, "max_bytes": 268435456, "oldest_age_s": 42.0,
                   "leased_batches": 3, "dropped_samples": 0},
        "delivery": {"transport": "grpc", "connected": False, "in_flight_envelopes": 0, "acked_batches": 99,
                     "rejected_batches": 0, "reconnects": 4, "last_error": "connection refused"},
    }
    con = Console(record=True, width=200, file=io.StringIO())
    con.print(render_status(doc, now_us=now))
    out = con.export_text()
    for s in ("Alice H10", "152", "connected", "87%", "17/2", "queued", "1 device(s) queued", "12 batches",
              "oldest 42 s", "DISCONNECTED", "connection refused", "-3600.0 s"):
        assert s in out, s
    f = tmp_path / "status.json"
    f.write_text(json.dumps(doc))
    assert edge_main(["status", "--status-file", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["devices"][0]["live"]["hr_bpm"] == 152
    assert edge_main(["status", "--status-file", str(tmp_path / "missing.json")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_json_logs_carry_extra_fields() -> None:
    import logging

    rec = logging.makeLogRecord({"name": "edge_agent.devices", "levelname": "WARNING", "msg": "link %s",
                                 "args": ("dropped",), "event": "device_disconnected", "device_id": "ble-1"})
    d = json.loads(JsonLogFormatter().format(rec))
    assert d["msg"] == "link dropped" and d["event"] == "device_disconnected" and d["device_id"] == "ble-1"
    assert d["ts"].endswith("Z") and d["level"] == "warning"


@pytest.mark.slow
def test_pair_then_run_then_status_through_the_simulated_bluez(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.toml"
    import socket
    import urllib.request

    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        mport = sk.getsockname()[1]
    cfg.write_text('# my hub\n[agent]\nagent_id = "hub"  # keep me\ntenant = "gym"\n'
                   f'data_dir = "{tmp_path / "state"}"\nstatus_interval_s = 0.5\n[metrics]\nlisten = "127.0.0.1:{mport}"\n'
                   '[athletes.alice]\nhr_rest_bpm = 55\n')
    with running_sim("hr:2,bike:1", seed=11) as sim:
        env = sim.env
        r = run(["pair", "--config", str(cfg), "--all", "--yes", "--scan-s", "3", "--athlete", "alice"], env=env)
        assert r.returncode == 0, r.stderr
        text = cfg.read_text()
        assert text.startswith("# my hub") and "# keep me" in text
        for d in sim.devices:
            assert d.address in text and d.name in r.stdout
        assert "bike" in r.stdout and "hr" in r.stdout and "dBm" in r.stdout
        again = run(["pair", "--config", str(cfg), "--all", "--yes", "--scan-s", "2", "--no-battery"], env=env)
        assert again.returncode == 0 and again.stdout.count("already configured") == 3
        # the agent as a user runs it; status as another process reads it
        agent = subprocess.Popen(FITTRACK + ["edge", "run", "--config", str(cfg), "--log-format", "json"], cwd=ROOT,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            status_file = tmp_path / "state" / "status.json"
            deadline = time.monotonic() + 40
            doc: dict = {}
            while time.monotonic() < deadline:
                time.sleep(0.5)
                if status_file.exists():
                    try:
                        doc = json.loads(status_file.read_text())
                    except ValueError:
                        continue
                    live = [d for d in doc["devices"] if d["kind"] == "hr" and d["live"]["hr_bpm"]]
                    if len(live) == 2 and all(d["state"] == "connected" for d in doc["devices"]):
                        break
            assert len([d for d in doc["devices"] if d["state"] == "connected"]) == 3, doc
            st = run(["edge", "status", "--config", str(cfg)], env={**env, "COLUMNS": "200"})
            assert st.returncode == 0 and "connected" in st.stdout and "outbox:" in st.stdout
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10).read().decode()
            assert 'fittrack_edge_devices_connected{adapter="hci0",kind="hr"} 2.0' in metrics
            assert 'fittrack_edge_devices_connected{adapter="hci0",kind="ftms"} 1.0' in metrics
            assert "fittrack_edge_notifications_total{" in metrics
        finally:
            agent.send_signal(signal.SIGTERM)
            out, err = agent.communicate(timeout=60)
        assert agent.returncode == 0, err[-3000:]
        events = [json.loads(line).get("event") for line in err.splitlines() if line.startswith("{")]
        assert "agent_started" in events and "device_connected" in events and "agent_stopped" in events
