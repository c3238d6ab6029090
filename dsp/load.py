"""Training load from heart rate: Banister TRIMP (sex-specific) and Edwards TRIMP.

- Banister (1991): ``TRIMP = sum(dt_min * x * a * exp(b * x))`` with heart-rate reserve fraction
  ``x = (HR - HRrest) / (HRmax - HRrest)`` clipped to [0, 1]; men ``a=0.64, b=1.92``, women
  ``a=0.86, b=1.67``.
- Edwards (1993): minutes in the five %HRmax zones (50-60 ... 90-100 %) weighted 1..5; below 50 %
  counts 0; above HRmax counts as zone 5.

Time handling matches :mod:`dsp.zones`: sample ``i`` lasts until sample ``i+1`` when that gap is
at most ``max_gap_s`` (otherwise a dropout, no load); invalid (non-finite, <= 0) HR adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._jit import njit
from ._series import hr_chunk_seconds

__all__ = ["banister_coeffs", "trimp", "banister_trimp", "edwards_trimp", "TrimpAccumulator", "TrimpUpdate"]


def banister_coeffs(sex: str) -> tuple[float, float]:
    """(a, b) of Banister's weighting ``a * exp(b * x)`` for ``sex`` "male"/"m" or "female"/"f"."""
    s = str(sex).lower()
    if s in ("m", "male", "man"):
        return 0.64, 1.92
    if s in ("f", "female", "woman"):
        return 0.86, 1.67
    raise ValueError(f"sex must be 'male' or 'female', got {sex!r}")


@njit
def _trimp_kernel(t_s: np.ndarray, hr: np.ndarray, hr_rest: float, hr_max: float, a: float, b: float,
                  max_gap_s: float, prev_t: float, prev_hr: float, acc: np.ndarray) -> tuple[float, float]:
    """acc[0] += Banister, acc[1] += Edwards. ``prev_hr`` < 0 means no pending sample."""
    rng = hr_max - hr_rest
    for i in range(t_s.shape[0]):
        t = t_s[i]
        if prev_hr > 0.0:
            dt = t - prev_t
            if dt > 0.0 and dt <= max_gap_s:
                dmin = dt / 60.0
                x = (prev_hr - hr_rest) / rng
                if x < 0.0:
                    x = 0.0
                elif x > 1.0:
                    x = 1.0
                acc[0] += dmin * x * a * np.exp(b * x)
                f = prev_hr / hr_max
                if f >= 0.5:
                    z = 1.0
                    if f >= 0.9:
                        z = 5.0
                    elif f >= 0.8:
                        z = 4.0
                    elif f >= 0.7:
                        z = 3.0
                    elif f >= 0.6:
                        z = 2.0
                    acc[1] += dmin * z
        v = hr[i]
        prev_t = t
        if v > 0.0 and np.isfinite(v):
            prev_hr = v
        else:
            prev_hr = -1.0
    return prev_t, prev_hr


def _check(hr_rest_bpm: float, hr_max_bpm: float) -> None:
    if not (0 < hr_rest_bpm < hr_max_bpm):
        raise ValueError(f"need 0 < hr_rest_bpm < hr_max_bpm, got {hr_rest_bpm} and {hr_max_bpm}")


def trimp(t_s: np.ndarray, hr_bpm: np.ndarray, hr_rest_bpm: float, hr_max_bpm: float, sex: str,
          max_gap_s: float = 5.0) -> tuple[float, float]:
    """(Banister TRIMP, Edwards TRIMP) of a session; times in seconds, HR in bpm."""
    _check(hr_rest_bpm, hr_max_bpm)
    a, b = banister_coeffs(sex)
    t = np.ascontiguousarray(t_s, dtype=np.float64)
    h = np.ascontiguousarray(hr_bpm, dtype=np.float64)
    if t.shape != h.shape or t.ndim != 1:
        raise ValueError(f"t_s and hr_bpm must be 1-D of equal length, got {t.shape} and {h.shape}")
    acc = np.zeros(2)
    _trimp_kernel(t, h, float(hr_rest_bpm), float(hr_max_bpm), a, b, float(max_gap_s), 0.0, -1.0, acc)
    return float(acc[0]), float(acc[1])


def banister_trimp(t_s: np.ndarray, hr_bpm: np.ndarray, hr_rest_bpm: float, hr_max_bpm: float, sex: str,
                   max_gap_s: float = 5.0) -> float:
    """Banister TRIMP (arbitrary units, minutes x weighted HRR fraction)."""
    return trimp(t_s, hr_bpm, hr_rest_bpm, hr_max_bpm, sex, max_gap_s)[0]


def edwards_trimp(t_s: np.ndarray, hr_bpm: np.ndarray, hr_max_bpm: float, max_gap_s: float = 5.0) -> float:
    """Edwards TRIMP (zone-weighted minutes). Needs only HRmax."""
    return trimp(t_s, hr_bpm, 1e-9, hr_max_bpm, "male", max_gap_s)[1]


@dataclass(frozen=True, slots=True)
class TrimpUpdate:
    banister: float
    edwards: float


@dataclass(slots=True)
class TrimpAccumulator:
    """Streaming TRIMP: ``TrimpAccumulator(hr_rest, hr_max, sex).update(t_us, hr_bpm)``."""

    hr_rest: float
    hr_max: float
    sex: str
    max_gap_s: float = 5.0
    _acc: np.ndarray = field(init=False, repr=False)
    _ab: tuple[float, float] = field(init=False, repr=False)
    _t0_us: int | None = field(default=None, init=False, repr=False)
    _prev_t: float = field(default=0.0, init=False, repr=False)
    _prev_hr: float = field(default=-1.0, init=False, repr=False)

    def __post_init__(self) -> None:
        _check(self.hr_rest, self.hr_max)
        self._ab = banister_coeffs(self.sex)
        self._acc = np.zeros(2)

    def update(self, t_us: np.ndarray, hr_bpm: np.ndarray) -> TrimpUpdate:
        self._t0_us, t_s, h = hr_chunk_seconds(t_us, hr_bpm, self._t0_us)
        if t_s.size:
            self._prev_t, self._prev_hr = _trimp_kernel(
                t_s, h, float(self.hr_rest), float(self.hr_max), self._ab[0], self._ab[1],
                float(self.max_gap_s), self._prev_t, self._prev_hr, self._acc)
        return TrimpUpdate(float(self._acc[0]), float(self._acc[1]))
