"""The base of every decoded value: a frozen dataclass with ``to_dict()``.

Decoders build instances through :func:`make` (one dict assignment instead of one
``object.__setattr__`` per field, which is what a frozen dataclass ``__init__`` costs); the
normal keyword constructor works too and gives equal objects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

M = TypeVar("M", bound="Measurement")

_new = object.__new__
_setattr = object.__setattr__


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """A decoded characteristic value.

    Every subclass has ``unknown_flag_bits`` (flag bits the specification marks as reserved
    but the device set; 0 when none or when the characteristic has no flags) and
    ``trailing_bytes`` (bytes after the last field the flags announce; 0 normally). Both
    make odd devices visible instead of silently mangling them.

    Sequences are stored as tuples (the object is immutable); :meth:`to_dict` returns lists.
    """

    unknown_flag_bits: int = 0
    trailing_bytes: int = 0

    #: 16-bit SIG UUID of the characteristic this class decodes.
    UUID: ClassVar[int] = 0
    #: Human name, as the Bluetooth specification spells it.
    NAME: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (``None`` for absent fields, lists for sequences).

        The result is accepted by :func:`protocols.ble.encode` as keyword arguments and
        encodes back to the same bytes (trailing bytes are re-created as zeros).
        """
        d = dict(self.__dict__)
        for k, v in d.items():
            if type(v) is tuple:
                d[k] = list(v)
        return d

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The keys of :meth:`to_dict`, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))


def make(cls: type[M], values: dict[str, Any]) -> M:
    """Build a frozen measurement from a complete field dict without running ``__init__``.

    ``values`` must hold every field of ``cls`` (the generated decoders guarantee it).
    """
    obj = _new(cls)
    _setattr(obj, "__dict__", values)
    return obj


def make_partial(cls: type[M], values: dict[str, Any]) -> M:
    """Build the valid part of a truncated payload: the fields in ``values``, every other
    field ``None`` (even the mandatory ones: they were not decoded), diagnostics 0."""
    full: dict[str, Any] = dict.fromkeys(cls.field_names())
    full.update(values)
    full["unknown_flag_bits"] = values.get("unknown_flag_bits", 0)
    full["trailing_bytes"] = 0
    return make(cls, full)
