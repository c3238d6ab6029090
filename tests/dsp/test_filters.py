"""Filters: the streaming SOS filter equals scipy on the whole signal; resampling; errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import sosfilt

from dsp import filters


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(0, 500), max_size=6))
def test_sos_stream_equals_scipy(cuts):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3))
    sos = filters.bandpass_sos(0.2, 3.0, 25.0)
    ref = sosfilt(sos, x, axis=0)
    s = filters.SosStream(sos, channels=3)
    parts = [s.update(x[a:b]) for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), 500])]
    np.testing.assert_allclose(np.concatenate(parts), ref, rtol=1e-10, atol=1e-12)


def test_bandpass_keeps_the_band():
    fs = 50.0
    t = np.arange(0, 60, 1 / fs)
    x = np.sin(2 * np.pi * 0.8 * t) + 2.0 + np.sin(2 * np.pi * 12 * t)
    y = filters.filtfilt(x, filters.bandpass_sos(0.3, 3.0, fs))
    mid = slice(500, -500)
    assert np.std(y[mid]) == pytest.approx(np.sqrt(0.5), rel=0.05)


def test_resample_and_detrend():
    t = np.cumsum(np.full(100, 0.8))
    x = 3 * t + 1
    grid, y = filters.resample_uniform(t, x, 4.0)
    np.testing.assert_allclose(y, 3 * grid + 1, rtol=1e-9)
    assert np.abs(filters.detrend(x)).max() < 1e-9
    with pytest.raises(ValueError, match="increasing"):
        filters.resample_uniform(np.array([1.0, 1.0, 2.0]), np.ones(3), 4.0)
    with pytest.raises(ValueError, match="hi_hz"):
        filters.bandpass_sos(1.0, 30.0, 50.0)
