"""decode(encode(x)) == x over every flag combination and the full value range of each field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, strategies as st

from protocols.ble import CODECS, decode, encode
from protocols.ble.device_information import STRING_CLASSES
from protocols.ble.ftms_feature import MACHINE_FEATURES, TARGET_SETTING_FEATURES

from .strategies import SPECS, control_point_requests, control_point_responses, heart_rate_fields, machine_statuses, spec_fields, texts


def _check(uuid: int, fields: dict[str, Any]) -> bytes:
    payload = encode(uuid, **fields)
    m = decode(uuid, payload)
    got = m.to_dict()
    for k, v in fields.items():
        assert got[k] == v, (k, v, got[k], payload.hex())
    assert encode(uuid, **got) == payload  # and back again, byte for byte
    return payload


@pytest.mark.parametrize("uuid", sorted(SPECS), ids=lambda u: f"0x{u:04X}")
@given(data=st.data())
def test_table_characteristics_roundtrip(uuid: int, data: st.DataObject) -> None:
    fields, length = data.draw(spec_fields(SPECS[uuid]))
    payload = _check(uuid, fields)
    assert len(payload) == length  # exactly the bytes the flagged fields need


@given(heart_rate_fields())
def test_heart_rate_roundtrip(fields: dict[str, Any]) -> None:
    payload = _check(0x2A37, fields)
    m = decode(0x2A37, payload)
    assert m.flags & 1 == (fields["heart_rate_bpm"] > 255)  # uint16 only when needed
    if fields["rr_intervals_1024"] is not None:
        assert m.rr_intervals_ms == pytest.approx([r * 1000 / 1024 for r in fields["rr_intervals_1024"]])
        by_ms = {k: v for k, v in fields.items() if k != "rr_intervals_1024"}
        assert _check(0x2A37, {**by_ms, "rr_intervals_ms": list(m.rr_intervals_ms)}) == payload


@given(st.integers(0, 100), st.integers(0, 255))
def test_battery_and_locations_roundtrip(level: int, loc: int) -> None:
    _check(0x2A19, {"battery_level_pct": level})
    _check(0x2A38, {"body_sensor_location": loc})


@pytest.mark.parametrize("cls", STRING_CLASSES, ids=lambda c: c.__name__)
@given(text=texts, pad=st.integers(0, 3))
def test_strings_roundtrip(cls: type, text: str, pad: int) -> None:
    key = [n for n in cls.field_names() if n not in ("unknown_flag_bits", "trailing_bytes")][0]
    _check(cls.UUID, {key: text, "trailing_bytes": pad})


@given(st.lists(st.sampled_from(MACHINE_FEATURES), unique=True), st.lists(st.sampled_from(TARGET_SETTING_FEATURES), unique=True))
def test_feature_roundtrip(mf: list[str], ts: list[str]) -> None:
    payload = encode(0x2ACC, machine_features=mf, target_settings=ts)
    m = decode(0x2ACC, payload)
    assert set(m.machine_features) == set(mf) and set(m.target_settings) == set(ts)
    assert encode(0x2ACC, **m.to_dict()) == payload


@given(st.one_of(control_point_requests, control_point_responses()))
def test_control_point_roundtrip(fields: dict[str, Any]) -> None:
    _check(0x2AD9, fields)


@given(machine_statuses)
def test_machine_status_roundtrip(fields: dict[str, Any]) -> None:
    _check(0x2ADA, fields)


@given(st.integers(0, 255), st.none() | texts, st.booleans())
def test_training_status_roundtrip(status: int, text: str | None, extended: bool) -> None:
    _check(0x2AD3, {"training_status": status, "training_status_string": text, "extended_string": extended})


def test_every_codec_is_covered_by_a_roundtrip_property() -> None:
    covered = set(SPECS) | {0x2A37, 0x2A19, 0x2A38, 0x2ACC, 0x2AD9, 0x2ADA, 0x2AD3} | {c.UUID for c in STRING_CLASSES}
    assert {c.uuid for c in CODECS} == covered
