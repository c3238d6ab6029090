"""A benchmark device: notifies a counter as fast as asked, to measure the simulator's ceiling.

Each notification is 20 bytes (a typical HR/CSC size): a uint32 counter then 16 filler bytes,
so the receiver can check that nothing was lost or reordered. ``rate_hz`` notifications per
simulated second; at most ``max_per_step`` per call of :meth:`advance` so the daemon stays
responsive when it cannot keep up (the backlog then just waits).
"""

from __future__ import annotations

import struct
from typing import Any

from .base import NOTIFY, Advert, CharSpec, DeviceModel, Notification, ServiceSpec

FLOOD_SERVICE = "f17a00f0-7e57-4b1e-9a3e-5c0ffee00000"
FLOOD_DATA = "f17a00f1-7e57-4b1e-9a3e-5c0ffee00000"
_FILL = bytes(range(16))


class Flood(DeviceModel):
    kind = "flood"

    def __init__(self, address: str, name: str, seed: int, rate_hz: float = 1000.0, max_per_step: int = 2000) -> None:
        super().__init__(address, name, seed)
        self.rate_hz = rate_hz
        self.max_per_step = max_per_step
        self.count = 0

    def advertisement(self) -> Advert:
        return Advert(self.name, (FLOOD_SERVICE,), {0xFFFF: b"FT\xff"})

    def services(self) -> tuple[ServiceSpec, ...]:
        return (ServiceSpec(FLOOD_SERVICE, (CharSpec(FLOOD_DATA, (NOTIFY,)),)),)

    def nominal_rates_hz(self) -> dict[str, float]:
        return {FLOOD_DATA: self.rate_hz}

    def advance(self, t_s: float) -> list[Notification]:
        self.t_s = t_s
        due = min(int(t_s * self.rate_hz) - self.count, self.max_per_step)
        out = []
        pack = struct.Struct("<I").pack
        for i in range(self.count, self.count + max(due, 0)):
            out.append(Notification(t_s, FLOOD_DATA, pack(i & 0xFFFFFFFF) + _FILL))
        self.count += max(due, 0)
        return out

    def ground_truth(self, since_s: float = 0.0) -> dict[str, Any]:
        gt = super().ground_truth()
        gt.update(t_s=self.t_s, count=self.count)
        return gt
