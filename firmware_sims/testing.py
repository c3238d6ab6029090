"""Start a private D-Bus + the simulated BlueZ for tests and tools; stop them by PID.

::

    from firmware_sims.testing import running_sim

    with running_sim("hr:3,imu:1,treadmill:1,bike:1", seed=0, time_scale=1.0) as sim:
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": sim.bus_address}   # for bleak
        sim.devices            # [SimDeviceInfo(address, name, kind, path, rates_hz)]
        sim.fault(addr, "link_drop")
        sim.ground_truth(addr) # dict from the model

Nothing global is changed (the caller decides where ``DBUS_SYSTEM_BUS_ADDRESS`` goes). The
dbus-daemon (Debian's ``dbus`` package) runs with its own config in a temporary directory;
both processes are ended by PID (SIGTERM, then SIGKILL after 5 s) and the directory removed,
also when the body raises; if the starting process dies without cleaning up (SIGKILL), the kernel
sends them SIGTERM (PR_SET_PDEATHSIG; it follows the starting *thread*, so start the simulator
from a thread that outlives it, e.g. the main thread).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .bluez.daemon import CONTROL_IFACE, CONTROL_PATH

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>fittrack-sim</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_message_size">1000000000</limit>
  <limit name="max_replies_per_connection">50000</limit>
  <limit name="max_match_rules_per_connection">50000</limit>
  <limit name="reply_timeout">60000</limit>
</busconfig>
"""


class SimStartError(RuntimeError):
    """The private bus or the simulated BlueZ did not come up (message has their stderr)."""


@dataclass(frozen=True)
class SimDeviceInfo:
    address: str
    name: str
    kind: str
    path: str
    rates_hz: dict[str, float] = field(default_factory=dict)


def dbus_daemon_path() -> str:
    exe = shutil.which("dbus-daemon")
    if exe is None:
        raise SimStartError("dbus-daemon not found: install Debian's 'dbus' package (scripts/provision.sh does)")
    return exe


#: processes started by running_sim in this interpreter and not yet stopped (the atexit net
#: stops them if the interpreter exits without leaving the ``with`` block, e.g. on os._exit paths
#: that still run atexit, or a KeyboardInterrupt between start and yield)
_LIVE: dict[int, subprocess.Popen[Any]] = {}


@atexit.register
def _stop_leftovers() -> None:
    for p in list(_LIVE.values()):
        _stop_pid(p, 2.0)


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the process that started it dies (Linux prctl), so a
    test runner killed with SIGKILL leaves no dbus-daemon or simulator behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort (non-Linux)
        pass


def _stop_pid(proc: subprocess.Popen[Any], timeout_s: float = 5.0) -> None:
    _LIVE.pop(proc.pid, None)
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout_s)


class SimHandle:
    """A running simulator: its bus address, devices, and the control interface (sync + async)."""

    def __init__(self, bus_address: str, devices: list[SimDeviceInfo], bus_pid: int, sim_pid: int, time_scale: float) -> None:
        self.bus_address = bus_address
        self.devices = devices
        self.bus_pid = bus_pid
        self.sim_pid = sim_pid
        self.time_scale = time_scale

    @property
    def env(self) -> dict[str, str]:
        """``os.environ`` plus ``DBUS_SYSTEM_BUS_ADDRESS`` for a bleak subprocess."""
        return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.bus_address}

    def by_kind(self, kind: str) -> list[SimDeviceInfo]:
        return [d for d in self.devices if d.kind == kind]

    # async API (use inside a running loop)
    async def acall(self, member: str, signature: str = "", body: list[Any] | None = None) -> Any:
        from dbus_fast import Message, MessageType
        from dbus_fast.aio import MessageBus

        bus = MessageBus(bus_address=self.bus_address)
        try:
            await bus.connect()
            reply = await bus.call(Message(destination="org.bluez", path=CONTROL_PATH, interface=CONTROL_IFACE,
                                           member=member, signature=signature, body=body or []))
        finally:
            bus.disconnect()
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"{reply.error_name}: {reply.body[0] if reply.body else ''}")
        return reply.body[0] if reply.body else None

    async def afault(self, address: str, kind: str, **params: Any) -> dict[str, Any]:
        return json.loads(await self.acall("Fault", "sss", [address, kind, json.dumps(params)]))

    async def aground_truth(self, address: str, since_s: float = 0.0) -> dict[str, Any]:
        return json.loads(await self.acall("GroundTruth", "sd", [address, float(since_s)]))

    async def astats(self) -> dict[str, Any]:
        return json.loads(await self.acall("Stats"))

    async def aclock(self) -> float:
        return float(await self.acall("Clock"))

    # sync API (works with or without a running loop in this thread)
    def _sync(self, coro: Any) -> Any:
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["v"] = asyncio.run(coro)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                box["e"] = e

        t = threading.Thread(target=run, name="sim-control")
        t.start()
        t.join()
        if "e" in box:
            raise box["e"]
        return box["v"]

    def fault(self, address: str, kind: str, **params: Any) -> dict[str, Any]:
        """Inject a fault (see firmware_sims.bluez.control for kinds and params)."""
        return self._sync(self.afault(address, kind, **params))

    def ground_truth(self, address: str, since_s: float = 0.0) -> dict[str, Any]:
        """The model's ground truth (true HR per notification, beat times, reps, distances...)."""
        return self._sync(self.aground_truth(address, since_s))

    def stats(self) -> dict[str, Any]:
        return self._sync(self.astats())

    def clock(self) -> float:
        """Simulated seconds since the simulator started."""
        return self._sync(self.aclock())


@contextlib.contextmanager
def running_sim(devices: str = "hr:3,imu:1,treadmill:1,bike:1", seed: int = 0, time_scale: float = 1.0,
                start_timeout_s: float = 20.0, verbose: bool = False,
                temporary_timeout_s: float = 30.0) -> Iterator[SimHandle]:
    """Private dbus-daemon + simulated ``org.bluez`` for the ``with`` body; torn down by PID.

    ``temporary_timeout_s`` is BlueZ's TemporaryTimeout (wall seconds): a device neither seen
    advertising nor connected for that long is removed from the bus, as bluetoothd does.
    """
    tmp = Path(tempfile.mkdtemp(prefix="fittrack-sim-"))
    procs: list[subprocess.Popen[Any]] = []
    try:
        cfg = tmp / "bus.conf"
        cfg.write_text(_BUS_CONFIG.format(socket=tmp / "bus"))
        bus = subprocess.Popen([dbus_daemon_path(), f"--config-file={cfg}", "--nofork", "--nopidfile",
                                "--print-address=1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        procs.append(bus)
        _LIVE[bus.pid] = bus
        address = _readline(bus, start_timeout_s, "dbus-daemon").strip()
        if not address.startswith("unix:"):
            raise SimStartError(f"dbus-daemon printed {address!r} instead of an address")
        sim_err = open(tmp / "sim.stderr", "w+")
        cmd = [sys.executable, "-m", "firmware_sims.bluez", "--bus", address, "--devices", devices,
               "--seed", str(seed), "--time-scale", str(time_scale),
               "--temporary-timeout", str(temporary_timeout_s)] + (["-v"] if verbose else [])
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        sim = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=sim_err, text=True, stdin=subprocess.DEVNULL, env=env,
                               preexec_fn=_die_with_parent)
        procs.append(sim)
        _LIVE[sim.pid] = sim
        try:
            line = _readline(sim, start_timeout_s, "simulated BlueZ")
        except SimStartError as e:
            sim_err.seek(0)
            raise SimStartError(f"{e}\n{sim_err.read()[-4000:]}") from None
        if not line.startswith("ready "):
            sim_err.seek(0)
            raise SimStartError(f"simulated BlueZ did not start: {line!r}\n{sim_err.read()[-4000:]}")
        infos = [SimDeviceInfo(**d) for d in json.loads(line[6:])]
        yield SimHandle(address, infos, bus.pid, sim.pid, time_scale)
    finally:
        for p in reversed(procs):
            _stop_pid(p)
            for s in (p.stdout, p.stderr):
                if s is not None:
                    s.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _readline(proc: subprocess.Popen[Any], timeout_s: float, what: str) -> str:
    assert proc.stdout is not None
    box: dict[str, str] = {}
    t = threading.Thread(target=lambda: box.setdefault("line", proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    t.start()
    t.join(timeout_s)
    if "line" not in box:
        raise SimStartError(f"{what} (pid {proc.pid}) printed nothing within {timeout_s} s")
    if not box["line"]:
        err = proc.stderr.read() if proc.stderr is not None and proc.poll() is not None else ""
        raise SimStartError(f"{what} exited with {proc.poll()} before it was ready: {err}")
    return box["line"]
