"""Field tables in, fast decoders and encoders out.

A characteristic is described once, as the Bluetooth specification's field table
(:class:`Spec`: flag width, then :class:`Group` rows in payload order, each gated by a flag
bit, plus :class:`FlagBit` rows for bits that carry a meaning but no bytes). :func:`build`
turns a table into two plain Python functions, written out as straight-line source and
compiled once at import (the technique of :mod:`dataclasses` and :func:`collections.namedtuple`),
so decoding costs one pass of integer operations with no per-field dispatch.

Generated decoders check lengths strictly: a payload that ends inside a flagged field raises
:class:`~protocols.ble.errors.DecodeError` with the field, offset and byte counts, carrying the
fields decoded so far in ``partial``. Bytes after the last flagged field are counted in
``trailing_bytes``; reserved flag bits are kept in ``unknown_flag_bits`` (and in ``flags``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

from .errors import EncodeError, short
from .measurement import Measurement, make, make_partial

#: kind -> (size in bytes, signed)
KINDS: dict[str, tuple[int, bool]] = {
    "u8": (1, False),
    "u16": (2, False),
    "u24": (3, False),
    "u32": (4, False),
    "u40": (5, False),
    "u48": (6, False),
    "s8": (1, True),
    "s16": (2, True),
    "s24": (3, True),
    "u12pair": (3, False),  # two uint12 packed LSB-first in 3 octets (Cycling Power extreme angles)
}


@dataclass(frozen=True)
class Field:
    """One field: ``value = raw * num / den`` in ``unit``.

    ``name2`` is the second value of a ``u12pair`` (its high 12 bits).
    """

    name: str
    kind: str
    num: int = 1
    den: int = 1
    unit: str = ""
    doc: str = ""
    name2: str | None = None

    @property
    def size(self) -> int:
        return KINDS[self.kind][0]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name,) if self.name2 is None else (self.name, self.name2)

    @property
    def scaled(self) -> bool:
        return not (self.num == 1 and self.den == 1)

    @property
    def raw_range(self) -> tuple[int, int]:
        size, signed = KINDS[self.kind]
        if self.kind == "u12pair":
            return 0, 0xFFF
        bits = 8 * size
        return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)

    @property
    def resolution(self) -> float:
        return self.num / self.den


@dataclass(frozen=True)
class Group:
    """Fields that are present or absent together.

    ``bit`` is the flag bit that gates them (``None``: always present); ``inverted`` means
    the fields are present when the bit is 0 (FTMS "More Data").
    """

    bit: int | None
    fields: tuple[Field, ...]
    inverted: bool = False

    @property
    def size(self) -> int:
        return sum(f.size for f in self.fields)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for f in self.fields for n in f.names)


@dataclass(frozen=True)
class FlagBit:
    """A flag bit with a meaning but no bytes, exposed as a bool field."""

    name: str
    bit: int
    doc: str = ""


@dataclass(frozen=True)
class Spec:
    """A characteristic's field table."""

    uuid: int
    name: str
    flags_size: int  # 0 (no flags field), 1, 2, 3 or 4 octets
    items: tuple[Group | FlagBit, ...]
    #: bits defined by the specification that this table exposes only through ``flags``
    #: (e.g. a 2-bit enumeration in a feature word): not "unknown", not derived by the encoder.
    extra_defined: int = 0

    @property
    def label(self) -> str:
        return f"{self.name} (0x{self.uuid:04X})"

    @property
    def groups(self) -> tuple[Group, ...]:
        return tuple(i for i in self.items if isinstance(i, Group))

    @property
    def flag_bits(self) -> tuple[FlagBit, ...]:
        return tuple(i for i in self.items if isinstance(i, FlagBit))

    @property
    def defined_mask(self) -> int:
        m = 0
        for g in self.groups:
            if g.bit is not None:
                m |= 1 << g.bit
        for b in self.flag_bits:
            m |= 1 << b.bit
        return m | self.extra_defined

    @property
    def value_names(self) -> tuple[str, ...]:
        """Field names in declaration order: values, then bool bits."""
        return tuple(n for g in self.groups for n in g.names) + tuple(b.name for b in self.flag_bits)


# ----------------------------------------------------------------------------- helpers used
# by the generated code (kept out of the hot path except on errors and in encoders)


def to_raw(value: Any, f: Field, label: str) -> int:
    """Physical value -> raw integer on the field's grid, range-checked."""
    lo, hi = f.raw_range
    try:
        if type(value) is int and not f.scaled:
            raw = value
        else:
            x = float(value) * f.den / f.num
            if not math.isfinite(x):
                raise ValueError
            raw = round(x)
    except (TypeError, ValueError, OverflowError):
        raise EncodeError(f"field {f.name!r}: {value!r} is not a finite number", characteristic=label, field=f.name) from None
    if not lo <= raw <= hi:
        res = f.resolution
        lo_v, hi_v = (lo, hi) if not f.scaled else (lo * res, hi * res)
        unit = f" {f.unit}" if f.unit else ""
        raise EncodeError(
            f"field {f.name!r}: {value!r} is outside the encodable range {lo_v:g}..{hi_v:g}{unit} "
            f"(a {f.kind} in steps of {res:g})",
            characteristic=label,
            field=f.name,
        )
    return raw


def finish_flags(label: str, derived: int, flags: int | None, unknown: int, defined: int, width: int, checked: int) -> int:
    """Combine the flags derived from the fields with an explicit ``flags`` and ``unknown_flag_bits``."""
    full = (1 << (8 * width)) - 1
    if type(unknown) is not int or unknown < 0 or unknown > full or unknown & defined:
        raise EncodeError(
            f"unknown_flag_bits={unknown!r} must be an int of reserved bits only (defined bits 0x{defined:X}, "
            f"flag field {width} octet(s))",
            characteristic=label,
            field="unknown_flag_bits",
        )
    if flags is None:
        return derived | unknown
    if type(flags) is not int or flags < 0 or flags > full:
        raise EncodeError(f"flags={flags!r} does not fit a {width}-octet flag field", characteristic=label, field="flags")
    diff = (flags ^ derived) & checked
    if diff:
        raise EncodeError(
            f"flags=0x{flags:X} disagree with the fields given (derived 0x{derived:X}) in bits 0x{diff:X}",
            characteristic=label,
            field="flags",
        )
    if unknown and flags & ~defined != unknown:
        raise EncodeError(
            f"flags=0x{flags:X} and unknown_flag_bits=0x{unknown:X} disagree", characteristic=label, field="unknown_flag_bits"
        )
    return flags


def missing(label: str, group: Group, given: dict[str, Any]) -> EncodeError:
    have = [k for k, v in given.items() if v is not None]
    lack = [k for k, v in given.items() if v is None]
    if group.bit is None:
        return EncodeError(f"required field(s) {lack} missing", characteristic=label, field=lack[0])
    return EncodeError(
        f"fields {list(group.names)} are sent together (flag bit {group.bit}); got {have} without {lack}",
        characteristic=label,
        field=lack[0],
    )


def check_trailing(label: str, trailing: Any) -> bytes:
    if type(trailing) is not int or trailing < 0 or trailing > 512:
        raise EncodeError(f"trailing_bytes={trailing!r} must be an int in 0..512", characteristic=label, field="trailing_bytes")
    return bytes(trailing)


# ----------------------------------------------------------------------------- code generation


def _read_expr(f: Field, at: int) -> list[tuple[str, str]]:
    """Source expressions for the field value(s), reading ``p`` at ``o + at``."""
    size, signed = KINDS[f.kind]
    parts = []
    for k in range(size):
        idx = f"o+{at + k}" if at + k else "o"
        parts.append(f"p[{idx}]" if k == 0 else f"p[{idx}] << {8 * k}")
    raw = " | ".join(parts)
    if f.kind == "u12pair":
        exprs = [(f.name, f"({raw}) & 0xFFF"), (f.name2 or "", f"({raw}) >> 12")]
    elif signed:
        half = 1 << (8 * size - 1)
        exprs = [(f.name, f"((({raw}) ^ {half:#x}) - {half:#x})")]
    else:
        exprs = [(f.name, raw if size == 1 else f"({raw})")]
    out = []
    for name, e in exprs:
        if f.num == 1 and f.den == 1:
            out.append((name, e))
        elif f.num == 1:
            out.append((name, f"{e} / {f.den}"))
        else:
            out.append((name, f"{e} * {f.num} / {f.den}"))
    return out


def _gen_decoder(spec: Spec, cls: type[Measurement]) -> str:
    fs = spec.flags_size
    L = ["def decode(p):", "    n = len(p)"]
    if fs:
        L.append(f"    if n < {fs}:")
        L.append(f"        raise _short(LABEL, 'flags', 0, {fs}, n)")
        L.append("    f = " + " | ".join(f"p[{k}]" if k == 0 else f"p[{k}] << {8 * k}" for k in range(fs)))
    else:
        L.append("    f = None")
    L.append(f"    o = {fs}")
    done: list[str] = []  # value names assigned so far
    var = {n: f"v{i}" for i, n in enumerate(spec.value_names)}

    def partial() -> str:
        items = ", ".join(f"{n!r}: {var[n]}" for n in done)
        if fs:
            items = f"'flags': f, {items}" if items else "'flags': f"
        return f"_partial(CLS, {{{items}}})"

    for g in spec.groups:
        ind = "    "
        if g.bit is not None:
            cond = f"not f & {1 << g.bit:#x}" if g.inverted else f"f & {1 << g.bit:#x}"
            L.append(f"    if {cond}:")
            ind = "        "
        label = "/".join(g.names)
        L.append(f"{ind}if n < o + {g.size}:")
        L.append(f"{ind}    raise _short(LABEL, {label!r}, o, {g.size}, n, f, {partial()})")
        at = 0
        for fld in g.fields:
            for name, expr in _read_expr(fld, at):
                L.append(f"{ind}{var[name]} = {expr}")
            at += fld.size
        L.append(f"{ind}o += {g.size}")
        if g.bit is not None:
            L.append("    else:")
            L.append("        " + " = ".join(var[n] for n in g.names) + " = None")
        done.extend(g.names)
    for b in spec.flag_bits:
        L.append(f"    {var[b.name]} = (f & {1 << b.bit:#x}) != 0")
    items = [f"{n!r}: {var[n]}" for n in spec.value_names]
    if fs:
        items.insert(0, "'flags': f")
        items.append(f"'unknown_flag_bits': f & {~spec.defined_mask & ((1 << (8 * fs)) - 1):#x}")
    else:
        items.append("'unknown_flag_bits': 0")
    items.append("'trailing_bytes': n - o")
    # to_dict() key order: flags, the fields in payload order, then the two diagnostics
    L.append("    return _make(CLS, {" + ", ".join(items) + "})")
    return "\n".join(L) + "\n"


def _gen_encoder(spec: Spec) -> str:
    fs = spec.flags_size
    args = ["*"] + [f"{n}=None" for g in spec.groups for n in g.names] + [f"{b.name}=False" for b in spec.flag_bits]
    if fs:
        args += ["flags=None", "unknown_flag_bits=0"]
    else:
        args += ["unknown_flag_bits=0"]
    args.append("trailing_bytes=0")
    L = [f"def encode({', '.join(args)}):", "    d = 0", f"    out = bytearray({fs})"]
    for gi, g in enumerate(spec.groups):
        names = g.names
        all_none = " and ".join(f"{n} is None" for n in names)
        any_none = " or ".join(f"{n} is None" for n in names)
        L.append(f"    if {all_none}:")
        if g.bit is None:
            L.append(f"        raise _missing(LABEL, GROUPS[{gi}], {{{', '.join(f'{n!r}: {n}' for n in names)}}})")
        elif g.inverted:
            L.append(f"        d |= {1 << g.bit:#x}")
        else:
            L.append("        pass")
        if len(names) > 1:
            L.append(f"    elif {any_none}:")
            L.append(f"        raise _missing(LABEL, GROUPS[{gi}], {{{', '.join(f'{n!r}: {n}' for n in names)}}})")
        L.append("    else:")
        if g.bit is not None and not g.inverted:
            L.append(f"        d |= {1 << g.bit:#x}")
        for fi, fld in enumerate(g.fields):
            size, signed = KINDS[fld.kind]
            ref = f"GROUPS[{gi}].fields[{fi}]"
            if fld.kind == "u12pair":
                L.append(f"        out += (_to_raw({fld.name}, {ref}, LABEL) | _to_raw({fld.name2}, {ref}, LABEL) << 12).to_bytes(3, 'little')")
            else:
                L.append(f"        out += _to_raw({fld.name}, {ref}, LABEL).to_bytes({size}, 'little', signed={signed})")
    for b in spec.flag_bits:
        L.append(f"    if {b.name}:")
        L.append(f"        d |= {1 << b.bit:#x}")
    if fs:
        dm = spec.defined_mask
        L.append(f"    f = _finish_flags(LABEL, d, flags, unknown_flag_bits, {dm:#x}, {fs}, {dm & ~spec.extra_defined:#x})")
        L.append(f"    out[0:{fs}] = f.to_bytes({fs}, 'little')")
    else:
        L.append("    if unknown_flag_bits:")
        L.append("        raise _EncodeError('this characteristic has no flags; unknown_flag_bits must be 0', characteristic=LABEL, field='unknown_flag_bits')")
    L.append("    if trailing_bytes:")
    L.append("        out += _check_trailing(LABEL, trailing_bytes)")
    L.append("    return bytes(out)")
    return "\n".join(L) + "\n"


def build(spec: Spec, cls: type[Measurement]) -> tuple[Callable[[bytes], Measurement], Callable[..., bytes]]:
    """Compile ``decode(payload) -> cls`` and ``encode(**fields) -> bytes`` for ``spec``."""
    want = set(spec.value_names) | {"unknown_flag_bits", "trailing_bytes"} | ({"flags"} if spec.flags_size else set())
    have = {f.name for f in dataclasses.fields(cls)}
    if want != have:  # a developer error: the table and the dataclass disagree
        raise TypeError(f"{cls.__name__} fields {sorted(have ^ want)} disagree with the {spec.name} table")
    ns: dict[str, Any] = {
        "LABEL": spec.label,
        "CLS": cls,
        "GROUPS": spec.groups,
        "_short": short,
        "_make": make,
        "_partial": make_partial,
        "_to_raw": to_raw,
        "_finish_flags": finish_flags,
        "_missing": missing,
        "_check_trailing": check_trailing,
        "_EncodeError": EncodeError,
    }
    dec_src = _gen_decoder(spec, cls)
    enc_src = _gen_encoder(spec)
    exec(compile(dec_src, f"<ble decode {spec.label}>", "exec"), ns)  # noqa: S102 - source built from our own tables
    exec(compile(enc_src, f"<ble encode {spec.label}>", "exec"), ns)  # noqa: S102
    dec, enc = ns["decode"], ns["encode"]
    dec.__name__ = enc.__name__ = f"{cls.__name__}"
    dec.__qualname__ = f"decode_{cls.__name__}"
    enc.__qualname__ = f"encode_{cls.__name__}"
    dec.__doc__ = f"Decode a {spec.label} payload into :class:`{cls.__name__}`."
    enc.__doc__ = f"Encode :class:`{cls.__name__}` fields into a {spec.label} payload."
    dec.source = dec_src  # type: ignore[attr-defined]  # for debugging and the docs
    enc.source = enc_src  # type: ignore[attr-defined]
    return dec, enc
