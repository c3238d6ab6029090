"""Cumulative counters -> speed and cadence: physics of a simulated ride, rollovers, no new event."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from protocols.ble import CscRates, CyclingPowerRates, RevolutionRate, decode, encode


def csc_stream(speed_mps: float, cadence_rpm: float, seconds: float, circumference_m: float = 2.105,
               notify_hz: float = 1.0, start_wheel_revs: int = 0, start_crank_revs: int = 0, start_time_s: float = 0.0):
    """What a real CSC sensor sends: at each notification, the count of whole revolutions so
    far and the (wrapping, 1/1024 s) time of the last one."""
    wheel_period = circumference_m / speed_mps if speed_mps > 0 else math.inf
    crank_period = 60 / cadence_rpm if cadence_rpm > 0 else math.inf
    out = []
    t = 0.0
    while t <= seconds:
        n_w = int(t / wheel_period) if wheel_period != math.inf else 0
        n_c = int(t / crank_period) if crank_period != math.inf else 0
        tw = n_w * wheel_period if n_w else 0.0
        tc = n_c * crank_period if n_c else 0.0
        payload = encode(0x2A5B, wheel_revolutions=(start_wheel_revs + n_w) & 0xFFFFFFFF,
                         wheel_event_time_1024=round((start_time_s + tw) * 1024) & 0xFFFF,
                         crank_revolutions=(start_crank_revs + n_c) & 0xFFFF,
                         crank_event_time_1024=round((start_time_s + tc) * 1024) & 0xFFFF)
        out.append((int(t * 1e6), payload))
        t += 1 / notify_hz
    return out


def test_constant_ride_gives_speed_cadence_and_distance() -> None:
    r = CscRates(wheel_circumference_m=2.105)
    results = [r.update(decode(0x2A5B, p), t_us) for t_us, p in csc_stream(8.0, 90.0, 300)]
    assert results[0].speed_mps is None and results[0].cadence_rpm is None
    speeds = [x.speed_mps for x in results[5:] if x.speed_mps]
    cads = [x.cadence_rpm for x in results[5:] if x.cadence_rpm]
    assert speeds and max(abs(s - 8.0) for s in speeds) < 0.05   # 1/1024 s timing quantisation
    assert cads and max(abs(c - 90.0) for c in cads) < 0.5
    assert results[-1].distance_m == pytest.approx(8.0 * 300, abs=2 * 2.105)  # within a wheel turn or two


def test_rollover_of_event_time_and_counters() -> None:
    # start just below every wrap: time wraps at 64 s, crank revs at 65536, wheel revs at 2^32
    r = CscRates()
    stream = csc_stream(10.0, 100.0, 200, start_wheel_revs=0xFFFFFFF0, start_crank_revs=0xFFF0, start_time_s=60.0)
    results = [r.update(decode(0x2A5B, p), t) for t, p in stream]
    valid = [x for x in results[3:]]
    assert all(abs(x.speed_mps - 10.0) < 0.1 for x in valid)
    assert all(abs(x.cadence_rpm - 100.0) < 1.0 for x in valid)
    assert r.wheel.stats.implausible == r.wheel.stats.invalid == r.wheel.stats.gaps == 0


def test_no_new_event_holds_then_drops_to_zero() -> None:
    rr = RevolutionRate(ticks_per_s=1024, revolutions_bits=16, stale_after_s=3.0)
    assert rr.update(10, 1024, 0) is None
    assert rr.update(11, 2048, 1_000_000) == pytest.approx(1.0)
    assert rr.update(11, 2048, 2_000_000) == pytest.approx(1.0)  # no new event: held
    assert rr.update(11, 2048, 3_500_000) == pytest.approx(1.0)
    assert rr.update(11, 2048, 4_000_000) == 0.0  # 3 s since the last event: stopped
    assert rr.update(12, 2048 + 5 * 1024, 5_000_000) == pytest.approx(1 / 5)  # next event: slow turn
    assert rr.stats.repeats == 3 and rr.stats.new_events == 2


def test_no_new_event_without_arrival_times_uses_repeats() -> None:
    rr = RevolutionRate(stale_after_repeats=2)
    rr.update(0, 0)
    assert rr.update(2, 1024) == 2.0
    assert rr.update(2, 1024) == 2.0
    assert rr.update(2, 1024) == 0.0


def test_gap_longer_than_wrap_restarts() -> None:
    rr = RevolutionRate(ticks_per_s=1024)
    rr.update(0, 0, 0)
    assert rr.update(1, 1024, 1_000_000) == 1.0
    # 70 s later the 64 s clock may have wrapped: the time difference is ambiguous
    assert rr.update(71, 1024 + 70 * 1024 & 0xFFFF, 71_000_000) is None
    assert rr.stats.gaps == 1
    assert rr.update(72, (1024 + 71 * 1024) & 0xFFFF, 72_000_000) == 1.0


def test_sensor_bugs_are_counted_not_reported() -> None:
    rr = RevolutionRate(max_rps=50)
    rr.update(100, 1000)
    assert rr.update(101, 1000) is None and rr.stats.invalid == 1  # revolutions without time
    assert rr.update(101, 2000) == 0.0  # time moved, no revolution
    assert rr.update(60000, 2100) is None and rr.stats.implausible == 1  # counter reset / garbage


def test_cycling_power_uses_2048_wheel_clock() -> None:
    r = CyclingPowerRates(wheel_circumference_m=2.0)
    p0 = encode(0x2A63, power_w=200, wheel_revolutions=0, wheel_event_time_2048=0, crank_revolutions=0, crank_event_time_1024=0)
    # 5 wheel revolutions in 1 s = 10 m/s; 2 crank revolutions in 1.5 s = 80 rpm
    p1 = encode(0x2A63, power_w=200, wheel_revolutions=5, wheel_event_time_2048=2048, crank_revolutions=2, crank_event_time_1024=1536)
    r.update(decode(0x2A63, p0), 0)
    s = r.update(decode(0x2A63, p1), 1_000_000)
    assert s.speed_mps == pytest.approx(10.0) and s.cadence_rpm == pytest.approx(80.0) and s.distance_m == pytest.approx(10.0)


def test_accepts_to_dict_and_crank_only_sensors() -> None:
    r = CscRates()
    r.update(decode(0x2A5B, encode(0x2A5B, crank_revolutions=0, crank_event_time_1024=0)).to_dict(), 0)
    s = r.update(decode(0x2A5B, encode(0x2A5B, crank_revolutions=1, crank_event_time_1024=683)).to_dict(), 700_000)
    assert s.speed_mps is None and s.cadence_rpm == pytest.approx(60 * 1024 / 683)


def test_bad_circumference() -> None:
    with pytest.raises(ValueError):
        CscRates(wheel_circumference_m=0)


@settings(max_examples=60)
@given(rps=st.floats(0.2, 20), start_revs=st.integers(0, 2**32 - 1), start_ticks=st.integers(0, 2**16 - 1),
       period_s=st.floats(0.25, 2.0))
def test_rate_matches_physics_across_wraps(rps: float, start_revs: int, start_ticks: int, period_s: float) -> None:
    """Whatever the starting counters, a steady rotation reads back as its true rate."""
    rr = RevolutionRate(ticks_per_s=1024, revolutions_bits=32)
    seen = []
    for i in range(40):
        t = i * period_s
        n = int(t * rps)
        event_t = n / rps
        out = rr.update((start_revs + n) & 0xFFFFFFFF, (start_ticks + round(event_t * 1024)) & 0xFFFF, int(t * 1e6))
        if out:
            seen.append(out)
    assert seen, "a steady rotation must produce rates"
    for v in seen:
        assert v == pytest.approx(rps, rel=0.02, abs=2 / 1024)
    assert rr.stats.invalid == rr.stats.implausible == rr.stats.gaps == 0
