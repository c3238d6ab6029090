"""kill -9 of the agent's delivery process mid-stream, then restart: nothing lost or doubled.

The child appends HR batches to its outbox and delivers them over real gRPC to an in-process
server (FakeIngest: dedupe ledger, asserts no sample is stored twice); it prints each key after
the append returned. The parent kills it at random moments and restarts it on the same outbox;
a last run only drains.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from .test_uplink_transports import TOKEN, _grpc_server
from ._delivery_helpers import FakeIngest

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import asyncio, sys
from edge_agent.delivery import Delivery
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox
from tests.edge_agent._delivery_helpers import hr_batch, uplink_config

path, port, mode, t0 = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])

async def main():
    m = EdgeMetrics()
    ob = Outbox(path, metrics=m)
    cfg = uplink_config("grpc", port=port, token=sys.argv[5], max_batches_per_envelope=8, max_in_flight=4)
    d = Delivery(ob, cfg, metrics=m, poll_s=0.01)
    task = asyncio.create_task(d.run())
    print("ready", flush=True)
    if mode == "drain":
        ok = await d.wait_empty(30)
        print("drained" if ok else "not-drained", flush=True)
        d.stop()
        await task
        return
    i = 0
    while True:
        b = [hr_batch(device_id="ble-%012x" % k, n=5, t0_us=t0 + i * 5_000_000) for k in range(3)]
        keys = await asyncio.to_thread(ob.append, b)
        for k in keys:
            print("K", k[0], k[1], k[2], flush=True)
        d.notify()
        i += 1
        await asyncio.sleep(0.005)

asyncio.run(main())
"""


async def _child(path: Path, port: int, mode: str, t0: int) -> asyncio.subprocess.Process:
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(path), str(port), mode, str(t0), TOKEN,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert p.stdout is not None
    line = await asyncio.wait_for(p.stdout.readline(), 30)
    assert line.strip() == b"ready"
    return p


@pytest.mark.slow
async def test_agent_kill_9_mid_stream_and_restart(tmp_path) -> None:
    rng = random.Random(88)
    ingest = FakeIngest()
    server, port = await _grpc_server(ingest)
    path = tmp_path / "agent.db"
    reported: list[tuple] = []
    try:
        for r in range(4):
            p = await _child(path, port, "run", 1_780_000_000_000_000 + r * 10**11)
            await asyncio.sleep(rng.uniform(0.3, 0.8))
            os.kill(p.pid, signal.SIGKILL)
            out = await p.stdout.read()  # type: ignore[union-attr]
            await p.wait()
            for line in out.decode().splitlines():
                parts = line.split()
                if len(parts) == 4 and parts[0] == "K":
                    reported.append((parts[1], parts[2], int(parts[3])))
        assert len(reported) > 50
        p = await _child(path, port, "drain", 0)
        out = await asyncio.wait_for(p.stdout.read(), 60)  # type: ignore[union-attr]
        assert (await p.wait()) == 0 and b"drained" in out
    finally:
        await server.stop(None)
    missing = [k for k in reported if k not in ingest.ledger]
    assert not missing, f"{len(missing)} appended batches never reached the server, e.g. {missing[:3]}"
    assert len(reported) == len(set(reported))
    # each sample exactly once (FakeIngest also asserts it on insert), reported or not yet reported
    assert ingest.n_samples() == 5 * len(ingest.ledger) >= 5 * len(reported)
