"""Connection-slot budget per adapter, with fair rotation of the devices beyond it.

A Bluetooth adapter holds only so many links (a Raspberry Pi's built-in controller about 7-10;
many USB dongles 5-7). :class:`SlotScheduler` keeps at most ``slots`` devices per adapter
*active* (connecting or connected). The others wait in a FIFO queue. When the queue is not
empty, the device that has held its slot longest gives it up every ``rotation_s`` seconds to the
device that has waited longest, so every strap in a gym is heard part of the time instead of
some never. A device that cannot be reached (out of range, connect refused) releases its slot at
once and goes to the back of the queue.

Pure (no bleak, no asyncio): the agent calls :meth:`SlotScheduler.tick` once a second and acts
on the returned :class:`SlotDecision`; the numbers go to the status file, the metrics
(``fittrack_edge_devices_queued``) and a log line each time a device is queued or rotated.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

log = logging.getLogger("edge_agent.slots")

__all__ = ["SlotAllocations", "SlotDecision", "SlotScheduler"]


@dataclass(frozen=True, slots=True)
class SlotAllocations:
    """Slots of one adapter now: ``slots`` total, ``allocated`` + ``free`` = ``slots``;
    ``queued`` lists the addresses waiting, first in line first."""

    adapter: str
    slots: int
    allocated: int
    free: int
    queued: tuple[str, ...]


@dataclass(slots=True)
class SlotDecision:
    """What to do now: connect ``admit``, disconnect ``evict`` (rotated out, now queued)."""

    admit: list[str] = field(default_factory=list)
    evict: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Adapter:
    slots: int
    active: dict[str, float] = field(default_factory=dict)  # address -> since (s)
    queue: deque[str] = field(default_factory=deque)


class SlotScheduler:
    """See module docstring.

    Args:
        slots_per_adapter: budget of each adapter (``{"hci0": 7}``); ``default_slots`` for others.
        rotation_s: how long a device keeps its slot while others wait (0 disables rotation).
    """

    def __init__(self, slots_per_adapter: dict[str, int] | None = None, *, default_slots: int = 7,
                 rotation_s: float = 120.0) -> None:
        if default_slots < 1:
            raise ValueError(f"default_slots must be >= 1, got {default_slots}")
        if rotation_s < 0:
            raise ValueError(f"rotation_s must be >= 0, got {rotation_s}")
        self.default_slots = default_slots
        self.rotation_s = rotation_s
        self._budget = dict(slots_per_adapter or {})
        self._adapters: dict[str, _Adapter] = {}
        self._where: dict[str, str] = {}
        self._reported: dict[str, int] = {}
        self.rotations = 0

    def _ad(self, adapter: str) -> _Adapter:
        a = self._adapters.get(adapter)
        if a is None:
            a = self._adapters[adapter] = _Adapter(self._budget.get(adapter, self.default_slots))
        return a

    def add(self, address: str, adapter: str = "hci0") -> None:
        """A configured device: queued until :meth:`tick` admits it."""
        if address in self._where:
            return
        self._where[address] = adapter
        self._ad(adapter).queue.append(address)

    def remove(self, address: str) -> None:
        adapter = self._where.pop(address, None)
        if adapter is None:
            return
        a = self._adapters[adapter]
        a.active.pop(address, None)
        if address in a.queue:
            a.queue.remove(address)

    def release(self, address: str) -> None:
        """The device gave up its slot (unreachable, failed): back of the queue."""
        adapter = self._where.get(address)
        if adapter is None:
            return
        a = self._adapters[adapter]
        if a.active.pop(address, None) is not None:
            a.queue.append(address)

    def is_active(self, address: str) -> bool:
        adapter = self._where.get(address)
        return adapter is not None and address in self._adapters[adapter].active

    def tick(self, now_s: float) -> SlotDecision:
        """Fill free slots from the queue; rotate one device per adapter when due."""
        d = SlotDecision()
        for name, a in self._adapters.items():
            while a.queue and len(a.active) < a.slots:
                addr = a.queue.popleft()
                a.active[addr] = now_s
                d.admit.append(addr)
            if len(a.queue) != self._reported.get(name, 0):
                self._reported[name] = len(a.queue)
                if a.queue:
                    log.warning(
                        "adapter %s: %d configured devices exceed its %d connection slots; %d queued (%s)%s",
                        name, len(a.active) + len(a.queue), a.slots, len(a.queue), ", ".join(a.queue),
                        f", rotating every {self.rotation_s:.0f} s" if self.rotation_s else ", no rotation (rotation_s = 0)",
                        extra={"event": "slots_exceeded", "adapter": name, "queued": list(a.queue)},
                    )
            if a.queue and self.rotation_s and a.active:
                oldest, since = min(a.active.items(), key=lambda kv: kv[1])
                if now_s - since >= self.rotation_s:
                    del a.active[oldest]
                    a.queue.append(oldest)
                    nxt = a.queue.popleft()
                    a.active[nxt] = now_s
                    d.evict.append(oldest)
                    d.admit.append(nxt)
                    self.rotations += 1
                    log.info(
                        "adapter %s: %d devices over its %d connection slots; rotating %s out for %s",
                        name, len(a.queue), a.slots, oldest, nxt,
                        extra={"event": "slot_rotation", "adapter": name, "evicted": oldest, "admitted": nxt},
                    )
        return d

    def allocations(self) -> list[SlotAllocations]:
        """Per adapter: slots, allocated, free, queue (status file and metrics)."""
        return [
            SlotAllocations(name, a.slots, len(a.active), max(0, a.slots - len(a.active)), tuple(a.queue))
            for name, a in sorted(self._adapters.items())
        ]
