"""Per (device, stream) batching: samples in, :class:`~protocols.wire.SampleBatch` out.

A batch is closed when its first sample is ``batch_s`` old (by the agent's timebase), when it
holds ``max_samples`` samples, or on :meth:`Batcher.flush` (shutdown, link drop). A 1 s HR batch
is dominated by its ~46-byte header (DESIGN §4), so the default groups 10 s; high-rate IMU
streams close earlier (``batch_s_by_stream``) to bound what a power cut can take with it.

Sequence numbers come from ``seq_source(device_id, stream)``, which must be strictly increasing
per (device, stream) and never reused after a restart: the outbox's persisted counter in the
agent, :class:`ClockSeq` (the clock in µs) otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from protocols.wire import SampleBatch

from .streams import STREAMS, TIME_RES_US, Samples

__all__ = ["Batcher", "ClockSeq", "SeqSource"]

SeqSource = Callable[[str, str], int]


class ClockSeq:
    """``seq`` = the wall clock in µs, bumped to stay strictly increasing per (device, stream).

    Never reused after a restart as long as the host clock does not go back by more than the
    agent's downtime; the outbox's persisted counter is the stronger source."""

    def __init__(self, clock_us: Callable[[], int] = lambda: time.time_ns() // 1000) -> None:
        self._clock_us = clock_us
        self._last: dict[tuple[str, str], int] = {}

    def __call__(self, device_id: str, stream: str) -> int:
        k = (device_id, stream)
        s = max(self._clock_us(), self._last.get(k, 0) + 1)
        self._last[k] = s
        return s


@dataclass(slots=True)
class _Open:
    t_us: list[int] = field(default_factory=list)
    values: list = field(default_factory=list)
    first_us: int = 0


class Batcher:
    """Accumulates :class:`Samples` per (device, stream) and closes them into batches.

    Args:
        seq_source: see module docstring.
        batch_s: default batch length in seconds.
        batch_s_by_stream: per-stream overrides (e.g. ``{"accel": 2.0, "gyro": 2.0}``).
        max_samples: close a batch at this many samples.
    """

    def __init__(
        self,
        seq_source: SeqSource | None = None,
        *,
        batch_s: float = 10.0,
        batch_s_by_stream: Mapping[str, float] | None = None,
        max_samples: int = 4096,
    ) -> None:
        if batch_s <= 0:
            raise ValueError(f"batch_s must be > 0, got {batch_s}")
        self.seq_source: SeqSource = seq_source or ClockSeq()
        self.batch_us = int(batch_s * 1e6)
        self.batch_us_by_stream = {k: int(v * 1e6) for k, v in (batch_s_by_stream or {}).items()}
        self.max_samples = max_samples
        self._open: dict[tuple[str, str], _Open] = {}
        self.samples_in = 0
        self.batches_out = 0

    def add(self, device_id: str, samples: Samples) -> list[SampleBatch]:
        """Add samples; returns batches closed because they reached ``max_samples``."""
        if not samples.t_us:
            return []
        k = (device_id, samples.stream)
        o = self._open.get(k)
        if o is None:
            o = self._open[k] = _Open(first_us=samples.t_us[0])
        elif not o.t_us:
            o.first_us = samples.t_us[0]
        o.t_us.extend(samples.t_us)
        o.values.extend(samples.values)
        self.samples_in += len(samples.t_us)
        if len(o.t_us) >= self.max_samples:
            return [self._close(k, o)]
        return []

    def due(self, now_us: int) -> list[SampleBatch]:
        """Close and return every batch whose first sample is at least its batch length old."""
        out = []
        for k, o in self._open.items():
            if o.t_us and now_us - o.first_us >= self.batch_us_by_stream.get(k[1], self.batch_us):
                out.append(self._close(k, o))
        return out

    def flush(self, device_id: str | None = None) -> list[SampleBatch]:
        """Close every open batch (of one device, or all)."""
        return [self._close(k, o) for k, o in self._open.items() if o.t_us and (device_id is None or k[0] == device_id)]

    @property
    def pending_samples(self) -> int:
        return sum(len(o.t_us) for o in self._open.values())

    def _close(self, k: tuple[str, str], o: _Open) -> SampleBatch:
        device_id, stream = k
        spec = STREAMS[stream]
        t = np.asarray(o.t_us, dtype=np.int64)
        v = np.asarray(o.values, dtype=np.int64)
        o.t_us, o.values = [], []
        self.batches_out += 1
        return SampleBatch(
            device_id, stream, self.seq_source(device_id, stream), t, v,
            scale=spec.scale, unit=spec.unit, time_resolution_us=TIME_RES_US,
        )
