"""``fittrack ingest serve --processes N``: N server processes on one machine.

Python runs one core per process, so a multi-core host runs several servers. They share the
gRPC port with SO_REUSEPORT (the kernel spreads connections over them) and split the MQTT
uplink through the shared subscription, exactly like servers on several hosts; the database
ledger keeps them exactly-once. The supervisor starts the workers one by one (the first picks
the port when port 0 was asked), prints one ready line, forwards SIGTERM/SIGINT, and exits
with the first non-zero worker status.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

from .config import IngestConfig

_READY = re.compile(r"ingest ready grpc=(\S+) mqtt=(\S+)(?: metrics=(\S+))?")
_DROP = {"--processes", "--grpc", "--metrics"}


def _strip(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in _DROP:
            skip = "=" not in a
            continue
        out.append(a)
    return out


def supervise(argv: list[str], cfg: IngestConfig) -> int:
    base = [sys.executable, "-m", "fittrack", "ingest", *_strip(argv), "--processes", "1"]
    grpc_addr = cfg.grpc
    metrics_host, metrics_port = (cfg.metrics.rsplit(":", 1)[0], int(cfg.metrics.rsplit(":", 1)[1])) if cfg.metrics else (None, 0)
    procs: list[subprocess.Popen] = []
    first: dict[str, str] = {}
    for i in range(cfg.processes):
        args = list(base)
        if grpc_addr:
            args += ["--grpc", grpc_addr, "--grpc-reuseport"]
        if metrics_host is not None:
            args += ["--metrics", f"{metrics_host}:{metrics_port + i if metrics_port else 0}"]
        p = subprocess.Popen(args, stdout=None, stderr=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stderr is not None
        for line in p.stderr:
            m = _READY.search(line)
            if m:
                if not first:
                    first = {"grpc": m.group(1), "mqtt": m.group(2), "metrics": m.group(3) or ""}
                    if grpc_addr:
                        grpc_addr = first["grpc"]  # the port the first worker got
                break
            sys.stderr.write(line)
        else:
            for q in procs:
                q.terminate()
            print(f"ingest worker {i} exited before it was ready (status {p.wait()})", file=sys.stderr)
            return 1
        threading.Thread(target=lambda p=p: [sys.stderr.write(x) for x in p.stderr], daemon=True).start()  # type: ignore[union-attr]
    line = f"ingest ready grpc={first['grpc']} mqtt={first['mqtt']}"
    if first.get("metrics"):
        line += f" metrics={first['metrics']}"
    print(line + f" processes={len(procs)} pids={','.join(str(p.pid) for p in procs)}", file=sys.stderr, flush=True)

    def forward(sig: int, _frame: object) -> None:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for p in procs:
        rc = p.wait()
        status = status or rc
    return status
