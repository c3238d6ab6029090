"""Independent expectations from fitdecode (the reference decoder), by field *name* and physical
value, for comparison with what protocols.fit emits."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import fitdecode

DATA = Path(__file__).resolve().parents[2] / "data" / "fit"
FIT_EPOCH_S = 631065600

#: stream -> fitdecode field names, preferred first
STREAM_NAMES = {
    "heart_rate": ("heart_rate",),
    "power": ("power",),
    "cadence": ("cadence",),
    "speed": ("enhanced_speed", "speed"),
    "distance": ("distance",),
    "altitude": ("enhanced_altitude", "altitude"),
    "temperature": ("temperature",),
}


@dataclass
class Expected:
    records: int = 0
    messages: int = 0
    error: str | None = None
    streams: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)  # t (FIT s), value
    position: tuple[list[int], list[tuple[int, int]]] = field(default_factory=lambda: ([], []))
    rr_ms: list[int] = field(default_factory=list)
    dev: dict[tuple[int, int], tuple[list[int], list[float]]] = field(default_factory=dict)


def _first(msg, name):
    for fd in msg.fields:
        if fd.name == name and fd.value is not None:
            return fd.value
    return None


def expected(path: Path) -> Expected:
    e = Expected()
    seen_ts = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with fitdecode.FitReader(str(path), check_crc=fitdecode.CrcCheck.DISABLED,
                                     error_handling=fitdecode.ErrorHandling.IGNORE, processor=None) as fr:
                for frame in fr:
                    if isinstance(frame, fitdecode.FitHeader):
                        seen_ts = False
                    if not isinstance(frame, fitdecode.FitDataMessage):
                        continue
                    e.messages += 1
                    ts = _first(frame, "timestamp")
                    if ts is not None:
                        seen_ts = True
                    if frame.name == "record":
                        e.records += 1
                        if ts is None:
                            continue
                        for stream, names in STREAM_NAMES.items():
                            for n in names:
                                v = _first(frame, n)
                                if isinstance(v, (int, float)):
                                    e.streams.setdefault(stream, ([], []))
                                    e.streams[stream][0].append(ts)
                                    e.streams[stream][1].append(float(v))
                                    break
                        for fd in frame.fields:
                            if getattr(fd.field_def, "is_dev", False) and isinstance(fd.value, (int, float)):
                                k = (fd.field_def.dev_data_index, fd.field_def.def_num)
                                e.dev.setdefault(k, ([], []))
                                e.dev[k][0].append(ts)
                                e.dev[k][1].append(float(fd.value))
                        la, lo = _first(frame, "position_lat"), _first(frame, "position_long")
                        if isinstance(la, int) and isinstance(lo, int):
                            e.position[0].append(ts)
                            e.position[1].append((la, lo))
                    elif frame.name == "hrv" and seen_ts:
                        v = _first(frame, "time")
                        if v is not None:
                            vals = v if isinstance(v, tuple) else (v,)
                            e.rr_ms.extend(round(x * 1000) for x in vals if x is not None)
        except fitdecode.FitError as exc:
            e.error = f"{type(exc).__name__}: {exc}"
    return e
