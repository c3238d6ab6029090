"""On-edge signal processing: zones, training load, energy, HRV, artifact correction, reps.

Kernels are Numba ``@njit`` functions (cached) that run as plain Python where Numba is missing
or ``NUMBA_DISABLE_JIT=1`` (same numbers, slower). Each batch function has a streaming form that
gives the same answer on any chunking of the input.

Streaming objects for the edge agent (one per athlete/stream; ``update`` takes numpy arrays,
``t_us`` int64 microseconds since the epoch, and returns a small dataclass):

- ``TimeInZone(model).update(t_us, value)`` -> ``TimeInZoneUpdate(labels, seconds, zone)``
- ``TrimpAccumulator(hr_rest, hr_max, sex).update(t_us, hr_bpm)`` -> ``TrimpUpdate(banister, edwards)``
- ``EnergyAccumulator(sex, age, weight_kg, vo2max=None).update(t_us, hr_bpm)`` -> ``EnergyUpdate(kj, kcal)``
- ``RollingHrvStream(window_s=300, step_s=1, correct_artifacts=False).update(t_us, rr_ms)``
  -> ``RollingHrv(t_end_ms, rmssd_ms, sdnn_ms, mean_hr_bpm, n_beats)``; ``finish()`` flushes
- ``ArtifactStream().update(t_ms, rr_ms)`` -> corrected ``(t_ms, rr_ms)`` (about 50 beats late)
- ``RepCounter(fs_hz).update(acc_g)`` -> ``list[RepEvent]``; ``.sets`` / ``finish()`` give ``RepSet``s

Batch forms: ``time_in_zone``, ``trimp``, ``energy_kj``, ``hrv.time_domain`` /
``frequency_domain`` / ``poincare`` / ``rolling_hrv``, ``artifacts.detect`` / ``correct``,
``count_reps``. Generated test data: ``dsp.synth``. Docs: ``docs/dsp.md``.

Zone models: ``hrmax_zones``, ``karvonen_zones``, ``friel_lthr_zones``, ``coggan_power_zones``.
"""

from ._jit import HAVE_NUMBA
from .artifacts import ArtifactStream
from .energy import EnergyAccumulator, EnergyUpdate, energy_kj, keytel_kj_per_min
from .hrv import RollingHrv, RollingHrvStream, frequency_domain, poincare, rolling_hrv, rolling_rmssd, time_domain
from .filters import SosStream
from .load import TrimpAccumulator, TrimpUpdate, banister_trimp, edwards_trimp, trimp
from .reps import RepCounter, RepEvent, RepResult, RepSet, count_reps
from .zones import (
    TimeInZone,
    TimeInZoneUpdate,
    ZoneModel,
    coggan_power_zones,
    friel_lthr_zones,
    hrmax_zones,
    karvonen_zones,
    tanaka_hrmax,
    time_in_zone,
    zone_labels,
)

__all__ = [
    "HAVE_NUMBA",
    "ArtifactStream",
    "SosStream",
    "RepCounter", "RepEvent", "RepResult", "RepSet", "count_reps",
    "EnergyAccumulator", "EnergyUpdate", "energy_kj", "keytel_kj_per_min",
    "RollingHrv", "RollingHrvStream", "frequency_domain", "poincare", "rolling_hrv", "rolling_rmssd", "time_domain",
    "TrimpAccumulator", "TrimpUpdate", "banister_trimp", "edwards_trimp", "trimp",
    "TimeInZone", "TimeInZoneUpdate", "ZoneModel", "coggan_power_zones", "friel_lthr_zones", "hrmax_zones",
    "karvonen_zones", "tanaka_hrmax", "time_in_zone", "zone_labels",
]
