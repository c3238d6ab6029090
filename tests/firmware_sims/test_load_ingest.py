"""End to end: ``fittrack sim load`` against the real ingest server on TimescaleDB.

Both run as the CLI (subprocesses, stopped by PID): ``fittrack ingest serve`` on a fresh
database, ``fittrack sim load --db`` which creates its agents' tokens with ``fittrack ingest
agent add`` and sends with resends, duplicates, reordering and an outage burst. What the
report says was sent must be exactly what the ledger and the samples hold.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# the database is per test session: other seeds give other physical devices (a device belongs
# to one tenant; the server rightly rejects it under another)
SEEDS = {"grpc": 4, "mqtt": 5}


@pytest.fixture
def ingest_server(pg_dsn, mqtt_broker):
    root = f"test/sim-load-{uuid.uuid4().hex[:10]}/fittrack/v1"  # own topics on the shared broker
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FITTRACK_INGEST_MQTT_TOPIC_ROOT": root}
    mqtt = f"{mqtt_broker.host}:{mqtt_broker.port}"
    p = subprocess.Popen([sys.executable, "-m", "fittrack", "ingest", "serve", "--db", pg_dsn, "--grpc", "127.0.0.1:0",
                          "--mqtt", mqtt],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    lines: list[str] = []
    ready = threading.Event()
    addr: dict[str, str] = {}

    def pump() -> None:
        assert p.stderr is not None
        for line in p.stderr:
            lines.append(line)
            m = re.search(r"ingest ready grpc=(\S+) mqtt=(\S+)", line)
            if m:
                addr["grpc"], addr["mqtt"] = m.group(1), m.group(2)
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(60):
            pytest.fail("fittrack ingest serve did not print 'ingest ready' within 60 s:\n" + "".join(lines[-30:]))
        addr["root"] = root
        yield pg_dsn, addr, lines
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(5)


def _query(dsn: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("transport", ["grpc", "mqtt"])
def test_load_generator_report_equals_what_ingest_stored(ingest_server, tmp_path, transport) -> None:
    dsn, addr, log = ingest_server
    report_path = tmp_path / "report.json"
    tenant = f"gym-{transport}"
    cmd = [sys.executable, "-m", "fittrack", "sim", "load", "--transport", transport, "--target", addr[transport],
           "--db", dsn, "--tenant", tenant, "--agent-prefix", f"{transport}-agent", "--agents", "3", "--devices", "3",
           "--kinds", "hr,imu,bike,treadmill", "--seconds", "30", "--batch-s", "5", "--duplicate-p", "0.3",
           "--resend-p", "0.2", "--reorder-p", "0.2", "--outage", "10:8", "--seed", str(SEEDS[transport]), "--topic-root", addr["root"],
           "--report", str(report_path)]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:] + "\nserver log:\n" + "".join(log[-20:])
    rep = json.loads(report_path.read_text())
    assert rep["errors"] == []
    t = rep["totals"]
    assert t.get("batch_rejected", 0) == 0 and t.get("unacked_envelopes", 0) == 0, t
    assert t["duplicates_injected"] > 0 and t["batch_duplicate"] >= t["duplicates_injected"]

    sent = {(s["device_id"], s["stream"], q) for s in rep["streams"] for q in s["seqs"]}
    ledger = _query(dsn, f"SELECT device_id, stream, seq, samples FROM ledger WHERE tenant = '{tenant}'")
    assert {(d, s, q) for d, s, q, _n in ledger} == sent
    per_stream_ledger: Counter = Counter()
    for d, s, _q, n in ledger:
        per_stream_ledger[(d, s)] += n
    devices = {s["device_id"] for s in rep["streams"]}
    stored = Counter({(d, s): n for d, s, n in _query(
        dsn, "SELECT device_id, stream, count(*) FROM samples_all WHERE channel = 0 GROUP BY 1, 2") if d in devices})
    for s in rep["streams"]:
        key = (s["device_id"], s["stream"])
        assert per_stream_ledger[key] == s["samples"], key
        assert stored[key] == s["samples"], key
    assert devices == {d for (d,) in _query(dsn, f"SELECT device_id FROM devices WHERE tenant = '{tenant}'")}
    print(f"e2e {transport}: {rep['samples_unique']} samples in {time.monotonic() - t0:.1f} s")
