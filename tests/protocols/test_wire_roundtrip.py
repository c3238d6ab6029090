"""protocols.wire: every batch round-trips exactly, whatever its shape, rate or values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from protocols.wire import SampleBatch, WireError, decode_envelope, encode_envelope
from protocols.wire.codec import cumulative_ticks
from protocols.wire.gen.fittrack.v1 import batch_pb2, envelope_pb2

INT64 = st.integers(-(2**63), 2**63 - 1)
T_BASE = 1_764_000_000_000_000  # 2025-11-24, µs


@st.composite
def batches(draw, max_n: int = 2000) -> SampleBatch:
    n = draw(st.one_of(st.integers(0, 5), st.integers(0, max_n)))
    channels = draw(st.integers(0, 8))  # 0 = vector
    res = draw(st.sampled_from([1, 1000, 10_000, 7]))
    timing = draw(st.sampled_from(["regular", "irregular", "cumulative", "wild"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    t0 = T_BASE // res * res
    if timing == "regular":
        period = draw(st.integers(0, 10**6))
        ticks = np.arange(n, dtype=np.int64) * period
    elif timing == "irregular":
        ticks = np.cumsum(rng.integers(0, 5000, n)).astype(np.int64)
    elif timing == "wild":  # non-monotonic, large jumps
        ticks = rng.integers(-(10**9), 10**9, n).astype(np.int64)
    else:
        ticks = None
    kind = draw(st.sampled_from(["small", "walk", "int16", "extreme"]))
    shape = (n,) if channels == 0 else (n, channels)
    if kind == "small":
        vals = rng.integers(-3, 4, shape)
    elif kind == "walk":
        vals = np.cumsum(rng.integers(-50, 51, shape), axis=0) + 4096
    elif kind == "int16":
        vals = rng.integers(-32768, 32768, shape)
    else:
        vals = rng.integers(-(2**63), 2**63 - 1, shape, dtype=np.int64, endpoint=True)
    vals = np.asarray(vals, dtype=np.int64)
    scale = draw(st.sampled_from([1.0, 1 / 1024, 0.01, 1 / 4096, -0.5, 1e-3]))
    if ticks is None:  # RR-like: time follows the values
        rr = rng.integers(300, 2000, n).astype(np.int64)
        vals = rr if channels == 0 else np.repeat(rr[:, None], max(channels, 1), axis=1)
        c0 = rr
        pred = cumulative_ticks(c0, scale, res) if n else np.empty(0, np.int64)
        ticks = pred if pred is not None else np.arange(n, dtype=np.int64)
        if n > 3 and draw(st.booleans()):  # a gap: a dropped notification
            ticks = ticks.copy()
            ticks[n // 2 :] += 5000
    t_us = t0 + ticks * res
    return SampleBatch(
        device_id=draw(st.text(min_size=1, max_size=20)),
        stream=draw(st.sampled_from(["heart_rate", "rr_interval", "accel", "power", "x_1"])),
        seq=draw(st.integers(0, 2**64 - 1)),
        t_us=t_us,
        values=vals,
        scale=scale,
        unit=draw(st.sampled_from(["", "bpm", "s", "g", "km/h", "°C"])),
        time_resolution_us=res,
    )


@given(st.lists(batches(), min_size=1, max_size=4), st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 6, 9]))
def test_envelope_round_trip(bs: list[SampleBatch], seq: int, level: int) -> None:
    data = encode_envelope(bs, agent_id="agent-7", tenant="gym-42", seq=seq, compression_level=level)
    env = decode_envelope(data)
    assert (env.agent_id, env.tenant, env.seq) == ("agent-7", "gym-42", seq)
    assert len(env.batches) == len(bs)
    for got, want in zip(env.batches, bs):
        assert got == want
        assert got.t_us.dtype == np.int64 and got.values.dtype == np.int64
        assert got.values.shape == want.values.shape


@pytest.mark.slow
@given(
    n=st.sampled_from([10**4, 5 * 10**4, 10**5]),
    channels=st.integers(1, 8),
    regular=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_large_batches_round_trip(n: int, channels: int, regular: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ticks = np.arange(n) * 10 if regular else np.cumsum(rng.integers(1, 40, n))
    vals = (np.cumsum(rng.normal(0, 30, (n, channels)), axis=0) + rng.normal(0, 8, (n, channels))).astype(np.int64)
    b = SampleBatch("imu-1", "accel", 1, T_BASE + ticks * 1000, vals, scale=1 / 4096, unit="g", time_resolution_us=1000)
    (got,) = decode_envelope(encode_envelope([b], agent_id="a", tenant="t", seq=1)).batches
    assert got == b


def _pb_batch(data: bytes, i: int = 0) -> batch_pb2.SampleBatch:
    env = envelope_pb2.Envelope.FromString(data)
    from protocols.wire.codec import DEFLATE_DICT_V1, _inflate

    body = _inflate(env.body, 1 << 26, DEFLATE_DICT_V1) if env.compression else env.body
    return envelope_pb2.BatchList.FromString(body).batches[i]


def test_regular_sampling_costs_no_timestamp_bytes() -> None:
    n = 1000
    b = SampleBatch("imu", "accel", 0, T_BASE + np.arange(n) * 10_000, np.zeros((n, 3), np.int64), time_resolution_us=10_000)
    pb = _pb_batch(encode_envelope([b], agent_id="a", tenant="t", seq=0))
    assert pb.time_model == batch_pb2.TIME_MODEL_REGULAR
    assert pb.period_ticks == 1
    assert not pb.HasField("time_residuals")


def test_rr_beat_times_follow_from_the_values() -> None:
    rr_1024 = np.array([800, 790, 1200, 420, 805, 811], np.int64)  # includes a premature beat
    beats_ms = 1_764_000_000_000 + np.rint(np.cumsum(rr_1024) * 1000 / 1024).astype(np.int64)
    b = SampleBatch("strap", "rr_interval", 0, beats_ms * 1000, rr_1024, scale=1 / 1024, unit="s", time_resolution_us=1000)
    pb = _pb_batch(encode_envelope([b], agent_id="a", tenant="t", seq=0, compression_level=0))
    assert pb.time_model == batch_pb2.TIME_MODEL_CUMULATIVE
    assert not pb.HasField("time_residuals")
    # a dropped notification (gap) is carried as residual ticks, and still round-trips
    gap = beats_ms.copy()
    gap[3:] += 2000
    b2 = SampleBatch("strap", "rr_interval", 1, gap * 1000, rr_1024, scale=1 / 1024, unit="s", time_resolution_us=1000)
    data = encode_envelope([b2], agent_id="a", tenant="t", seq=0, compression_level=0)
    assert _pb_batch(data).time_model == batch_pb2.TIME_MODEL_CUMULATIVE
    assert decode_envelope(data).batches == [b2]


def test_irregular_times_are_delta_coded() -> None:
    t = T_BASE + np.cumsum(np.array([0, 1000, 1003, 998, 1001, 5000, 1000])) * 1000
    b = SampleBatch("s", "heart_rate", 0, t, [60, 61, 61, 62, 61, 60, 60], time_resolution_us=1000)
    pb = _pb_batch(encode_envelope([b], agent_id="a", tenant="t", seq=0, compression_level=0))
    assert pb.time_model == batch_pb2.TIME_MODEL_EXPLICIT
    assert pb.time_residuals.order in (1, 2)
    assert pb.time_residuals.width_bytes <= 2  # deltas, not 8-byte absolute times


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(t_us=[0, 1500], values=[1, 2], time_resolution_us=1000), "not a multiple"),
        (dict(t_us=[0, 1], values=[1.5, 2.0]), "must be integers"),
        (dict(t_us=[0, 1], values=[1, 2, 3]), "must have shape"),
        (dict(t_us=[0, 1], values=[1, 2], scale=float("nan")), "scale"),
        (dict(t_us=[0, 1], values=[1, 2], scale=0), "scale"),
        (dict(t_us=[[0, 1]], values=[[1, 2]]), "one-dimensional"),
        (dict(t_us=[0], values=np.zeros((1, 65), np.int64)), "channels"),
        (dict(t_us=[0], values=[1], seq=-1), "seq"),
        (dict(t_us=[0], values=[1], stream="Heart Rate"), "stream"),
        (dict(t_us=[0], values=[1], device_id=""), "device_id"),
    ],
)
def test_invalid_batches_are_refused_with_a_reason(kwargs: dict, match: str) -> None:
    args = dict(device_id="d", stream="heart_rate", seq=0) | kwargs
    with pytest.raises(WireError, match=match):
        SampleBatch(**args)


def test_envelope_header_is_validated() -> None:
    b = SampleBatch("d", "heart_rate", 0, [0], [60])
    with pytest.raises(WireError, match="agent_id"):
        encode_envelope([b], agent_id="", tenant="t", seq=0)
    with pytest.raises(WireError, match="seq"):
        encode_envelope([b], agent_id="a", tenant="t", seq=-1)
    with pytest.raises(WireError, match="at least one batch"):
        encode_envelope([], agent_id="a", tenant="t", seq=1)
