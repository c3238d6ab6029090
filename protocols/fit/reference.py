"""The reference path: decode with fitdecode (DESIGN §10) what the fast path does not handle.

Fed the valid prefix found by the structure pass, it produces the same streams, counts and
summary through the same :class:`BatchBuilder` and :class:`SummaryCollector`. fitdecode's
``raw_value`` is the FIT raw integer for ordinary fields; fields expanded from components
(``compressed_speed_distance`` -> speed, distance; speed -> enhanced_speed) only carry the
scaled value, which is turned back into the raw integer.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from .batches import BatchBuilder
from .errors import Problem, ProblemKind
from .profile import FIT_EPOCH_S, HRV_TIME_FIELD, POSITION_FIELDS, RECORD_STREAMS, SEMICIRCLE_DEG, Mesg
from .reader import RECORD_RES_US, RR_REANCHOR_MS, RR_RES_US, SUMMARY_MESGS, dev_base_type
from .summary import SummaryCollector

_SUMMARY = set(SUMMARY_MESGS.tolist())


def _field_raw(msg, num: int) -> int | None:
    """FIT raw integer of the message's own (non-developer) field ``num``; None when absent/invalid."""
    for fd in msg.fields:
        fdef = fd.field_def
        if fdef is not None and getattr(fdef, "def_num", None) == num and not getattr(fdef, "is_dev", False):
            return fd.raw_value if isinstance(fd.raw_value, int) else None
    return None


def _component_value(msg, num: int) -> float | None:
    """Scaled value of field ``num`` expanded from another field's components, if any."""
    for fd in msg.fields:
        if fd.field_def is None and fd.field is not None and getattr(fd.field, "def_num", None) == num:
            v = fd.raw_value  # fitdecode stores components already scaled (and offset)
            return float(v) if isinstance(v, (int, float)) else None
    return None


#: Resolution kept for values expanded from components, where it is finer than the field's own:
#: record.compressed_speed_distance gives distance in 1/16 m (FIT profile).
COMPONENT_SCALE = {5: 16.0}


def _value(msg, num: int, fit_scale: float, fit_offset: float) -> tuple[int, float] | None:
    """(raw, FIT scale) of record field ``num``: the field's own raw integer, else the raw integer
    back from a component-expanded value (speed from compressed_speed_distance in 1/100 m/s is
    exact in 1/1000; distance keeps its 1/16 m)."""
    if any(fd.field_def is not None and getattr(fd.field_def, "def_num", None) == num
           and not getattr(fd.field_def, "is_dev", False) for fd in msg.fields):
        r = _field_raw(msg, num)
        return None if r is None else (r, fit_scale)
    v = _component_value(msg, num)
    if v is None:
        return None
    sc = COMPONENT_SCALE.get(num, fit_scale)
    return int(round((v + fit_offset) * sc)), sc


def read_reference(data: bytes, builder: BatchBuilder, summary: SummaryCollector, dev=None) -> tuple[int, int, list[Problem]]:
    """Decode ``data`` with fitdecode into ``builder``/``summary``: (records, messages, problems)."""
    import fitdecode

    problems: list[Problem] = []
    records = messages = 0
    cols: dict[str, tuple[list[int], list]] = {}
    beat_ms: int | None = None
    last_ts = 0
    offset = 0

    def push(stream: str, t: int, v) -> None:
        cols.setdefault(stream, ([], []))
        cols[stream][0].append(t)
        cols[stream][1].append(v)

    def flush() -> None:
        for sf in RECORD_STREAMS:
            for key in [k for k in cols if k == sf.stream or k.startswith(sf.stream + "@")]:
                t, v = cols.pop(key)
                scale = sf.scale if key == sf.stream else 1.0 / float(key.split("@")[1])
                builder.add(sf.stream, np.array(t, np.int64), np.array(v, np.int64), scale=scale, unit=sf.unit,
                            resolution_us=RECORD_RES_US)
        if "position" in cols:
            t, v = cols.pop("position")
            builder.add("position", np.array(t, np.int64), np.array(v, np.int64).reshape(-1, 2),
                        scale=SEMICIRCLE_DEG, unit="deg", resolution_us=RECORD_RES_US)
        if "rr_interval" in cols:
            t, v = cols.pop("rr_interval")
            builder.add("rr_interval", np.array(t, np.int64), np.array(v, np.int64), scale=0.001, unit="s",
                        resolution_us=RR_RES_US)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.DISABLED,
                                         error_handling=fitdecode.ErrorHandling.IGNORE, processor=None)
            for frame in reader:
                offset = getattr(frame, "chunk", None).offset if getattr(frame, "chunk", None) else offset
                if isinstance(frame, fitdecode.FitHeader):
                    last_ts = 0
                    continue
                if not isinstance(frame, fitdecode.FitDataMessage):
                    continue
                messages += 1
                gmn = frame.global_mesg_num
                ts = None
                for fd in frame.fields:
                    if fd.name == "timestamp" and isinstance(fd.raw_value, int):
                        ts = fd.raw_value
                        break
                if ts is not None:
                    last_ts = ts
                if gmn in _SUMMARY:
                    f = {}
                    for fd in frame.fields:
                        if fd.field_def is not None and not getattr(fd.field_def, "is_dev", False):
                            f.setdefault(fd.field_def.def_num, fd.raw_value)
                    summary.add(gmn, f)
                if gmn == Mesg.RECORD:
                    records += 1
                    if ts is None:
                        continue
                    summary.record_times(ts, ts)
                    t_us = (ts + FIT_EPOCH_S) * 1_000_000
                    for sf in RECORD_STREAMS:
                        for num in sf.fields:
                            got = _value(frame, num, sf.fit_scale, sf.fit_offset)
                            if got is not None:
                                raw, sc = got
                                key = sf.stream if sc == sf.fit_scale else f"{sf.stream}@{sc:g}"
                                push(key, t_us, raw - round(sf.fit_offset * sc))
                                break
                    if dev is not None:
                        for fd in frame.fields:
                            fdef = fd.field_def
                            if fdef is None or not getattr(fdef, "is_dev", False):
                                continue
                            key = (fdef.dev_data_index, fdef.def_num)
                            if dev_base_type(summary, key, fdef.size) is None:
                                continue
                            v = fd.raw_value
                            if isinstance(v, (int, float)) and not isinstance(v, bool):
                                dev.add(key, np.array([t_us]), np.array([float(v)]))
                    la = _field_raw(frame, POSITION_FIELDS[0])
                    lo = _field_raw(frame, POSITION_FIELDS[1])
                    if isinstance(la, int) and isinstance(lo, int):
                        push("position", t_us, (la, lo))
                elif gmn == Mesg.HRV:
                    vals = None
                    for fd in frame.fields:
                        if fd.field_def is not None and fd.field_def.def_num == HRV_TIME_FIELD:
                            vals = fd.raw_value
                    if isinstance(vals, int):
                        vals = (vals,)
                    if isinstance(vals, tuple) and last_ts > 0:
                        rr = [x for x in vals if isinstance(x, int)]
                        if rr:
                            anchor = (last_ts + FIT_EPOCH_S) * 1000
                            if beat_ms is None or abs(beat_ms + sum(rr) - anchor) > RR_REANCHOR_MS:
                                beat_ms = anchor - sum(rr)
                            for x in rr:
                                beat_ms += x
                                push("rr_interval", beat_ms * 1000, x)
                if len(cols.get("heart_rate", ((),))[0]) >= 4096:
                    flush()
    except Exception as exc:  # noqa: BLE001 - fitdecode raises more than FitError on odd input
        # the valid prefix may end inside a record or before a CRC: an EOF there is expected
        at_end = isinstance(exc, fitdecode.FitEOFError) and exc.offset + exc.got >= len(data)
        if not at_end:
            problems.append(Problem(ProblemKind.DECODER_ERROR, getattr(exc, "offset", offset),
                                    f"fitdecode: {type(exc).__name__}: {exc}"))
    flush()
    return records, messages, problems
