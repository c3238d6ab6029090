"""``read(source) -> FitImport``: streams of a FIT file as wire batches, with what was wrong.

Two passes over the bytes (memory-mapped for paths):

1. *structure*: the Numba kernel (``scan.py``) walks headers, definitions and data messages of
   every chained file, checks both CRCs and finds where valid data ends. This yields the
   problems, the device id (from ``file_id``) and the decision whether the fast path handles the
   file. With ``strict=True`` any problem raises :class:`FitError` here, before any output.
2. *extraction*: the kernel walks again in chunks of ``CHUNK_MESSAGES`` messages; ``record`` and
   ``hrv`` fields are pulled out per definition with vectorised numpy (``extract.py``) and cut
   into 5-minute batches (``batches.py``). Peak memory is one chunk plus one window per stream,
   whatever the file size (plus the batches, unless a ``sink`` consumes them).

Files the fast path does not handle (``compressed_speed_distance`` records, record/hrv fields
with unexpected base types or array sizes, timestamps of unusual type) are decoded by fitdecode
(the reference decoder, DESIGN §10) over the same valid prefix; ``FitImport.decoder`` says which.
Developer fields and chained files are handled natively.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Union

import numpy as np

from protocols.wire import SampleBatch

from . import scan as K
from .batches import BatchBuilder
from .errors import FitError, Problem, ProblemKind
from .extract import Definition, FieldDef, column, decode_message, gather_rows, parse_definition
from .profile import (
    BASE_TYPE_SIZE, BASE_TYPES, FIT_EPOCH_S, HRV_TIME_FIELD, POSITION_FIELDS, RECORD_COMPRESSED_SPEED_DISTANCE,
    RECORD_STREAMS, SEMICIRCLE_DEG, Mesg,
)
from .summary import DeveloperField, FitSummary, SummaryCollector

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes]]

#: Messages per kernel call in the extraction pass (bounds the working memory: ~30 B/message
#: of offsets plus the gathered rows of one chunk).
CHUNK_MESSAGES = 4_096
#: Global messages decoded one by one for the summary.
SUMMARY_MESGS = np.array([Mesg.FILE_ID, Mesg.SPORT, Mesg.SESSION, Mesg.LAP, Mesg.DEVELOPER_DATA_ID,
                          Mesg.FIELD_DESCRIPTION], dtype=np.int32)
#: RR beat times (``hrv`` messages carry none): the cumulative sum of the intervals, anchored so
#: that the first message's last beat falls on the running timestamp (the record the message
#: follows), and re-anchored the same way whenever a message's last beat would drift more than
#: this from the running timestamp (pauses, gaps, a new chained file).
RR_REANCHOR_MS = 5_000
RECORD_RES_US = 1_000_000
RR_RES_US = 1_000
MAX_PROBLEMS_PER_KIND = 20


@dataclass(frozen=True, eq=False)
class DeveloperSeries:
    """Values of one numeric developer field on ``record`` messages: ``t_us`` (int64 µs since the
    epoch) and ``values`` (float64, as the developer wrote them, in the field's ``units``)."""

    t_us: np.ndarray
    values: np.ndarray

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, DeveloperSeries) and np.array_equal(self.t_us, other.t_us)
                and np.array_equal(self.values, other.values))


class _DevCollector:
    def __init__(self) -> None:
        self.t: dict[tuple[int, int], list[np.ndarray]] = {}
        self.v: dict[tuple[int, int], list[np.ndarray]] = {}

    def add(self, key: tuple[int, int], t_us: np.ndarray, values: np.ndarray) -> None:
        if len(t_us):
            self.t.setdefault(key, []).append(np.asarray(t_us, np.int64))
            self.v.setdefault(key, []).append(np.asarray(values, np.float64))

    def result(self) -> dict[tuple[int, int], DeveloperSeries]:
        return {k: DeveloperSeries(np.concatenate(self.t[k]), np.concatenate(self.v[k])) for k in sorted(self.t)}


def dev_base_type(summary: SummaryCollector, key: tuple[int, int], size: int):
    """The numeric base type of a developer field, or None when it is not one value of a number."""
    d = summary.dev_fields.get(key)
    bt = BASE_TYPES.get(d.base_type) if d is not None and d.base_type is not None else None
    if bt is None or bt.name in ("string", "byte") or bt.size != size:
        return None
    return bt


@dataclass
class FitImport:
    """Result of :func:`read`.

    ``batches``: one or more :class:`SampleBatch` per stream (empty when a ``sink`` took them);
    ``record_count``/``message_count``: ``record`` messages / all data messages in the valid part;
    ``problems``: what was wrong, each with its byte offset; ``decoder``: ``"fast"`` or
    ``"fitdecode"`` (with ``fallback_reason``); ``valid_bytes``: length of the prefix used;
    ``samples``: samples per stream.
    """

    batches: list[SampleBatch]
    record_count: int
    message_count: int
    summary: FitSummary
    developer_fields: list[DeveloperField]
    problems: list[Problem]
    decoder: str
    fallback_reason: str | None
    valid_bytes: int
    device_id: str
    samples: dict[str, int] = field(default_factory=dict)
    #: values of numeric developer fields on ``record`` messages, keyed by
    #: (developer_data_index, field_number) like ``developer_fields``
    developer_values: dict[tuple[int, int], DeveloperSeries] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------------------- input

def _load(source: Source) -> tuple[np.ndarray, Callable[[], None]]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return np.frombuffer(source, dtype=np.uint8), lambda: None
    if isinstance(source, (str, os.PathLike)):
        f = open(Path(source), "rb")
        try:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                f.close()
                return np.zeros(0, dtype=np.uint8), lambda: None
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        finally:
            f.close()
        buf = np.frombuffer(mm, dtype=np.uint8)

        def close() -> None:
            try:
                mm.close()
            except BufferError:  # a view is still alive somewhere; the GC closes it
                pass
        return buf, close
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("file objects must be opened in binary mode")
        return np.frombuffer(data, dtype=np.uint8), lambda: None
    raise TypeError(f"source must be a path, bytes or a binary file, not {type(source).__name__}")


# ------------------------------------------------------------------------------------- walking

class _FileDefs:
    """Definition arrays of one FIT file for the kernel, grown on demand."""

    def __init__(self, cap: int = 64) -> None:
        self.local = np.full(16, -1, dtype=np.int64)
        self.off = np.zeros(cap, dtype=np.int64)
        self.size = np.zeros(cap, dtype=np.int32)
        self.ts = np.zeros(cap, dtype=np.int32)
        self.flags = np.zeros(cap, dtype=np.int32)
        self.gmn = np.zeros(cap, dtype=np.int32)
        self.big = np.zeros(cap, dtype=np.uint8)
        self.parsed: dict[int, Definition] = {}
        # definitions with identical content (a local type redefined to the same layout, as
        # many devices do) share a layout id, so extraction works per layout, not per definition
        self.layout = np.zeros(cap, dtype=np.int32)
        self.layouts: list[Definition] = []
        self._layout_ids: dict[Definition, int] = {}
        self._laid = 0

    def layouts_upto(self, buf: np.ndarray, ndef: int) -> None:
        """Assign layout ids to definitions ``[done, ndef)``."""
        for d in range(self._laid, ndef):
            dd = self.get(buf, d)
            lid = self._layout_ids.get(dd)
            if lid is None:
                lid = self._layout_ids[dd] = len(self.layouts)
                self.layouts.append(dd)
            self.layout[d] = lid
        self._laid = max(self._laid, ndef)

    def grow(self) -> None:
        for name in ("off", "size", "ts", "flags", "gmn", "big", "layout"):
            a = getattr(self, name)
            setattr(self, name, np.concatenate([a, np.zeros_like(a)]))

    def get(self, buf: np.ndarray, d: int) -> Definition:
        p = self.parsed.get(d)
        if p is None:
            p = self.parsed[d] = parse_definition(buf, int(self.off[d]))
        return p


ChunkFn = Callable[[np.ndarray, _FileDefs, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


def _walk(buf: np.ndarray, *, on_file: Callable[[int], None] | None = None,
          on_defs: Callable[[_FileDefs, int, int], None] | None = None,
          on_chunk: ChunkFn | None = None, chunk: int = CHUNK_MESSAGES,
          check_crc: bool = True) -> tuple[list[Problem], int, int]:
    """Walk every chained FIT file. Returns (problems, files, valid_bytes)."""
    problems: list[Problem] = []
    n = len(buf)
    pos = 0
    files = 0
    valid = 0
    msg_off = np.zeros(chunk, dtype=np.int64)
    msg_def = np.zeros(chunk, dtype=np.int32)
    msg_ts = np.zeros(chunk, dtype=np.int64)
    msg_acc = np.zeros(chunk, dtype=np.int64)
    state = np.zeros(K.STATE_SIZE, dtype=np.int64)
    while True:
        first = files == 0
        bad_kind = ProblemKind.BAD_HEADER if first else ProblemKind.INVALID_CHAINED_FILE
        left = n - pos
        if left == 0 and not first:
            break
        if left < 12:
            what = "file is empty" if left == 0 else f"only {left} bytes left, a FIT header needs 12"
            problems.append(Problem(bad_kind if left else ProblemKind.BAD_HEADER, pos, what))
            break
        hsize = int(buf[pos])
        if hsize < 12 or bytes(buf[pos + 8:pos + 12]) != b".FIT":
            problems.append(Problem(bad_kind, pos, f"not a FIT header (size byte {hsize}, "
                                    f"signature {bytes(buf[pos + 8:pos + 12])!r})"))
            break
        if hsize > 12:
            if hsize < 14 or left < hsize:
                problems.append(Problem(bad_kind, pos, f"header of {hsize} bytes is cut short or lacks its CRC"))
                break
            hcrc = int(buf[pos + 12]) | int(buf[pos + 13]) << 8
            if hcrc != 0 and check_crc:
                calc = K.crc16(buf, pos, pos + 12)
                if calc != hcrc:
                    problems.append(Problem(ProblemKind.BAD_HEADER_CRC, pos + 12,
                                            f"header CRC 0x{hcrc:04x} != computed 0x{calc:04x}"))
        data_size = int.from_bytes(bytes(buf[pos + 4:pos + 8]), "little")
        start = pos + hsize
        data_end = start + data_size
        truncated = data_end > n
        end = n if truncated else data_end
        files += 1
        if on_file:
            on_file(files - 1)
        defs = _FileDefs()
        state[:] = 0
        state[K.POS] = start
        while True:
            ndef0 = int(state[K.NDEF])
            status = K.scan(buf, end, state, defs.local, defs.off, defs.size, defs.ts, defs.flags, defs.gmn,
                            defs.big, BASE_TYPE_SIZE, msg_off, msg_def, msg_ts, msg_acc)
            if on_defs and state[K.NDEF] > ndef0:
                on_defs(defs, ndef0, int(state[K.NDEF]))
            k = int(state[K.NMSG])
            if on_chunk and k:
                on_chunk(buf, defs, msg_off[:k], msg_def[:k], msg_ts[:k], msg_acc[:k])
            if status == K.MSG_FULL:
                continue
            if status == K.DEF_FULL:
                defs.grow()
                continue
            break
        at = int(state[K.POS])
        valid = at
        if status == K.UNDEFINED_LOCAL:
            problems.append(Problem(ProblemKind.UNDEFINED_LOCAL_MESSAGE, at,
                                    f"data message of local type {_local_of(int(buf[at]))} has no definition"))
            break
        if status == K.OVERRUN:
            if truncated:
                problems.append(Problem(ProblemKind.TRUNCATED, at, f"file ends inside a message: header declares "
                                        f"{data_size} data bytes, only {n - start} present"))
            else:
                problems.append(Problem(ProblemKind.MESSAGE_OVERRUNS_DATA, at,
                                        f"message at {at} runs past the declared data end {data_end}"))
            break
        if truncated:
            problems.append(Problem(ProblemKind.TRUNCATED, n, f"header declares {data_size} data bytes, "
                                    f"only {n - start} present"))
            break
        if data_end + 2 > n:
            problems.append(Problem(ProblemKind.TRUNCATED, data_end, "file ends before its 2-byte file CRC"))
            break
        fcrc = int(buf[data_end]) | int(buf[data_end + 1]) << 8
        calc = K.crc16(buf, pos, data_end) if check_crc else fcrc
        if fcrc != calc:
            problems.append(Problem(ProblemKind.BAD_FILE_CRC, data_end,
                                    f"file CRC 0x{fcrc:04x} != computed 0x{calc:04x} (data kept)"))
        pos = data_end + 2
        valid = pos
    return problems, files, valid


def _local_of(h: int) -> int:
    return (h >> 5) & 0x3 if h & 0x80 else h & 0xF


# ------------------------------------------------------------------------------- pass 1: plan

_STREAM_FIELDS = {num for sf in RECORD_STREAMS for num in sf.fields} | set(POSITION_FIELDS)


class _Planner:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.reason: str | None = None
        self.file_id: dict | None = None
        self.dev_used: set[tuple[int, int, int]] = set()
        self._unknown = 0

    def on_defs(self, buf: np.ndarray, defs: _FileDefs, a: int, b: int) -> None:
        for d in range(a, b):
            fl = int(defs.flags[d])
            gmn = int(defs.gmn[d])
            if fl & K.F_UNKNOWN_BASE_TYPE:
                self._unknown += 1
                if self._unknown <= MAX_PROBLEMS_PER_KIND:
                    dd = defs.get(buf, d)
                    bad = [f"field {f.num}: 0x{f.base_type:02x}" for f in dd.fields if f.base_type not in BASE_TYPES]
                    self.problems.append(Problem(ProblemKind.UNKNOWN_BASE_TYPE, int(defs.off[d]),
                                                 f"message {gmn}: unknown base type ({', '.join(bad)}); read as bytes"))
            if fl & K.F_ODD_TIMESTAMP and self.reason is None:
                self.reason = f"timestamp field of message {gmn} is not a uint32 (definition @ {int(defs.off[d])})"
            if fl & K.F_DEVELOPER:
                dd = defs.get(buf, d)
                for g in dd.dev_fields:
                    self.dev_used.add((gmn, g.dev_index, g.num))
            if gmn == Mesg.RECORD and self.reason is None:
                self.reason = _record_unsupported(defs.get(buf, d), int(defs.off[d]))
            elif gmn == Mesg.HRV and self.reason is None:
                dd = defs.get(buf, d)
                f = dd.field(HRV_TIME_FIELD)
                if f is not None and (BASE_TYPES.get(f.base_type) is None or not BASE_TYPES[f.base_type].integer
                                      or BASE_TYPES[f.base_type].size != 2 or f.size % 2):
                    self.reason = f"hrv.time has base type 0x{f.base_type:02x} size {f.size} (definition @ {int(defs.off[d])})"

    def on_chunk(self, buf, defs, msg_off, msg_def, msg_ts, msg_acc) -> None:
        if self.file_id is not None:
            return
        gmn = defs.gmn[msg_def]
        hit = np.flatnonzero(gmn == Mesg.FILE_ID)
        if hit.size:
            i = int(hit[0])
            self.file_id = decode_message(buf, int(msg_off[i]), defs.get(buf, int(msg_def[i])))


def _record_unsupported(d: Definition, off: int) -> str | None:
    for f in d.fields:
        if f.num == RECORD_COMPRESSED_SPEED_DISTANCE:
            return f"record.compressed_speed_distance (definition @ {off})"
        if f.num in _STREAM_FIELDS:
            bt = BASE_TYPES.get(f.base_type)
            if bt is None or not bt.integer or bt.size != f.size:
                return f"record field {f.num} has base type 0x{f.base_type:02x} and size {f.size} (definition @ {off})"
    return None


# ------------------------------------------------------------------------- pass 2: extraction

class _Extractor:
    def __init__(self, builder: BatchBuilder, summary: SummaryCollector) -> None:
        self.b = builder
        self.summary = summary
        self.record_count = 0
        self.message_count = 0
        self._beat_state = np.full(1, -1, dtype=np.int64)  # last beat, ms since the epoch
        self.dev = _DevCollector()

    def on_chunk(self, buf, defs: _FileDefs, msg_off, msg_def, msg_ts, msg_acc) -> None:
        self.message_count += len(msg_off)
        gmn = defs.gmn[msg_def]
        for i in np.flatnonzero(np.isin(gmn, SUMMARY_MESGS)).tolist():
            self.summary.add(int(gmn[i]), decode_message(buf, int(msg_off[i]), defs.get(buf, int(msg_def[i]))))
        ri = np.flatnonzero(gmn == Mesg.RECORD)
        hi = np.flatnonzero(gmn == Mesg.HRV)
        if ri.size or hi.size:
            defs.layouts_upto(buf, int(msg_def.max()) + 1)
            lay = defs.layout[msg_def]
        if ri.size:
            self.record_count += int(ri.size)
            self._records(buf, defs, msg_off[ri], lay[ri], msg_ts[ri])
        if hi.size:
            self._hrv(buf, defs, msg_off[hi], lay[hi], msg_acc[hi])

    def _records(self, buf, defs: _FileDefs, off, dfn, ts) -> None:
        k = len(off)
        vals = {sf.stream: np.zeros(k, dtype=np.int64) for sf in RECORD_STREAMS}
        ok = {sf.stream: np.zeros(k, dtype=bool) for sf in RECORD_STREAMS}
        pos = np.zeros((k, 2), dtype=np.int64)
        pos_ok = np.zeros(k, dtype=bool)
        dev: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for d in np.unique(dfn).tolist():  # dfn: layout ids
            sel = np.flatnonzero(dfn == d)
            dd = defs.layouts[d]
            rows = gather_rows(buf, off[sel], dd.size)
            for sf in RECORD_STREAMS:
                v, o = vals[sf.stream], ok[sf.stream]
                for num in sf.fields:
                    f = dd.field(num)
                    if f is None:
                        continue
                    col = column(rows, f, dd.big_endian)
                    good = (col != BASE_TYPES[f.base_type].invalid) & ~o[sel]
                    tgt = sel[good]
                    v[tgt] = col[good].astype(np.int64) - sf.raw_offset
                    o[tgt] = True
            flat, flon = dd.field(POSITION_FIELDS[0]), dd.field(POSITION_FIELDS[1])
            if flat is not None and flon is not None:
                la = column(rows, flat, dd.big_endian)
                lo = column(rows, flon, dd.big_endian)
                good = (la != BASE_TYPES[flat.base_type].invalid) & (lo != BASE_TYPES[flon.base_type].invalid)
                tgt = sel[good]
                pos[tgt, 0] = la[good]
                pos[tgt, 1] = lo[good]
                pos_ok[tgt] = True
            for g in dd.dev_fields:
                key = (g.dev_index, g.num)
                bt = dev_base_type(self.summary, key, g.size)
                if bt is None:
                    continue
                col = column(rows, FieldDef(g.num, g.size, bt.ident, g.offset), dd.big_endian)
                good = (col != bt.invalid) if bt.integer else ~np.isnan(col)
                dv, dok = dev.setdefault(key, (np.zeros(k), np.zeros(k, dtype=bool)))
                dv[sel[good]] = col[good]
                dok[sel[good]] = True
        has_t = ts >= 0
        if has_t.any():
            tt = ts[has_t]
            self.summary.record_times(int(tt[0]), int(tt[-1]))
        t_us = (ts + FIT_EPOCH_S) * 1_000_000
        for sf in RECORD_STREAMS:
            m = ok[sf.stream] & has_t
            if m.any():
                self.b.add(sf.stream, t_us[m], vals[sf.stream][m], scale=sf.scale, unit=sf.unit,
                           resolution_us=RECORD_RES_US)
        for key, (dv, dok) in dev.items():
            m = dok & has_t
            self.dev.add(key, t_us[m], dv[m])
        m = pos_ok & has_t
        if m.any():
            self.b.add("position", t_us[m], pos[m], scale=SEMICIRCLE_DEG, unit="deg", resolution_us=RECORD_RES_US)

    def _hrv(self, buf, defs: _FileDefs, off, dfn, acc) -> None:
        groups = []
        width = 0
        for d in np.unique(dfn).tolist():  # dfn: layout ids
            dd = defs.layouts[d]
            f = dd.field(HRV_TIME_FIELD)
            if f is None or f.size == 0:
                continue
            sel = np.flatnonzero(dfn == d)
            col = column(gather_rows(buf, off[sel], dd.size), f, dd.big_endian, count=f.size // 2)
            col = col.reshape(len(sel), -1).astype(np.int64)
            col[col == BASE_TYPES[f.base_type].invalid] = -1
            groups.append((sel, col))
            width = max(width, col.shape[1])
        if not groups:
            return
        rr = np.full((len(off), width), -1, dtype=np.int64)
        for sel, col in groups:
            rr[sel, :col.shape[1]] = col
        t_ms = np.empty(rr.size, dtype=np.int64)
        vals = np.empty(rr.size, dtype=np.int64)
        k = K.rr_beats(rr, acc, FIT_EPOCH_S, RR_REANCHOR_MS, self._beat_state, t_ms, vals)
        if k:
            self.b.add("rr_interval", t_ms[:k] * 1000, vals[:k], scale=0.001, unit="s", resolution_us=RR_RES_US)


# ------------------------------------------------------------------------------------ public

def read(source: Source, *, strict: bool = False, sink: Callable[[SampleBatch], None] | None = None,
         fast: bool = True) -> FitImport:
    """Import a FIT file (path, bytes or binary file object).

    Returns the valid part as :class:`SampleBatch` es per stream (``heart_rate`` bpm, ``power`` W,
    ``cadence`` rpm, ``speed`` m/s, ``distance`` m, ``altitude`` m, ``position`` deg lat/lon,
    ``temperature`` °C, ``rr_interval`` s) plus counts, summary, developer fields and problems.
    ``strict=True`` raises :class:`FitError` on any problem (before producing output).
    ``sink``: called with each batch as soon as it is complete instead of keeping it in
    ``.batches`` (constant memory). ``fast=False`` forces the fitdecode reference path.
    Raises only :class:`FitError` (strict), :class:`TypeError` (bad source type) and
    :class:`OSError` (a path that cannot be opened). A path is memory-mapped: a file truncated
    by someone else *while* it is read can kill the process with SIGBUS (read it into bytes
    first when that can happen). In strict mode on the fitdecode path, a problem found only by
    fitdecode raises after earlier batches went to ``sink``.
    """
    buf, close = _load(source)
    try:
        return _read(buf, strict=strict, sink=sink, fast=fast)
    finally:
        del buf
        close()


def _read(buf: np.ndarray, *, strict: bool, sink, fast: bool) -> FitImport:
    plan = _Planner()
    problems, files, valid = _walk(buf, on_defs=lambda d, a, b: plan.on_defs(buf, d, a, b), on_chunk=plan.on_chunk)
    problems = sorted(problems + plan.problems, key=lambda p: p.offset)
    if strict and problems:
        raise FitError.from_problems(problems)
    pre = SummaryCollector()
    if plan.file_id:
        pre.add(Mesg.FILE_ID, plan.file_id)
    device_id = pre.summary().device_id
    out: list[SampleBatch] = []
    builder = BatchBuilder(device_id, sink or out.append)
    summary = SummaryCollector()
    for key in plan.dev_used:
        summary.dev_used(*key)
    summary.files = files
    reason = plan.reason if fast else "fast path disabled (fast=False)"
    if reason is None:
        ex = _Extractor(builder, summary)
        _walk(buf, on_chunk=ex.on_chunk, check_crc=False)  # CRCs were checked by pass 1
        rc, mc, decoder = ex.record_count, ex.message_count, "fast"
        dev_values = ex.dev.result()
    else:
        from .reference import read_reference
        dev = _DevCollector()
        rc, mc, extra = read_reference(bytes(buf[:valid]), builder, summary, dev)
        dev_values = dev.result()
        if strict and extra:
            raise FitError.from_problems(extra)
        problems.extend(extra)
        decoder = "fitdecode"
    builder.flush()
    return FitImport(batches=out, record_count=rc, message_count=mc, summary=summary.summary(),
                     developer_fields=summary.developer_fields(), problems=problems, decoder=decoder,
                     fallback_reason=reason, valid_bytes=valid, device_id=device_id, samples=dict(builder.samples),
                     developer_values=dev_values)
