"""Stream mapping (decoded measurement -> samples), RR/IMU timestamps, batching, derived streams."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.batcher import Batcher, ClockSeq
from edge_agent.streams import STREAMS, ImuClock, RrClock, Samples, StreamMapper
from protocols.ble import decode, encode
from protocols.ble.imu import decode_imu_data, encode_imu_data
from protocols.wire import decode_batches, encode_batches

T0 = 1_800_000_000_000_000


def test_hr_notification_maps_to_hr_energy_and_rr_beats() -> None:
    m = decode(0x2A37, encode(0x2A37, heart_rate_bpm=150, energy_expended_kj=12, rr_intervals_1024=[410, 400]))
    out = {s.stream: s for s in StreamMapper().map(m, T0 + 123_456)}
    assert out["heart_rate"].t_us == [T0 + 123_000] and out["heart_rate"].values == [150]
    assert out["energy_expended"].values == [12]
    rr = out["rr_interval"]
    assert rr.values == [410, 400]
    # the last beat is at arrival; the one before 400/1024 s earlier
    assert rr.t_us[1] == T0 + 123_000
    assert rr.t_us[1] - rr.t_us[0] == pytest.approx(400 / 1024 * 1e6, abs=1000)


def test_rr_beats_continue_from_the_previous_beat_by_the_rr_sum() -> None:
    clk = RrClock()
    rr = [820, 790, 805, 811, 799, 830]
    t = T0
    beats: list[int] = []
    exact = 0.0
    for i, r in enumerate(rr):
        exact += r * 1e6 / 1024
        # notifications arrive with 0..40 ms of jitter after the beat
        beats += clk.beats(int(T0 + exact + (i * 7919) % 40_000), [r])
    d = np.diff(beats)
    expected = np.array(rr[1:]) * 1e6 / 1024
    assert np.all(np.abs(d - expected) <= 1000)  # only ms quantisation, no arrival jitter
    assert clk.reanchors == 0


def test_rr_clock_reanchors_after_a_gap() -> None:
    clk = RrClock()
    a = clk.beats(T0, [1024])
    b = clk.beats(T0 + 60_000_000, [1024])  # a minute later (link drop): not 1 s after the last beat
    assert b[0] == T0 + 60_000_000 and a[0] == T0 and clk.reanchors == 1


def test_imu_packets_get_regular_times_from_the_sample_index() -> None:
    clk = ImuClock()
    t1 = clk.times(T0, first_sample=0, count=10, rate_hz=100)
    t2 = clk.times(T0 + 100_000 + 3000, first_sample=10, count=10, rate_hz=100)  # 3 ms late
    t = t1 + t2
    assert np.all(np.diff(t) == 10_000)
    assert t1[-1] == T0
    # a lost packet leaves a gap of exactly its samples
    t4 = clk.times(T0 + 300_000, first_sample=30, count=10, rate_hz=100)
    assert t4[0] - t2[-1] == 11 * 10_000
    # the sensor restarts (index goes back): re-anchored at arrival, no overlap
    t5 = clk.times(T0 + 400_000, first_sample=0, count=10, rate_hz=100)
    assert t5[-1] == T0 + 400_000 and clk.reanchors == 1


def test_imu_index_rollover_keeps_time_running() -> None:
    clk = ImuClock()
    first = (1 << 32) - 5
    a = clk.times(T0, first_sample=first, count=5, rate_hz=100)
    b = clk.times(T0 + 50_000, first_sample=0, count=5, rate_hz=100)
    assert b[0] - a[-1] == 10_000 and clk.reanchors == 0


def test_imu_notification_maps_to_accel_and_gyro() -> None:
    p = encode_imu_data(packet_seq=0, sample_rate_dhz=1000, first_sample=0,
                        accel_1_4096g=[(1, 2, 3), (4, 5, 6)], gyro_0_1dps=[(7, 8, 9), (10, 11, 12)])
    out = {s.stream: s for s in StreamMapper().map(decode_imu_data(p), T0)}
    assert out["accel"].values == [(1, 2, 3), (4, 5, 6)] and out["gyro"].values == [(7, 8, 9), (10, 11, 12)]
    assert out["accel"].t_us == [T0 - 10_000, T0]


def test_machines_and_cycling_map_to_their_streams() -> None:
    sm = StreamMapper()
    bike = decode(0x2AD2, encode(0x2AD2, speed_kmh=32.5, cadence_rpm=90.5, power_w=250, total_distance_m=1200))
    s = {x.stream: x.values[0] for x in sm.map(bike, T0)}
    assert s == {"speed": 3250, "cadence": 181, "power": 250, "distance": 12000}
    tm = decode(0x2ACD, encode(0x2ACD, speed_kmh=10.0, inclination_pct=2.5, ramp_angle_deg=1.0))
    s = {x.stream: x.values[0] for x in sm.map(tm, T0)}
    assert s["speed"] == 1000 and s["incline"] == 25
    csc = StreamMapper()
    csc.map(decode(0x2A5B, encode(0x2A5B, crank_revolutions=10, crank_event_time_1024=0)), T0)
    s = {x.stream: x.values[0] for x in csc.map(decode(0x2A5B, encode(0x2A5B, crank_revolutions=11, crank_event_time_1024=683)), T0 + 666_000)}
    assert s["cadence"] == round(60 * 1024 / 683 / 0.5)
    assert {x.stream for x in sm.map(decode(0x2A19, bytes([87])), T0)} == {"battery"}


def test_every_mapped_stream_is_in_the_stream_table() -> None:
    for name, spec in STREAMS.items():
        assert spec.scale > 0 and spec.channels in (1, 3, 5), name


def test_batcher_closes_by_age_and_size_and_flush() -> None:
    b = Batcher(ClockSeq(lambda: 1000), batch_s=10, batch_s_by_stream={"accel": 1}, max_samples=5)
    for i in range(3):
        b.add("d1", Samples("heart_rate", [T0 + i * 1_000_000], [60 + i]))
    assert b.due(T0 + 9_000_000) == []
    (hb,) = b.due(T0 + 10_000_000)
    assert hb.stream == "heart_rate" and list(hb.values) == [60, 61, 62] and hb.unit == "bpm" and hb.seq == 1000
    closed = b.add("d1", Samples("accel", [T0 + i * 10_000 for i in range(7)], [(i, i, i) for i in range(7)]))
    assert len(closed) == 1 and closed[0].values.shape == (7, 3)
    b.add("d1", Samples("rr_interval", [T0], [800]))
    b.add("d2", Samples("heart_rate", [T0], [70]))
    assert {(x.device_id, x.stream) for x in b.flush("d1")} == {("d1", "rr_interval")}
    (last,) = b.flush()
    assert last.device_id == "d2" and last.seq == 1001 or last.seq > 0
    # batches encode on the wire and come back equal
    back = decode_batches(encode_batches([hb, closed[0]]))
    assert back[0] == hb and back[1] == closed[0]


def test_clock_seq_strictly_increases_even_if_clock_goes_back() -> None:
    t = [5000]
    seq = ClockSeq(lambda: t[0])
    a = seq("d", "heart_rate")
    t[0] = 10
    assert seq("d", "heart_rate") == a + 1
    assert seq("d", "rr_interval") == 10


# ------------------------------------------------------------------ derived streams (dsp)
from edge_agent.config import AthleteConfig, PipelineConfig  # noqa: E402
from edge_agent.pipeline import DevicePipeline  # noqa: E402


def _feed_hr(p: DevicePipeline, hr: list[int], t0: int = T0) -> None:
    p.feed(Samples("heart_rate", [t0 + i * 1_000_000 for i in range(len(hr))], hr))


def test_zones_trimp_calories_from_hr_match_the_formulas() -> None:
    a = AthleteConfig("alice", sex="female", age_years=40, weight_kg=60, hr_rest_bpm=60, hr_max_bpm=180)
    p = DevicePipeline("d1", a, PipelineConfig(derived_interval_s=5))
    # Karvonen: reserve 120, zone edges 120/132/144/156/168 bpm
    hr = [100] * 60 + [125] * 60 + [150] * 60 + [170] * 61
    _feed_hr(p, hr)
    out = {s.stream: s for s in p.tick(T0 + 241_000_000)}
    zones = out["hr_zone"].values
    assert zones[:60] == [0] * 60 and zones[60:120] == [1] * 60 and zones[120:180] == [3] * 60 and zones[180:] == [5] * 61
    (tiz,) = out["time_in_zone"].values
    assert list(tiz) == [60_000, 60_000, 0, 60_000, 0, 60_000]  # ms per zone 0..5
    # Banister TRIMP, women: sum over minutes of x * 0.86 * exp(1.67 x), x = HRR fraction
    import math
    exp = sum(x * 0.86 * math.exp(1.67 * x) for x in ((100 - 60) / 120, (125 - 60) / 120, (150 - 60) / 120, (170 - 60) / 120))
    assert out["trimp"].values[0] / 1000 == pytest.approx(exp, rel=1e-3)
    kcal = out["calories"].values[0] / 1000
    keytel = sum(max(0, -20.4022 + 0.4472 * h - 0.1263 * 60 + 0.074 * 40) for h in (100, 125, 150, 170)) / 4.184
    assert kcal == pytest.approx(keytel, rel=1e-3)
    assert p.live.zone == 5 and p.live.hr_bpm == 170


def test_rmssd_from_rr_with_an_artifact_corrected() -> None:
    p = DevicePipeline("d1", None, PipelineConfig(derived_interval_s=5, rmssd_window_s=30))
    rng = np.random.default_rng(0)
    rr_ms = 800 + rng.normal(0, 20, 400)
    rr_ms[200] = 1600  # a missed beat
    rr = [int(round(x * 1024 / 1000)) for x in rr_ms]
    t = (T0 + np.cumsum(np.array(rr) * 1e6 / 1024)).astype(np.int64) // 1000 * 1000
    vals: list[int] = []
    for i in range(0, 400, 10):
        p.feed(Samples("rr_interval", list(map(int, t[i:i + 10])), rr[i:i + 10]))
        vals += [v for s in p.tick(int(t[min(i + 9, 399)])) if s.stream == "hrv_rmssd" for v in s.values]
    assert len(vals) > 30 and p.live.rmssd_ms is not None
    # true RMSSD is 20*sqrt(2) = 28 ms; an uncorrected 1600 ms beat would give ~180 ms in its windows
    assert all(10 < v / 100 < 45 for v in vals), (min(vals), max(vals))


def test_clocks_never_hand_out_a_time_twice_or_backwards() -> None:
    rr = RrClock()
    a = rr.beats(T0, [1024, 1024])
    rr.reset()                                   # a quick reconnect: arrival - RR sum is before the last beat
    b = rr.beats(T0 + 200_000, [1024])
    assert b[0] > a[-1]
    imu = ImuClock(max_drift_us=500_000)
    x = imu.times(T0, 0, 5, 50)
    y = imu.times(T0 - 2_000_000, 5, 5, 50)      # a late burst makes the arrival look early: re-anchor
    z = imu.times(T0 + 3_000_000, 0, 5, 50)      # sensor restart
    t = x + y + z
    assert all(q > p for p, q in zip(t, t[1:])) and imu.reanchors == 2


def test_reps_counted_from_imu_accel_match_the_synthetic_sets() -> None:
    from dsp.synth import generate_session

    fs = 50.0
    sess = generate_session(fs, [("squat", 10), ("curl", 8)], seed=2, rest_s=(20.0, 25.0))
    raw = np.clip(np.round(sess.acc_g * 4096), -32768, 32767).astype(int)
    t = [T0 + int(i * 1e6 / fs) // 1000 * 1000 for i in range(len(raw))]
    p = DevicePipeline("imu1", None, PipelineConfig())
    reps: list[tuple[int, int]] = []
    for i in range(0, len(raw), 5):                     # 10 packets/s like the wearable
        p.feed(Samples("accel", t[i:i + 5], [tuple(x) for x in raw[i:i + 5]]))
        if i % 250 == 0:
            reps += [(a, b) for s in p.tick(t[i]) if s.stream == "rep" for a, b in zip(s.t_us, s.values)]
    reps += [(a, b) for s in p.finish(t[-1]) if s.stream == "rep" for a, b in zip(s.t_us, s.values)]
    truth = [x.n_reps for x in sess.sets]
    # per set: the rep numbers restart at 1 and reach the set's count within one rep (RecoFit's bar)
    ends = [i for i, (_, n) in enumerate(reps) if i + 1 == len(reps) or reps[i + 1][1] == 1]
    counts = [reps[i][1] for i in ends]
    assert len(counts) == len(truth) and all(abs(c - n) <= 1 for c, n in zip(counts, truth)), (counts, truth)
    assert p.live.sets == 2 and p.live.reps == sum(counts)
    # every rep is stamped inside a set (+- one rep period)
    for a, _ in reps:
        x = (a - T0) / 1e6
        assert any(st.start_s - 4 <= x <= st.end_s + 4 for st in sess.sets), x


def test_a_burst_of_notifications_in_one_millisecond_gets_distinct_times() -> None:
    sm = StreamMapper()
    hr = [decode(0x2A37, encode(0x2A37, heart_rate_bpm=b)) for b in (60, 61, 62)]
    t = [s.t_us[0] for m in hr for s in sm.map(m, T0 + 400)]
    assert t == [T0, T0 + 1000, T0 + 2000]
