"""Fixtures for the simulated BlueZ (firmware_sims): a private bus per test module.

``sim_bluez`` is a module-scoped factory: ``sim = sim_bluez("hr:3,imu:1", seed=0, time_scale=5)``
starts a private dbus-daemon and the simulated ``org.bluez`` and returns a
:class:`firmware_sims.testing.SimHandle`; everything it started is stopped by PID when the
module ends, and the fixture then asserts that no process it started is still alive.
``bleak_bus`` points bleak (in this process) at a simulator for one test.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import pytest

from firmware_sims.testing import SimHandle, running_sim


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def sim_bluez() -> Iterator[Callable[..., SimHandle]]:
    stack = contextlib.ExitStack()
    pids: list[int] = []

    def start(devices: str = "hr:3,imu:1,treadmill:1,bike:1", seed: int = 0, time_scale: float = 1.0,
              **kw: Any) -> SimHandle:
        h = stack.enter_context(running_sim(devices, seed=seed, time_scale=time_scale, **kw))
        pids.extend([h.bus_pid, h.sim_pid])
        return h

    with stack:
        yield start
    leaked = [p for p in pids if _alive(p)]
    assert not leaked, f"simulator processes still running after teardown: {leaked}"


@pytest.fixture
def bleak_bus(monkeypatch: pytest.MonkeyPatch) -> Callable[[SimHandle], None]:
    """``bleak_bus(sim)`` sets DBUS_SYSTEM_BUS_ADDRESS for this test only (bleak reads it on connect)."""

    def use(sim: SimHandle) -> None:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", sim.bus_address)

    return use
