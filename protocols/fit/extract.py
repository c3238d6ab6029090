"""Field extraction: definition layouts, vectorised field columns, and a small generic decoder.

Data messages of one definition all have the same layout, so their bytes are gathered into a
``(k, size)`` array and viewed through a structured dtype: each field becomes a numpy column
with no per-message Python work. Rare messages (file_id, session, field_description...) are
decoded one at a time by :func:`decode_message`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .profile import BASE_TYPES
from .scan import gather as _gather


@dataclass(frozen=True, slots=True)
class FieldDef:
    """A field of a definition message: number, size in bytes, base type id, offset in the data."""

    num: int
    size: int
    base_type: int
    offset: int


@dataclass(frozen=True, slots=True)
class DevFieldDef:
    """A developer field of a definition: field number, size, developer data index, offset."""

    num: int
    size: int
    dev_index: int
    offset: int


@dataclass(frozen=True, slots=True)
class Definition:
    """Layout of the data messages of one definition message."""

    global_num: int
    big_endian: bool
    fields: tuple[FieldDef, ...]
    dev_fields: tuple[DevFieldDef, ...]
    size: int

    def field(self, num: int) -> FieldDef | None:
        for f in self.fields:
            if f.num == num:
                return f
        return None


@lru_cache(maxsize=4096)
def _parse_definition(raw: bytes, developer: bool) -> Definition:
    big = raw[2] != 0
    gmn = int.from_bytes(raw[3:5], "big" if big else "little")
    nf = raw[5]
    fields = []
    off = 0
    for i in range(nf):
        num, size, bt = raw[6 + 3 * i: 9 + 3 * i]
        fields.append(FieldDef(num, size, bt, off))
        off += size
    devs = []
    if developer:
        p = 6 + 3 * nf
        for i in range(raw[p]):
            num, size, idx = raw[p + 1 + 3 * i: p + 4 + 3 * i]
            devs.append(DevFieldDef(num, size, idx, off))
            off += size
    return Definition(gmn, big, tuple(fields), tuple(devs), off)


def parse_definition(buf: np.ndarray, off: int) -> Definition:
    """Parse the definition message whose record header is at ``buf[off]`` (already bounds-checked
    by the scan kernel)."""
    nf = int(buf[off + 5])
    end = off + 6 + 3 * nf
    developer = bool(buf[off] & 0x20)
    if developer:
        end += 1 + 3 * int(buf[end])
    return _parse_definition(bytes(buf[off:end]), developer)


def gather_rows(buf: np.ndarray, msg_off: np.ndarray, size: int) -> np.ndarray:
    """Payload bytes (after the 1-byte record header) of messages at ``msg_off``: (k, size) uint8."""
    out = np.empty((len(msg_off), size), dtype=np.uint8)
    if size:
        _gather(buf, msg_off, size, out)
    return out


def column(rows: np.ndarray, f: FieldDef, big_endian: bool, count: int = 1) -> np.ndarray:
    """Field ``f`` of every row as an integer array: shape (k,) for ``count == 1`` else (k, count).

    ``f.base_type`` must be an integer base type whose size times ``count`` is ``f.size``.
    """
    bt = BASE_TYPES[f.base_type]
    dt = np.dtype(bt.dtype).newbyteorder(">" if big_endian else "<")
    block = np.ascontiguousarray(rows[:, f.offset:f.offset + f.size])
    vals = block.view(dt)
    return vals[:, 0] if count == 1 else vals.reshape(len(rows), count)


def _scalar(raw: bytes, bt_id: int, big: bool) -> object:
    bt = BASE_TYPES.get(bt_id)
    if bt is None or bt.name == "byte":
        return None if all(b == 0xFF for b in raw) else bytes(raw)
    if bt.name == "string":
        s = bytes(raw).split(b"\x00", 1)[0]
        return s.decode("utf-8", "replace") if s else None
    n = len(raw) // bt.size
    if n == 0 or len(raw) % bt.size:
        return None if all(b == 0xFF for b in raw) else bytes(raw)
    fmt = (">" if big else "<") + str(n) + {"u1": "B", "i1": "b", "u2": "H", "i2": "h", "u4": "I", "i4": "i",
                                            "u8": "Q", "i8": "q", "f4": "f", "f8": "d"}[bt.dtype]
    vals = struct.unpack(fmt, raw)
    if bt.integer:
        out = [None if v == bt.invalid else v for v in vals]
    else:
        out = [None if v != v else v for v in vals]
    return out[0] if n == 1 else tuple(out)


def decode_message(buf: np.ndarray, off: int, d: Definition) -> dict[object, object]:
    """Decode one data message generically: ``{field_num: value}`` (ints with invalid -> None,
    strings, tuples for arrays) and ``{("dev", dev_index, num): bytes}`` for developer fields."""
    raw = bytes(buf[off + 1: off + 1 + d.size])
    out: dict[object, object] = {}
    for f in d.fields:
        out[f.num] = _scalar(raw[f.offset:f.offset + f.size], f.base_type, d.big_endian)
    for g in d.dev_fields:
        out[("dev", g.dev_index, g.num)] = raw[g.offset:g.offset + g.size]
    return out
