"""HRV against published reference values (pyhrv, heartpy, rhenanbartels/hrv) and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp import hrv

from .conftest import clean_rr


def test_time_domain_reproduces_pyhrv_report(pyhrv_long, pyhrv_report):
    exp = pyhrv_report["expected_time"]
    td = hrv.time_domain(pyhrv_long)
    assert pyhrv_long.size == exp["n"]
    # the report prints three decimals
    for ours, theirs in [("mean_nn", "mean_nni"), ("sdnn", "sdnn"), ("rmssd", "rmssd"),
                         ("pnn50", "pnn50"), ("pnn20", "pnn20")]:
        assert round(td[ours], 3) == pytest.approx(exp[theirs], abs=1e-9), ours
    assert td["nn50"] == exp["nn50"] and td["nn20"] == exp["nn20"]
    # pyhrv's SDSD is the std of |diff|; ours is the Task Force one (std of signed diff, ddof 1)
    d = np.diff(pyhrv_long)
    assert td["sdsd"] == pytest.approx(np.std(d, ddof=1), rel=1e-12)
    assert round(float(np.std(np.abs(d), ddof=1)), 3) == pytest.approx(exp["sdsd"], abs=1e-3)


def test_welch_reproduces_pyhrv_report(pyhrv_long, pyhrv_report):
    exp = pyhrv_report["expected_welch"]
    fd = hrv.frequency_domain(pyhrv_long)
    for k in ("vlf", "lf", "hf", "lf_nu", "hf_nu"):
        assert fd[k] == pytest.approx(exp[k], rel=1e-9), k
    assert round(fd["total_power"], 3) == pytest.approx(exp["total"], abs=1e-9)
    assert round(fd["lf_hf"], 3) == pytest.approx(exp["lf_hf"], abs=1e-9)


def test_poincare_close_to_pyhrv(pyhrv_long, pyhrv_report):
    exp = pyhrv_report["expected_nonlinear"]
    p = hrv.poincare(pyhrv_long)
    # pyhrv computes SD1/SD2 from the rotated plot with a slightly different estimator (0.01-0.03 %)
    assert p["sd1"] == pytest.approx(exp["sd1"], rel=5e-4)
    assert p["sd2"] == pytest.approx(exp["sd2"], rel=5e-4)
    d = np.diff(pyhrv_long)
    assert p["sd1"] == pytest.approx(np.sqrt(np.var(d, ddof=1) / 2), rel=1e-12)
    assert hrv.sd1(pyhrv_long) == p["sd1"] and hrv.sd2(pyhrv_long) == p["sd2"]


def test_heartpy_doctest_case():
    import json

    from .conftest import DATA

    case = json.loads((DATA / "hrv" / "heartpy_doctest.json").read_text())
    td = hrv.time_domain(np.array(case["rr_ms"]))
    assert round(td["rmssd"], 3) == pytest.approx(case["expected"]["rmssd"], abs=1e-9)
    # heartpy's bpm is 60000 / mean(rr): our mean_nn gives it
    assert round(60000.0 / td["mean_nn"], 3) == pytest.approx(case["expected"]["bpm"], abs=1e-9)


def test_rhenanbartels_time_domain(rhenan_cases, rest_rri):
    c = rhenan_cases["FAKE_RRI time domain"]
    td = hrv.time_domain(np.array(c["rr_ms"], dtype=float))
    e = c["expected"]
    # their test asserts two places (assertAlmostEqual), which 38.0789 vs 38.07 passes
    for ours, theirs in [("rmssd", "rmssd"), ("sdnn", "sdnn"), ("sdsd", "sdsd"), ("mean_nn", "mrri"),
                         ("mean_hr_bpm", "mhr")]:
        assert td[ours] == pytest.approx(e[theirs], abs=0.01), ours
    assert td["nn50"] == e["nn50"]
    # their pNN50 divides by len(rri) (25 %), ours by the N-1 differences (33.3 %)
    assert td["pnn50"] == pytest.approx(100 / 3)
    e = rhenan_cases["rest_rri time domain (docstring)"]["expected"]
    td = hrv.time_domain(rest_rri)
    for ours, theirs in [("rmssd", "rmssd"), ("sdnn", "sdnn"), ("sdsd", "sdsd"), ("mean_nn", "mrri"),
                         ("mean_hr_bpm", "mhr")]:
        assert td[ours] == pytest.approx(e[theirs], rel=1e-12), ours
    assert td["nn50"] == e["nn50"]
    assert td["pnn50"] == pytest.approx(100 * e["nn50"] / (rest_rri.size - 1))


def test_rhenanbartels_welch_defaults(rhenan_cases, rest_rri):
    e = rhenan_cases["rest_rri Welch defaults (docstring)"]["expected"]
    fd = hrv.frequency_domain(rest_rri, window="hann", nperseg=256, nfft=256, integration="trapz")
    for ours, theirs in [("vlf", "vlf"), ("lf", "lf"), ("hf", "hf"), ("total_power", "total_power"),
                         ("lf_hf", "lf_hf"), ("lf_nu", "lfnu"), ("hf_nu", "hfnu")]:
        assert fd[ours] == pytest.approx(e[theirs], rel=1e-9), ours


def test_lomb_band_power_of_a_sine_is_its_variance():
    # beats with a 0.25 Hz modulation of amplitude 30 ms: its power (A^2/2 = 450 ms^2) lands in HF
    rr = [800.0]
    t = 0.0
    rng = np.random.default_rng(3)
    for _ in range(400):
        t += rr[-1] / 1000
        rr.append(800 + 30 * np.sin(2 * np.pi * 0.25 * t) + rng.normal(0, 1))
    fd = hrv.frequency_domain(np.array(rr), "lomb")
    assert fd["hf"] == pytest.approx(450, rel=0.1)
    assert fd["lf"] < 0.05 * fd["hf"] and fd["vlf"] < 0.05 * fd["hf"]
    w = hrv.frequency_domain(np.array(rr), "welch")
    assert w["hf"] == pytest.approx(450, rel=0.1)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2"):
        hrv.time_domain(np.array([800.0]))
    with pytest.raises(ValueError, match=r"indices \[1\]"):
        hrv.time_domain(np.array([800.0, np.nan, 790.0]))
    with pytest.raises(ValueError, match="method"):
        hrv.frequency_domain(clean_rr(100), "burg")


def _naive_rolling(t, rr, w, step):
    rows = []
    T = t[0] + w
    while T <= t[-1]:
        sel = (t > T - w) & (t <= T)
        x = rr[sel]
        if x.size >= 2:
            rows.append((T, np.sqrt(np.mean(np.diff(x) ** 2)), np.std(x, ddof=1), 60000 * x.size / x.sum()))
        else:
            rows.append((T, np.nan, np.nan, 60000 * x.size / x.sum() if x.size else np.nan))
        T += step
    return np.array(rows)


def test_rolling_matches_naive_windows():
    rr = clean_rr(600, seed=2)
    rr[100:103] = [400, 1300, 850]
    t = np.cumsum(rr)
    r = hrv.rolling_hrv(t, rr, window_s=60, step_s=2.5)
    ref = _naive_rolling(t, rr, 60000.0, 2500.0)
    assert len(r) == ref.shape[0] > 100
    np.testing.assert_allclose(r.t_end_ms, ref[:, 0])
    np.testing.assert_allclose(r.rmssd_ms, ref[:, 1], rtol=1e-9)
    np.testing.assert_allclose(r.sdnn_ms, ref[:, 2], rtol=1e-7)
    np.testing.assert_allclose(r.mean_hr_bpm, ref[:, 3], rtol=1e-12)
    t_end, rm = hrv.rolling_rmssd(t, rr, 60, 2.5)
    assert np.array_equal(rm, r.rmssd_ms)


def test_rolling_handles_gaps_with_nan():
    rr = np.full(50, 1000.0)
    t = np.cumsum(rr)
    t[25:] += 120_000  # two minutes without beats
    r = hrv.rolling_hrv(t, rr, window_s=30, step_s=1)
    assert np.isnan(r.rmssd_ms).any() and (r.n_beats == 0).any()
    assert np.nanmax(r.rmssd_ms) == 0.0


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(0, 400), max_size=8), step=st.sampled_from([0.5, 1.0, 7.0]))
def test_stream_equals_batch(cuts, step):
    rr = clean_rr(400, seed=5)
    t_us = 1_700_000_000_000_000 + np.round(np.cumsum(rr) * 1000).astype(np.int64)
    batch = hrv.rolling_hrv(t_us / 1000.0, rr, window_s=30, step_s=step)
    s = hrv.RollingHrvStream(window_s=30, step_s=step)
    parts = []
    for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), rr.size]):
        parts.append(s.update(t_us[a:b], rr[a:b]))
    parts.append(s.finish())
    got = np.concatenate([p.rmssd_ms for p in parts])
    assert np.array_equal(np.concatenate([p.t_end_ms for p in parts]), batch.t_end_ms)
    assert np.array_equal(got, batch.rmssd_ms, equal_nan=True)
    assert np.array_equal(np.concatenate([p.n_beats for p in parts]), batch.n_beats)


def test_stream_with_artifact_correction_equals_batch_on_corrected_series():
    from dsp import artifacts

    rr = clean_rr(900, seed=6)
    rr[300] -= 260
    rr[301] += 260
    t_ms = np.cumsum(rr)
    ct, crr, rep = artifacts.correct_with_times(t_ms, rr)
    assert 300 in rep["ectopic"]
    batch = hrv.rolling_hrv(ct, crr, window_s=60, step_s=1)
    s = hrv.RollingHrvStream(window_s=60, step_s=1, correct_artifacts=True)
    t_us = np.round(t_ms * 1000).astype(np.int64)
    parts = [s.update(t_us[i:i + 17], rr[i:i + 17]) for i in range(0, rr.size, 17)] + [s.finish()]
    got = np.concatenate([p.rmssd_ms for p in parts])
    np.testing.assert_allclose(got, batch.rmssd_ms, rtol=1e-9)
    raw = hrv.rolling_hrv(t_ms, rr, window_s=60, step_s=1)
    assert np.nanmax(raw.rmssd_ms) > 1.5 * np.nanmax(got)  # the ectopic beat no longer inflates RMSSD


def test_stream_drops_and_counts_bad_beats():
    rr = clean_rr(300, seed=11)
    t_us = np.round(np.cumsum(rr) * 1000).astype(np.int64)
    ref = hrv.rolling_hrv(t_us / 1000.0, rr, window_s=30, step_s=1)
    bad_rr = rr.copy()
    bad_t = t_us.copy()
    # a NaN, a zero, and a beat that arrives with a time before its predecessor
    ins_rr = np.insert(bad_rr, [50, 120, 200], [np.nan, 0.0, 800.0])
    ins_t = np.insert(bad_t, [50, 120, 200], [bad_t[49] + 1, bad_t[119] + 1, bad_t[150]])
    s = hrv.RollingHrvStream(window_s=30, step_s=1)
    parts = [s.update(ins_t[i:i + 40], ins_rr[i:i + 40]) for i in range(0, ins_rr.size, 40)]
    assert s.rejected == 3
    np.testing.assert_array_equal(np.concatenate([p.rmssd_ms for p in parts]), ref.rmssd_ms)


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(0, 798), max_size=6))
def test_corrected_stream_equals_batch_on_the_polar_file(polar_rr, cuts):
    from dsp import artifacts

    rr = polar_rr
    t_us = 1_714_920_600_000_000 + np.round(np.cumsum(rr) * 1000).astype(np.int64)
    ct, crr, _ = artifacts.correct_with_times(t_us / 1000.0, rr)
    batch = hrv.rolling_hrv(ct, crr, window_s=60, step_s=5)
    s = hrv.RollingHrvStream(window_s=60, step_s=5, correct_artifacts=True)
    parts = [s.update(t_us[a:b], rr[a:b]) for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), rr.size])]
    parts.append(s.finish())
    assert np.array_equal(np.concatenate([p.t_end_ms for p in parts]), batch.t_end_ms)
    np.testing.assert_allclose(np.concatenate([p.rmssd_ms for p in parts]), batch.rmssd_ms, rtol=1e-9)
