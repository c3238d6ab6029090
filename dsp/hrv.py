"""Heart-rate variability from RR (NN) intervals in milliseconds.

Definitions (Task Force 1996; DESIGN §11):

- ``sdnn``: sample standard deviation of NN (ddof 1). ``rmssd``: root mean square of the N-1
  successive differences. ``sdsd``: standard deviation (ddof 1) of the signed successive
  differences (pyhrv uses absolute differences instead; we do not). ``nn50``/``nn20``: number of
  successive differences with ``|d| > 50``/``> 20`` ms; ``pnn50``/``pnn20`` in % of the N-1
  differences. ``mean_hr_bpm``: mean of the instantaneous rates ``60000/rr``; min/max likewise.
- Poincaré ``sd1 = sqrt(var(d)/2)``, ``sd2 = sqrt(2 var(nn) - var(d)/2)`` (ddof 1 throughout).
- Frequency domain: bands VLF 0-0.04 Hz, LF 0.04-0.15 Hz, HF 0.15-0.4 Hz (closed intervals),
  band power = sum(PSD) * df in ms². See :func:`frequency_domain` for the estimator parameters.
- Rolling: :func:`rolling_hrv` / :func:`rolling_rmssd` over windows ending every ``step_s``,
  O(n) with running sums; :class:`RollingHrvStream` is the same, fed chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._jit import njit

__all__ = [
    "time_domain",
    "frequency_domain",
    "poincare",
    "sd1",
    "sd2",
    "rolling_hrv",
    "rolling_rmssd",
    "RollingHrv",
    "RollingHrvStream",
    "BANDS_HZ",
]

BANDS_HZ = {"vlf": (0.0, 0.04), "lf": (0.04, 0.15), "hf": (0.15, 0.4)}


def _rr(rr_ms: np.ndarray, min_n: int = 2) -> np.ndarray:
    rr = np.ascontiguousarray(rr_ms, dtype=np.float64)
    if rr.ndim != 1:
        raise ValueError(f"rr_ms must be 1-D, got shape {rr.shape}")
    if rr.size < min_n:
        raise ValueError(f"need at least {min_n} RR intervals, got {rr.size}")
    if not np.all(np.isfinite(rr)) or np.any(rr <= 0):
        bad = np.flatnonzero(~np.isfinite(rr) | (rr <= 0))
        raise ValueError(f"rr_ms must be finite and > 0; bad values at indices {bad[:10].tolist()}")
    return rr


@njit
def _td_kernel(rr: np.ndarray, out: np.ndarray) -> int:
    """Fills ``out``; returns the number of invalid (non-finite or <= 0) intervals (then out is junk)."""
    n = rr.shape[0]
    bad = 0
    for i in range(n):
        if not (rr[i] > 0.0) or not np.isfinite(rr[i]):
            bad += 1
    if bad:
        return bad
    k = rr[0]  # shift for numerically stable sums
    s1 = 0.0
    s2 = 0.0
    hr_sum = 0.0
    hr_min = 1e300
    hr_max = -1e300
    for i in range(n):
        x = rr[i] - k
        s1 += x
        s2 += x * x
        h = 60000.0 / rr[i]
        hr_sum += h
        if h < hr_min:
            hr_min = h
        if h > hr_max:
            hr_max = h
    d1 = 0.0
    d2 = 0.0
    nn50 = 0
    nn20 = 0
    for i in range(1, n):
        d = rr[i] - rr[i - 1]
        d1 += d
        d2 += d * d
        a = abs(d)
        if a > 50.0:
            nn50 += 1
        if a > 20.0:
            nn20 += 1
    m = n - 1
    mean = k + s1 / n
    var = (s2 - s1 * s1 / n) / (n - 1)
    out[0] = mean
    out[1] = np.sqrt(var if var > 0.0 else 0.0)
    out[2] = np.sqrt(d2 / m)
    if m > 1:
        vd = (d2 - d1 * d1 / m) / (m - 1)
        out[3] = np.sqrt(vd if vd > 0.0 else 0.0)
    else:
        out[3] = np.nan
    out[4] = nn50
    out[5] = 100.0 * nn50 / m
    out[6] = nn20
    out[7] = 100.0 * nn20 / m
    out[8] = hr_sum / n
    out[9] = hr_min
    out[10] = hr_max
    # Poincaré
    if m > 1:
        vd = (d2 - d1 * d1 / m) / (m - 1)
        s1sq = vd / 2.0
        out[11] = np.sqrt(s1sq)
        s2sq = 2.0 * var - s1sq
        out[12] = np.sqrt(s2sq if s2sq > 0.0 else 0.0)
    else:
        out[11] = np.nan
        out[12] = np.nan
    return 0


_TD_KEYS = ("mean_nn", "sdnn", "rmssd", "sdsd", "nn50", "pnn50", "nn20", "pnn20",
            "mean_hr_bpm", "min_hr_bpm", "max_hr_bpm")


def _td_raw(rr_ms: np.ndarray, min_n: int = 2) -> np.ndarray:
    rr = rr_ms if (type(rr_ms) is np.ndarray and rr_ms.dtype == np.float64 and rr_ms.ndim == 1
                   and rr_ms.flags.c_contiguous) else np.ascontiguousarray(rr_ms, dtype=np.float64)
    if rr.ndim != 1 or rr.size < min_n:
        _rr(rr, min_n)  # raises the clear error
    out = np.empty(13)
    if _td_kernel(rr, out):
        _rr(rr, min_n)  # raises, naming the bad indices
    return out


def time_domain(rr_ms: np.ndarray) -> dict[str, float]:
    """Time-domain HRV of an NN series (ms). Keys and units: see the module docstring.

    ``nn50``/``nn20`` are ints; everything else is a float in ms, % or bpm.
    """
    vals = _td_raw(rr_ms).tolist()
    res = dict(zip(_TD_KEYS, vals))
    res["nn50"] = int(vals[4])
    res["nn20"] = int(vals[6])
    return res


def poincare(rr_ms: np.ndarray) -> dict[str, float]:
    """Poincaré plot descriptors ``sd1``, ``sd2`` (ms) and ``sd1_sd2`` ratio; needs >= 3 intervals."""
    out = _td_raw(rr_ms, 3)
    return {"sd1": float(out[11]), "sd2": float(out[12]), "sd1_sd2": float(out[11] / out[12])}


def sd1(rr_ms: np.ndarray) -> float:
    """Poincaré SD1 (ms): short-term variability, ``sqrt(var(diff)/2)``."""
    return poincare(rr_ms)["sd1"]


def sd2(rr_ms: np.ndarray) -> float:
    """Poincaré SD2 (ms): long-term variability, ``sqrt(2 var(nn) - var(diff)/2)``."""
    return poincare(rr_ms)["sd2"]


# ----------------------------------------------------------------------------- frequency domain

@njit
def _lomb_kernel(t: np.ndarray, y: np.ndarray, freqs: np.ndarray, out: np.ndarray) -> None:
    """Classic Lomb-Scargle periodogram P(f) = 1/2 [C²/CC + S²/SS] with the tau shift."""
    n = t.shape[0]
    for k in range(freqs.shape[0]):
        w = 2.0 * np.pi * freqs[k]
        if w == 0.0:
            out[k] = 0.0
            continue
        s2 = 0.0
        c2 = 0.0
        for i in range(n):
            s2 += np.sin(2.0 * w * t[i])
            c2 += np.cos(2.0 * w * t[i])
        tau = np.arctan2(s2, c2) / (2.0 * w)
        yc = 0.0
        ys = 0.0
        cc = 0.0
        ss = 0.0
        for i in range(n):
            a = w * (t[i] - tau)
            c = np.cos(a)
            s = np.sin(a)
            yc += y[i] * c
            ys += y[i] * s
            cc += c * c
            ss += s * s
        p = 0.0
        if cc > 0.0:
            p += yc * yc / cc
        if ss > 0.0:
            p += ys * ys / ss
        out[k] = 0.5 * p


def _band_powers(f: np.ndarray, psd: np.ndarray, bands: dict[str, tuple[float, float]],
                 integration: str = "sum") -> dict[str, float]:
    df = float(f[1] - f[0])
    res: dict[str, float] = {}
    for name, (lo, hi) in bands.items():
        if integration == "sum":
            sel = (f >= lo) & (f <= hi)
            res[name] = float(np.sum(psd[sel]) * df)
        elif integration == "trapz":
            sel = (f >= lo) & (f < hi)
            res[name] = float(np.trapezoid(psd[sel], f[sel])) if np.count_nonzero(sel) > 1 else 0.0
        else:
            raise ValueError(f"integration must be 'sum' or 'trapz', got {integration!r}")
    res["total_power"] = res["vlf"] + res["lf"] + res["hf"]
    lfhf = res["lf"] + res["hf"]
    res["lf_hf"] = res["lf"] / res["hf"] if res["hf"] > 0 else float("nan")
    res["lf_nu"] = 100.0 * res["lf"] / lfhf if lfhf > 0 else float("nan")
    res["hf_nu"] = 100.0 * res["hf"] / lfhf if lfhf > 0 else float("nan")
    return res


def frequency_domain(rr_ms: np.ndarray, method: str = "welch", *, fs_hz: float = 4.0, nfft: int = 4096,
                     nperseg: int | None = None, window: str = "hamming", lomb_nfft: int = 256,
                     bands: dict[str, tuple[float, float]] | None = None,
                     integration: str = "sum") -> dict[str, float]:
    """Frequency-domain HRV: ``vlf``, ``lf``, ``hf``, ``total_power`` (ms²), ``lf_hf``, ``lf_nu``, ``hf_nu`` (%).

    ``method="welch"`` (defaults reproduce pyhrv's published sample report): the NN series is placed
    on its own time axis (``cumsum(rr) - rr[0]``), cubic-spline interpolated at ``fs_hz`` = 4 Hz,
    the mean removed, then Welch with a Hamming window, ``nperseg`` = 300 samples (75 s) when the
    series is at least 5 min long, else ``nperseg = nfft``, 50 % overlap, ``nfft`` = 4096, per-segment
    constant detrend, one-sided density in ms²/Hz. Band power = sum(PSD in band) * df, bands closed.
    ``integration="trapz"`` integrates with the trapezoid rule over ``[lo, hi)`` instead (the
    rhenanbartels/hrv convention; with ``window="hann", nperseg=256, nfft=256`` it reproduces that
    library's defaults).

    ``method="lomb"``: Lomb-Scargle on the uneven beat times (mean removed), ``lomb_nfft`` = 256
    frequencies evenly from 0 to 0.4 Hz, scaled to a one-sided PSD in ms²/Hz
    (``2 * P(f) * T / N``, T duration in s) so band powers are in ms² like Welch's (pyhrv's Lomb
    output is not in ms² and is not reproduced).
    """
    bands = bands or BANDS_HZ
    if method == "welch":
        from scipy.interpolate import CubicSpline
        from scipy.signal import welch

        rr = _rr(rr_ms, 4)
        t = np.cumsum(rr)
        t -= t[0]
        ti = np.arange(t[0], t[-1], 1000.0 / fs_hz)
        x = CubicSpline(t, rr, bc_type="not-a-knot")(ti)
        x = x - x.mean()
        if nperseg is None:
            nperseg = nfft if t[-1] < 300000.0 else 300
        nperseg = min(nperseg, x.size)
        f, p = welch(x, fs=fs_hz, window=window, nperseg=nperseg, nfft=max(nfft, nperseg), scaling="density")
        return _band_powers(f, p, bands, integration)
    if method == "lomb":
        rr = _rr(rr_ms, 4)
        t_s = np.cumsum(rr) / 1000.0
        t_s -= t_s[0]
        y = rr - rr.mean()
        f = np.linspace(0.0, max(hi for _, hi in bands.values()), lomb_nfft)
        p = np.empty(f.size)
        _lomb_kernel(t_s, y, f, p)
        duration = t_s[-1] - t_s[0]
        psd = 2.0 * p * duration / rr.size
        return _band_powers(f, psd, bands, integration)
    raise ValueError(f"method must be 'welch' or 'lomb', got {method!r}")


# ----------------------------------------------------------------------------- rolling windows

@njit
def _rolling_kernel(t: np.ndarray, rr: np.ndarray, base: int, t0: float, window: float, step: float,
                    shift: float, istate: np.ndarray, fstate: np.ndarray,
                    out_t: np.ndarray, out: np.ndarray) -> int:
    """Windows ``(T - window, T]`` with ``T = t0 + window + k*step`` for every T <= t[-1].

    Arrays ``t``/``rr`` hold beats with global indices ``base .. base+len-1``. ``istate`` =
    [k, lo, hi] (global beat indices), ``fstate`` = [S1, S2, D2] (sums of rr-shift, its square,
    squared successive differences of beats in the window). Writes rows of ``out``:
    rmssd, sdnn, mean_hr, n. Returns the number of windows written.
    """
    n = t.shape[0]
    if n == 0:
        return 0
    k = istate[0]
    lo = istate[1]
    hi = istate[2]
    s1 = fstate[0]
    s2 = fstate[1]
    d2 = fstate[2]
    last = t[n - 1]
    m = 0
    while True:
        T = t0 + window + k * step
        if T > last:
            break
        while hi < base + n and t[hi - base] <= T:
            x = rr[hi - base] - shift
            s1 += x
            s2 += x * x
            if hi > lo:
                d = rr[hi - base] - rr[hi - 1 - base]
                d2 += d * d
            hi += 1
        while lo < hi and t[lo - base] <= T - window:
            x = rr[lo - base] - shift
            s1 -= x
            s2 -= x * x
            if lo + 1 < hi:
                d = rr[lo + 1 - base] - rr[lo - base]
                d2 -= d * d
            lo += 1
        cnt = hi - lo
        out_t[m] = T
        if cnt >= 2:
            if d2 < 0.0:
                d2 = 0.0
            out[m, 0] = np.sqrt(d2 / (cnt - 1))
            v = (s2 - s1 * s1 / cnt) / (cnt - 1)
            out[m, 1] = np.sqrt(v if v > 0.0 else 0.0)
        else:
            out[m, 0] = np.nan
            out[m, 1] = np.nan
        if cnt >= 1:
            out[m, 2] = 60000.0 * cnt / (s1 + shift * cnt)
        else:
            out[m, 2] = np.nan
        out[m, 3] = cnt
        m += 1
        k += 1
    istate[0] = k
    istate[1] = lo
    istate[2] = hi
    fstate[0] = s1
    fstate[1] = s2
    fstate[2] = d2
    return m


@dataclass(frozen=True, slots=True)
class RollingHrv:
    """Rolling-window HRV: one row per window end ``t_end_ms``."""

    t_end_ms: np.ndarray
    rmssd_ms: np.ndarray
    sdnn_ms: np.ndarray
    mean_hr_bpm: np.ndarray
    n_beats: np.ndarray

    def __len__(self) -> int:
        return int(self.t_end_ms.size)


def _rows(out_t: np.ndarray, out: np.ndarray, m: int) -> RollingHrv:
    return RollingHrv(out_t[:m].copy(), out[:m, 0].copy(), out[:m, 1].copy(), out[:m, 2].copy(),
                      out[:m, 3].astype(np.int64))


def _check_t_rr(t_ms: np.ndarray, rr_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.ascontiguousarray(t_ms, dtype=np.float64)
    rr = np.ascontiguousarray(rr_ms, dtype=np.float64)
    if t.shape != rr.shape or t.ndim != 1:
        raise ValueError(f"t_ms and rr_ms must be 1-D of equal length, got {t.shape} and {rr.shape}")
    if t.size > 1 and np.any(np.diff(t) < 0):
        raise ValueError("t_ms must be non-decreasing")
    return t, rr


def rolling_hrv(t_ms: np.ndarray, rr_ms: np.ndarray, window_s: float = 300.0, step_s: float = 1.0) -> RollingHrv:
    """RMSSD, SDNN and mean HR over sliding windows, O(n) with running sums.

    ``t_ms``: time of the beat that ends each interval (ms, ascending); windows are
    ``(T - window_s, T]`` for ``T = t_ms[0] + window_s + k * step_s`` (in ms) while ``T <= t_ms[-1]``.
    RMSSD uses the successive differences of beats inside the window; NaN with fewer than 2 beats.
    """
    t, rr = _check_t_rr(t_ms, rr_ms)
    if window_s <= 0 or step_s <= 0:
        raise ValueError(f"window_s and step_s must be > 0, got {window_s}, {step_s}")
    if t.size == 0:
        e = np.empty(0)
        return RollingHrv(e, e, e, e, np.empty(0, np.int64))
    w = window_s * 1000.0
    st = step_s * 1000.0
    nmax = int(max(0.0, (t[-1] - t[0] - w) // st)) + 2
    out_t = np.empty(nmax)
    out = np.empty((nmax, 4))
    m = _rolling_kernel(t, rr, 0, float(t[0]), w, st, float(rr[0]), np.zeros(3, np.int64), np.zeros(3), out_t, out)
    return _rows(out_t, out, m)


def rolling_rmssd(t_ms: np.ndarray, rr_ms: np.ndarray, window_s: float = 300.0,
                  step_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(window end times in ms, RMSSD in ms) -- see :func:`rolling_hrv`."""
    r = rolling_hrv(t_ms, rr_ms, window_s, step_s)
    return r.t_end_ms, r.rmssd_ms


@dataclass(slots=True)
class RollingHrvStream:
    """Live rolling HRV for one athlete: ``RollingHrvStream(window_s=300).update(t_us, rr_ms)``.

    Each update returns the windows completed by the new beats (a :class:`RollingHrv`); fed any
    chunking of a beat series it yields exactly the rows :func:`rolling_hrv` gives on the whole
    (window ends anchored at the first beat's time). With ``correct_artifacts=True`` the RR series
    first goes through :class:`dsp.artifacts.ArtifactStream` (Lipponen & Tarvainen 2019), which
    delays beats by about 50 beats; call :meth:`finish` at the end to flush them.
    """

    window_s: float = 300.0
    step_s: float = 1.0
    correct_artifacts: bool = False
    _t: np.ndarray = field(default_factory=lambda: np.empty(0), init=False, repr=False)
    _rr: np.ndarray = field(default_factory=lambda: np.empty(0), init=False, repr=False)
    _base: int = field(default=0, init=False, repr=False)
    _t0: float | None = field(default=None, init=False, repr=False)
    _shift: float = field(default=0.0, init=False, repr=False)
    _istate: np.ndarray = field(default_factory=lambda: np.zeros(3, np.int64), init=False, repr=False)
    _fstate: np.ndarray = field(default_factory=lambda: np.zeros(3), init=False, repr=False)
    _art: object = field(default=None, init=False, repr=False)
    _last_in: float = field(default=-np.inf, init=False, repr=False)
    rejected: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.step_s <= 0:
            raise ValueError(f"window_s and step_s must be > 0, got {self.window_s}, {self.step_s}")
        if self.correct_artifacts:
            from .artifacts import ArtifactStream

            self._art = ArtifactStream()

    def update(self, t_us: np.ndarray, rr_ms: np.ndarray) -> RollingHrv:
        """Feed beats (``t_us`` int64 µs of the beat ending each interval, ``rr_ms``).

        Invalid beats (RR not finite or <= 0, or a time earlier than the previous beat) are
        dropped and counted in :attr:`rejected`; the valid ones are used.
        """
        t_us = np.asarray(t_us, dtype=np.int64)
        rr = np.ascontiguousarray(rr_ms, dtype=np.float64)
        if t_us.shape != rr.shape or t_us.ndim != 1:
            raise ValueError(f"t_us and rr_ms must be 1-D of equal length, got {t_us.shape} and {rr.shape}")
        t_ms = t_us.astype(np.float64) / 1000.0
        ok = np.isfinite(rr) & (rr > 0)
        prev = self._last_in
        if ok.any():
            run_max = np.maximum.accumulate(np.where(ok, t_ms, -np.inf))
            before = np.concatenate(([prev], run_max[:-1]))
            ok &= t_ms >= np.maximum(before, prev)
        if not ok.all():
            self.rejected += int(np.count_nonzero(~ok))
            t_ms, rr = t_ms[ok], rr[ok]
        if t_ms.size:
            self._last_in = float(t_ms[-1])
        if self._art is not None:
            t_ms, rr = self._art.update(t_ms, rr)  # type: ignore[attr-defined]
        return self._feed(t_ms, rr)

    def finish(self) -> RollingHrv:
        """Flush beats held back by artifact correction (no-op without it)."""
        if self._art is None:
            return self._feed(np.empty(0), np.empty(0))
        t_ms, rr = self._art.finish()  # type: ignore[attr-defined]
        return self._feed(t_ms, rr)

    def _feed(self, t_ms: np.ndarray, rr: np.ndarray) -> RollingHrv:
        if t_ms.size == 0:
            e = np.empty(0)
            return RollingHrv(e, e, e, e, np.empty(0, np.int64))
        if self._t0 is None:
            self._t0 = float(t_ms[0])
            self._shift = float(rr[0])
        if self._t.size and t_ms[0] < self._t[-1]:
            raise ValueError("beat times must be non-decreasing across updates")
        self._t = np.concatenate((self._t, t_ms))
        self._rr = np.concatenate((self._rr, rr))
        w = self.window_s * 1000.0
        st = self.step_s * 1000.0
        k0 = int(self._istate[0])
        last_T = self._t[-1]
        nmax = int(max(0.0, (last_T - self._t0 - w) / st - k0)) + 2
        out_t = np.empty(nmax)
        out = np.empty((nmax, 4))
        m = _rolling_kernel(self._t, self._rr, self._base, self._t0, w, st, self._shift,
                            self._istate, self._fstate, out_t, out)
        # drop beats that left the window (keep one before `lo` is unnecessary: pairs use lo..hi)
        lo = int(self._istate[1])
        cut = lo - self._base
        if cut > 0:
            self._t = self._t[cut:]
            self._rr = self._rr[cut:]
            self._base = lo
        return _rows(out_t, out, m)
