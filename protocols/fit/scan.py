"""Numba kernels: walk FIT records (definitions and data messages) and compute FIT CRCs.

The kernels only find message boundaries; they never decode field values (see ``extract.py``).
They run as plain Python when numba is missing or disabled (``_jit.py``).

``scan`` walks the data part of one FIT file from ``state[POS]`` to ``data_end`` and writes, for
each data message, its byte offset (of the record header), its definition index, its own
timestamp (raw FIT seconds from field 253 or from a compressed-timestamp header; -1 when it has
none) and the running timestamp (last one seen, for messages such as ``hrv`` that carry none).
It stops at ``data_end``, when an output array is full (call again to resume: all state is in
``state``, ``local_def`` and the definition arrays), or at the first structural error.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit

# state slots
POS = 0       # byte offset of the next record header
ACC = 1       # compressed-timestamp accumulator = last timestamp seen (raw FIT seconds)
NMSG = 2      # data messages written in this call
NDEF = 3      # definitions stored so far (all calls)
ERR_POS = 4   # offset of the record that caused a non-OK status
STATE_SIZE = 5

# status codes
OK = 0                # reached data_end exactly
MSG_FULL = 1          # message outputs full: process them and call again
DEF_FULL = 2          # definition arrays full: grow them and call again
OVERRUN = 3           # a record runs past data_end (truncated file, or a bad data size)
UNDEFINED_LOCAL = 4   # data message of a local type without definition

# definition flags
F_UNKNOWN_BASE_TYPE = 1
F_MISALIGNED = 2
F_ODD_TIMESTAMP = 4
F_DEVELOPER = 8


@jit
def scan(buf, data_end, state, local_def, def_off, def_size, def_ts, def_flags, def_gmn, def_big,
         base_size, msg_off, msg_def, msg_ts, msg_acc):  # pragma: no cover - compiled
    pos = state[POS]
    acc = state[ACC]
    ndef = state[NDEF]
    n = 0
    cap = msg_off.shape[0]
    status = OK
    while pos < data_end:
        h = buf[pos]
        if h & 0x80 or not (h & 0x40):
            # data message (normal or compressed-timestamp header)
            if n >= cap:
                status = MSG_FULL
                break
            if h & 0x80:
                local = (h >> 5) & 0x3
            else:
                local = h & 0xF
            d = local_def[local]
            if d < 0:
                status = UNDEFINED_LOCAL
                break
            size = def_size[d]
            if pos + 1 + size > data_end:
                status = OVERRUN
                break
            ts = -1
            to = def_ts[d]
            if to >= 0:
                p = pos + 1 + to
                if def_big[d]:
                    raw = (np.int64(buf[p]) << 24) | (np.int64(buf[p + 1]) << 16) | (np.int64(buf[p + 2]) << 8) | np.int64(buf[p + 3])
                else:
                    raw = (np.int64(buf[p + 3]) << 24) | (np.int64(buf[p + 2]) << 16) | (np.int64(buf[p + 1]) << 8) | np.int64(buf[p])
                if raw != 0xFFFFFFFF:
                    acc = raw
                    ts = raw
            if h & 0x80:
                off = np.int64(h & 0x1F)
                t = off + (acc & ~np.int64(0x1F))
                if off < (acc & 0x1F):
                    t += 0x20
                acc = t
                if ts < 0:
                    ts = t
            msg_off[n] = pos
            msg_def[n] = d
            msg_ts[n] = ts
            msg_acc[n] = acc
            n += 1
            pos += 1 + size
        else:
            # definition message
            if ndef >= def_off.shape[0]:
                status = DEF_FULL
                break
            if pos + 6 > data_end:
                status = OVERRUN
                break
            big = buf[pos + 2] != 0
            if big:
                gmn = (np.int64(buf[pos + 3]) << 8) | np.int64(buf[pos + 4])
            else:
                gmn = (np.int64(buf[pos + 4]) << 8) | np.int64(buf[pos + 3])
            nf = np.int64(buf[pos + 5])
            end = pos + 6 + 3 * nf
            if end > data_end:
                status = OVERRUN
                break
            size = 0
            tsoff = -1
            flags = 0
            for i in range(nf):
                q = pos + 6 + 3 * i
                fnum = buf[q]
                fsize = np.int64(buf[q + 1])
                bt = buf[q + 2]
                bsz = base_size[bt]
                if bsz == 0:
                    flags |= F_UNKNOWN_BASE_TYPE
                elif fsize % bsz != 0:
                    flags |= F_MISALIGNED
                if fnum == 253:
                    if fsize == 4 and bt == 0x86:
                        tsoff = size
                    else:
                        flags |= F_ODD_TIMESTAMP
                size += fsize
            if h & 0x20:
                flags |= F_DEVELOPER
                if end + 1 > data_end:
                    status = OVERRUN
                    break
                ndev = np.int64(buf[end])
                dend = end + 1 + 3 * ndev
                if dend > data_end:
                    status = OVERRUN
                    break
                for i in range(ndev):
                    size += np.int64(buf[end + 1 + 3 * i + 1])
                end = dend
            def_off[ndef] = pos
            def_size[ndef] = size
            def_ts[ndef] = tsoff
            def_flags[ndef] = flags
            def_gmn[ndef] = gmn
            def_big[ndef] = 1 if big else 0
            local_def[h & 0xF] = ndef
            ndef += 1
            pos = end
    state[POS] = pos
    state[ACC] = acc
    state[NMSG] = n
    state[NDEF] = ndef
    state[ERR_POS] = pos
    return status


def _crc_table() -> np.ndarray:
    # FIT CRC-16 (FIT protocol §3.3.2: reflected polynomial 0xA001, i.e. CRC-16/ARC), one byte per step
    t = np.zeros(256, dtype=np.int64)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        t[i] = c
    return t


_CRC_TABLE = _crc_table()


@jit
def _crc16(buf, start, end, crc, table):  # pragma: no cover - compiled
    c = np.int64(crc)
    for i in range(start, end):
        c = (c >> 8) ^ table[(c ^ np.int64(buf[i])) & 0xFF]
    return c


def crc16(buf: np.ndarray, start: int, end: int, crc: int = 0) -> int:
    """FIT CRC-16 (FIT protocol §3.3.2) of ``buf[start:end]``."""
    return int(_crc16(buf, start, end, crc, _CRC_TABLE))


@jit
def gather(buf, msg_off, size, out):  # pragma: no cover - compiled
    """Copy the ``size`` payload bytes after each record header at ``msg_off`` into ``out`` rows."""
    for i in range(msg_off.shape[0]):
        p = msg_off[i] + 1
        for j in range(size):
            out[i, j] = buf[p + j]


@jit
def rr_beats(rr, acc, epoch_s, reanchor_ms, state, out_t_ms, out_rr):  # pragma: no cover - compiled
    """Beat times of RR intervals (``rr``: (k, m) ms, -1 = none) of k ``hrv`` messages whose
    running timestamps are ``acc`` (raw FIT s, 0 = none yet). ``state[0]``: time of the last beat
    in ms since the Unix epoch, -1 = unanchored. Each message's last beat is anchored on its
    running timestamp when unanchored or when it would drift more than ``reanchor_ms`` from it.
    Writes beats to the outputs and returns their number."""
    n = 0
    beat = state[0]
    for i in range(rr.shape[0]):
        a = acc[i]
        if a <= 0:
            continue
        total = 0
        cnt = 0
        for j in range(rr.shape[1]):
            if rr[i, j] >= 0:
                total += rr[i, j]
                cnt += 1
        if cnt == 0:
            continue
        anchor = (a + epoch_s) * 1000
        if beat < 0 or abs(beat + total - anchor) > reanchor_ms:
            beat = anchor - total
        for j in range(rr.shape[1]):
            v = rr[i, j]
            if v >= 0:
                beat += v
                out_t_ms[n] = beat
                out_rr[n] = v
                n += 1
    state[0] = beat
    return n
