"""Sample times: a monotonic clock anchored to UTC (DESIGN §3: int64 µs since the epoch).

Every sample the agent stamps gets its time from :meth:`Timebase.now_us`, which is

    anchor_utc_us + (monotonic_us - anchor_mono_us) + offset correction

so a step of the host's wall clock (an operator's ``date -s``, NTP stepping after a Pi boots
without an RTC, a VM resumed) never makes sample times jump or run backwards. The wall clock is
still the reference for *where* UTC is: :meth:`Timebase.resync` (called about once a second by
the agent) compares it with the estimate and

* **slews** small differences (below ``jump_threshold_us``) at most ``max_slew_ppm`` (like
  ``adjtime``), so estimated time follows NTP's gentle corrections without a step;
* treats a larger difference as a **jump**: it is counted and logged, and *not* applied; if the
  wall clock keeps the new offset for ``jump_confirm_s`` seconds (it really was wrong before, e.g.
  a Pi that booted with a stale clock and then got NTP), the estimate is stepped once to it,
  logged, and counted as ``steps``. Samples already stamped are never rewritten.

Times handed out are strictly non-decreasing even across a step backwards (they are held at
the last value until the estimate passes it).

Device clocks (CSC event times, FTMS elapsed time) are never used for sample times: a device
that resets or jumps its own clock cannot corrupt timestamps.

The clock source is injectable (:class:`ClockSource`), which is how tests make the host clock
jump without touching the machine's clock.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("edge_agent.timebase")

__all__ = ["ClockSource", "SystemClock", "ManualClock", "Timebase", "TimebaseStats"]


class ClockSource(Protocol):
    """Where the timebase reads the clocks (µs)."""

    def monotonic_us(self) -> int: ...

    def wall_us(self) -> int: ...


class SystemClock:
    """The host's clocks: ``time.monotonic_ns`` and ``time.time_ns``."""

    def monotonic_us(self) -> int:
        return time.monotonic_ns() // 1000

    def wall_us(self) -> int:
        return time.time_ns() // 1000


class ManualClock:
    """A clock for tests: advance both clocks together; ``jump_wall`` moves only the wall clock."""

    def __init__(self, wall_us: int = 1_800_000_000_000_000, monotonic_us: int = 1_000_000) -> None:
        self._mono = monotonic_us
        self._wall = wall_us

    def monotonic_us(self) -> int:
        return self._mono

    def wall_us(self) -> int:
        return self._wall

    def advance(self, us: int) -> None:
        self._mono += us
        self._wall += us

    def jump_wall(self, us: int) -> None:
        self._wall += us


class OffsetWallClock:
    """Wraps a real clock source and adds an adjustable offset to its wall clock: injects host
    clock jumps into a running agent (tests, ``fittrack edge run --simulate-clock-jump``)."""

    def __init__(self, base: ClockSource | None = None) -> None:
        self.base = base or SystemClock()
        self.offset_us = 0

    def monotonic_us(self) -> int:
        return self.base.monotonic_us()

    def wall_us(self) -> int:
        return self.base.wall_us() + self.offset_us


@dataclass
class TimebaseStats:
    """What :class:`Timebase` has seen. ``last_jump_us`` is signed (wall minus estimate)."""

    resyncs: int = 0
    jumps: int = 0
    steps: int = 0
    last_jump_us: int = 0
    slewed_us: int = 0


class Timebase:
    """Monotonic time anchored to UTC, robust to host clock jumps (see module docstring).

    Args:
        clock: clock source (default: the host's).
        jump_threshold_us: a wall/estimate difference at least this large is a jump (default 2 s).
        max_slew_ppm: largest rate at which smaller differences are corrected (default 500 ppm).
        jump_confirm_s: a jump is stepped to after the wall clock kept it this long (default 600 s;
            0 never steps).
    """

    def __init__(
        self,
        clock: ClockSource | None = None,
        *,
        jump_threshold_us: int = 2_000_000,
        max_slew_ppm: float = 500.0,
        jump_confirm_s: float = 600.0,
    ) -> None:
        if jump_threshold_us <= 0:
            raise ValueError(f"jump_threshold_us must be > 0, got {jump_threshold_us}")
        if not 0 <= max_slew_ppm <= 100_000:
            raise ValueError(f"max_slew_ppm must be in 0..100000, got {max_slew_ppm}")
        if jump_confirm_s < 0:
            raise ValueError(f"jump_confirm_s must be >= 0, got {jump_confirm_s}")
        self.clock = clock or SystemClock()
        self.jump_threshold_us = int(jump_threshold_us)
        self.max_slew_ppm = float(max_slew_ppm)
        self.jump_confirm_us = int(jump_confirm_s * 1e6)
        self.stats = TimebaseStats()
        mono = self.clock.monotonic_us()
        self._anchor_mono = mono
        self._anchor_utc = self.clock.wall_us()
        self._last_resync_mono = mono
        self._pending_since_mono: int | None = None  # monotonic time a jump was first seen
        self._pending_offset = 0
        self._last_out = 0

    def estimate_us(self, mono_us: int | None = None) -> int:
        """Estimated UTC µs at monotonic time ``mono_us`` (now if omitted), not clamped."""
        m = self.clock.monotonic_us() if mono_us is None else mono_us
        return self._anchor_utc + (m - self._anchor_mono)

    def now_us(self) -> int:
        """The time to stamp on a sample now: UTC µs, never decreasing."""
        t = self._anchor_utc + (self.clock.monotonic_us() - self._anchor_mono)
        if t < self._last_out:
            return self._last_out
        self._last_out = t
        return t

    def from_monotonic_us(self, mono_us: int) -> int:
        """UTC µs of an event whose monotonic time was recorded (e.g. a notification's arrival)."""
        return self._anchor_utc + (mono_us - self._anchor_mono)

    @property
    def pending_jump_us(self) -> int:
        """A detected, not yet applied wall-clock jump (0 when none)."""
        return self._pending_offset if self._pending_since_mono is not None else 0

    def resync(self) -> int:
        """Compare with the wall clock; slew, detect or step (see module docstring).

        Returns the current difference wall - estimate in µs (after any correction).
        """
        mono = self.clock.monotonic_us()
        wall = self.clock.wall_us()
        est = self._anchor_utc + (mono - self._anchor_mono)
        diff = wall - est
        elapsed = max(0, mono - self._last_resync_mono)
        self._last_resync_mono = mono
        self.stats.resyncs += 1
        if abs(diff) >= self.jump_threshold_us:
            if self._pending_since_mono is None or abs(diff - self._pending_offset) >= self.jump_threshold_us:
                self._pending_since_mono = mono
                self._pending_offset = diff
                self.stats.jumps += 1
                self.stats.last_jump_us = diff
                log.warning(
                    "host clock jumped by %+.3f s; not applied to sample times (monotonic clock kept)",
                    diff / 1e6, extra={"event": "clock_jump", "jump_us": diff},
                )
            elif self.jump_confirm_us and mono - self._pending_since_mono >= self.jump_confirm_us:
                self._anchor_utc += diff
                self._pending_since_mono = None
                self._pending_offset = 0
                self.stats.steps += 1
                log.warning(
                    "host clock kept its new offset for %.0f s: stepping sample times by %+.3f s",
                    self.jump_confirm_us / 1e6, diff / 1e6, extra={"event": "clock_step", "step_us": diff},
                )
                return 0
            return diff
        if self._pending_since_mono is not None:
            log.info("host clock came back within %.3f s of the monotonic estimate", diff / 1e6)
            self._pending_since_mono = None
            self._pending_offset = 0
        max_corr = int(elapsed * self.max_slew_ppm / 1e6)
        corr = max(-max_corr, min(max_corr, diff))
        if corr:
            self._anchor_utc += corr
            self.stats.slewed_us += corr
        return diff - corr
