"""RR artifact detection and correction after Lipponen & Tarvainen 2019 (the Kubios method).

J. A. Lipponen, M. P. Tarvainen, "A robust algorithm for heart rate variability time series
artefact correction using novel beat classification", J Med Eng Technol 43(3):173-181, 2019.

Series, as in the paper: ``dRR[i] = rr[i] - rr[i-1]`` (``dRR[0] = 0``: no earlier interval),
``mRR[i] = rr[i] - median(rr[i-5 .. i+5])`` with negative values doubled. Each is divided by its
time-varying threshold ``Th = alpha * QD``, ``QD`` the quartile deviation ``(Q3 - Q1)/2`` of its
absolute value over the 91 beats centred on ``i`` (clipped at the ends; quantiles linearly
interpolated; alpha = 5.2; a threshold never drops below 1 ms, so a perfectly regular series is
not divided by zero, and -- our extension, :data:`TH_CAP` -- never exceeds 20 % of the local
median RR, without which frequent ectopy hides itself). Subspaces ``S12[i]`` = max (dRR[i] > 0) / min (dRR[i] < 0)
of ``dRR[i-1], dRR[i+1]`` and ``S22[i]`` = min (dRR[i] >= 0) / max of ``dRR[i+1], dRR[i+2]``
(reflect-padded). Decision flow (Fig. 1 of the paper), for i = 0 .. n-3:

- |dRR| <= 1 and |mRR| <= 3: normal.
- ectopic if ``dRR > 1 and S12 < -c1*dRR - c2`` or ``dRR < -1 and S12 > -c1*dRR + c2``
  (c1 = 0.13, c2 = 0.17). This test runs first over the whole series, so the short interval of a
  premature beat is not taken for a "short" beat before its ectopic pattern is seen (neurokit2
  reports such a beat in two classes);
- otherwise, for j = i (and i+1 when |dRR[i+1]| < |dRR[i+2]|): long ``dRR > 1 and S22 < -1``,
  short ``dRR < -1 and S22 > 1``, or ``|mRR| > 3``; a short beat with
  ``|rr[j] + rr[j+1] - med[j]| < Th2`` is *extra*, a long beat with ``|rr[j]/k - med[j]| < Th2``
  is *missed* (the paper has k = 2; we take ``k = max(2, round(rr[j]/med[j]))`` so two or more
  missed beats in a row are found too), anything else *long/short*.

Index convention (``rr[j]`` is the interval that ends at beat j+1): ``ectopic`` gives j of the
interval that *ends at the ectopic beat* (for a premature ventricular beat, the short coupling
interval; the algorithm flags the dRR centre one later, we report the beat it means); ``missed``
the long interval that hides a beat; ``extra`` the short interval that ends at the extra beat;
``longshort`` the flagged interval. Unlike neurokit2, dRR[0] is 0 rather than the mean of the
series and |mRR| > 3 alone also leads to the long/short test -- both as in the paper, and both keep
every decision local (needed for :class:`ArtifactStream`).

Correction: extra -> merged with the next interval; missed -> split into
``round(rr/med)`` (>= 2) equal parts; ectopic -> the ectopic beat moved half-way between its
neighbours (the interval pair is replaced by its mean, total time kept); long/short -> replaced by
the local median.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._jit import njit

__all__ = ["detect", "correct", "correct_with_times", "ArtifactStream", "ALPHA", "C1", "C2"]

ALPHA = 5.2
C1 = 0.13
C2 = 0.17
WINDOW = 91
MEDFILT = 11
TH_FLOOR_MS = 1.0
# Our extension: a threshold never exceeds this fraction of the local median RR. With frequent
# ectopy (bigeminy/trigeminy, as in the Polar H10 file) every dRR is large, the quartile deviation
# grows with them and the plain method flags nothing; the cap keeps the threshold physiological.
# It only binds in heavily contaminated windows. 0 disables it (the paper's method as published).
TH_CAP = 0.2
NORMAL, ECTOPIC, MISSED, EXTRA, LONGSHORT = 0, 1, 2, 3, 4
_NAMES = {ECTOPIC: "ectopic", MISSED: "missed", EXTRA: "extra", LONGSHORT: "longshort"}
# beats an index needs on either side before its class can no longer change (see ArtifactStream)
_CONTEXT = 60


@njit
def _lower_bound(buf: np.ndarray, m: int, x: float) -> int:
    """First index in the sorted ``buf[:m]`` whose value is not below ``x``."""
    lo = 0
    hi = m
    while lo < hi:
        mid = (lo + hi) >> 1
        if buf[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit
def _insert_sorted(buf: np.ndarray, m: int, x: float) -> int:
    lo = _lower_bound(buf, m, x)
    for k in range(m, lo, -1):
        buf[k] = buf[k - 1]
    buf[lo] = x
    return m + 1


@njit
def _remove_sorted(buf: np.ndarray, m: int, x: float) -> int:
    lo = _lower_bound(buf, m, x)
    for k in range(lo, m - 1):
        buf[k] = buf[k + 1]
    return m - 1


@njit
def _replace_sorted(buf: np.ndarray, m: int, old: float, new: float) -> None:
    k = _lower_bound(buf, m, old)  # position of `old`
    if new >= old:
        while k + 1 < m and buf[k + 1] < new:
            buf[k] = buf[k + 1]
            k += 1
    else:
        while k > 0 and buf[k - 1] > new:
            buf[k] = buf[k - 1]
            k -= 1
    buf[k] = new


@njit
def _quantile(buf: np.ndarray, m: int, p: float) -> float:
    pos = (m - 1) * p
    i = int(np.floor(pos))
    f = pos - i
    if i + 1 < m:
        return buf[i] + (buf[i + 1] - buf[i]) * f
    return buf[i]


@njit
def _rolling_q(x: np.ndarray, half: int, p1: float, p2: float, out1: np.ndarray, out2: np.ndarray) -> None:
    """Centred rolling quantiles over x[i-half .. i+half] (clipped), like pandas min_periods=1."""
    n = x.shape[0]
    buf = np.empty(2 * half + 1)
    m = 0
    hi = 0  # next index to insert
    lo = 0  # next index to remove
    for i in range(n):
        # steady state: one value leaves and one enters -- replace in place, one shift
        if lo < i - half and hi < n and hi <= i + half and lo + 1 == i - half and hi == i + half:
            _replace_sorted(buf, m, x[lo], x[hi])
            lo += 1
            hi += 1
        while lo < i - half:  # remove first: the buffer holds at most 2*half+1 values
            m = _remove_sorted(buf, m, x[lo])
            lo += 1
        while hi < n and hi <= i + half:
            m = _insert_sorted(buf, m, x[hi])
            hi += 1
        out1[i] = _quantile(buf, m, p1)
        out2[i] = _quantile(buf, m, p2)


@njit
def _detect_kernel(rr: np.ndarray, alpha: float, c1: float, c2: float, half: int, med_half: int,
                   th_floor: float, th_cap: float, codes: np.ndarray, med: np.ndarray) -> None:
    n = rr.shape[0]
    dummy = np.empty(n)
    _rolling_q(rr, med_half, 0.5, 0.5, med, dummy)
    drr = np.zeros(n)
    for i in range(1, n):
        drr[i] = rr[i] - rr[i - 1]
    a = np.abs(drr)
    q1 = np.empty(n)
    q3 = np.empty(n)
    _rolling_q(a, half, 0.25, 0.75, q1, q3)
    for i in range(n):
        th = alpha * (q3[i] - q1[i]) / 2.0
        if th_cap > 0.0 and th > th_cap * med[i]:
            th = th_cap * med[i]
        if th < th_floor:
            th = th_floor
        drr[i] = drr[i] / th
    mrr = np.empty(n)
    for i in range(n):
        v = rr[i] - med[i]
        mrr[i] = 2.0 * v if v < 0.0 else v
    _rolling_q(np.abs(mrr), half, 0.25, 0.75, q1, q3)
    th2 = np.empty(n)
    for i in range(n):
        th = alpha * (q3[i] - q1[i]) / 2.0
        if th_cap > 0.0 and th > th_cap * med[i]:
            th = th_cap * med[i]
        if th < th_floor:
            th = th_floor
        th2[i] = th
        mrr[i] = mrr[i] / th
    for i in range(n):
        codes[i] = NORMAL
    # pass 1: ectopic beats (NPN / PNP patterns in dRR), reflect-padded neighbours
    for i in range(1, n - 2):
        d = drr[i]
        if abs(d) <= 1.0:
            continue
        nxt = drr[i + 1]
        prv = drr[i - 1]
        if d > 0.0:
            s12 = max(prv, nxt)
        else:
            s12 = min(prv, nxt)
        if (d > 1.0 and s12 < -c1 * d - c2) or (d < -1.0 and s12 > -c1 * d + c2):
            if codes[i - 1] == NORMAL and codes[i] == NORMAL:
                codes[i - 1] = ECTOPIC
    # pass 2: missed / extra / long-short among the rest
    for i in range(n - 2):
        d = drr[i]
        if abs(d) <= 1.0 and abs(mrr[i]) <= 3.0:
            continue
        nc = 1
        if abs(drr[i + 1]) < abs(drr[i + 2]):
            nc = 2
        for c in range(nc):
            j = i + c
            if codes[j] != NORMAL or (j >= 1 and (codes[j - 1] == ECTOPIC or codes[j - 1] == EXTRA)):
                continue
            dj = drr[j]
            n1 = drr[j + 1]
            n2 = drr[j + 2] if j + 2 < n else drr[2 * (n - 1) - (j + 2)]
            if dj >= 0.0:
                s22 = min(n1, n2)
            else:
                s22 = max(n1, n2)
            eq3 = dj > 1.0 and s22 < -1.0
            eq4 = abs(mrr[j]) > 3.0
            eq5 = dj < -1.0 and s22 > 1.0
            if not (eq3 or eq4 or eq5):
                continue
            nx = rr[j + 1] if j + 1 < n else rr[j]
            kk = np.floor(rr[j] / med[j] + 0.5)
            if kk < 2.0:
                kk = 2.0
            eq6 = abs(rr[j] / kk - med[j]) < th2[j]  # paper: kk = 2; we allow several missed beats
            eq7 = abs(rr[j] + nx - med[j]) < th2[j]
            if eq5 and eq7:
                codes[j] = EXTRA
            elif eq3 and eq6:
                codes[j] = MISSED
            else:
                codes[j] = LONGSHORT


@njit
def _apply_kernel(t: np.ndarray, rr: np.ndarray, codes: np.ndarray, med: np.ndarray, start: int, stop: int,
                  out_t: np.ndarray, out_rr: np.ndarray) -> tuple[int, int]:
    """Correct intervals start..stop-1 (an extra may consume stop). Returns (n written, next index)."""
    n = rr.shape[0]
    m = 0
    j = start
    while j < stop:
        c = codes[j]
        if c == EXTRA and j + 1 < n:
            out_rr[m] = rr[j] + rr[j + 1]
            out_t[m] = t[j + 1]
            m += 1
            j += 2
        elif c == MISSED:
            k = int(np.floor(rr[j] / med[j] + 0.5))
            if k < 2:
                k = 2
            part = rr[j] / k
            t_start = t[j] - rr[j]
            for q in range(k):
                out_rr[m] = part
                out_t[m] = t_start + (q + 1) * part
                m += 1
            j += 1
        elif c == ECTOPIC and j + 1 < n:
            avg = (rr[j] + rr[j + 1]) / 2.0
            out_rr[m] = avg
            out_t[m] = t[j] - rr[j] + avg
            out_rr[m + 1] = avg
            out_t[m + 1] = t[j + 1]
            m += 2
            j += 2
        elif c == LONGSHORT:
            out_rr[m] = med[j]
            out_t[m] = t[j]
            m += 1
            j += 1
        else:
            out_rr[m] = rr[j]
            out_t[m] = t[j]
            m += 1
            j += 1
    return m, j


def _rr(rr_ms: np.ndarray) -> np.ndarray:
    rr = np.ascontiguousarray(rr_ms, dtype=np.float64)
    if rr.ndim != 1:
        raise ValueError(f"rr_ms must be 1-D, got shape {rr.shape}")
    if rr.size and (not np.all(np.isfinite(rr)) or np.any(rr <= 0)):
        bad = np.flatnonzero(~np.isfinite(rr) | (rr <= 0))
        raise ValueError(f"rr_ms must be finite and > 0; bad values at indices {bad[:10].tolist()}")
    return rr


def _codes(rr: np.ndarray, alpha: float, c1: float, c2: float, th_cap: float = TH_CAP) -> tuple[np.ndarray, np.ndarray]:
    codes = np.zeros(rr.size, dtype=np.int8)
    med = np.empty(rr.size)
    if rr.size >= 3:
        _detect_kernel(rr, alpha, c1, c2, WINDOW // 2, MEDFILT // 2, TH_FLOOR_MS, float(th_cap), codes, med)
    else:
        med[:] = rr
    return codes, med


def detect(rr_ms: np.ndarray, *, alpha: float = ALPHA, c1: float = C1, c2: float = C2,
           th_cap: float = TH_CAP) -> dict[str, np.ndarray]:
    """Artifact indices (int64 arrays) ``ectopic``, ``missed``, ``extra``, ``longshort`` into ``rr_ms``.

    ``th_cap=0`` gives the published method without our threshold cap (see :data:`TH_CAP`).
    """
    rr = _rr(rr_ms)
    codes, _ = _codes(rr, alpha, c1, c2, th_cap)
    return {name: np.flatnonzero(codes == c).astype(np.int64) for c, name in _NAMES.items()}


def correct_with_times(t_ms: np.ndarray, rr_ms: np.ndarray, *, alpha: float = ALPHA, c1: float = C1,
                       c2: float = C2, th_cap: float = TH_CAP) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """Corrected ``(t_ms, rr_ms, report)``; ``t_ms`` is the time of the beat ending each interval."""
    rr = _rr(rr_ms)
    t = np.ascontiguousarray(t_ms, dtype=np.float64)
    if t.shape != rr.shape:
        raise ValueError(f"t_ms and rr_ms must have equal length, got {t.shape} and {rr.shape}")
    codes, med = _codes(rr, alpha, c1, c2, th_cap)
    cap = int(rr.size + 2 * np.sum(codes == MISSED) + np.sum(np.floor(rr / np.maximum(med, 1e-9))) + 4)
    out_t = np.empty(cap)
    out_rr = np.empty(cap)
    m, _ = _apply_kernel(t, rr, codes, med, 0, rr.size, out_t, out_rr)
    report: dict[str, object] = {name: np.flatnonzero(codes == c).astype(np.int64) for c, name in _NAMES.items()}
    report["n_in"] = int(rr.size)
    report["n_out"] = int(m)
    report["n_artifacts"] = int(np.count_nonzero(codes))
    return out_t[:m].copy(), out_rr[:m].copy(), report


def correct(rr_ms: np.ndarray, **kw: float) -> tuple[np.ndarray, dict[str, object]]:
    """Corrected RR series (ms) and a report: the four index arrays (into the input), ``n_in``,
    ``n_out``, ``n_artifacts``."""
    rr = _rr(rr_ms)
    _, out_rr, report = correct_with_times(np.cumsum(rr), rr, **kw)
    return out_rr, report


@dataclass(slots=True)
class ArtifactStream:
    """Streaming :func:`correct_with_times`: ``update(t_ms, rr_ms)`` returns corrected beats.

    An interval's class depends on about 50 beats either side, so beats come out about
    ``_CONTEXT`` beats late; :meth:`finish` flushes the rest. The concatenated output equals
    :func:`correct_with_times` on the concatenated input.
    """

    alpha: float = ALPHA
    c1: float = C1
    c2: float = C2
    th_cap: float = TH_CAP
    _t: np.ndarray = field(default_factory=lambda: np.empty(0), init=False, repr=False)
    _rr: np.ndarray = field(default_factory=lambda: np.empty(0), init=False, repr=False)
    _base: int = field(default=0, init=False, repr=False)  # global index of _rr[0]
    _next: int = field(default=0, init=False, repr=False)  # global index of the next interval to emit
    counts: dict[str, int] = field(default_factory=lambda: {v: 0 for v in _NAMES.values()}, init=False)
    rejected: int = field(default=0, init=False)

    def update(self, t_ms: np.ndarray, rr_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed beats; returns the corrected beats that are final. Non-finite or non-positive RR
        are dropped and counted in :attr:`rejected`."""
        rr = np.ascontiguousarray(rr_ms, dtype=np.float64)
        t = np.ascontiguousarray(t_ms, dtype=np.float64)
        if t.shape != rr.shape or rr.ndim != 1:
            raise ValueError(f"t_ms and rr_ms must be 1-D of equal length, got {t.shape} and {rr.shape}")
        ok = np.isfinite(rr) & (rr > 0) & np.isfinite(t)
        if not ok.all():
            self.rejected += int(np.count_nonzero(~ok))
            t, rr = t[ok], rr[ok]
        self._t = np.concatenate((self._t, t))
        self._rr = np.concatenate((self._rr, rr))
        n_total = self._base + self._rr.size
        stop = n_total - _CONTEXT
        return self._emit(stop)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        return self._emit(self._base + self._rr.size)

    def _emit(self, stop: int) -> tuple[np.ndarray, np.ndarray]:
        if stop <= self._next:
            return np.empty(0), np.empty(0)
        codes, med = _codes(self._rr, self.alpha, self.c1, self.c2, self.th_cap)
        lo = self._next - self._base
        hi = stop - self._base
        for c, name in _NAMES.items():
            self.counts[name] += int(np.count_nonzero(codes[lo:hi] == c))
        cap = 2 * (hi - lo) + int(np.sum(np.floor(self._rr[lo:hi] / np.maximum(med[lo:hi], 1e-9)))) + 4
        out_t = np.empty(cap)
        out_rr = np.empty(cap)
        m, nxt = _apply_kernel(self._t, self._rr, codes, med, lo, hi, out_t, out_rr)
        self._next = self._base + nxt
        keep_from = max(0, nxt - _CONTEXT)  # history the thresholds of later beats need
        if keep_from > 0:
            self._t = self._t[keep_from:]
            self._rr = self._rr[keep_from:]
            self._base += keep_from
        return out_t[:m].copy(), out_rr[:m].copy()
