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
        self._reps = None
        self._reps_unavailable = False
        self._rep_rate_hz = 0.0
        self._set_index = 0
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

    def _imu(self) -> list[Samples]:
        t, v = self._acc_t, self._acc_v
        self._acc_t, self._acc_v = [], []
        if self._reps_unavailable or len(t) < 3:
            return []
        rep_cls = getattr(dsp, "RepCounter", None)
        if rep_cls is None:
            self._reps_unavailable = True
            log.warning("rep counting unavailable: this dsp has no RepCounter")
            return []
        return []  # wired when dsp.RepCounter lands (issue 4)
