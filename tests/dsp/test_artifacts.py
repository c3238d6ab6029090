"""Artifact detection: injected artifacts at known positions, a real Polar H10 file with PVCs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp import artifacts

from .conftest import clean_rr


def test_clean_series_has_few_false_alarms():
    # the method's thresholds are statistical: on clean synthetic series it flags ~0.1 % of beats
    # (as "long/short", never as ectopic/missed/extra)
    flagged = 0
    for seed in range(4):
        d = artifacts.detect(clean_rr(2000, seed=seed))
        assert d["ectopic"].size == d["missed"].size == d["extra"].size == 0
        flagged += d["longshort"].size
    assert flagged <= 0.0025 * 8000


def _inject(rr: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """Ectopic at 400, missed at 900, extra at 1500 (indices into the returned array)."""
    x = list(rr)
    x[400] -= 280  # premature beat: short coupling interval ...
    x[401] += 280  # ... and a compensatory pause
    x[900] = x[900] + x[901]  # the beat ending interval 900 was missed
    del x[901]
    x[1500:1501] = [260.0, x[1500] - 260.0]  # an extra beat 260 ms into interval 1500
    return np.array(x), {"ectopic": 400, "missed": 900, "extra": 1500}


def test_injected_artifacts_found_at_their_positions():
    rr = clean_rr(2000, seed=4)
    bad, where = _inject(rr)
    d = artifacts.detect(bad)
    for kind, idx in where.items():
        assert d[kind].tolist() == [idx], (kind, d)
    assert d["longshort"].size == 0


def test_correction_restores_the_series():
    rr = clean_rr(2000, seed=4)
    bad, _ = _inject(rr)
    out, rep = artifacts.correct(bad)
    assert rep["n_in"] == bad.size and rep["n_out"] == rr.size == out.size
    assert rep["n_artifacts"] == 3
    err = np.abs(out - rr)
    # everything but the corrected beats is untouched; the corrected ones are close to the truth
    assert np.count_nonzero(err > 1e-9) <= 6
    assert err.max() < 40
    # total time is kept (extra merged, missed split, ectopic moved)
    assert out.sum() == pytest.approx(bad.sum())


def test_missed_split_into_as_many_beats_as_fit():
    rr = clean_rr(600, seed=8)
    x = list(rr)
    x[300] = x[300] + x[301] + x[302]  # two missed beats in a row
    del x[301:303]
    out, rep = artifacts.correct(np.array(x))
    assert rep["missed"].tolist() == [300]
    assert out.size == rr.size


def test_polar_h10_premature_beats_flagged_as_ectopic(polar_rr):
    """The strap's own RR from a subject with frequent PVCs (bigeminy/trigeminy runs).

    Ground truth: a premature beat is an interval under 85 % of the local median (11 beats)
    followed by one over 110 % (the compensatory pause). We require >= 95 % of them flagged as
    ectopic at the coupling interval's index.
    """
    rr = polar_rr
    med = np.array([np.median(rr[max(0, i - 5):i + 6]) for i in range(rr.size)])
    pvc = np.flatnonzero((rr[:-1] < 0.85 * med[:-1]) & (rr[1:] > 1.1 * med[1:]))
    assert pvc.size > 200
    d = artifacts.detect(rr)
    flagged = np.isin(pvc, d["ectopic"])
    assert flagged.mean() >= 0.95, f"{flagged.sum()}/{pvc.size}"
    # the published method without our threshold cap flags almost none of them: every dRR in a
    # trigeminy run is large, so the quartile deviation (and the threshold) grows with them
    plain = artifacts.detect(rr, th_cap=0)
    assert np.isin(pvc, plain["ectopic"]).mean() < 0.2


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(0, 1000), max_size=6))
def test_stream_equals_batch(cuts):
    rr = clean_rr(1000, seed=9)
    bad, _ = _inject(np.concatenate([rr, rr, rr]))
    bad = bad[:1000]
    bad[700] -= 250
    bad[701] += 250
    t = np.cumsum(bad)
    bt, brr, rep = artifacts.correct_with_times(t, bad)
    s = artifacts.ArtifactStream()
    outs = []
    for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), bad.size]):
        outs.append(s.update(t[a:b], bad[a:b]))
    outs.append(s.finish())
    assert np.array_equal(np.concatenate([o[1] for o in outs]), brr)
    assert np.array_equal(np.concatenate([o[0] for o in outs]), bt)
    assert s.counts["ectopic"] == rep["ectopic"].size


def test_bad_input():
    with pytest.raises(ValueError, match="finite"):
        artifacts.detect(np.array([800.0, -1.0, 800.0]))
    assert all(v.size == 0 for v in artifacts.detect(np.array([800.0, 810.0])).values())


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(0, 798), max_size=8))
def test_stream_equals_batch_on_the_polar_file(polar_rr, cuts):
    """Frequent ectopy (runs of bigeminy) is where decisions chain; the stream must still agree."""
    rr = polar_rr
    t = np.cumsum(rr)
    bt, brr, _ = artifacts.correct_with_times(t, rr)
    s = artifacts.ArtifactStream()
    outs = [s.update(t[a:b], rr[a:b]) for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), rr.size])]
    outs.append(s.finish())
    assert np.array_equal(np.concatenate([o[1] for o in outs]), brr)
    assert np.array_equal(np.concatenate([o[0] for o in outs]), bt)
