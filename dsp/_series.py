"""Input checks shared by the streaming HR accumulators (energy, TRIMP)."""

from __future__ import annotations

import numpy as np


def hr_chunk_seconds(t_us: np.ndarray, hr_bpm: np.ndarray, t0_us: int | None) -> tuple[int | None, np.ndarray, np.ndarray]:
    """Check one chunk of ``(t_us, hr_bpm)`` and put its times in seconds since ``t0_us``.

    ``t0_us`` is the accumulator's origin (None before its first sample; then the chunk's first
    time becomes it). Returns ``(t0_us, t_s float64, hr float64 contiguous)``.
    """
    t_us = np.asarray(t_us, dtype=np.int64)
    h = np.ascontiguousarray(hr_bpm, dtype=np.float64)
    if t_us.shape != h.shape or t_us.ndim != 1:
        raise ValueError(f"t_us and hr_bpm must be 1-D of equal length, got {t_us.shape} and {h.shape}")
    if t_us.size and t0_us is None:
        t0_us = int(t_us[0])
    t_s = (t_us - (t0_us or 0)).astype(np.float64) * 1e-6
    return t0_us, t_s, h
