"""Stateful helpers: cumulative revolution counters + event times -> speed and cadence.

CSC and Cycling Power sensors do not send speed or cadence. They send the cumulative count
of wheel/crank revolutions and the time of the last revolution *event* in a free-running
16-bit clock (1/1024 s; Cycling Power wheel time 1/2048 s). The rate is

    Δrevolutions / Δevent_time

taken modulo the counters' widths, so a counter or clock that wraps (every 64 s for a
1/1024 s clock) still gives the right difference. Cases handled (each counted in
:class:`RateStats`):

* **first sample**: no rate yet (``None``).
* **no new event** (same count, same event time: the wheel or crank did not complete a turn
  since the last notification): the previous rate is held until ``stale_after_s`` of arrival
  time (or, without arrival times, ``stale_after_repeats`` notifications) has passed, then
  the rate is 0 — the rider stopped pedalling or the bike stopped.
* **time moved, count did not**: 0 (no revolution in that time).
* **count moved, time did not** (a sensor bug): sample ignored, counted as ``invalid``.
* **gap longer than the clock's wrap period** (when arrival times are given): the clock may
  have wrapped more than once, so the difference is ambiguous; the helper restarts from
  this sample (``gaps``).
* **implausible rate** (above ``max_rps``: a sensor reset or a corrupted counter): restart
  from this sample (``implausible``).

Pure and synchronous: the edge agent passes the arrival time ``t_us`` (int microseconds) it
stamped on the notification.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .cycling import CP_CRANK_TIME_TICKS_PER_S, CP_WHEEL_TIME_TICKS_PER_S, CSC_TIME_TICKS_PER_S

#: A typical 700x25c road wheel (ISO 622 mm rim + tyre): 2.105 m circumference.
DEFAULT_WHEEL_CIRCUMFERENCE_M = 2.105


@dataclass
class RateStats:
    """Counters of what a :class:`RevolutionRate` has seen."""

    samples: int = 0
    new_events: int = 0
    repeats: int = 0
    invalid: int = 0
    gaps: int = 0
    implausible: int = 0


@dataclass
class RevolutionRate:
    """Revolutions per second from a cumulative counter and a wrapping event clock.

    Args:
        ticks_per_s: event clock resolution (1024 for CSC and CP crank, 2048 for CP wheel).
        revolutions_bits: width of the revolution counter (32 for wheels, 16 for cranks).
        time_bits: width of the event clock (16).
        stale_after_s: arrival time without a new event after which the rate drops to 0.
        stale_after_repeats: same, counted in notifications, when no arrival time is given.
        max_rps: a higher rate is treated as a counter reset (restart from that sample).
    """

    ticks_per_s: int = 1024
    revolutions_bits: int = 32
    time_bits: int = 16
    stale_after_s: float = 3.0
    stale_after_repeats: int = 3
    max_rps: float = 50.0
    stats: RateStats = field(default_factory=RateStats)
    _revs: int | None = field(default=None, repr=False)
    _time: int = field(default=0, repr=False)
    _last_t_us: int | None = field(default=None, repr=False)
    _last_event_t_us: int | None = field(default=None, repr=False)
    _repeats: int = field(default=0, repr=False)
    _rate: float | None = field(default=None, repr=False)

    @property
    def wrap_period_s(self) -> float:
        """Seconds until the event clock wraps (64 s at 1/1024 s, 32 s at 1/2048 s)."""
        return (1 << self.time_bits) / self.ticks_per_s

    @property
    def rate_rps(self) -> float | None:
        """The last computed rate (revolutions per second), ``None`` before the first one."""
        return self._rate

    def reset(self) -> None:
        """Forget the history (e.g. after a reconnect); statistics are kept."""
        self._revs = None
        self._rate = None
        self._repeats = 0
        self._last_t_us = self._last_event_t_us = None

    def _restart(self, revs: int, time: int, t_us: int | None) -> None:
        self._revs, self._time, self._repeats, self._rate = revs, time, 0, None
        self._last_t_us = self._last_event_t_us = t_us

    def update(self, revolutions: int, event_time: int, t_us: int | None = None) -> float | None:
        """Feed one (cumulative revolutions, last event time) pair; return revolutions/s.

        ``t_us`` is the notification's arrival time in microseconds (optional but
        recommended: it enables the stale timeout in seconds and the gap check).
        """
        st = self.stats
        st.samples += 1
        rev_mask = (1 << self.revolutions_bits) - 1
        time_mask = (1 << self.time_bits) - 1
        revolutions &= rev_mask
        event_time &= time_mask
        if self._revs is None:
            self._restart(revolutions, event_time, t_us)
            return None
        if t_us is not None and self._last_t_us is not None and t_us - self._last_t_us >= self.wrap_period_s * 1e6:
            st.gaps += 1
            self._restart(revolutions, event_time, t_us)
            return None
        d_revs = (revolutions - self._revs) & rev_mask
        d_ticks = (event_time - self._time) & time_mask
        self._last_t_us = t_us
        if d_revs == 0 and d_ticks == 0:  # no new event
            st.repeats += 1
            self._repeats += 1
            if t_us is not None and self._last_event_t_us is not None:
                stale = t_us - self._last_event_t_us >= self.stale_after_s * 1e6
            else:
                stale = self._repeats >= self.stale_after_repeats
            if stale and self._rate is not None:
                self._rate = 0.0
            return self._rate
        if d_ticks == 0:  # revolutions without time: a sensor bug
            st.invalid += 1
            self._restart(revolutions, event_time, t_us)
            return None
        rate = d_revs * self.ticks_per_s / d_ticks
        if rate > self.max_rps:
            st.implausible += 1
            self._restart(revolutions, event_time, t_us)
            return None
        st.new_events += 1
        self._revs, self._time, self._repeats = revolutions, event_time, 0
        self._last_event_t_us = t_us
        self._rate = rate
        return rate


@dataclass(frozen=True)
class SpeedCadence:
    """What a :class:`CscRates`/:class:`CyclingPowerRates` update yields (``None`` = unknown yet).

    speed_mps: wheel speed, m/s; cadence_rpm: crank cadence, rev/min; distance_m: distance
    covered by the wheel since the helper started (sum of wrapped revolution deltas × circumference).
    """

    speed_mps: float | None
    cadence_rpm: float | None
    distance_m: float


class _WheelCrank:
    def __init__(self, wheel_ticks: int, wheel_circumference_m: float, stale_after_s: float, max_speed_mps: float, max_cadence_rpm: float) -> None:
        if not wheel_circumference_m > 0:
            raise ValueError(f"wheel_circumference_m must be > 0, got {wheel_circumference_m!r}")
        self.wheel_circumference_m = wheel_circumference_m
        self.wheel = RevolutionRate(ticks_per_s=wheel_ticks, revolutions_bits=32, stale_after_s=stale_after_s, max_rps=max_speed_mps / wheel_circumference_m)
        self.crank = RevolutionRate(ticks_per_s=1024, revolutions_bits=16, stale_after_s=stale_after_s, max_rps=max_cadence_rpm / 60)
        self.distance_m = 0.0
        self._last_wheel_revs: int | None = None
        self._last_wheel_t_us: int | None = None

    def _step(self, wheel_revs: int | None, wheel_time: int | None, crank_revs: int | None, crank_time: int | None, t_us: int | None) -> SpeedCadence:
        speed = cadence = None
        if wheel_revs is not None and wheel_time is not None:
            wheel_revs &= 0xFFFFFFFF
            if self._last_wheel_revs is not None:
                d = (wheel_revs - self._last_wheel_revs) & 0xFFFFFFFF
                if t_us is not None and self._last_wheel_t_us is not None:
                    horizon_s = max((t_us - self._last_wheel_t_us) / 1e6, 1.0)
                else:
                    horizon_s = self.wheel.wrap_period_s
                if d <= self.wheel.max_rps * horizon_s:  # else a counter reset: count nothing
                    self.distance_m += d * self.wheel_circumference_m
            self._last_wheel_revs, self._last_wheel_t_us = wheel_revs, t_us
            rps = self.wheel.update(wheel_revs, wheel_time, t_us)
            speed = None if rps is None else rps * self.wheel_circumference_m
        else:
            speed = None if self.wheel.rate_rps is None else self.wheel.rate_rps * self.wheel_circumference_m
        if crank_revs is not None and crank_time is not None:
            rps = self.crank.update(crank_revs, crank_time, t_us)
            cadence = None if rps is None else rps * 60
        else:
            cadence = None if self.crank.rate_rps is None else self.crank.rate_rps * 60
        return SpeedCadence(speed, cadence, self.distance_m)

    def reset(self) -> None:
        self.wheel.reset()
        self.crank.reset()
        self._last_wheel_revs = None


class CscRates(_WheelCrank):
    """Speed, cadence and distance from CSC Measurement (0x2A5B) notifications.

    >>> r = CscRates(wheel_circumference_m=2.105)
    >>> r.update(m1, t_us)   # first: SpeedCadence(None, None, 0.0)
    >>> r.update(m2, t_us)   # SpeedCadence(speed_mps=..., cadence_rpm=..., distance_m=...)
    """

    def __init__(self, wheel_circumference_m: float = DEFAULT_WHEEL_CIRCUMFERENCE_M, *, stale_after_s: float = 3.0,
                 max_speed_mps: float = 40.0, max_cadence_rpm: float = 250.0) -> None:
        super().__init__(CSC_TIME_TICKS_PER_S, wheel_circumference_m, stale_after_s, max_speed_mps, max_cadence_rpm)

    def update(self, m: Any, t_us: int | None = None) -> SpeedCadence:
        """Feed a :class:`~protocols.ble.cycling.CscMeasurement` (or its ``to_dict()``)."""
        g = m.get if isinstance(m, dict) else lambda k: getattr(m, k)
        return self._step(g("wheel_revolutions"), g("wheel_event_time_1024"), g("crank_revolutions"), g("crank_event_time_1024"), t_us)


class CyclingPowerRates(_WheelCrank):
    """Speed, cadence and distance from Cycling Power Measurement (0x2A63) notifications
    (wheel event time in 1/2048 s, crank in 1/1024 s)."""

    def __init__(self, wheel_circumference_m: float = DEFAULT_WHEEL_CIRCUMFERENCE_M, *, stale_after_s: float = 3.0,
                 max_speed_mps: float = 40.0, max_cadence_rpm: float = 250.0) -> None:
        super().__init__(CP_WHEEL_TIME_TICKS_PER_S, wheel_circumference_m, stale_after_s, max_speed_mps, max_cadence_rpm)
        assert self.crank.ticks_per_s == CP_CRANK_TIME_TICKS_PER_S

    def update(self, m: Any, t_us: int | None = None) -> SpeedCadence:
        """Feed a :class:`~protocols.ble.cycling.CyclingPowerMeasurement` (or its ``to_dict()``)."""
        g = m.get if isinstance(m, dict) else lambda k: getattr(m, k)
        return self._step(g("wheel_revolutions"), g("wheel_event_time_2048"), g("crank_revolutions"), g("crank_event_time_1024"), t_us)
