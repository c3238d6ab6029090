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
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ingest_server(pg_dsn):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "fittrack", "ingest", "serve", "--db", pg_dsn, "--grpc", "127.0.0.1:0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    lines: list[str] = []
    ready = threading.Event()
    addr: dict[str, str] = {}

    def pump() -> None:
        assert p.stderr is not None
        for line in p.stderr:
            lines.append(line)
            m = re.search(r"ingest ready grpc=(\S+)", line)
            if m:
                addr["grpc"] = m.group(1)
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        if not ready.wait(60):
            pytest.fail("fittrack ingest serve did not print 'ingest ready' within 60 s:\n" + "".join(lines[-30:]))
        yield pg_dsn, addr["grpc"], lines
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


def test_load_generator_report_equals_what_ingest_stored(ingest_server, tmp_path) -> None:
    dsn, grpc_addr, _log = ingest_server
    report_path = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "fittrack", "sim", "load", "--transport", "grpc", "--target", grpc_addr, "--db", dsn,
           "--tenant", "gym-e2e", "--agents", "3", "--devices", "3", "--kinds", "hr,imu,bike,treadmill", "--seconds", "30",
           "--batch-s", "5", "--duplicate-p", "0.3", "--resend-p", "0.2", "--reorder-p", "0.2", "--outage", "10:8",
           "--seed", "4", "--report", str(report_path)]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(report_path.read_text())
    assert rep["errors"] == []
    t = rep["totals"]
    assert t["duplicates_injected"] > 0 and t["batch_duplicate"] >= t["duplicates_injected"]
    assert t.get("batch_rejected", 0) == 0 and t.get("unacked_envelopes", 0) == 0

    sent = {(s["device_id"], s["stream"], q) for s in rep["streams"] for q in s["seqs"]}
    ledger = _query(dsn, "SELECT device_id, stream, seq, samples FROM ledger")
    assert {(d, s, q) for d, s, q, _n in ledger} == sent
    per_stream_ledger = Counter()
    for d, s, _q, n in ledger:
        per_stream_ledger[(d, s)] += n
    stored = Counter({(d, s): n for d, s, n in _query(
        dsn, "SELECT device_id, stream, count(*) FROM samples_all WHERE channel = 0 GROUP BY 1, 2")})
    for s in rep["streams"]:
        key = (s["device_id"], s["stream"])
        assert per_stream_ledger[key] == s["samples"], key
        assert stored[key] == s["samples"], key
    devices = {d for (d,) in _query(dsn, "SELECT device_id FROM devices")}
    assert devices == {s["device_id"] for s in rep["streams"]}
    print(f"e2e: {rep['samples_unique']} samples in {time.monotonic() - t0:.1f} s")
