"""Shared helpers of the outbox/delivery/uplink tests (engineer A of issue 8)."""

from __future__ import annotations

import numpy as np

from protocols.wire import SampleBatch

T0_US = 1_780_000_000_000_000


def hr_batch(device_id: str = "ble-000000000001", n: int = 10, t0_us: int = T0_US, bpm0: int = 60,
             stream: str = "heart_rate") -> SampleBatch:
    """``n`` samples at 1 Hz whose values encode their index (bpm0 + i), so loss/duplication shows."""
    t = t0_us + np.arange(n, dtype=np.int64) * 1_000_000
    return SampleBatch(device_id, stream, 0, t, bpm0 + np.arange(n, dtype=np.int64), unit="bpm")


def imu_batch(device_id: str = "ble-0000000000aa", n: int = 100, t0_us: int = T0_US, stream: str = "accel") -> SampleBatch:
    """``n`` 3-channel samples at 100 Hz."""
    t = t0_us + np.arange(n, dtype=np.int64) * 10_000
    v = (np.arange(n * 3, dtype=np.int64).reshape(n, 3) % 4096) - 2048
    return SampleBatch(device_id, stream, 0, t, v, scale=1 / 4096, unit="g")


class SteppingClock:
    """A UTC µs clock the test moves by hand (including backwards)."""

    def __init__(self, t_us: int = T0_US) -> None:
        self.t_us = t_us

    def __call__(self) -> int:
        return self.t_us
