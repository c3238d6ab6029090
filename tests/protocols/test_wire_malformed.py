"""protocols.wire: random, truncated and mutated bytes give WireError, never another exception."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, strategies as st

from protocols.wire import SampleBatch, WireError, decode_envelope, encode_envelope
from protocols.wire.gen.fittrack.v1 import batch_pb2, envelope_pb2

T0 = 1_764_000_000_000_000


def _sample_envelopes() -> list[bytes]:
    rng = np.random.default_rng(3)
    n = 300
    acc = SampleBatch("imu", "accel", 4, T0 + np.arange(n) * 10_000, rng.integers(-4096, 4096, (n, 3)), scale=1 / 4096, unit="g", time_resolution_us=10_000)
    rr = np.array([800, 790, 1200, 420, 805], np.int64)
    beats = SampleBatch("strap", "rr_interval", 9, T0 + np.rint(np.cumsum(rr) * 1e6 / 1024).astype(np.int64), rr, scale=1 / 1024, unit="s")
    hr = SampleBatch("strap", "heart_rate", 3, T0 + np.array([0, 1001, 2003, 2999]) * 1000, [70, 71, 71, 90], unit="bpm", time_resolution_us=1000)
    return [
        encode_envelope([acc, beats, hr], agent_id="a", tenant="t", seq=1),
        encode_envelope([hr], agent_id="a", tenant="t", seq=2, compression_level=0),
        encode_envelope([beats, hr], agent_id="a", tenant="t", seq=3, compression_level=0),
    ]


SAMPLES = _sample_envelopes()


def _decode_or_wire_error(data: bytes) -> None:
    try:
        decode_envelope(data)
    except WireError:
        pass


@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    _decode_or_wire_error(data)


@given(st.sampled_from(SAMPLES), st.data())
def test_mutated_envelopes(sample: bytes, data: st.DataObject) -> None:
    buf = bytearray(sample)
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        pos = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "flip" and buf:
            buf[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[pos] = data.draw(st.integers(0, 255))
        elif op == "insert":
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif buf:
            del buf[pos : pos + data.draw(st.integers(1, 8))]
    _decode_or_wire_error(bytes(buf))


@given(st.sampled_from(SAMPLES), st.integers(0, 10_000))
def test_truncated_envelopes(sample: bytes, cut: int) -> None:
    cut %= len(sample)
    with pytest.raises(WireError):
        decode_envelope(sample[:cut])


def _reframe(batch: batch_pb2.SampleBatch) -> bytes:
    """A well-framed envelope (valid CRC) around a hand-made, possibly inconsistent batch."""
    body = envelope_pb2.BatchList(batches=[batch]).SerializeToString()
    return envelope_pb2.Envelope(agent_id="a", tenant="t", seq=1, body=body, body_crc32=zlib.crc32(body)).SerializeToString()


@given(
    count=st.integers(0, 2**32 - 1),
    channels=st.integers(0, 2**32 - 1),
    order=st.integers(0, 2**32 - 1),
    width=st.integers(0, 2**32 - 1),
    head=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4),
    data=st.binary(max_size=64),
    model=st.integers(0, 5),
    period=st.integers(0, 2**64 - 1),
    res=st.integers(0, 2**64 - 1),
    t0=st.integers(-(2**63), 2**63 - 1),
    scale=st.floats(allow_nan=True, allow_infinity=True),
    tres=st.booleans(),
)
def test_structurally_valid_but_inconsistent_batches(count, channels, order, width, head, data, model, period, res, t0, scale, tres) -> None:
    """Every field at hostile values: only WireError comes out, and no huge allocation happens."""
    r = batch_pb2.Residuals(order=order, head=head, width_bytes=width, data=data)
    pb = batch_pb2.SampleBatch(
        device_id="d", stream="heart_rate", seq=1, t0_us=t0, count=count, channels=channels,
        scale=scale, time_resolution_us=res, time_model=model, period_ticks=period,
        values=[r] * min(channels if channels else 1, 3),
    )
    if tres:
        pb.time_residuals.CopyFrom(r)
    _decode_or_wire_error(_reframe(pb))


def test_specific_errors_say_what_is_wrong() -> None:
    good = SAMPLES[1]
    with pytest.raises(WireError, match="CRC mismatch"):
        env = envelope_pb2.Envelope.FromString(good)
        env.body = env.body[:-1] + bytes([env.body[-1] ^ 0xFF])
        decode_envelope(env.SerializeToString())
    with pytest.raises(WireError, match="over the .*-byte limit"):
        decode_envelope(good, max_envelope_bytes=10)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = c.compress(b"\0" * 10_000_000) + c.flush()
    env = envelope_pb2.Envelope(agent_id="a", tenant="t", compression=envelope_pb2.COMPRESSION_DEFLATE, body=bomb, body_crc32=zlib.crc32(bomb))
    with pytest.raises(WireError, match="inflates beyond"):
        decode_envelope(env.SerializeToString(), max_body_bytes=1_000_000)
    pb = batch_pb2.SampleBatch(device_id="d", stream="heart_rate", seq=1, count=3, scale=1, time_resolution_us=1,
                               time_model=batch_pb2.TIME_MODEL_REGULAR, values=[batch_pb2.Residuals(order=0, width_bytes=1, data=b"\x01\x02")])
    with pytest.raises(WireError, match=r"batch 0: .*3 residuals of 1 bytes need 3 data bytes, got 2"):
        decode_envelope(_reframe(pb))
    with pytest.raises(WireError, match="not a fittrack.v1.Envelope|no agent_id"):
        decode_envelope(b"\xff\xff\xff")
    many = batch_pb2.SampleBatch(device_id="d", stream="accel", seq=1, count=1 << 20, channels=64, scale=1, time_resolution_us=1,
                                 time_model=batch_pb2.TIME_MODEL_REGULAR, values=[batch_pb2.Residuals(order=0, width_bytes=0)] * 64)
    with pytest.raises(WireError, match="more than .* values in all"):
        decode_envelope(_reframe(many))  # 64 Mi zero values from a few hundred bytes: refused
    with pytest.raises(WireError, match="expected bytes"):
        decode_envelope("text")  # type: ignore[arg-type]
