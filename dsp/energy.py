"""Energy expenditure from heart rate: Keytel et al. 2005 (J Sports Sci 23(3):289-297).

Equations (EE in kJ/min; HR bpm, weight kg, age years, VO2max ml/kg/min):

without VO2max (sex-specific fits)
  men:   EE = -55.0969 + 0.6309*HR + 0.1988*weight + 0.2017*age
  women: EE = -20.4022 + 0.4472*HR - 0.1263*weight + 0.074*age

with VO2max (mixed model, g = 1 men, 0 women)
  EE = -59.3954 + g*(-36.3781 + 0.271*age + 0.394*weight + 0.404*VO2max + 0.634*HR)
       + (1-g)*(0.274*age + 0.103*weight + 0.380*VO2max + 0.450*HR)

A negative rate (very low HR, where the regression does not hold) counts as 0. 1 kcal = 4.184 kJ.
Time handling as in :mod:`dsp.load` (gaps over ``max_gap_s`` and invalid HR add nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._jit import njit
from ._series import hr_chunk_seconds
from .load import banister_coeffs

__all__ = ["KJ_PER_KCAL", "keytel_coeffs", "keytel_kj_per_min", "energy_kj", "EnergyAccumulator", "EnergyUpdate"]

KJ_PER_KCAL = 4.184


def keytel_coeffs(sex: str, age_years: float, weight_kg: float, vo2max: float | None = None) -> tuple[float, float]:
    """(intercept, slope per bpm) so that EE_kJ_per_min = intercept + slope * HR."""
    banister_coeffs(sex)  # validates sex
    male = str(sex).lower() in ("m", "male", "man")
    if not 0 < age_years < 120:
        raise ValueError(f"age_years must be in (0, 120), got {age_years}")
    if not 0 < weight_kg < 400:
        raise ValueError(f"weight_kg must be in (0, 400), got {weight_kg}")
    if vo2max is None:
        if male:
            return -55.0969 + 0.1988 * weight_kg + 0.2017 * age_years, 0.6309
        return -20.4022 - 0.1263 * weight_kg + 0.074 * age_years, 0.4472
    if not 0 < vo2max < 100:
        raise ValueError(f"vo2max must be in (0, 100) ml/kg/min, got {vo2max}")
    if male:
        return -59.3954 - 36.3781 + 0.271 * age_years + 0.394 * weight_kg + 0.404 * vo2max, 0.634
    return -59.3954 + 0.274 * age_years + 0.103 * weight_kg + 0.380 * vo2max, 0.450


def keytel_kj_per_min(hr_bpm: float, sex: str, age_years: float, weight_kg: float,
                      vo2max: float | None = None) -> float:
    """Keytel energy-expenditure rate in kJ/min (clipped at 0)."""
    c0, c1 = keytel_coeffs(sex, age_years, weight_kg, vo2max)
    return max(0.0, c0 + c1 * float(hr_bpm))


@njit
def _energy_kernel(t_s: np.ndarray, hr: np.ndarray, c0: float, c1: float, max_gap_s: float,
                   prev_t: float, prev_hr: float, acc: np.ndarray) -> tuple[float, float]:
    for i in range(t_s.shape[0]):
        t = t_s[i]
        if prev_hr > 0.0:
            dt = t - prev_t
            if dt > 0.0 and dt <= max_gap_s:
                rate = c0 + c1 * prev_hr
                if rate > 0.0:
                    acc[0] += rate * dt / 60.0
        v = hr[i]
        prev_t = t
        prev_hr = v if (v > 0.0 and np.isfinite(v)) else -1.0
    return prev_t, prev_hr


def energy_kj(t_s: np.ndarray, hr_bpm: np.ndarray, sex: str, age_years: float, weight_kg: float,
              vo2max: float | None = None, max_gap_s: float = 5.0) -> float:
    """Energy expended over a session in kJ (divide by :data:`KJ_PER_KCAL` for kcal)."""
    c0, c1 = keytel_coeffs(sex, age_years, weight_kg, vo2max)
    t = np.ascontiguousarray(t_s, dtype=np.float64)
    h = np.ascontiguousarray(hr_bpm, dtype=np.float64)
    if t.shape != h.shape or t.ndim != 1:
        raise ValueError(f"t_s and hr_bpm must be 1-D of equal length, got {t.shape} and {h.shape}")
    acc = np.zeros(1)
    _energy_kernel(t, h, c0, c1, float(max_gap_s), 0.0, -1.0, acc)
    return float(acc[0])


@dataclass(frozen=True, slots=True)
class EnergyUpdate:
    kj: float
    kcal: float


@dataclass(slots=True)
class EnergyAccumulator:
    """Streaming Keytel energy: ``EnergyAccumulator(sex, age, weight_kg, vo2max=None).update(t_us, hr)``."""

    sex: str
    age: float
    weight_kg: float
    vo2max: float | None = None
    max_gap_s: float = 5.0
    _c: tuple[float, float] = field(init=False, repr=False)
    _acc: np.ndarray = field(init=False, repr=False)
    _t0_us: int | None = field(default=None, init=False, repr=False)
    _prev_t: float = field(default=0.0, init=False, repr=False)
    _prev_hr: float = field(default=-1.0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._c = keytel_coeffs(self.sex, self.age, self.weight_kg, self.vo2max)
        self._acc = np.zeros(1)

    def update(self, t_us: np.ndarray, hr_bpm: np.ndarray) -> EnergyUpdate:
        self._t0_us, t_s, h = hr_chunk_seconds(t_us, hr_bpm, self._t0_us)
        if t_s.size:
            self._prev_t, self._prev_hr = _energy_kernel(t_s, h, self._c[0], self._c[1], float(self.max_gap_s),
                                                         self._prev_t, self._prev_hr, self._acc)
        kj = float(self._acc[0])
        return EnergyUpdate(kj, kj / KJ_PER_KCAL)
