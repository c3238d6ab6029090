"""Encode and decode envelopes of :class:`SampleBatch` (DESIGN §4, docs/wire-format.md).

Per batch, timestamps cost nothing when the rate is fixed (``REGULAR``) or when they follow
from the values (``CUMULATIVE``: RR beat times are the running sum of the intervals); otherwise
they are difference-coded like values. Each value channel is coded as order-0/1/2 residuals,
order chosen per channel; the envelope body is then zlib-compressed when that is smaller.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from google.protobuf.message import DecodeError

from . import residuals
from .batch import MAX_CHANNELS, MAX_ID_LEN, STREAM_RE, SampleBatch
from .errors import WireError
from .gen.fittrack.v1 import batch_pb2, envelope_pb2

#: Largest envelope accepted by :func:`decode_envelope` (bytes on the wire).
MAX_ENVELOPE_BYTES = 8 * 1024 * 1024
#: Largest inflated body accepted (guards against compression bombs).
MAX_BODY_BYTES = 64 * 1024 * 1024
#: Most samples in one batch (1 Mi: almost 3 h of 100 Hz IMU).
MAX_BATCH_SAMPLES = 1 << 20
#: Most decoded integers (samples x channels, plus timestamps) in one envelope: 16 Mi int64 =
#: 128 MiB. All-zero residuals take no bytes, so this, not the byte limits, bounds memory.
MAX_ENVELOPE_VALUES = 1 << 24
#: Bodies shorter than this are sent uncompressed.
MIN_COMPRESS_BYTES = 24
#: zlib level 6 (zlib's default) measured within 0.1% of level 9's size on the bench streams.
DEFAULT_COMPRESSION_LEVEL = 6
#: The preset dictionary of COMPRESSION_DEFLATE_DICT_V1 (part of the contract; never changes).
DEFLATE_DICT_V1 = (Path(__file__).parent / "gen" / "fittrack" / "v1" / "deflate_dict_v1.bin").read_bytes()

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1

TM = batch_pb2.TimeModel
# plain ints: the enum wrapper's attribute lookup costs ~0.6 µs per access on the decode hot path
_TM_REGULAR = int(TM.TIME_MODEL_REGULAR)
_TM_CUMULATIVE = int(TM.TIME_MODEL_CUMULATIVE)
_TM_EXPLICIT = int(TM.TIME_MODEL_EXPLICIT)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded envelope: who sent it (``agent_id``, ``tenant``), its ``seq`` and ``batches``."""

    agent_id: str
    tenant: str
    seq: int
    batches: list[SampleBatch]
    sent_at_us: int = 0
    wire_bytes: int = 0

    @property
    def sample_count(self) -> int:
        return sum(len(b) for b in self.batches)


# ----------------------------------------------------------------------------- time models


def cumulative_ticks(c0: np.ndarray, scale: float, res_us: int, phase: float = 0.0) -> np.ndarray | None:
    """Tick offsets predicted by ``TIME_MODEL_CUMULATIVE`` from channel-0 raw values ``c0``.

    ``rint(P[i]) - rint(P[0])`` with ``P = cumsum(c0) * q + phase``, ``q = scale * 1e6 / res_us``,
    float64, rint rounding half to even (normative: batch.proto). None if out of range.
    """
    q = scale * 1e6 / res_us
    p = np.cumsum(c0, dtype=np.int64).astype(np.float64) * q
    if phase:
        p += phase
    if not np.all(np.isfinite(p)) or (p.size and np.abs(p).max() > 2.0**62):
        return None
    r = np.rint(p).astype(np.int64)
    return r - r[0]


def fit_phase(ticks: np.ndarray, c0: np.ndarray, scale: float, res_us: int) -> float | None:
    """A ``time_phase`` that makes the cumulative model reproduce ``ticks`` exactly, or None.

    With E[i] = ticks[i] - C[i]*q, any phase strictly inside every [E[i] - 1/2, E[i] + 1/2] makes
    rint(C[i]*q + phase) = ticks[i] + const; the midpoint of max(E) and min(E) is the safest.
    """
    q = scale * 1e6 / res_us
    cq = np.cumsum(c0, dtype=np.int64).astype(np.float64) * q
    if not np.all(np.isfinite(cq)):
        return None
    e = ticks.astype(np.float64) - cq
    lo, hi = float(e.min()), float(e.max())
    if hi - lo >= 0.999:
        return None
    phase = (lo + hi) / 2.0
    phase -= round(phase)  # only the fractional part matters
    return phase


def _set_residuals(msg: batch_pb2.Residuals, coded: residuals.Coded) -> None:
    msg.order = coded.order
    if coded.head:
        msg.head.extend(coded.head)
    msg.width_bytes = coded.width
    if coded.base:
        msg.base = coded.base
    if coded.data:
        msg.data = coded.data


def _encode_batch(b: SampleBatch, out: batch_pb2.SampleBatch) -> None:
    n = len(b)
    out.device_id = b.device_id
    out.stream = b.stream
    out.seq = b.seq
    out.count = n
    out.channels = 0 if b.values.ndim == 1 else b.values.shape[1]
    if b.scale != 1.0:
        out.scale = b.scale  # absent means 1
    if b.unit:
        out.unit = b.unit
    res = b.time_resolution_us
    out.time_resolution_us = res
    if n:
        t0 = int(b.t_us[0])
        out.t0_us = t0
        ticks = b.t_us - t0
        if res > 1:
            ticks //= res
        _encode_time(b, ticks, out)
    else:
        out.time_model = TM.TIME_MODEL_REGULAR
    vals = b.values
    if vals.ndim == 1:
        _set_residuals(out.values.add(), residuals.encode(vals))
    else:
        for ch in range(vals.shape[1]):
            _set_residuals(out.values.add(), residuals.encode(np.ascontiguousarray(vals[:, ch])))


def _durations(b: SampleBatch, ticks: np.ndarray) -> np.ndarray | None:
    """Channel 0 if its values could be the durations between the timestamps (RR intervals):
    a single channel whose sum is within a factor of two of the batch's time span."""
    if b.channels != 1:
        return None
    c0 = b.values if b.values.ndim == 1 else b.values[:, 0]
    span = float(c0.sum(dtype=np.float64)) * b.scale * 1e6 / b.time_resolution_us
    actual = float(ticks[-1] - ticks[0])
    return c0 if 0.5 * actual <= span <= 2.0 * actual + 2.0 else None


def _encode_time(b: SampleBatch, ticks: np.ndarray, out: batch_pb2.SampleBatch) -> None:
    """Choose the time model: REGULAR if exact, CUMULATIVE if exact, else the cheapest residuals."""
    n = ticks.shape[0]
    if n == 1:
        out.time_model = TM.TIME_MODEL_REGULAR
        return
    d = ticks[1:] - ticks[:-1]
    p = int(d[0])
    if p >= 0 and np.all(d == p):
        out.time_model = TM.TIME_MODEL_REGULAR
        out.period_ticks = p
        return
    pred = None
    phase = None
    c0 = _durations(b, ticks)
    if c0 is not None:
        phase = fit_phase(ticks, c0, b.scale, b.time_resolution_us)
        pred = cumulative_ticks(c0, b.scale, b.time_resolution_us, phase or 0.0)
        if pred is not None and phase is not None and np.array_equal(pred, ticks):
            out.time_model = TM.TIME_MODEL_CUMULATIVE
            out.time_phase = phase
            return  # timestamps follow exactly from the values: no bytes
    model = TM.TIME_MODEL_EXPLICIT
    order, r = residuals.choose(ticks)
    series = ticks
    if pred is not None:
        resid = ticks - pred
        c_order, c_r = residuals.choose(resid)
        if residuals.sparse_cost(c_r) <= residuals.sparse_cost(r):
            model, order, series = TM.TIME_MODEL_CUMULATIVE, c_order, resid
            if phase:
                out.time_phase = phase
    out.time_model = model
    _set_residuals(out.time_residuals, residuals.encode(series, order))


# ----------------------------------------------------------------------------- envelopes


def encode_batches(batches: Iterable[SampleBatch]) -> bytes:
    """Serialize batches as an uncompressed ``BatchList`` (the envelope body before zlib)."""
    lst = envelope_pb2.BatchList()
    for b in batches:
        if not isinstance(b, SampleBatch):
            raise WireError(f"expected SampleBatch, got {type(b).__name__}")
        _encode_batch(b, lst.batches.add())
    return lst.SerializeToString()


def encode_envelope(
    batches: Iterable[SampleBatch],
    *,
    agent_id: str,
    tenant: str,
    seq: int,
    sent_at_us: int | None = None,
    compression_level: int = DEFAULT_COMPRESSION_LEVEL,
) -> bytes:
    """Pack ``batches`` into one envelope (bytes for MQTT or gRPC).

    ``compression_level`` 0 disables compression; 1..9 are DEFLATE levels; the body is sent
    compressed (raw DEFLATE with the v1 preset dictionary) only when that is smaller.
    ``sent_at_us`` defaults to the current UTC time in µs.
    """
    return encode_envelope_body(
        encode_batches(batches),
        agent_id=agent_id,
        tenant=tenant,
        seq=seq,
        sent_at_us=sent_at_us,
        compression_level=compression_level,
    )


def encode_envelope_body(
    body: bytes,
    *,
    agent_id: str,
    tenant: str,
    seq: int,
    sent_at_us: int | None = None,
    compression_level: int = DEFAULT_COMPRESSION_LEVEL,
) -> bytes:
    """Pack an already serialized ``BatchList`` body into one envelope.

    ``body`` is the output of :func:`encode_batches`, or several such outputs concatenated
    (a repeated protobuf field concatenates), so a store can keep each batch pre-encoded and
    build envelopes without re-encoding. Compression and CRC as in :func:`encode_envelope`.
    """
    if not isinstance(agent_id, str) or not 0 < len(agent_id) <= MAX_ID_LEN:
        raise WireError(f"agent_id must be a non-empty string of at most {MAX_ID_LEN} characters")
    if not isinstance(tenant, str) or not 0 < len(tenant) <= MAX_ID_LEN:
        raise WireError(f"tenant must be a non-empty string of at most {MAX_ID_LEN} characters")
    if isinstance(seq, bool) or not isinstance(seq, (int, np.integer)) or not 0 <= int(seq) < 1 << 64:
        raise WireError(f"envelope seq must be an integer in [0, 2**64), got {seq!r}")
    body = bytes(body)
    if not body:
        raise WireError("an envelope needs at least one batch")
    compression = envelope_pb2.COMPRESSION_NONE
    if compression_level and len(body) >= MIN_COMPRESS_BYTES:
        c = zlib.compressobj(compression_level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, DEFLATE_DICT_V1)
        z = c.compress(body) + c.flush()
        if len(z) < len(body):
            body, compression = z, envelope_pb2.COMPRESSION_DEFLATE_DICT_V1
    env = envelope_pb2.Envelope(
        agent_id=agent_id,
        tenant=tenant,
        seq=int(seq),
        sent_at_us=time.time_ns() // 1000 if sent_at_us is None else int(sent_at_us),
        compression=compression,
        body=body,
        body_crc32=zlib.crc32(body),
    )
    return env.SerializeToString()


def _inflate(body: bytes, limit: int, zdict: bytes | None) -> bytes:
    d = zlib.decompressobj(-15, zdict) if zdict else zlib.decompressobj(-15)
    try:
        out = d.decompress(body, limit)
    except zlib.error as exc:
        raise WireError(f"envelope body is not a valid DEFLATE stream: {exc}") from exc
    if d.unconsumed_tail:
        raise WireError(f"envelope body inflates beyond the {limit}-byte limit")
    if not d.eof:
        raise WireError("envelope body: DEFLATE stream is truncated")
    if d.unused_data:
        raise WireError(f"envelope body: {len(d.unused_data)} bytes after the end of the DEFLATE stream")
    return out


def decode_envelope(
    data: bytes | bytearray | memoryview,
    *,
    max_envelope_bytes: int = MAX_ENVELOPE_BYTES,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_values: int = MAX_ENVELOPE_VALUES,
) -> Envelope:
    """Decode an envelope; raises :class:`WireError` saying what is wrong, never anything else."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_envelope_bytes:
        raise WireError(f"envelope is {len(data)} bytes, over the {max_envelope_bytes}-byte limit")
    env = envelope_pb2.Envelope()
    try:
        env.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise WireError(f"not a fittrack.v1.Envelope ({len(data)} bytes): {exc}") from exc
    if not env.agent_id or not env.tenant:
        raise WireError("envelope has no agent_id or tenant (is this a fittrack.v1.Envelope?)")
    if len(env.agent_id) > MAX_ID_LEN or len(env.tenant) > MAX_ID_LEN:
        raise WireError(f"agent_id and tenant are limited to {MAX_ID_LEN} characters")
    if not env.HasField("body_crc32"):
        raise WireError("envelope has no body_crc32: truncated, or not written by a fittrack.v1 encoder")
    body = env.body
    if zlib.crc32(body) != env.body_crc32:
        raise WireError(
            f"envelope body CRC mismatch (got {zlib.crc32(body):#010x}, header says {env.body_crc32:#010x}): "
            "corrupted in transit"
        )
    if env.compression == envelope_pb2.COMPRESSION_DEFLATE_DICT_V1:
        body = _inflate(body, max_body_bytes, DEFLATE_DICT_V1)
    elif env.compression == envelope_pb2.COMPRESSION_DEFLATE:
        body = _inflate(body, max_body_bytes, None)
    elif env.compression != envelope_pb2.COMPRESSION_NONE:
        raise WireError(f"unknown envelope compression {env.compression}")
    elif len(body) > max_body_bytes:
        raise WireError(f"envelope body is {len(body)} bytes, over the {max_body_bytes}-byte limit")
    batches = decode_batches(body, max_values=max_values)
    if not batches:
        raise WireError("envelope carries no batches")
    return Envelope(
        agent_id=env.agent_id,
        tenant=env.tenant,
        seq=env.seq,
        batches=batches,
        sent_at_us=env.sent_at_us,
        wire_bytes=len(data),
    )


def decode_batches(body: bytes, *, max_values: int = MAX_ENVELOPE_VALUES) -> list[SampleBatch]:
    """Decode an uncompressed ``BatchList``; at most ``max_values`` integers in all."""
    lst = envelope_pb2.BatchList()
    try:
        lst.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise WireError(f"envelope body is not a fittrack.v1.BatchList: {exc}") from exc
    out = []
    budget = max_values
    for i, pb in enumerate(lst.batches):
        cost = (min(pb.count, MAX_BATCH_SAMPLES + 1)) * (1 + max(1, min(pb.channels, MAX_CHANNELS + 1)))
        if cost > budget:
            raise WireError(f"envelope holds more than {max_values} values in all", batch_index=i)
        budget -= cost
        try:
            out.append(decode_batch_message(pb))
        except WireError as exc:
            raise WireError(str(exc), batch_index=i) from exc
    return out


def decode_batch_message(pb: batch_pb2.SampleBatch) -> SampleBatch:
    """Decode one ``fittrack.v1.SampleBatch`` message into a :class:`SampleBatch`."""
    # fields read once into locals: each protobuf attribute access costs ~0.1-0.2 µs, and a
    # 1-sample batch (1 Hz HR) is all overhead
    device_id, stream, seq = pb.device_id, pb.stream, pb.seq
    n, channels = pb.count, pb.channels
    if not device_id or len(device_id) > MAX_ID_LEN:
        raise WireError(f"{_where(pb)}: device_id must be 1..{MAX_ID_LEN} characters")
    if not STREAM_RE.match(stream):
        raise WireError(f"{_where(pb)}: stream {stream!r} is not a lower_snake_case name")
    if n > MAX_BATCH_SAMPLES:
        raise WireError(f"{_where(pb)}: {n} samples exceed the {MAX_BATCH_SAMPLES}-sample batch limit")
    if channels > MAX_CHANNELS:
        raise WireError(f"{_where(pb)}: {channels} channels exceed the limit of {MAX_CHANNELS}")
    scale = pb.scale
    if scale == 0.0:
        scale = 1.0
    elif not math.isfinite(scale):
        raise WireError(f"{_where(pb)}: scale must be finite, got {pb.scale!r}")
    res = pb.time_resolution_us
    if res < 1 or res > _INT64_MAX:
        raise WireError(f"{_where(pb)}: time_resolution_us must be >= 1, got {res}")
    series = pb.values
    nch = channels if channels else 1
    if len(series) != nch:
        raise WireError(f"{_where(pb)}: {nch} channel(s) declared but {len(series)} value series present")
    try:
        if channels == 0:
            values = np.empty(n, np.int64)
            r = series[0]
            residuals.decode(r.order, r.head, r.base, r.width_bytes, r.data, n, "channel 0", out=values)
        else:
            values = np.empty((n, channels), np.int64)
            for ch, r in enumerate(series):
                residuals.decode(r.order, r.head, r.base, r.width_bytes, r.data, n, f"channel {ch}", out=values[:, ch])
    except WireError as exc:  # name the batch only when there is an error to report
        raise WireError(f"{_where(pb)} {exc}") from None
    t_us = _decode_time(pb, values, n, res, scale)
    # every field was checked above and timestamps are t0 + ticks * res: skip re-validation
    return SampleBatch._trusted(device_id, stream, seq, t_us, values, scale, pb.unit, res)


def _where(pb: batch_pb2.SampleBatch) -> str:
    """``device/stream#seq`` for error messages."""
    return f"{pb.device_id or '?'}/{pb.stream or '?'}#{pb.seq}"


def _decode_time(pb: batch_pb2.SampleBatch, values: np.ndarray, n: int, res: int, scale: float) -> np.ndarray:
    if n == 0:
        return np.empty(0, np.int64)
    t0 = pb.t0_us
    if t0 % res:
        raise WireError(f"{_where(pb)}: t0_us {t0} is not a multiple of time_resolution_us {res}")
    model = pb.time_model
    if pb.HasField("time_residuals"):
        tr = pb.time_residuals
        try:
            extra = residuals.decode(tr.order, tr.head, tr.base, tr.width_bytes, tr.data, n, "timestamps")
        except WireError as exc:
            raise WireError(f"{_where(pb)} {exc}") from None
    else:
        extra = None
    if model == _TM_REGULAR:
        p = pb.period_ticks
        if (n - 1) * p * res > _INT64_MAX - max(t0, 0):
            raise WireError(f"{_where(pb)}: {n} samples every {p * res} µs from {t0} overflow int64 time")
        if extra is None:  # the common case (fixed-rate sensors, 1 Hz HR): no min/max scan needed
            if n == 1:
                return np.array([t0], np.int64)
            t_us = np.arange(n, dtype=np.int64)
            t_us *= p * res  # in range: checked above
            t_us += t0
            return t_us
        ticks = np.arange(n, dtype=np.int64) * np.int64(p)
        ticks += extra
    elif model == _TM_CUMULATIVE:
        if pb.channels > 1:
            raise WireError(f"{_where(pb)}: cumulative time model needs a single value channel")
        c0 = values if values.ndim == 1 else values[:, 0]
        phase = pb.time_phase
        if not (math.isfinite(phase) and abs(phase) < 1.0):
            raise WireError(f"{_where(pb)}: time_phase must be in (-1, 1), got {phase!r}")
        ticks = cumulative_ticks(c0, scale, res, phase)
        if ticks is None:
            raise WireError(f"{_where(pb)}: cumulative timestamps overflow")
        if extra is not None:
            ticks = ticks + extra
    elif model == _TM_EXPLICIT:
        if extra is None:
            raise WireError(f"{_where(pb)}: explicit time model without time_residuals")
        ticks = extra
    else:
        raise WireError(f"{_where(pb)}: unknown time model {model}")
    lo, hi = int(ticks.min()), int(ticks.max())
    if t0 + lo * res < _INT64_MIN or t0 + hi * res > _INT64_MAX:
        raise WireError(f"{_where(pb)}: timestamps overflow int64 microseconds")
    if res == 1:
        return ticks + np.int64(t0) if t0 else ticks
    return ticks * np.int64(res) + np.int64(t0)


def batch_sizes(data: bytes) -> Sequence[int]:
    """Serialized size of each batch of an envelope (diagnostics for ``fittrack wire inspect``)."""
    env = envelope_pb2.Envelope.FromString(data)
    zdict = DEFLATE_DICT_V1 if env.compression == envelope_pb2.COMPRESSION_DEFLATE_DICT_V1 else None
    body = env.body if env.compression == envelope_pb2.COMPRESSION_NONE else _inflate(env.body, MAX_BODY_BYTES, zdict)
    return [b.ByteSize() for b in envelope_pb2.BatchList.FromString(body).batches]
