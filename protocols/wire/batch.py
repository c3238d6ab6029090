"""``SampleBatch``: a run of samples of one stream of one device (DESIGN §3)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from .errors import WireError

#: Stream names are lower_snake_case identifiers (``heart_rate``, ``rr_interval``, ``accel``).
STREAM_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_ID_LEN = 128
MAX_CHANNELS = 64
UINT64_MAX = (1 << 64) - 1


def _as_int64(a: object, what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype == np.int64:
        return arr
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind in "iub":
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise WireError(f"{what}: values above int64 range")
        return arr.astype(np.int64)
    raise WireError(
        f"{what} must be integers (raw units; physical = raw * scale), got dtype {arr.dtype}"
    )


@dataclass(frozen=True, slots=True, eq=False)
class SampleBatch:
    """Samples of one ``stream`` of one device, with integer raw values.

    Attributes:
        device_id: stable id of the physical sensor.
        stream: stream name, lower_snake_case (``heart_rate``, ``rr_interval``, ``accel``...).
        seq: batch sequence number, strictly increasing per (device_id, stream); the
            idempotency key of delivery (DESIGN §5). 0 <= seq < 2**64.
        t_us: int64 timestamps, µs since the Unix epoch (UTC), one per sample, each a whole
            multiple of ``time_resolution_us``.
        values: int64 raw values, shape (n,) or (n, channels).
        scale: physical value = raw * scale (finite, non-zero).
        unit: unit of the physical value ("bpm", "s", "g", "W", "km/h", ...).
        time_resolution_us: quantum of the timestamps in µs (>= 1).

    Raises :class:`WireError` when any of this does not hold.
    """

    device_id: str
    stream: str
    seq: int
    t_us: np.ndarray = field(repr=False)
    values: np.ndarray = field(repr=False)
    scale: float = 1.0
    unit: str = ""
    time_resolution_us: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.device_id, str) or not 0 < len(self.device_id) <= MAX_ID_LEN:
            raise WireError(f"device_id must be a non-empty string of at most {MAX_ID_LEN} characters")
        if not isinstance(self.stream, str) or not STREAM_RE.match(self.stream):
            raise WireError(f"stream {self.stream!r} is not a lower_snake_case name of at most 64 characters")
        if isinstance(self.seq, bool) or not isinstance(self.seq, (int, np.integer)) or not 0 <= int(self.seq) <= UINT64_MAX:
            raise WireError(f"seq must be an integer in [0, 2**64), got {self.seq!r}")
        object.__setattr__(self, "seq", int(self.seq))
        t = _as_int64(self.t_us, "t_us")
        v = _as_int64(self.values, "values")
        if t.ndim != 1:
            raise WireError(f"t_us must be one-dimensional, got shape {t.shape}")
        if v.ndim not in (1, 2) or v.shape[0] != t.shape[0]:
            raise WireError(f"values must have shape ({t.shape[0]},) or ({t.shape[0]}, channels), got {v.shape}")
        if v.ndim == 2 and not 1 <= v.shape[1] <= MAX_CHANNELS:
            raise WireError(f"values must have 1..{MAX_CHANNELS} channels, got {v.shape[1]}")
        res = self.time_resolution_us
        if isinstance(res, bool) or not isinstance(res, (int, np.integer)) or not 1 <= int(res) <= UINT64_MAX:
            raise WireError(f"time_resolution_us must be an integer >= 1, got {res!r}")
        object.__setattr__(self, "time_resolution_us", int(res))
        if res > 1 and t.size and np.any(t % res):
            bad = int(np.flatnonzero(t % res)[0])
            raise WireError(
                f"t_us[{bad}] = {int(t[bad])} is not a multiple of time_resolution_us = {res}"
            )
        scale = float(self.scale)
        if not math.isfinite(scale) or scale == 0.0:
            raise WireError(f"scale must be finite and non-zero, got {self.scale!r}")
        object.__setattr__(self, "scale", scale)
        if not isinstance(self.unit, str):
            raise WireError("unit must be a string")
        object.__setattr__(self, "t_us", t)
        object.__setattr__(self, "values", v)

    @classmethod
    def _trusted(
        cls, device_id: str, stream: str, seq: int, t_us: np.ndarray, values: np.ndarray,
        scale: float, unit: str, time_resolution_us: int,
    ) -> "SampleBatch":
        """Build without validation: for the decoder, which has already checked every field."""
        self = object.__new__(cls)
        setattr_ = object.__setattr__  # unrolled: this runs once per decoded batch
        setattr_(self, "device_id", device_id)
        setattr_(self, "stream", stream)
        setattr_(self, "seq", seq)
        setattr_(self, "t_us", t_us)
        setattr_(self, "values", values)
        setattr_(self, "scale", scale)
        setattr_(self, "unit", unit)
        setattr_(self, "time_resolution_us", time_resolution_us)
        return self

    def __len__(self) -> int:
        return int(self.t_us.shape[0])

    @property
    def channels(self) -> int:
        """Number of value channels (1 for a vector of values)."""
        return 1 if self.values.ndim == 1 else int(self.values.shape[1])

    def physical(self) -> np.ndarray:
        """Values in physical units (float64): raw * scale."""
        return self.values * self.scale

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampleBatch):
            return NotImplemented
        return (
            self.device_id == other.device_id
            and self.stream == other.stream
            and self.seq == other.seq
            and self.scale == other.scale
            and self.unit == other.unit
            and self.time_resolution_us == other.time_resolution_us
            and self.t_us.dtype == other.t_us.dtype
            and self.values.dtype == other.values.dtype
            and np.array_equal(self.t_us, other.t_us)
            and np.array_equal(self.values, other.values)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"SampleBatch(device_id={self.device_id!r}, stream={self.stream!r}, seq={self.seq}, "
            f"n={len(self)}, channels={self.channels}, scale={self.scale!r}, unit={self.unit!r})"
        )
