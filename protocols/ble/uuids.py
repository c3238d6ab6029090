"""UUID spellings: ``0x2A37``, ``"2a37"``, ``"0x2A37"``, ``"00002a37-0000-1000-8000-00805f9b34fb"``.

16- and 32-bit SIG UUIDs are shorthands for 128-bit UUIDs on the Bluetooth Base UUID
``0000xxxx-0000-1000-8000-00805F9B34FB`` (Core Spec Vol 3 Part B §2.5.1).
"""

from __future__ import annotations

from .errors import UnsupportedCharacteristicError

BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def to_int(uuid: int | str) -> int:
    """The 16/32-bit SIG number of ``uuid``; raises :class:`UnsupportedCharacteristicError`
    for a malformed UUID or a 128-bit UUID that is not on the Bluetooth Base UUID."""
    if isinstance(uuid, int) and not isinstance(uuid, bool):
        if 0 <= uuid <= 0xFFFFFFFF:
            return uuid
        raise UnsupportedCharacteristicError(f"UUID {uuid!r} is not a 16- or 32-bit SIG number", uuid=uuid)
    if not isinstance(uuid, str):
        raise UnsupportedCharacteristicError(f"UUID must be an int or str, not {type(uuid).__name__}", uuid=uuid)
    s = uuid.strip().lower()
    if s.startswith("{") and s.endswith("}"):
        s = s[1:-1]
    if s.startswith("0x"):
        s = s[2:]
    try:
        if len(s) in (4, 8) and "-" not in s:
            return int(s, 16)
        if len(s) == 36 and s.endswith(BASE_UUID_SUFFIX) and s[8] == "-":
            return int(s[:8], 16)
        if len(s) == 32 and s.endswith(BASE_UUID_SUFFIX.replace("-", "")):
            return int(s[:8], 16)
    except ValueError:
        pass
    raise UnsupportedCharacteristicError(
        f"UUID {uuid!r} is not a SIG UUID (expected e.g. 0x2A37, '2a37' or '00002a37{BASE_UUID_SUFFIX}')", uuid=uuid
    )


def to_str128(uuid: int | str) -> str:
    """The full lowercase 128-bit form, as bleak reports it."""
    return f"{to_int(uuid):08x}{BASE_UUID_SUFFIX}"


def spellings(n: int) -> tuple[object, ...]:
    """Every spelling :func:`to_int` maps to ``n`` that is worth pre-computing for lookups."""
    return (n, f"{n:04x}", f"{n:04X}", f"0x{n:04x}", f"0x{n:04X}", f"{n:08x}{BASE_UUID_SUFFIX}", f"{n:08x}{BASE_UUID_SUFFIX}".upper())
