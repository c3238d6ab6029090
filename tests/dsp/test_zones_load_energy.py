"""Zones, TRIMP and Keytel energy: numbers worked out by hand, and streaming == batch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp import energy, load, zones


def test_tanaka_and_hrmax_zones():
    assert zones.tanaka_hrmax(40) == pytest.approx(180.0)  # 208 - 28
    m = zones.hrmax_zones(age_years=40)
    assert m.edges == pytest.approx((90, 108, 126, 144, 162))
    lab = zones.zone_labels(np.array([80, 90, 107.9, 108, 150, 162, 200, np.nan, 0]), m)
    assert lab.tolist() == [0, 1, 1, 2, 4, 5, 5, -1, -1]


def test_karvonen_edges():
    # rest 60, max 190: reserve 130; 50 % -> 125, 60 % -> 138, 70 % -> 151, 80 % -> 164, 90 % -> 177
    assert zones.karvonen_zones(60, 190).edges == pytest.approx((125, 138, 151, 164, 177))
    with pytest.raises(ValueError, match="exceed"):
        zones.karvonen_zones(190, 60)


def test_friel_and_coggan():
    run = zones.friel_lthr_zones(170, "run")
    assert run.edges == pytest.approx((0, 144.5, 153, 161.5, 170, 175.1, 180.2))
    assert zones.zone_labels(np.array([140, 150, 160, 165, 171, 178, 185]), run).tolist() == [1, 2, 3, 4, 5, 6, 7]
    bike = zones.friel_lthr_zones(160, "bike")
    assert bike.edges[1] == pytest.approx(129.6) and bike.edges[3] == pytest.approx(150.4)
    c = zones.coggan_power_zones(250)
    assert c.edges == pytest.approx((0, 137.5, 187.5, 225, 262.5, 300, 375))
    assert zones.zone_labels(np.array([100, 200, 250, 400]), c).tolist() == [1, 3, 4, 7]
    with pytest.raises(ValueError, match="sport"):
        zones.friel_lthr_zones(170, "swim")


def test_time_in_zone_counts_gaps_as_dropouts():
    m = zones.hrmax_zones(200)  # edges 100 120 140 160 180
    t = np.array([0, 1, 2, 3, 13, 14, 15.0])
    hr = np.array([110, 110, 130, 130, 170, np.nan, 170])
    s = zones.time_in_zone(t, hr, m, max_gap_s=5)
    # 0-1 Z1, 1-2 Z1, 2-3 Z2, 3-13 dropout (10 s gap), 13-14 Z4, 14-15 invalid sample, 15 no duration
    assert s.tolist() == [0, 2, 1, 0, 1, 0]


def test_trimp_by_hand():
    # 10 min at 150 bpm, rest 60, max 190: x = 90/130
    t = np.arange(0, 601.0)
    hr = np.full(t.size, 150.0)
    x = 90 / 130
    ban_m = 10 * x * 0.64 * math.exp(1.92 * x)
    ban_f = 10 * x * 0.86 * math.exp(1.67 * x)
    b, e = load.trimp(t, hr, 60, 190, "male")
    assert b == pytest.approx(ban_m, rel=1e-12)
    assert load.banister_trimp(t, hr, 60, 190, "female") == pytest.approx(ban_f, rel=1e-12)
    # 150/190 = 79 % -> Edwards zone 3 -> 30
    assert e == pytest.approx(30.0)
    assert load.edwards_trimp(t, hr, 190) == pytest.approx(30.0)
    assert ban_m == pytest.approx(16.74, abs=0.01)  # 10 * 0.6923 * 0.64 * e^1.3292 (= 3.7777)


def test_keytel_by_hand():
    # man, 30 y, 80 kg, HR 150: -55.0969 + 94.635 + 15.904 + 6.051 = 61.4931 kJ/min
    assert energy.keytel_kj_per_min(150, "male", 30, 80) == pytest.approx(61.4931, abs=1e-4)
    # woman, 30 y, 60 kg, HR 150: -20.4022 + 67.08 - 7.578 + 2.22 = 41.3198
    assert energy.keytel_kj_per_min(150, "female", 30, 60) == pytest.approx(41.3198, abs=1e-4)
    # with VO2max 50, man: -59.3954 - 36.3781 + 8.13 + 31.52 + 20.2 + 95.1 = 59.1765
    assert energy.keytel_kj_per_min(150, "male", 30, 80, vo2max=50) == pytest.approx(59.1765, abs=1e-4)
    # woman with VO2max 45: -59.3954 + 8.22 + 6.18 + 17.1 + 67.5 = 39.6046
    assert energy.keytel_kj_per_min(150, "female", 30, 60, vo2max=45) == pytest.approx(39.6046, abs=1e-4)
    assert energy.keytel_kj_per_min(40, "male", 30, 80) == 0.0  # below the regression's range
    t = np.arange(0, 601.0)
    kj = energy.energy_kj(t, np.full(t.size, 150.0), "male", 30, 80)
    assert kj == pytest.approx(614.931, abs=1e-3)
    upd = energy.EnergyAccumulator("male", 30, 80).update((t * 1e6).astype(np.int64), np.full(t.size, 150.0))
    assert upd.kcal == pytest.approx(614.931 / 4.184, abs=1e-3)


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(0, 300), max_size=6), seed=st.integers(0, 1000))
def test_accumulators_equal_batch(cuts, seed):
    rng = np.random.default_rng(seed)
    dt = rng.choice([1.0, 1.0, 1.0, 0.5, 9.0], size=300)
    t_us = 1_700_000_000_000_000 + np.round(np.cumsum(dt) * 1e6).astype(np.int64)
    hr = rng.uniform(50, 200, 300)
    hr[rng.integers(0, 300, 5)] = np.nan
    t_s = (t_us - t_us[0]) * 1e-6
    m = zones.karvonen_zones(55, 195)
    tz, tr, en = zones.TimeInZone(m), load.TrimpAccumulator(55, 195, "f"), energy.EnergyAccumulator("f", 35, 62)
    for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), 300]):
        u1 = tz.update(t_us[a:b], hr[a:b])
        u2 = tr.update(t_us[a:b], hr[a:b])
        u3 = en.update(t_us[a:b], hr[a:b])
    np.testing.assert_allclose(u1.seconds, zones.time_in_zone(t_s, hr, m), rtol=1e-12)
    b, e = load.trimp(t_s, hr, 55, 195, "f")
    assert u2.banister == pytest.approx(b, rel=1e-12) and u2.edwards == pytest.approx(e, rel=1e-12)
    assert u3.kj == pytest.approx(energy.energy_kj(t_s, hr, "f", 35, 62), rel=1e-12)


def test_bad_parameters_are_clear():
    with pytest.raises(ValueError, match="sex"):
        load.TrimpAccumulator(60, 190, "x")
    with pytest.raises(ValueError, match="hr_rest_bpm"):
        load.trimp(np.arange(3.0), np.ones(3), 200, 190, "m")
    with pytest.raises(ValueError, match="ascending"):
        zones.ZoneModel("bad", (2.0, 1.0), ("a", "b"))
    with pytest.raises(ValueError, match="equal length"):
        zones.time_in_zone(np.arange(3.0), np.ones(4), zones.hrmax_zones(190))


@settings(max_examples=40, deadline=None)
@given(t=st.lists(st.integers(-10**15, 10**15), min_size=0, max_size=50),
       v=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=50, max_size=50))
def test_accumulators_take_garbage_without_crashing(t, v):
    t_us = np.array(t, dtype=np.int64)
    hr = np.array(v[: len(t)], dtype=np.float64)
    tz = zones.TimeInZone(zones.hrmax_zones(190))
    tr = load.TrimpAccumulator(60, 190, "m")
    en = energy.EnergyAccumulator("m", 30, 80)
    u1, u2, u3 = tz.update(t_us, hr), tr.update(t_us, hr), en.update(t_us, hr)
    assert np.all(np.isfinite(u1.seconds)) and np.all(u1.seconds >= 0)
    assert math.isfinite(u2.banister) and u2.banister >= 0 and u3.kj >= 0
