"""Training zones for heart rate and power, per-sample zone labels and time in zone.

Zone models (all edges lower-inclusive: a value belongs to the highest zone whose lower edge it
reaches; label 0 means "below the first zone" and is only reachable for %HRmax and Karvonen):

- :func:`hrmax_zones` -- five zones at 50/60/70/80/90 % of HRmax (HRmax given, or Tanaka
  ``208 - 0.7 * age``).
- :func:`karvonen_zones` -- the same percentages of heart-rate reserve:
  ``edge = HRrest + pct * (HRmax - HRrest)``.
- :func:`friel_lthr_zones` -- Joe Friel's zones from lactate-threshold HR. Run: Z1 < 85 %,
  Z2 85-89, Z3 90-94, Z4 95-99, Z5a 100-102, Z5b 103-106, Z5c > 106 %. Bike: Z1 < 81 %, Z2 81-89,
  Z3 90-93, Z4 94-99, Z5a 100-102, Z5b 103-106, Z5c > 106 %. Edges are the first percentage of
  each range (85, 90, 95, 100, 103 and 106 for run), so exactly 106 % falls in Z5c.
- :func:`coggan_power_zones` -- Coggan's seven power zones from FTP with edges at
  55/75/90/105/120/150 % (exactly 55 % is Z2).

Time in zone: sample ``i`` covers ``[t[i], t[i+1])`` and is credited to its own zone when that gap
is at most ``max_gap_s``; a longer gap is a dropout and is not time in any zone. Non-finite or
non-positive values are dropouts too. The last sample has no duration yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._jit import njit

__all__ = [
    "ZoneModel",
    "tanaka_hrmax",
    "hrmax_zones",
    "karvonen_zones",
    "friel_lthr_zones",
    "coggan_power_zones",
    "zone_labels",
    "time_in_zone",
    "TimeInZone",
    "TimeInZoneUpdate",
]


@dataclass(frozen=True, slots=True)
class ZoneModel:
    """Lower edges of zones 1..K in the unit of the signal (bpm or W), ascending."""

    name: str
    edges: tuple[float, ...]
    names: tuple[str, ...]
    unit: str = "bpm"

    def __post_init__(self) -> None:
        e = np.asarray(self.edges, dtype=np.float64)
        if e.ndim != 1 or e.size == 0 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
            raise ValueError(f"zone edges must be finite and strictly ascending, got {self.edges!r}")
        if len(self.names) != len(self.edges):
            raise ValueError(f"{len(self.names)} names for {len(self.edges)} zones")

    @property
    def n_zones(self) -> int:
        return len(self.edges)

    @property
    def edges_array(self) -> np.ndarray:
        return np.asarray(self.edges, dtype=np.float64)


def tanaka_hrmax(age_years: float) -> float:
    """Tanaka, Monahan & Seals 2001: HRmax = 208 - 0.7 * age (bpm)."""
    if not 0 < age_years < 120:
        raise ValueError(f"age must be in (0, 120) years, got {age_years}")
    return 208.0 - 0.7 * float(age_years)


_PCT5 = (0.5, 0.6, 0.7, 0.8, 0.9)
_NAMES5 = ("Z1", "Z2", "Z3", "Z4", "Z5")


def _check_pos(name: str, v: float) -> float:
    v = float(v)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive number, got {v}")
    return v


def hrmax_zones(hr_max_bpm: float | None = None, *, age_years: float | None = None) -> ZoneModel:
    """Five %HRmax zones (50-60-70-80-90-100 %). Give ``hr_max_bpm`` or ``age_years`` (Tanaka)."""
    if hr_max_bpm is None:
        if age_years is None:
            raise ValueError("give hr_max_bpm or age_years")
        hr_max_bpm = tanaka_hrmax(age_years)
    hm = _check_pos("hr_max_bpm", hr_max_bpm)
    return ZoneModel("hrmax", tuple(p * hm for p in _PCT5), _NAMES5)


def karvonen_zones(hr_rest_bpm: float, hr_max_bpm: float) -> ZoneModel:
    """Karvonen (heart-rate reserve) zones: edge = rest + pct * (max - rest), pct 50..90 %."""
    hr_rest = _check_pos("hr_rest_bpm", hr_rest_bpm)
    hm = _check_pos("hr_max_bpm", hr_max_bpm)
    if hm <= hr_rest:
        raise ValueError(f"hr_max_bpm ({hm}) must exceed hr_rest_bpm ({hr_rest})")
    return ZoneModel("karvonen", tuple(hr_rest + p * (hm - hr_rest) for p in _PCT5), _NAMES5)


_FRIEL = {
    "run": (0.0, 0.85, 0.90, 0.95, 1.00, 1.03, 1.06),
    "bike": (0.0, 0.81, 0.90, 0.94, 1.00, 1.03, 1.06),
}
_FRIEL_NAMES = ("Z1", "Z2", "Z3", "Z4", "Z5a", "Z5b", "Z5c")


def friel_lthr_zones(lthr_bpm: float, sport: str = "run") -> ZoneModel:
    """Friel's LTHR zones for ``sport`` "run" or "bike" (seven zones, Z1 starts at 0 bpm)."""
    lt = _check_pos("lthr_bpm", lthr_bpm)
    if sport not in _FRIEL:
        raise ValueError(f"sport must be 'run' or 'bike', got {sport!r}")
    return ZoneModel(f"friel_{sport}", tuple(p * lt for p in _FRIEL[sport]), _FRIEL_NAMES)


_COGGAN = (0.0, 0.55, 0.75, 0.90, 1.05, 1.20, 1.50)
_COGGAN_NAMES = ("Z1 active recovery", "Z2 endurance", "Z3 tempo", "Z4 threshold",
                 "Z5 VO2max", "Z6 anaerobic", "Z7 neuromuscular")


def coggan_power_zones(ftp_w: float) -> ZoneModel:
    """Coggan's seven power zones from functional threshold power (W)."""
    ftp = _check_pos("ftp_w", ftp_w)
    return ZoneModel("coggan", tuple(p * ftp for p in _COGGAN), _COGGAN_NAMES, unit="W")


@njit
def _labels_kernel(value: np.ndarray, edges: np.ndarray, out: np.ndarray) -> None:
    k = edges.shape[0]
    for i in range(value.shape[0]):
        v = value[i]
        if not (v > 0.0) or not np.isfinite(v):
            out[i] = -1
            continue
        z = 0
        while z < k and v >= edges[z]:
            z += 1
        out[i] = z


def zone_labels(value: np.ndarray, model: ZoneModel) -> np.ndarray:
    """Zone of every sample (int8): 1..K, 0 below zone 1, -1 for a missing/invalid value."""
    v = np.ascontiguousarray(value, dtype=np.float64)
    out = np.empty(v.shape[0], dtype=np.int8)
    _labels_kernel(v, model.edges_array, out)
    return out


@njit
def _tiz_kernel(t_s: np.ndarray, value: np.ndarray, edges: np.ndarray, max_gap_s: float,
                acc: np.ndarray, prev_t: float, prev_z: int) -> tuple[float, int]:
    """Accumulate seconds per zone into ``acc`` (size K+1). ``prev_*`` carry the pending sample."""
    k = edges.shape[0]
    for i in range(t_s.shape[0]):
        t = t_s[i]
        if prev_z >= 0:
            dt = t - prev_t
            if dt > 0.0 and dt <= max_gap_s:
                acc[prev_z] += dt
        v = value[i]
        if not (v > 0.0) or not np.isfinite(v):
            z = -1
        else:
            z = 0
            while z < k and v >= edges[z]:
                z += 1
        prev_t = t
        prev_z = z
    return prev_t, prev_z


def _check_tv(t: np.ndarray, value: np.ndarray, what: str) -> None:
    if t.shape != value.shape or t.ndim != 1:
        raise ValueError(f"{what} and value must be 1-D arrays of equal length, got {t.shape} and {value.shape}")


def time_in_zone(t_s: np.ndarray, value: np.ndarray, model: ZoneModel, max_gap_s: float = 5.0) -> np.ndarray:
    """Seconds spent in each zone, array of length K+1 (index 0 = below zone 1).

    ``t_s``: sample times in seconds (ascending); ``value``: bpm or W. Gaps longer than
    ``max_gap_s`` and invalid values count as no time in any zone.
    """
    t = np.ascontiguousarray(t_s, dtype=np.float64)
    v = np.ascontiguousarray(value, dtype=np.float64)
    _check_tv(t, v, "t_s")
    acc = np.zeros(model.n_zones + 1, dtype=np.float64)
    _tiz_kernel(t, v, model.edges_array, float(max_gap_s), acc, 0.0, -1)
    return acc


@dataclass(frozen=True, slots=True)
class TimeInZoneUpdate:
    """Result of one :meth:`TimeInZone.update`: labels of the new samples and totals so far (s)."""

    labels: np.ndarray
    seconds: np.ndarray
    zone: int  # zone of the latest valid sample, -1 if none yet


@dataclass(slots=True)
class TimeInZone:
    """Streaming time in zone: ``TimeInZone(model).update(t_us, value)``.

    Gives the same totals as :func:`time_in_zone` on the concatenated input (times in int64 µs,
    converted to seconds relative to the first sample).
    """

    model: ZoneModel
    max_gap_s: float = 5.0
    _acc: np.ndarray = field(init=False, repr=False)
    _t0_us: int | None = field(default=None, init=False, repr=False)
    _prev_t: float = field(default=0.0, init=False, repr=False)
    _prev_z: int = field(default=-1, init=False, repr=False)
    _zone: int = field(default=-1, init=False, repr=False)

    def __post_init__(self) -> None:
        self._acc = np.zeros(self.model.n_zones + 1, dtype=np.float64)

    def update(self, t_us: np.ndarray, value: np.ndarray) -> TimeInZoneUpdate:
        t_us = np.asarray(t_us, dtype=np.int64)
        v = np.ascontiguousarray(value, dtype=np.float64)
        _check_tv(t_us, v, "t_us")
        if t_us.size == 0:
            return TimeInZoneUpdate(np.empty(0, np.int8), self._acc.copy(), self._zone)
        if self._t0_us is None:
            self._t0_us = int(t_us[0])
        t_s = (t_us - self._t0_us).astype(np.float64) * 1e-6
        self._prev_t, self._prev_z = _tiz_kernel(t_s, v, self.model.edges_array, float(self.max_gap_s),
                                                 self._acc, self._prev_t, self._prev_z)
        labels = zone_labels(v, self.model)
        valid = labels[labels >= 0]
        if valid.size:
            self._zone = int(valid[-1])
        return TimeInZoneUpdate(labels, self._acc.copy(), self._zone)

    @property
    def seconds(self) -> np.ndarray:
        return self._acc.copy()
