"""Fuzzing: random, truncated and mutated payloads raise only DecodeError, never anything else.

A payload that does decode must re-encode to the same bytes (trailing bytes as zeros) and
decode again to an equal value, so nothing is silently mangled.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from protocols.ble import CODECS, DecodeError, decode, encode

from .strategies import SPECS, spec_fields

UUIDS = [c.uuid for c in CODECS]


def _decode_checked(uuid: int, payload: bytes) -> None:
    try:
        m = decode(uuid, payload)
    except DecodeError as e:
        assert e.characteristic and f"0x{uuid:04X}" in str(e)
        if e.offset is not None:
            assert 0 <= e.offset <= len(payload)
            assert e.available == len(payload)
        return
    t = m.trailing_bytes
    assert 0 <= t <= len(payload)
    again = encode(uuid, **m.to_dict())
    assert again == payload[: len(payload) - t] + bytes(t)
    assert decode(uuid, again) == m


@pytest.mark.parametrize("uuid", UUIDS, ids=lambda u: f"0x{u:04X}")
@settings(max_examples=150)
@given(payload=st.binary(max_size=40))
def test_random_payloads(uuid: int, payload: bytes) -> None:
    _decode_checked(uuid, payload)


@pytest.mark.parametrize("uuid", UUIDS, ids=lambda u: f"0x{u:04X}")
@settings(max_examples=60)
@given(payload=st.binary(max_size=40), kind=st.sampled_from([bytearray, memoryview]))
def test_other_buffer_types(uuid: int, payload: bytes, kind: type) -> None:
    try:
        a = decode(uuid, kind(payload))
    except DecodeError:
        with pytest.raises(DecodeError):
            decode(uuid, payload)
        return
    assert a == decode(uuid, payload)


@pytest.mark.parametrize("uuid", sorted(SPECS), ids=lambda u: f"0x{u:04X}")
@given(data=st.data())
def test_truncated_payloads_fail_with_the_valid_part(uuid: int, data: st.DataObject) -> None:
    fields, _ = data.draw(spec_fields(SPECS[uuid]))
    fields["trailing_bytes"] = 0
    payload = encode(uuid, **fields)
    full = decode(uuid, payload).to_dict()
    cut = data.draw(st.integers(0, max(0, len(payload) - 1)))
    if cut == len(payload):
        return
    with pytest.raises(DecodeError) as ei:
        decode(uuid, payload[:cut])
    e = ei.value
    assert e.available == cut and e.offset is not None and e.offset <= cut < e.offset + e.needed
    if e.partial is not None:  # every field it kept is what the full payload says
        for k, v in e.partial.to_dict().items():
            if v is not None and k not in ("unknown_flag_bits", "trailing_bytes") and not isinstance(v, bool):
                assert full[k] == v, k


@pytest.mark.parametrize("uuid", [0x2A37, 0x2A63, 0x2AD2, 0x2ACE, 0x2AD9], ids=lambda u: f"0x{u:04X}")
@settings(max_examples=150)
@given(data=st.data())
def test_mutated_payloads(uuid: int, data: st.DataObject) -> None:
    base = {
        0x2A37: bytes.fromhex("1e914001000200043303"),
        0x2A63: bytes.fromhex("ff1ff40165400610270000000800042c01000458029cff4006e0ff5a400b1400c800e803"),
        0x2AD2: bytes.fromhex("ff1f e803 a000 9a00 102700 0500 2c01 fa00 6400 5802 0a 96 55 100e 2c01".replace(" ", "")),
        0x2ACE: bytes.fromhex("888100dc0578006e003200960000"),
        0x2AD9: bytes.fromhex("11f40106ff2833"),
    }[uuid]
    buf = bytearray(base)
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        pos = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if op == "flip" and buf:
            buf[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[pos] = data.draw(st.integers(0, 255))
        elif op == "insert":
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
        elif buf:
            del buf[pos : pos + data.draw(st.integers(1, 4))]
    _decode_checked(uuid, bytes(buf))


def test_every_flag_value_of_small_flag_fields() -> None:
    """Exhaustive over 8-bit flags: each flags octet with enough bytes decodes, with too few fails."""
    for uuid in (0x2A37, 0x2A5B, 0x2A53):
        for flags in range(256):
            for tail in range(0, 24):
                _decode_checked(uuid, bytes([flags]) + bytes(range(1, tail + 1)))
