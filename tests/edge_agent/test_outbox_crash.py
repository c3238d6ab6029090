"""kill -9 of a process appending to the outbox: every append it reported is there, once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox
from tests.edge_agent._delivery_helpers import hr_batch, imu_batch
ob = Outbox(sys.argv[1], synchronous=sys.argv[2], metrics=EdgeMetrics())
acked = 0
i = 0
print("ready", flush=True)
while True:
    keys = ob.append([hr_batch(device_id="ble-00000000000%d" % (i % 3), n=5), imu_batch(n=50)])
    for k in keys:
        print("K", k[0], k[1], k[2], flush=True)
    i += 1
    if i % 7 == 0:  # acknowledge some, so deletes race with the kill too
        got = ob.lease(3)
        for e in got:  # announced before the ack: it may or may not commit before the kill
            print("A", e.device_id, e.stream, e.seq, flush=True)
        ob.ack([e.key for e in got])
"""


def _run_and_kill(path: Path, sync: str, rng: random.Random) -> tuple[list[tuple], set[tuple]]:
    p = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), sync], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready"
    time.sleep(rng.uniform(0.05, 0.4))
    os.kill(p.pid, signal.SIGKILL)
    out = p.stdout.read()
    p.wait()
    appended, acked = [], set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:  # a line cut by the kill has fewer fields
            key = (parts[1], parts[2], int(parts[3]))
            (appended.append(key) if parts[0] == "K" else acked.add(key))
    return appended, acked


@pytest.mark.slow
@pytest.mark.parametrize("sync", ["FULL", "NORMAL"])
def test_kill_minus_9_loses_no_reported_append(tmp_path, sync: str) -> None:
    rng = random.Random(8)
    path = tmp_path / "o.db"
    all_appended: list[tuple] = []
    all_acked: set[tuple] = set()
    for _round in range(4):
        appended, acked = _run_and_kill(path, sync, rng)
        assert appended, "the child appended nothing before the kill"
        all_appended += appended
        all_acked |= acked
        with Outbox(path, metrics=EdgeMetrics()) as ob:
            stored = ob.keys()
            last = ob.last_seqs()
        assert len(stored) == len(set(stored)), "a batch is stored twice"
        missing = [k for k in all_appended if k not in all_acked and k not in set(stored)]
        assert not missing, f"{len(missing)} reported appends lost, e.g. {missing[:3]}"
        # seq never reused across crashes, and the persisted counter covers every reported key
        assert len(all_appended) == len(set(all_appended))
        for dev, stream, seq in all_appended:
            assert last[(dev, stream)] >= seq
        # totals kept in the same transactions agree with the rows
        with Outbox(path, metrics=EdgeMetrics()) as ob:
            st = ob.stats()
        assert st.batches == len(stored)
