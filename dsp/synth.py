"""Synthetic gym sessions from a wrist IMU, with the true rep times: for tests and benchmarks.

Each exercise moves the wrist along a path in the world frame (z up) while the forearm turns;
the accelerometer reads specific force ``a - g`` in the sensor frame, in g, so turning the
forearm moves gravity between the axes as it does on a real watch. The simulation runs at
400 Hz and is sampled at the requested rate by averaging (the sensor's own anti-alias filter).

Per rep: a smooth concentric phase, a hold, an eccentric phase, a hold, each with its own random
duration (tempo jitter), and an amplitude that varies from rep to rep and fades with fatigue.
Between sets: rest with slow wrist drift and occasional fidgets (single small movements, which a
rep counter must not count). The watch sits on the wrist in a random orientation per session,
and the data carry white noise, per-axis bias and gain error.

The model is ours and simple; it is a stand-in for real recordings, not a replacement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["EXERCISES", "SynthSet", "SynthSession", "generate_session", "random_rotation"]

_SIM_HZ = 400.0
_G = 9.80665

# name: (path kind, translation m, rotation deg, rotation axis in world frame, direction of travel)
EXERCISES: dict[str, dict[str, object]] = {
    "curl": {"kind": "arc", "radius_m": 0.32, "angle_deg": 125.0, "axis": (0.0, 1.0, 0.0), "start_deg": -90.0},
    "lateral_raise": {"kind": "arc", "radius_m": 0.6, "angle_deg": 80.0, "axis": (1.0, 0.0, 0.0), "start_deg": -85.0},
    "shoulder_press": {"kind": "line", "dist_m": 0.45, "dir": (0.0, 0.0, 1.0), "tilt_deg": 12.0},
    "squat": {"kind": "line", "dist_m": 0.5, "dir": (0.0, 0.0, 1.0), "tilt_deg": 5.0},
    "row": {"kind": "line", "dist_m": 0.35, "dir": (1.0, 0.0, 0.2), "tilt_deg": 25.0},
    "bench_press": {"kind": "line", "dist_m": 0.4, "dir": (0.0, 0.0, 1.0), "tilt_deg": 8.0},
}


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly random 3x3 rotation matrix (from a random unit quaternion)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _axis_rot(axis: np.ndarray, ang: np.ndarray) -> np.ndarray:
    """Rotation matrices (n,3,3) about a unit axis by angles (rad)."""
    a = axis / np.linalg.norm(axis)
    x, y, z = a
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    s = np.sin(ang)[:, None, None]
    c = np.cos(ang)[:, None, None]
    return np.eye(3)[None] + s * k[None] + (1 - c) * (k @ k)[None]


@dataclass(frozen=True, slots=True)
class SynthSet:
    exercise: str
    n_reps: int
    start_s: float
    end_s: float
    rep_times_s: np.ndarray  # end of each rep's eccentric phase


@dataclass(frozen=True, slots=True)
class SynthSession:
    fs_hz: float
    acc_g: np.ndarray  # (n, 3)
    gyro_dps: np.ndarray  # (n, 3)
    sets: list[SynthSet] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.acc_g.shape[0] / self.fs_hz


def _profile(rng: np.random.Generator, n_reps: int, period_s: float) -> tuple[np.ndarray, list[float]]:
    """Rep phase profile in [0, 1] at the simulation rate, and the end time of every rep."""
    parts: list[np.ndarray] = []
    ends: list[float] = []
    t = 0.0
    amp = 1.0
    for r in range(n_reps):
        per = period_s * rng.uniform(0.85, 1.15)
        f_con = rng.uniform(0.3, 0.4)
        f_ecc = rng.uniform(0.35, 0.5)
        f_top = rng.uniform(0.02, 0.15)
        tc, te = per * f_con, per * f_ecc
        th = per * f_top
        tb = max(0.05, per - tc - te - th)
        a = amp * rng.uniform(0.9, 1.05)
        up = a * (0.5 - 0.5 * np.cos(np.pi * np.arange(int(tc * _SIM_HZ)) / (tc * _SIM_HZ)))
        top = np.full(int(th * _SIM_HZ), a)
        down = a * (0.5 + 0.5 * np.cos(np.pi * np.arange(int(te * _SIM_HZ)) / (te * _SIM_HZ)))
        bottom = np.zeros(int(tb * _SIM_HZ))
        seg = np.concatenate((up, top, down, bottom))
        parts.append(seg)
        t += (up.size + top.size + down.size) / _SIM_HZ
        ends.append(t)
        t += bottom.size / _SIM_HZ
        amp *= 1.0 - rng.uniform(0.0, 0.02) if r > n_reps / 2 else 1.0
    return np.concatenate(parts), ends


def _kinematics(ex: dict[str, object], phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World position (n,3) m and forearm orientation matrices (n,3,3) for a phase profile."""
    if ex["kind"] == "arc":
        axis = np.asarray(ex["axis"], dtype=float)
        ang = np.deg2rad(float(ex["start_deg"]) + float(ex["angle_deg"]) * phase)  # type: ignore[arg-type]
        rot = _axis_rot(axis, ang - np.deg2rad(float(ex["start_deg"])))  # type: ignore[arg-type]
        r = float(ex["radius_m"])  # type: ignore[arg-type]
        # circle in the plane normal to axis
        u = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        u = u - axis * (u @ axis)
        u /= np.linalg.norm(u)
        w = np.cross(axis, u)
        pos = r * (np.cos(ang)[:, None] * u[None] + np.sin(ang)[:, None] * w[None])
        return pos, rot
    d = np.asarray(ex["dir"], dtype=float)
    d /= np.linalg.norm(d)
    pos = float(ex["dist_m"]) * phase[:, None] * d[None]  # type: ignore[arg-type]
    rot = _axis_rot(np.array([0.0, 1.0, 0.0]), np.deg2rad(float(ex["tilt_deg"])) * phase)  # type: ignore[arg-type]
    return pos, rot


def _rest(rng: np.random.Generator, dur_s: float, fidgets: bool) -> tuple[np.ndarray, np.ndarray]:
    n = int(dur_s * _SIM_HZ)
    pos = np.zeros((n, 3))
    # slow orientation drift (a few degrees) about a random axis
    drift = np.cumsum(rng.normal(0, 0.02, n)) / np.sqrt(_SIM_HZ)
    drift = np.deg2rad(4.0) * np.tanh(drift)
    rot = _axis_rot(rng.normal(size=3), drift)
    if fidgets and dur_s > 10:
        for _ in range(rng.integers(0, 3)):
            c = rng.integers(int(2 * _SIM_HZ), n - int(2 * _SIM_HZ))
            w = int(rng.uniform(0.6, 1.5) * _SIM_HZ)
            bump = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(w) / w)
            pos[c:c + w] += rng.normal(0, 0.08, 3)[None] * bump[:, None]
    return pos, rot


def _walk(rng: np.random.Generator, dur_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Walking: the arm swings about the shoulder (±20-30°, 0.8-1.0 Hz) while the body bobs at
    the step rate (twice the swing) and moves forward; the watch turns with the arm."""
    n = int(dur_s * _SIM_HZ)
    t = np.arange(n) / _SIM_HZ
    f = rng.uniform(0.8, 1.0)
    amp = np.deg2rad(rng.uniform(20, 30))
    ramp = np.clip(np.minimum(t, dur_s - t) / 1.0, 0, 1)  # start and stop over a second
    ang = amp * ramp * np.sin(2 * np.pi * f * t)
    r = 0.6
    speed = 1.3 * ramp
    pos = np.stack([r * np.sin(ang) + np.cumsum(speed) / _SIM_HZ,
                    np.zeros(n),
                    -r * (np.cos(ang) - 1) + 0.03 * ramp * np.sin(2 * np.pi * 2 * f * t)], axis=1)
    rot = _axis_rot(np.array([0.0, 1.0, 0.0]), ang)
    return pos, rot


def generate_session(fs_hz: float, sets: list[tuple[str, int]], *, seed: int = 0, rest_s: tuple[float, float] = (40.0, 90.0),
                     period_s: tuple[float, float] = (1.8, 3.5), noise_g: float = 0.02, fidgets: bool = True,
                     orientation: np.ndarray | None = None, walk_s: tuple[float, float] | None = None) -> SynthSession:
    """A session of ``sets`` = [(exercise, n_reps), ...] sampled at ``fs_hz``.

    ``orientation``: 3x3 rotation of the watch on the wrist (random when None). ``walk_s``: each
    rest after a set includes a walk of that many seconds (uniform in the range), as between
    machines; a session with no sets and ``walk_s`` is a walk between two short rests.
    """
    if fs_hz <= 0 or fs_hz > _SIM_HZ:
        raise ValueError(f"fs_hz must be in (0, {_SIM_HZ}], got {fs_hz}")
    rng = np.random.default_rng(seed)
    mount = random_rotation(rng) if orientation is None else np.asarray(orientation, dtype=float)
    pos_parts: list[np.ndarray] = []
    rot_parts: list[np.ndarray] = []
    info: list[SynthSet] = []
    t = 0.0
    lead_pos, lead_rot = _rest(rng, rng.uniform(*rest_s) / 3, fidgets)
    pos_parts.append(lead_pos)
    rot_parts.append(lead_rot)
    t += lead_pos.shape[0] / _SIM_HZ
    for ex_name, n_reps in sets:
        if ex_name not in EXERCISES:
            raise ValueError(f"unknown exercise {ex_name!r}; known: {sorted(EXERCISES)}")
        ex = EXERCISES[ex_name]
        phase, ends = _profile(rng, n_reps, rng.uniform(*period_s))
        pos, rot = _kinematics(ex, phase)
        # settle into the start pose for a moment
        info.append(SynthSet(ex_name, n_reps, t, t + phase.size / _SIM_HZ, t + np.asarray(ends)))
        pos_parts.append(pos - pos[0])
        rot_parts.append(rot)
        t += phase.size / _SIM_HZ
        rp, rr = _rest(rng, rng.uniform(*rest_s), fidgets)
        if walk_s is not None:  # stand a while, walk to the next machine, stand again
            k = rp.shape[0] // 2
            wp, wr = _walk(rng, rng.uniform(*walk_s))
            wp = wp + rp[k]
            tail_p = rp[k:] - rp[k] + wp[-1]
            rp = np.concatenate((rp[:k], wp, tail_p))
            rr = np.concatenate((rr[:k], wr, rr[k:]))
        pos_parts.append(rp)
        rot_parts.append(rr)
        t += rp.shape[0] / _SIM_HZ
    if not sets and walk_s is not None:
        wp, wr = _walk(rng, rng.uniform(*walk_s))
        rp, rr = _rest(rng, 10.0, False)
        pos_parts += [wp + pos_parts[-1][-1], rp + pos_parts[-1][-1] + wp[-1]]
        rot_parts += [wr, rr]
    # positions continue from where the previous segment ended
    off = np.zeros(3)
    for k in range(len(pos_parts)):
        pos_parts[k] = pos_parts[k] - pos_parts[k][0] + off
        off = pos_parts[k][-1]
    pos = np.concatenate(pos_parts)
    rot = np.concatenate(rot_parts)
    # smooth joins between segments (no acceleration spikes at segment edges)
    k = int(0.25 * _SIM_HZ)
    ker = np.hanning(k)
    ker /= ker.sum()
    pos = np.stack([np.convolve(pos[:, i], ker, mode="same") for i in range(3)], axis=1)
    acc_w = np.gradient(np.gradient(pos, 1 / _SIM_HZ, axis=0), 1 / _SIM_HZ, axis=0) / _G
    f_w = acc_w + np.array([0.0, 0.0, 1.0])[None]
    # sensor frame: forearm rotation then mount
    f_s = np.einsum("ij,njk,nk->ni", mount.T, np.transpose(rot, (0, 2, 1)), f_w)
    # gyro from successive orientations (small-angle)
    drot = np.einsum("nji,njk->nik", rot[:-1], rot[1:])
    omega = np.stack([drot[:, 2, 1] - drot[:, 1, 2], drot[:, 0, 2] - drot[:, 2, 0], drot[:, 1, 0] - drot[:, 0, 1]], 1) / 2
    omega = np.vstack((omega, omega[-1:])) * _SIM_HZ
    g_s = np.rad2deg(omega @ mount)
    # sample at fs by block averaging
    step = _SIM_HZ / fs_hz
    n_out = int(f_s.shape[0] / step)
    edges = np.round(np.arange(n_out + 1) * step).astype(int)
    cs = np.vstack((np.zeros((1, 3)), np.cumsum(f_s, axis=0)))
    acc = (cs[edges[1:]] - cs[edges[:-1]]) / np.diff(edges)[:, None]
    cg = np.vstack((np.zeros((1, 3)), np.cumsum(g_s, axis=0)))
    gyro = (cg[edges[1:]] - cg[edges[:-1]]) / np.diff(edges)[:, None]
    gain = 1.0 + rng.normal(0, 0.01, 3)
    bias = rng.normal(0, 0.02, 3)
    acc = acc * gain + bias + rng.normal(0, noise_g, acc.shape)
    gyro = gyro + rng.normal(0, 1.0, gyro.shape)
    return SynthSession(float(fs_hz), acc, gyro, info)
