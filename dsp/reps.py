"""Repetition counting and set segmentation from a wrist or chest IMU.

Pipeline, sample by sample and causal (so the batch and the streaming forms are one code path):

1. Band-pass every channel (Butterworth order 2, 0.15-2.5 Hz, second-order sections run in the
   kernel with carried state, initialised to the first sample's steady state), then a leaky
   integral (time constant 1 s): a velocity-like signal with one cycle per rep. (Counting lobes of
   the acceleration itself over-counted slow reps with holds 2-3x.)
2. Orientation robustness: track the principal axis of that signal -- an exponentially weighted
   covariance (time constant 4 s) and one power-iteration step per sample -- and project onto it.
   Any mounting of the watch gives the same 1-D signal (up to sign).
3. Hysteresis on the projection: a "half" is a crossing of ``+h`` after ``-h`` or back, with
   ``h = max(0.35 * envelope, 0.01)``, envelope an EMA of ``|x|`` (1.5 s); halves closer than
   0.3 s are ignored; after ``max_gap_s`` without a half the state returns to neutral.
4. Sets: halves less than ``max_gap_s`` (6 s) apart belong to one set; once a set is confirmed, a
   pause over 3x its median half-cycle also ends it (and, before confirmation, halves before such
   a pause, or whose lobes are under a fifth of the largest, are dropped), so fidgets before or
   after a set do not join it. A set is confirmed only
   when its first full cycles keep a rhythm (longest at most twice the shortest). Within a set
   every second half is a rep; an odd last half is one more rep when its lobe is at least half the
   set's median lobe (the filters lock on one half late), not when it is a small settling lobe. A
   set with fewer than ``min_reps`` (3) reps is movement, not a set, and is dropped. Cycles
   faster than ``min_rep_s`` (1.4 s) are not reps: walking swings the arm about once a second,
   and without this rule a walk between machines counts as a set (a confirmed set also ends
   when its cycle suddenly halves to that pace). Time between sets is rest.

With a gyroscope (``gyro`` in deg/s) the six channels (gyro scaled by 1/300 g per deg/s) go through
the same steps, which helps rotations with little linear acceleration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._jit import njit

__all__ = ["RepEvent", "RepSet", "RepResult", "RepCounter", "count_reps", "MIN_FS_HZ", "MAX_FS_HZ"]

MIN_FS_HZ = 10.0
MAX_FS_HZ = 1000.0
BAND_HZ = (0.15, 2.5)
GYRO_SCALE = 1.0 / 300.0
K_H = 0.35  # hysteresis as a fraction of the envelope
FLOOR_G = 0.01  # smallest hysteresis (g*s of the integrated signal): below this it is rest
INTEG_TAU_S = 1.0  # time constant of the leaky integrator
IRREGULAR = 3.0  # a half interval this many times the median, before a set is confirmed, is a pause
RHYTHM = 2.0  # cycles of a set's first reps within this factor of each other (else: not a set yet)
SMALL_LOBE = 0.2  # before confirmation, a leading lobe under this fraction of the largest is a fidget
TAIL_FRAC = 0.5  # an odd last lobe is a rep when at least this fraction of the set's median lobe
MIN_HALF_S = 0.3  # shortest half-cycle


@dataclass(frozen=True, slots=True)
class RepEvent:
    """One counted repetition: time (s from the first sample), position in its set, set number."""

    t_s: float
    rep_in_set: int
    set_index: int
    total: int


@dataclass(frozen=True, slots=True)
class RepSet:
    """A set: start/end (s, first to last half-cycle), reps, and each rep's time (s)."""

    index: int
    start_s: float
    end_s: float
    reps: int
    rep_times_s: np.ndarray


@dataclass(frozen=True, slots=True)
class RepResult:
    count: int
    rep_times_s: np.ndarray
    sets: list[RepSet]
    fs_hz: float
    rest_s: float  # time not in any set (s)
    work_s: float  # time inside sets (s)


@njit
def _rep_kernel(x: np.ndarray, sos: np.ndarray, zi: np.ndarray, cov: np.ndarray, v: np.ndarray,
                u: np.ndarray, lam: float, dt: float, fstate: np.ndarray, istate: np.ndarray, a_cov: float, a_env: float, k_h: float,
                floor: float, min_half: int, gap: int, out_idx: np.ndarray, out_amp: np.ndarray,
                out_tail: np.ndarray) -> int:
    """Process samples; write the global sample index of every accepted half into ``out_idx``.

    fstate = [envelope, peak |x| since the last half, peak of the lobe cut off by the last rest];
    ``out_amp`` gets the peak of the lobe that each half ends, ``out_tail`` the rest-lobe peak
    stored at the latest rest before it (what the caller needs to close the previous set). istate = [sample counter, hysteresis state (-1/0/+1), last half index].
    """
    n = x.shape[0]
    d = x.shape[1]
    ns = sos.shape[0]
    y = np.empty(d)
    w = np.empty(d)
    env = fstate[0]
    peak = fstate[1]
    cnt = istate[0]
    st = istate[1]
    last = istate[2]
    m = 0
    for i in range(n):
        # band-pass (transposed direct form II per section)
        for c in range(d):
            s = x[i, c]
            for k in range(ns):
                b0 = sos[k, 0]
                b1 = sos[k, 1]
                b2 = sos[k, 2]
                a1 = sos[k, 4]
                a2 = sos[k, 5]
                o = b0 * s + zi[k, c, 0]
                zi[k, c, 0] = b1 * s - a1 * o + zi[k, c, 1]
                zi[k, c, 1] = b2 * s - a2 * o
                s = o
            u[c] = lam * u[c] + s * dt  # leaky integral: a velocity-like signal, one cycle per rep
            y[c] = u[c]
        # covariance EMA and one power-iteration step
        for r in range(d):
            for c in range(d):
                cov[r, c] += a_cov * (y[r] * y[c] - cov[r, c])
        nrm = 0.0
        for r in range(d):
            acc = 0.0
            for c in range(d):
                acc += cov[r, c] * v[c]
            w[r] = acc
            nrm += acc * acc
        if nrm > 1e-30:
            nrm = np.sqrt(nrm)
            for r in range(d):
                v[r] = w[r] / nrm
        p = 0.0
        for c in range(d):
            p += v[c] * y[c]
        ap = abs(p)
        env += a_env * (ap - env)
        if ap > peak:
            peak = ap
        if st != 0 and cnt - last > gap:
            fstate[2] = peak
            st = 0  # rest: the next movement starts from neutral, its first lobe is not a half
        h = k_h * env
        if h < floor:
            h = floor
        # hysteresis: a crossing of +h (from below or the start) or of -h (from above or the start)
        side = 1 if (p > h and st <= 0) else (-1 if (p < -h and st >= 0) else 0)
        if side != 0:
            if st == 0:
                st = side
                last = cnt
                peak = ap
            elif cnt - last >= min_half:
                out_idx[m] = cnt
                out_amp[m] = peak
                out_tail[m] = fstate[2]
                peak = ap
                m += 1
                last = cnt
                st = side
        cnt += 1
    fstate[0] = env
    fstate[1] = peak
    istate[0] = cnt
    istate[1] = st
    istate[2] = last
    return m


@dataclass(slots=True)
class RepCounter:
    """Streaming rep counter: ``RepCounter(fs_hz).update(acc_g_chunk) -> list[RepEvent]``.

    ``acc_g_chunk``: (m, 3) acceleration in g at ``fs_hz`` (12.5-200 Hz tested); with
    ``use_gyro=True`` pass ``gyro_dps`` (m, 3) too. Reps come out as they happen, except that the
    first ``min_reps - 1`` reps of a set are held until the set is confirmed; :meth:`finish` closes
    the last set. :attr:`sets` lists the closed sets; :attr:`in_set` tells work from rest now.
    """

    fs_hz: float
    use_gyro: bool = False
    max_gap_s: float = 6.0
    min_reps: int = 3
    min_rep_s: float = 1.4
    t0_s: float = 0.0
    sets: list[RepSet] = field(default_factory=list, init=False)
    total: int = field(default=0, init=False)
    _sos: np.ndarray = field(init=False, repr=False)
    _zi: np.ndarray = field(init=False, repr=False)
    _cov: np.ndarray = field(init=False, repr=False)
    _v: np.ndarray = field(init=False, repr=False)
    _f: np.ndarray = field(init=False, repr=False)
    _u: np.ndarray = field(init=False, repr=False)
    _lam: float = field(init=False, repr=False)
    _i: np.ndarray = field(init=False, repr=False)
    _halves: list[int] = field(default_factory=list, init=False, repr=False)  # sample idx of halves in open set
    _amps: list[float] = field(default_factory=list, init=False, repr=False)  # peak of the lobe each half ends
    _emitted: int = field(default=0, init=False, repr=False)  # reps of the open set already emitted
    _params: tuple[float, float, float, float, int, int] = field(init=False, repr=False)
    _last: np.ndarray = field(init=False, repr=False)  # last sample, to hold over dropped ones
    held: int = field(default=0, init=False)  # samples with a non-finite channel, held at the last value

    def __post_init__(self) -> None:
        from scipy.signal import butter

        fs = float(self.fs_hz)
        if not (MIN_FS_HZ <= fs <= MAX_FS_HZ):
            raise ValueError(f"fs_hz must be in [{MIN_FS_HZ}, {MAX_FS_HZ}], got {fs}")
        if self.min_reps < 1 or self.max_gap_s <= 0:
            raise ValueError("min_reps must be >= 1 and max_gap_s > 0")
        d = 6 if self.use_gyro else 3
        self._sos = np.ascontiguousarray(butter(2, [BAND_HZ[0], BAND_HZ[1]], btype="band", fs=fs, output="sos"))
        self._zi = np.zeros((self._sos.shape[0], d, 2))
        self._cov = np.zeros((d, d))
        self._v = np.ones(d) / np.sqrt(d)
        self._f = np.zeros(3)
        self._u = np.zeros(d)
        self._last = np.zeros(d)
        self._last[2] = 1.0  # before any sample: at rest, gravity on z
        self._lam = float(np.exp(-1.0 / (INTEG_TAU_S * fs)))
        self._i = np.array([0, 0, -(10**9)], dtype=np.int64)
        a_cov = 1.0 - np.exp(-1.0 / (4.0 * fs))
        a_env = 1.0 - np.exp(-1.0 / (1.5 * fs))
        self._params = (a_cov, a_env, K_H, FLOOR_G, max(1, int(round(MIN_HALF_S * fs))),
                        int(round(self.max_gap_s * fs)))

    @property
    def in_set(self) -> bool:
        """True while a set is open and confirmed (work), False at rest."""
        return self._emitted > 0

    def _t(self, idx: int) -> float:
        return self.t0_s + idx / self.fs_hz

    def update(self, acc_g: np.ndarray, gyro_dps: np.ndarray | None = None) -> list[RepEvent]:
        a = np.asarray(acc_g, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != 3:
            raise ValueError(f"acc_g must have shape (n, 3), got {a.shape}")
        if self.use_gyro:
            if gyro_dps is None:
                raise ValueError("this counter was built with use_gyro=True: pass gyro_dps")
            g = np.asarray(gyro_dps, dtype=np.float64)
            if g.shape != a.shape:
                raise ValueError(f"gyro_dps must have the shape of acc_g {a.shape}, got {g.shape}")
            a = np.hstack((a, g * GYRO_SCALE))
        elif gyro_dps is not None:
            raise ValueError("pass gyro_dps only to a RepCounter(use_gyro=True)")
        a = np.ascontiguousarray(a)
        bad = ~np.isfinite(a)
        if bad.any():  # a dropped sample: hold the previous value rather than poison the filters
            a = np.vstack((self._last[None, :], a))
            bad = np.vstack((np.zeros((1, a.shape[1]), bool), bad))
            for c in range(a.shape[1]):
                idx = np.where(~bad[:, c], np.arange(a.shape[0]), 0)
                np.maximum.accumulate(idx, out=idx)
                a[:, c] = a[idx, c]
            a = np.ascontiguousarray(a[1:])
            self.held += int(np.count_nonzero(bad[1:].any(axis=1)))
        if a.shape[0]:
            self._last = a[-1].copy()
        start = int(self._i[0])
        out = np.empty(a.shape[0] // max(1, self._params[4]) + 2, dtype=np.int64)
        amp = np.empty(out.size)
        tail = np.empty(out.size)
        if start == 0 and a.shape[0]:
            from scipy.signal import sosfilt_zi

            self._zi[:] = sosfilt_zi(self._sos)[:, None, :] * a[0][None, :, None]
        m = _rep_kernel(a, self._sos, self._zi, self._cov, self._v, self._u, self._lam, 1.0 / self.fs_hz,
                        self._f, self._i, *self._params, out, amp, tail)
        events: list[RepEvent] = []
        gap = int(round(self.max_gap_s * self.fs_hz))
        for idx, pk, tp in zip(out[:m].tolist(), amp[:m].tolist(), tail[:m].tolist()):
            if self._halves and idx - self._halves[-1] > gap:
                events.extend(self._close(tp))
            elif self._emitted and idx - self._halves[-1] > IRREGULAR * float(np.median(np.diff(self._halves))):
                # a confirmed set ends at a pause much longer than its rhythm (rest fidgets after
                # the last rep do not join it); the lobe this half ends is the set's tail
                events.extend(self._close(pk))
            elif self._emitted and idx - self._halves[-2] < min(
                    self.min_rep_s * self.fs_hz, 0.5 * float(np.median(np.diff(self._halves[::2])))):
                # a confirmed set ends when the cycle suddenly halves to walking pace
                events.extend(self._close(pk))
            self._halves.append(idx)
            self._amps.append(pk)
            events.extend(self._advance())
        now = start + a.shape[0]
        if self._halves and now - 1 - self._halves[-1] > gap:
            events.extend(self._close(float(self._f[2])))
        return events

    def finish(self) -> list[RepEvent]:
        """Close the open set (end of the session)."""
        return self._close(float(self._f[1])) if self._halves else []

    def _trim_start(self) -> None:
        """Before a set is confirmed, drop halves that precede an irregular pause (a fidget
        shortly before the first rep: any half interval over ``IRREGULAR`` x the median), then
        leading halves until the cycles keep a rhythm."""
        while len(self._halves) >= 4:
            d = np.diff(self._halves)
            k = int(np.argmax(d))
            if d[k] <= IRREGULAR * float(np.median(d)):
                break
            self._halves = self._halves[k + 1:]
            self._amps = self._amps[k + 1:]
            if self._amps:
                self._amps[0] = 0.0  # the lobe before the first kept half is not part of the set
        # a fidget just before the first rep: its lobes are far smaller than the set's
        while len(self._halves) >= 2 and self._amps[1] < SMALL_LOBE * max(self._amps[1:]):
            self._halves = self._halves[1:]
            self._amps = self._amps[1:]
            self._amps[0] = 0.0
        # reps are slower than walking's arm swing (about 1 s a cycle): drop leading fast cycles
        fast = int(round(self.min_rep_s * self.fs_hz))
        while len(self._halves) >= 3 and self._halves[2] - self._halves[0] < fast:
            self._halves = self._halves[1:]
            self._amps = self._amps[1:]
            self._amps[0] = 0.0
        # a set has a rhythm: full cycles (half i to half i+2) within a factor RHYTHM of each other
        while len(self._halves) >= 4:
            h = np.asarray(self._halves)
            cyc = h[2:] - h[:-2]
            if cyc.max() <= RHYTHM * cyc.min():
                return
            self._halves = self._halves[1:]
            self._amps = self._amps[1:]
            self._amps[0] = 0.0

    def _advance(self) -> list[RepEvent]:
        reps = len(self._halves) // 2
        if reps < self.min_reps:
            return []
        if self._emitted == 0:
            self._trim_start()
            reps = len(self._halves) // 2
            if reps < self.min_reps:
                return []
        ev = []
        for r in range(self._emitted, reps):
            self.total += 1
            ev.append(RepEvent(self._t(self._halves[2 * r + 1]), r + 1, len(self.sets), self.total))
        self._emitted = reps
        return ev

    def _close(self, tail_peak: float) -> list[RepEvent]:
        h = self._halves
        if self._emitted == 0:
            self._trim_start()
            h = self._halves
        reps = len(h) // 2
        if len(h) % 2 == 1 and len(h) > 2:
            # odd: either the first lobe went by while the filters locked on (the last lobe is a full
            # one) or the set ended with a small settling lobe; tell them apart by its size
            if tail_peak >= TAIL_FRAC * float(np.median(self._amps[1:])):
                reps += 1
        ev: list[RepEvent] = []
        if reps >= self.min_reps:
            times = [self._t(h[min(2 * r + 1, len(h) - 1)]) for r in range(reps)]
            for r in range(self._emitted, reps):
                self.total += 1
                ev.append(RepEvent(times[r], r + 1, len(self.sets), self.total))
            self.sets.append(RepSet(len(self.sets), self._t(h[0]), self._t(h[-1]), reps, np.asarray(times)))
        self._halves = []
        self._amps = []
        self._emitted = 0
        return ev


def count_reps(acc: np.ndarray, fs_hz: float, gyro: np.ndarray | None = None, **kw: float) -> RepResult:
    """Count repetitions in a recording: ``acc`` (n, 3) in g at ``fs_hz``; ``gyro`` (n, 3) deg/s optional.

    Same result as feeding the samples to :class:`RepCounter` in any chunks and calling ``finish``.
    """
    rc = RepCounter(fs_hz, use_gyro=gyro is not None, **kw)  # type: ignore[arg-type]
    rc.update(acc, gyro)
    rc.finish()
    times = np.concatenate([s.rep_times_s for s in rc.sets]) if rc.sets else np.empty(0)
    n = np.asarray(acc).shape[0]
    work = float(sum(s.end_s - s.start_s for s in rc.sets))
    return RepResult(rc.total, times, rc.sets, float(fs_hz), max(0.0, n / fs_hz - work), work)
