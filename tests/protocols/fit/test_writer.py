"""A file written by the simulators' writer (garmin-fit-sdk encoder) reads back exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.fit import read
from protocols.fit.writer import write_activity

T0_US = 1_780_000_000 * 1_000_000


def _stream(r, name):
    bs = [b for b in r.batches if b.stream == name]
    return np.concatenate([b.t_us for b in bs]), np.concatenate([b.values for b in bs])


def opt(s):
    return st.one_of(st.none(), s)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), n=st.integers(1, 700))
def test_round_trip(data, n: int) -> None:
    hr = data.draw(st.lists(opt(st.integers(30, 220)), min_size=n, max_size=n))
    power = data.draw(st.lists(opt(st.integers(0, 2000)), min_size=n, max_size=n))
    speed_mm = data.draw(st.lists(opt(st.integers(0, 30000)), min_size=n, max_size=n))
    dist_cm = np.cumsum(data.draw(st.lists(st.integers(0, 3000), min_size=n, max_size=n))).tolist()
    alt_raw = data.draw(st.lists(st.integers(0, 60000), min_size=n, max_size=n))  # 1/5 m + 500 m offset
    temp = data.draw(st.lists(opt(st.integers(-40, 60)), min_size=n, max_size=n))
    lat = data.draw(st.lists(st.integers(-(2**30), 2**30), min_size=n, max_size=n))
    rr_ms = data.draw(st.lists(st.integers(300, 1500), max_size=n))
    rr_ms = rr_ms[: max(0, np.searchsorted(np.cumsum(rr_ms), (n - 1) * 1000, side="right"))]
    blob = write_activity(T0_US, {
        "heart_rate_bpm": hr, "power_w": power,
        "speed_mps": [None if v is None else v / 1000 for v in speed_mm],
        "distance_m": [v / 100 for v in dist_cm],
        "altitude_m": [v / 5 - 500 for v in alt_raw],
        "temperature_c": temp,
        "lat_deg": [v * 180 / 2**31 for v in lat], "lon_deg": [-v * 180 / 2**31 for v in lat],
    }, rr_s=[v / 1000 for v in rr_ms], manufacturer="development", product=7, serial_number=42)
    r = read(blob, strict=True)
    assert r.decoder == "fast" and r.record_count == n
    assert r.device_id == "fit-development-7-42"
    assert r.summary.sessions == 1 and r.summary.sport == "cycling" and r.summary.start_time_us == T0_US
    t = T0_US + np.arange(n, dtype=np.int64) * 1_000_000
    for name, raw in (("heart_rate", hr), ("power", power), ("speed", speed_mm), ("temperature", temp)):
        keep = [i for i, v in enumerate(raw) if v is not None]
        if not keep:
            assert name not in r.samples
            continue
        tt, vv = _stream(r, name)
        np.testing.assert_array_equal(tt, t[keep])
        np.testing.assert_array_equal(vv, [raw[i] for i in keep])
    np.testing.assert_array_equal(_stream(r, "distance")[1], dist_cm)
    np.testing.assert_array_equal(_stream(r, "altitude")[1], np.array(alt_raw) - 2500)
    np.testing.assert_array_equal(_stream(r, "position")[1], np.stack([lat, [-v for v in lat]], axis=1))
    if rr_ms:
        tt, vv = _stream(r, "rr_interval")
        np.testing.assert_array_equal(vv, rr_ms)
        # beat times are not in FIT files: reconstructed within a second of the true ones
        true = T0_US + np.cumsum(rr_ms) * 1000
        assert np.all(np.abs(tt - true) <= 1_000_000) and np.all(np.diff(tt) > 0)
    else:
        assert "rr_interval" not in r.samples


def test_writer_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        write_activity(T0_US + 1, {"heart_rate_bpm": [1]})
    with pytest.raises(ValueError):
        write_activity(T0_US, {"heart_rate_bpm": [1], "power_w": [1, 2]})
    with pytest.raises(ValueError):
        write_activity(T0_US, {"pulse": [1]})
