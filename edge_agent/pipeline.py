"""Derived streams per device and athlete: ``dsp`` streaming processors -> samples -> batches.

One :class:`DevicePipeline` per connected device, configured with the athlete wearing it
(``[athletes.<id>]``; defaults when none). It buffers the raw samples it needs and, every
``derived_interval_s`` (:meth:`DevicePipeline.tick`), runs the ``dsp`` streaming objects on
them and returns derived :class:`~edge_agent.streams.Samples` that are batched like any
other stream (same device id as their source):

==============  ==================================================  =========================
stream          from                                                value (raw, scale)
==============  ==================================================  =========================
hr_zone         ``dsp.TimeInZone`` labels, one per HR sample         zone 0..5 (0 = below Z1)
time_in_zone    ``TimeInZone`` totals at each tick                   6 channels, ms (0.001 s)
trimp           ``dsp.TrimpAccumulator`` (Banister), cumulative      x 0.001
calories        ``dsp.EnergyAccumulator`` (Keytel 2005), cumulative  kcal x 0.001
hrv_rmssd       ``dsp.RollingHrvStream`` with artifact correction    ms x 0.01, one per window
                (Lipponen & Tarvainen), window ``rmssd_window_s``    end (every tick interval)
rep             ``dsp.RepCounter`` on the IMU's accelerometer        rep number within its set
==============  ==================================================  =========================

:attr:`DevicePipeline.live` holds what ``fittrack edge status`` shows (HR, zone, RMSSD, TRIMP,
kcal, reps, sets).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

import dsp

from .config import AthleteConfig, PipelineConfig
from .streams import TIME_RES_US, Samples

log = logging.getLogger("edge_agent.pipeline")

__all__ = ["DevicePipeline", "LiveState", "default_athlete"]


def default_athlete(athlete_id: str = "") -> AthleteConfig:
    """The athlete assumed for a device without one in the config (documented defaults)."""
    return AthleteConfig(athlete_id=athlete_id or "default")


@dataclass
class LiveState:
    """Latest values of one device, for the status view."""

    hr_bpm: int | None = None
    zone: int | None = None
    rmssd_ms: float | None = None
    trimp: float = 0.0
    kcal: float = 0.0
    reps: int = 0
    sets: int = 0
    reps_in_set: int = 0
    time_in_zone_s: list[float] = field(default_factory=list)


class DevicePipeline:
    """See module docstring."""

    def __init__(self, device_id: str, athlete: AthleteConfig | None, cfg: PipelineConfig) -> None:
        self.device_id = device_id
        self.athlete = athlete or default_athlete()
        self.cfg = cfg
        a = self.athlete
        hr_max = a.hr_max
        self.zone_model = (
            dsp.karvonen_zones(a.hr_rest_bpm, hr_max) if a.zone_model == "karvonen" else dsp.hrmax_zones(hr_max)
        )
        self.tiz = dsp.TimeInZone(self.zone_model)
        self.trimp = dsp.TrimpAccumulator(a.hr_rest_bpm, hr_max, a.sex)
        self.energy = dsp.EnergyAccumulator(a.sex, a.age_years, a.weight_kg)
        self.hrv = dsp.RollingHrvStream(window_s=cfg.rmssd_window_s, step_s=cfg.derived_interval_s, correct_artifacts=True)
        self.live = LiveState()
        self._hr_t: list[int] = []
        self._hr_v: list[int] = []
        self._rr_t: list[int] = []
        self._rr_v: list[int] = []
        self._last_rr_t = -1
        self._acc_t: list[int] = []
        self._acc_v: list[tuple[int, int, int]] = []
        self._reps: dsp.RepCounter | None = None
        self._rep_rate_hz = 0.0
        self._rep_t0_us = 0
        self._rep_last_us = 0
        self._rep_sets_seen: set[tuple[int, int]] = set()
        self.errors = 0

    def feed(self, s: Samples) -> None:
        """Buffer the raw samples the derived streams need (HR, RR, accel)."""
        if s.stream == "heart_rate":
            self._hr_t += s.t_us
            self._hr_v += s.values
            self.live.hr_bpm = s.values[-1]
        elif s.stream == "rr_interval":
            for t, v in zip(s.t_us, s.values):
                if t > self._last_rr_t:  # the beat clock can re-anchor backwards: keep beats in order
                    self._rr_t.append(t)
                    self._rr_v.append(v)
                    self._last_rr_t = t
        elif s.stream == "accel" and self.cfg.reps:
            self._acc_t += s.t_us
            self._acc_v += s.values

    def tick(self, now_us: int) -> list[Samples]:
        """Run the dsp processors on what was buffered; return derived samples."""
        if not self.cfg.derived:
            self._hr_t, self._hr_v, self._rr_t, self._rr_v, self._acc_t, self._acc_v = [], [], [], [], [], []
            return []
        out: list[Samples] = []
        t_tick = now_us - now_us % TIME_RES_US
        try:
            if self._hr_t:
                out += self._hr(t_tick)
            if self._rr_t:
                out += self._rr()
            if self._acc_t:
                out += self._imu()
        except ValueError as exc:  # a dsp precondition: count, log, keep going
            self.errors += 1
            log.warning("%s: derived streams skipped one interval: %s", self.device_id, exc)
        return out

    def _hr(self, t_tick: int) -> list[Samples]:
        t = np.asarray(self._hr_t, dtype=np.int64)
        hr = np.asarray(self._hr_v, dtype=np.float64)
        self._hr_t, self._hr_v = [], []
        tz = self.tiz.update(t, hr)
        tr = self.trimp.update(t, hr)
        en = self.energy.update(t, hr)
        labels = [int(x) for x in tz.labels]
        keep = [i for i, z in enumerate(labels) if z >= 0]
        out = []
        if keep:
            out.append(Samples("hr_zone", [int(t[i]) for i in keep], [labels[i] for i in keep]))
        secs = tz.seconds
        chans = (list(secs) + [0.0] * 6)[:6]
        out.append(Samples("time_in_zone", [t_tick], [tuple(int(round(s * 1000)) for s in chans)]))
        out.append(Samples("trimp", [t_tick], [int(round(tr.banister * 1000))]))
        out.append(Samples("calories", [t_tick], [int(round(en.kcal * 1000))]))
        self.live.zone = tz.zone if tz.zone >= 0 else None
        self.live.trimp = tr.banister
        self.live.kcal = en.kcal
        self.live.time_in_zone_s = [float(s) for s in secs]
        return out

    def _rr(self) -> list[Samples]:
        t = np.asarray(self._rr_t, dtype=np.int64)
        rr_ms = np.asarray(self._rr_v, dtype=np.float64) * (1000.0 / 1024.0)
        self._rr_t, self._rr_v = [], []
        rows = self.hrv.update(t, rr_ms)
        if not len(rows):
            return []
        ts, vs = [], []
        for te, r in zip(rows.t_end_ms, rows.rmssd_ms):
            if np.isfinite(r):
                ts.append(int(te * 1000) // TIME_RES_US * TIME_RES_US)
                vs.append(int(round(r * 100)))
        if vs:
            self.live.rmssd_ms = vs[-1] / 100
            return [Samples("hrv_rmssd", ts, vs)]
        return []

    def finish(self, now_us: int) -> list[Samples]:
        """Last derived samples at shutdown: a final tick, and the open set of reps closed."""
        out = self.tick(now_us)
        if self._reps is not None:
            out += self._rep_samples(self._reps.finish())
            self._reps = None
        return out

    def _imu(self) -> list[Samples]:
        t, v = self._acc_t, self._acc_v
        self._acc_t, self._acc_v = [], []
        if len(t) < 2:
            self._acc_t, self._acc_v = t, v  # wait for enough samples to know the rate
            return []
        period_us = int(np.median(np.diff(np.asarray(t[:64], dtype=np.int64))))
        if period_us <= 0:
            return []
        rate = 1e6 / period_us
        out: list[Samples] = []
        if self._reps is not None and (t[0] - self._rep_last_us > 3 * period_us or abs(rate - self._rep_rate_hz) > 0.02 * rate):
            # a gap (link drop, lost packets) or a new rate: the counter's clock is its sample count, so
            # close it and start another one at this chunk
            out += self._rep_samples(self._reps.finish())
            self._reps = None
        if self._reps is None:
            self._reps = dsp.RepCounter(rate)
            self._rep_rate_hz = rate
            self._rep_t0_us = t[0]
        self._rep_last_us = t[-1]
        acc_g = np.asarray(v, dtype=np.float64) * (1.0 / 4096.0)
        out += self._rep_samples(self._reps.update(acc_g))
        return out

    def _rep_samples(self, events: list) -> list[Samples]:
        ts, vs = [], []
        for e in events:
            t_ev = self._rep_t0_us + int(e.t_s * 1e6)
            ts.append(t_ev - t_ev % TIME_RES_US)
            vs.append(int(e.rep_in_set))
            self._rep_sets_seen.add((self._rep_t0_us, e.set_index))
        self.live.reps += len(vs)
        self.live.sets = len(self._rep_sets_seen)
        if vs:
            self.live.reps_in_set = vs[-1]
            return [Samples("rep", ts, vs)]
        return []
