"""Filters and helpers: band-pass design, a streaming SOS filter, detrending, resampling.

For one-shot work on a whole recording scipy is already the fastest choice (``sosfiltfilt``,
``CubicSpline``) and is used directly. :class:`SosStream` is for live data: it keeps the filter
state between chunks (a Numba loop; per call it costs far less than ``scipy.signal.sosfilt``'s
overhead on small chunks) and gives exactly ``scipy.signal.sosfilt`` on the concatenated input.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._jit import njit

__all__ = ["bandpass_sos", "filtfilt", "detrend", "resample_uniform", "SosStream"]


def bandpass_sos(lo_hz: float, hi_hz: float, fs_hz: float, order: int = 2) -> np.ndarray:
    """Butterworth band-pass as second-order sections; ``lo_hz`` 0 gives a low-pass."""
    from scipy.signal import butter

    if not (0 <= lo_hz < hi_hz < fs_hz / 2):
        raise ValueError(f"need 0 <= lo_hz < hi_hz < fs_hz/2, got {lo_hz}, {hi_hz}, fs {fs_hz}")
    if lo_hz == 0:
        return butter(order, hi_hz, btype="low", fs=fs_hz, output="sos")
    return butter(order, [lo_hz, hi_hz], btype="band", fs=fs_hz, output="sos")


def filtfilt(x: np.ndarray, sos: np.ndarray, axis: int = 0) -> np.ndarray:
    """Zero-phase filtering of a whole recording (scipy ``sosfiltfilt``)."""
    from scipy.signal import sosfiltfilt

    return sosfiltfilt(sos, np.asarray(x, dtype=np.float64), axis=axis)


def detrend(x: np.ndarray, kind: str = "linear", axis: int = 0) -> np.ndarray:
    """Remove the mean (``"constant"``) or a least-squares line (``"linear"``)."""
    from scipy.signal import detrend as _detrend

    return _detrend(np.asarray(x, dtype=np.float64), axis=axis, type=kind)


def resample_uniform(t_s: np.ndarray, x: np.ndarray, fs_hz: float, kind: str = "cubic") -> tuple[np.ndarray, np.ndarray]:
    """Irregular samples onto a uniform grid from ``t_s[0]`` at ``fs_hz`` (``"cubic"`` or ``"linear"``)."""
    t = np.asarray(t_s, dtype=np.float64)
    v = np.asarray(x, dtype=np.float64)
    if t.ndim != 1 or t.shape[0] != v.shape[0] or t.size < 2:
        raise ValueError(f"t_s must be 1-D, >= 2 samples, as long as x; got {t.shape} and {v.shape}")
    if np.any(np.diff(t) <= 0):
        raise ValueError("t_s must be strictly increasing")
    grid = np.arange(t[0], t[-1], 1.0 / fs_hz)
    if kind == "linear":
        if v.ndim == 1:
            return grid, np.interp(grid, t, v)
        return grid, np.stack([np.interp(grid, t, v[:, i]) for i in range(v.shape[1])], axis=1)
    if kind == "cubic":
        from scipy.interpolate import CubicSpline

        return grid, CubicSpline(t, v, axis=0)(grid)
    raise ValueError(f"kind must be 'cubic' or 'linear', got {kind!r}")


@njit
def _sos_kernel(x: np.ndarray, sos: np.ndarray, zi: np.ndarray, out: np.ndarray) -> None:
    """Transposed direct form II, sections in series, every column of ``x`` (n, d) independently."""
    n = x.shape[0]
    d = x.shape[1]
    ns = sos.shape[0]
    for i in range(n):
        for c in range(d):
            s = x[i, c]
            for k in range(ns):
                o = sos[k, 0] * s + zi[k, c, 0]
                zi[k, c, 0] = sos[k, 1] * s - sos[k, 4] * o + zi[k, c, 1]
                zi[k, c, 1] = sos[k, 2] * s - sos[k, 5] * o
                s = o
            out[i, c] = s


@dataclass(slots=True)
class SosStream:
    """Causal SOS filter with state: ``SosStream(sos, channels).update(chunk (n, channels))``."""

    sos: np.ndarray
    channels: int = 1
    _zi: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.sos = np.ascontiguousarray(self.sos, dtype=np.float64)
        if self.sos.ndim != 2 or self.sos.shape[1] != 6:
            raise ValueError(f"sos must have shape (sections, 6), got {self.sos.shape}")
        self._zi = np.zeros((self.sos.shape[0], self.channels, 2))

    def update(self, x: np.ndarray) -> np.ndarray:
        a = np.asarray(x, dtype=np.float64)
        one_d = a.ndim == 1
        a = np.ascontiguousarray(a.reshape(-1, 1) if one_d else a)
        if a.shape[1] != self.channels:
            raise ValueError(f"expected {self.channels} channel(s), got shape {np.shape(x)}")
        out = np.empty_like(a)
        _sos_kernel(a, self.sos, self._zi, out)
        return out[:, 0] if one_d else out
