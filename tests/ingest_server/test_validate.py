"""Validation rules, and the small-batch (pure Python) and large-batch (numpy) paths agreeing."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ingest_server.validate import Limits, check_batch, split_valid
from protocols.wire import SampleBatch

NOW = 1_800_000_000_000_000
LIMITS = Limits()


def _batch(values: list[int], stream: str = "heart_rate", t0: int = NOW - 60_000_000, scale: float = 1.0, seq: int = 1) -> SampleBatch:
    n = len(values)
    return SampleBatch("dev-1", stream, seq, t0 + np.arange(n, dtype=np.int64) * 1000, np.array(values, np.int64), scale=scale)


@given(st.lists(st.integers(-100, 400), min_size=1, max_size=80), st.sampled_from(["heart_rate", "power", "battery", "cadence"]))
def test_small_and_large_paths_agree_on_ranges(values: list[int], stream: str) -> None:
    lo, hi = LIMITS.ranges[stream]
    reason = check_batch(_batch(values, stream), LIMITS, NOW)
    bad = [v for v in values if not lo <= v <= hi]
    if not bad:
        assert reason is None
    else:
        assert reason is not None and f"{len(bad)} value(s) outside" in reason and f"first {bad[0]:g}" in reason
    # the same values, repeated past the small-batch threshold, give the same verdict
    big = check_batch(_batch(values * (40 // len(values) + 1), stream), LIMITS, NOW)
    assert (big is None) == (reason is None)


def test_time_window_and_other_rules() -> None:
    assert "in the future" in check_batch(_batch([70], t0=NOW + 301_000_000), LIMITS, NOW)
    assert check_batch(_batch([70], t0=NOW + 299_000_000), LIMITS, NOW) is None
    assert "days old" in check_batch(_batch([70], t0=NOW - 401 * 86_400_000_000), LIMITS, NOW)
    assert "empty batch" in check_batch(_batch([]), LIMITS, NOW)
    assert "2**63-1" in check_batch(_batch([70], seq=2**63), LIMITS, NOW)
    assert "control characters" in check_batch(
        SampleBatch("dev\x1f1", "heart_rate", 1, [NOW], [70]), LIMITS, NOW)
    # scale applies before the range check: RR 800/1024 s is fine, 4000/1024 s is not
    assert check_batch(_batch([800], "rr_interval", scale=1 / 1024), LIMITS, NOW) is None
    assert "outside the physical range 0.2..3" in check_batch(_batch([4000], "rr_interval", scale=1 / 1024), LIMITS, NOW)
    # unknown streams are not range checked
    assert check_batch(_batch([10**9], "mystery"), LIMITS, NOW) is None
    ok, bad = split_valid([_batch([70]), _batch([300]), _batch([71], seq=2)], LIMITS, NOW)
    assert [b.seq for b in ok] == [1, 2] and [r.index for r in bad] == [1]
