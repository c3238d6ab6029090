"""Live fan-out: committed batches to subscribers, never slowing ingest.

Each subscriber has a bounded buffer. When it is full, new batches for that subscriber are
dropped and counted; the subscriber's next event is a ``lagged`` event with the count, then the
stream goes on. Publishing is synchronous and O(subscribers): ingest never waits.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from typing import Callable, Iterable

from protocols.wire import SampleBatch, encode_batches
from protocols.wire.gen.fittrack.v1 import batch_pb2, envelope_pb2, ingest_pb2

from .metrics import Metrics

DEFAULT_BUFFER_BATCHES = 1024

Sink = Callable[[str, str, batch_pb2.SampleBatch], None]


@dataclass(eq=False)
class Subscriber:
    tenant: str
    device_ids: frozenset[str]
    streams: frozenset[str]
    buffer_batches: int = DEFAULT_BUFFER_BATCHES
    dropped: int = 0
    pending: collections.deque = field(default_factory=collections.deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, tenant: str, b: SampleBatch) -> bool:
        return (tenant == self.tenant and (not self.device_ids or b.device_id in self.device_ids)
                and (not self.streams or b.stream in self.streams))

    async def events(self) -> "collections.abc.AsyncIterator[ingest_pb2.LiveEvent]":  # noqa: F821
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.dropped:
                n, self.dropped = self.dropped, 0
                yield ingest_pb2.LiveEvent(tenant=self.tenant, lagged=ingest_pb2.Lagged(dropped_batches=n))
            while self.pending:
                yield self.pending.popleft()
                if self.dropped:
                    n, self.dropped = self.dropped, 0
                    yield ingest_pb2.LiveEvent(tenant=self.tenant, lagged=ingest_pb2.Lagged(dropped_batches=n))


class LiveHub:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.subscribers: set[Subscriber] = set()
        self.sinks: list[Sink] = []

    def subscribe(self, tenant: str, device_ids: Iterable[str] = (), streams: Iterable[str] = (),
                  buffer_batches: int = 0) -> Subscriber:
        s = Subscriber(tenant, frozenset(device_ids), frozenset(streams), buffer_batches or DEFAULT_BUFFER_BATCHES)
        self.subscribers.add(s)
        self.metrics.subscribers.set(len(self.subscribers))
        return s

    def unsubscribe(self, s: Subscriber) -> None:
        self.subscribers.discard(s)
        self.metrics.subscribers.set(len(self.subscribers))

    def publish(self, tenant: str, agent_id: str, batches: list[SampleBatch]) -> None:
        """Hand committed batches to subscribers and sinks (MQTT live topics)."""
        if not batches or (not self.subscribers and not self.sinks):
            return
        wanted = [s for s in self.subscribers if s.tenant == tenant]
        if not wanted and not self.sinks:
            return
        pbs = envelope_pb2.BatchList.FromString(encode_batches(batches)).batches
        for b, pb in zip(batches, pbs):
            for sink in self.sinks:
                sink(tenant, agent_id, pb)
            ev = None
            for s in wanted:
                if not s.wants(tenant, b):
                    continue
                if len(s.pending) >= s.buffer_batches:
                    s.dropped += 1
                    self.metrics.live_dropped.inc()
                else:
                    if ev is None:
                        ev = ingest_pb2.LiveEvent(tenant=tenant, agent_id=agent_id, batch=pb)
                    s.pending.append(ev)
                s.wake.set()
