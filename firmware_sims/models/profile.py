"""Workout profiles: intensity (0 = rest, 1 = maximal) as a function of time, repeating."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    duration_s: float
    start: float  # intensity at the start of the segment (0..1)
    end: float  # intensity at its end (linear ramp)


@dataclass(frozen=True)
class WorkoutProfile:
    """A sequence of ramps, repeated for ever (so any simulated time has an intensity)."""

    segments: tuple[Segment, ...]

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.segments)

    def intensity(self, t_s: float) -> float:
        t = t_s % self.duration_s
        for s in self.segments:
            if t < s.duration_s:
                return s.start + (s.end - s.start) * (t / s.duration_s)
            t -= s.duration_s
        return self.segments[-1].end


def intervals(warmup_s: float = 300, hard_s: float = 180, easy_s: float = 120, reps: int = 4,
              cooldown_s: float = 300) -> WorkoutProfile:
    """Warm-up ramp, ``reps`` × (hard, easy), cool-down: the default gym session (~30 min)."""
    segs = [Segment(warmup_s, 0.1, 0.5)]
    for _ in range(reps):
        segs += [Segment(hard_s, 0.85, 0.9), Segment(easy_s, 0.45, 0.4)]
    segs.append(Segment(cooldown_s, 0.4, 0.1))
    return WorkoutProfile(tuple(segs))
