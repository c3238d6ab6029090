"""Cut imported samples into :class:`protocols.wire.SampleBatch` windows.

Samples arrive per stream in file order and in pieces (one per chunk of the file). Each stream
is cut at fixed wall-clock windows (``window_us``, default 5 min), wherever time goes backwards,
and every ``max_samples``; a window is emitted as soon as a later one starts, so memory holds
at most one window per stream. The cut depends only on the samples, never on the chunking, so
re-importing a file gives the same batches.

``seq`` is the first sample's time in ms (bumped by one when that would not be strictly
increasing within the stream), so the same file always gets the same (device, stream, seq)
keys and a re-import is a duplicate downstream (DESIGN §5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from protocols.wire import MAX_BATCH_SAMPLES, SampleBatch

WINDOW_US = 300_000_000
MAX_SAMPLES = min(65_536, MAX_BATCH_SAMPLES)


@dataclass
class _Pending:
    scale: float
    unit: str
    resolution_us: int
    t: list[np.ndarray] = field(default_factory=list)
    v: list[np.ndarray] = field(default_factory=list)
    last_seq: int = -1
    samples: int = 0


class BatchBuilder:
    """Collects samples per stream of one device and hands finished batches to ``emit``."""

    def __init__(self, device_id: str, emit: Callable[[SampleBatch], None], *,
                 window_us: int = WINDOW_US, max_samples: int = MAX_SAMPLES) -> None:
        self.device_id = device_id
        self.emit = emit
        self.window_us = window_us
        self.max_samples = max_samples
        self._streams: dict[str, _Pending] = {}
        self.samples: dict[str, int] = {}

    def add(self, stream: str, t_us: np.ndarray, values: np.ndarray, *, scale: float, unit: str,
            resolution_us: int) -> None:
        """Append samples (``t_us`` int64 µs since the epoch, ``values`` int64 raw, (n,) or (n, c))."""
        if len(t_us) == 0:
            return
        p = self._streams.get(stream)
        if p is not None and (p.scale, p.unit, p.resolution_us) != (scale, unit, resolution_us):
            self._cut(stream, p, final=True)  # a batch has one scale: close the window here
            p.scale, p.unit, p.resolution_us = scale, unit, resolution_us
        if p is None:
            p = self._streams[stream] = _Pending(scale, unit, resolution_us)
        p.t.append(np.asarray(t_us, dtype=np.int64))
        p.v.append(np.asarray(values, dtype=np.int64))
        p.samples += len(t_us)
        self.samples[stream] = self.samples.get(stream, 0) + len(t_us)
        self._cut(stream, p, final=False)

    def flush(self) -> None:
        """Emit every pending window (end of input)."""
        for stream, p in self._streams.items():
            self._cut(stream, p, final=True)

    def _cut(self, stream: str, p: _Pending, *, final: bool) -> None:
        if not p.t:
            return
        t = p.t[0] if len(p.t) == 1 else np.concatenate(p.t)
        v = p.v[0] if len(p.v) == 1 else np.concatenate(p.v)
        w = t // self.window_us
        cuts = np.flatnonzero((w[1:] != w[:-1]) | (t[1:] < t[:-1])) + 1
        bounds = [0]
        for c in [*cuts.tolist(), len(t)]:
            while c - bounds[-1] > self.max_samples:
                bounds.append(bounds[-1] + self.max_samples)
            bounds.append(c)
        # bounds ends with len(t); the last group stays pending unless final
        groups = list(zip(bounds[:-1], bounds[1:]))
        keep = None if final else groups.pop()
        for a, b in groups:
            self._emit(stream, p, t[a:b], v[a:b])
        if keep is None:
            p.t, p.v = [], []
        else:
            p.t, p.v = [t[keep[0]:keep[1]]], [v[keep[0]:keep[1]]]

    def _emit(self, stream: str, p: _Pending, t: np.ndarray, v: np.ndarray) -> None:
        seq = int(t[0]) // 1000
        if seq <= p.last_seq:
            seq = p.last_seq + 1
        p.last_seq = seq
        self.emit(SampleBatch(self.device_id, stream, seq, t.copy(), v.copy(), scale=p.scale, unit=p.unit,
                              time_resolution_us=p.resolution_us))
