"""Timebase: monotonic time anchored to UTC; host clock jumps detected, not applied; slewing."""

from __future__ import annotations

import pytest

from edge_agent.timebase import ManualClock, OffsetWallClock, SystemClock, Timebase

S = 1_000_000


def test_follows_monotonic_clock_from_wall_anchor() -> None:
    c = ManualClock(wall_us=1_700_000_000 * S)
    tb = Timebase(c)
    assert tb.now_us() == 1_700_000_000 * S
    c.advance(1_500_000)
    assert tb.now_us() == 1_700_000_000 * S + 1_500_000


@pytest.mark.parametrize("jump_s", [3600, -3600, 5, -5, 86400 * 365])
def test_host_clock_jump_is_detected_and_not_applied(jump_s: int) -> None:
    c = ManualClock()
    tb = Timebase(c, jump_confirm_s=600)
    t0 = tb.now_us()
    c.advance(S)
    tb.resync()
    c.jump_wall(jump_s * S)
    c.advance(S)
    diff = tb.resync()
    assert diff == jump_s * S
    assert tb.stats.jumps == 1 and tb.stats.last_jump_us == jump_s * S
    assert tb.now_us() == t0 + 2 * S  # sample times ignore the jump
    for _ in range(100):  # it stays detected (one jump, counted once) and unapplied
        c.advance(S)
        tb.resync()
    assert tb.stats.jumps == 1 and tb.stats.steps == 0
    assert tb.now_us() == t0 + 102 * S
    assert tb.pending_jump_us == jump_s * S


def test_jump_kept_long_enough_is_stepped_once_and_never_backwards() -> None:
    c = ManualClock()
    tb = Timebase(c, jump_confirm_s=10)
    c.advance(S)
    before = tb.now_us()
    c.jump_wall(-3600 * S)
    for _ in range(12):
        c.advance(S)
        tb.resync()
    assert tb.stats.steps == 1
    # the estimate moved back an hour, but handed-out times never decrease
    assert tb.now_us() >= before
    assert tb.estimate_us() == c.wall_us()


def test_jump_that_reverts_is_forgotten() -> None:
    c = ManualClock()
    tb = Timebase(c, jump_confirm_s=10)
    c.jump_wall(60 * S)
    c.advance(S)
    tb.resync()
    assert tb.pending_jump_us == 60 * S
    c.jump_wall(-60 * S)
    c.advance(S)
    tb.resync()
    assert tb.pending_jump_us == 0
    for _ in range(20):
        c.advance(S)
        tb.resync()
    assert tb.stats.steps == 0


def test_small_offsets_are_slewed_at_bounded_rate() -> None:
    c = ManualClock()
    tb = Timebase(c, max_slew_ppm=500, jump_threshold_us=2 * S)
    c.jump_wall(100_000)  # NTP says we are 100 ms behind: below the jump threshold
    prev = tb.now_us()
    for _ in range(100):
        c.advance(S)
        tb.resync()
        now = tb.now_us()
        assert 0 < now - prev <= S + 500  # at most 500 µs extra per second
        prev = now
    assert tb.stats.jumps == 0
    assert tb.stats.slewed_us == 100 * 500
    for _ in range(200):
        c.advance(S)
        tb.resync()
    assert tb.estimate_us() == c.wall_us()  # fully converged


def test_offset_wall_clock_injects_jumps_over_real_clock() -> None:
    clk = OffsetWallClock(SystemClock())
    tb = Timebase(clk)
    clk.offset_us = 7200 * S
    assert tb.resync() >= 7199 * S
    assert abs(tb.now_us() - SystemClock().wall_us()) < S


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="jump_threshold_us"):
        Timebase(jump_threshold_us=0)
    with pytest.raises(ValueError, match="max_slew_ppm"):
        Timebase(max_slew_ppm=-1)
