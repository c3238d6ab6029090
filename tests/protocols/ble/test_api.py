"""The public API as other packages use it: names, UUID spellings, keys, errors."""

from __future__ import annotations

import dataclasses

import pytest

import protocols.ble as ble
from protocols.ble import DecodeError, EncodeError, UnsupportedCharacteristicError, decode, encode

HR = bytes.fromhex("1e914001000200043303")


@pytest.mark.parametrize("uuid", [0x2A37, "2a37", "2A37", "0x2a37", "00002a37-0000-1000-8000-00805f9b34fb",
                                  "00002A37-0000-1000-8000-00805F9B34FB", "{00002a37-0000-1000-8000-00805f9b34fb}"])
def test_uuid_spellings(uuid: object) -> None:
    assert decode(uuid, HR).heart_rate_bpm == 145  # type: ignore[arg-type]
    assert encode(uuid, heart_rate_bpm=60) == b"\x00\x3c"  # type: ignore[arg-type]


@pytest.mark.parametrize("uuid", [0x2A99, "zz37", "12345678-1234-1234-1234-123456789abc", -1, 2**40, True, 3.5, None])
def test_unsupported_uuids(uuid: object) -> None:
    with pytest.raises(UnsupportedCharacteristicError) as ei:
        decode(uuid, HR)  # type: ignore[arg-type]
    assert isinstance(ei.value, ValueError)


def test_payload_type_is_checked() -> None:
    with pytest.raises(TypeError):
        decode(0x2A37, "1e91")  # type: ignore[arg-type]


def test_issue_keys() -> None:
    keys = {
        0x2A37: {"heart_rate_bpm", "sensor_contact", "energy_expended_kj", "rr_intervals_1024", "rr_intervals_ms"},
        0x2A5B: {"wheel_revolutions", "wheel_event_time_1024", "crank_revolutions", "crank_event_time_1024"},
        0x2A63: {"power_w", "pedal_power_balance_pct", "accumulated_torque_nm", "wheel_revolutions", "wheel_event_time_2048",
                 "crank_revolutions", "crank_event_time_1024", "accumulated_energy_kj", "maximum_force_n", "minimum_force_n",
                 "maximum_torque_nm", "minimum_torque_nm", "maximum_angle_deg", "minimum_angle_deg",
                 "top_dead_spot_angle_deg", "bottom_dead_spot_angle_deg"},
        0x2A53: {"speed_mps", "cadence_spm", "stride_length_m", "total_distance_m", "is_running"},
        0x2A19: {"battery_level_pct"},
        0x2AD2: {"speed_kmh", "average_speed_kmh", "cadence_rpm", "average_cadence_rpm", "total_distance_m", "resistance_level",
                 "power_w", "average_power_w", "heart_rate_bpm", "elapsed_time_s", "remaining_time_s", "total_energy_kcal"},
        0x2ACD: {"speed_kmh", "inclination_pct", "ramp_angle_deg"},
        0x2AD1: {"stroke_rate_spm", "stroke_count", "pace_s_per_500m", "power_w"},
    }
    for uuid, want in keys.items():
        names = set(ble.codec_for(uuid).cls.field_names())
        assert want <= names, (hex(uuid), want - names)
    for c in ble.CODECS:  # every result carries the two diagnostics
        assert {"unknown_flag_bits", "trailing_bytes"} <= set(c.cls.field_names()), c.name


def test_results_are_frozen_and_lists_in_dicts() -> None:
    m = decode(0x2A37, HR)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.heart_rate_bpm = 1  # type: ignore[misc]
    assert isinstance(m.rr_intervals_1024, tuple) and isinstance(m.to_dict()["rr_intervals_1024"], list)
    assert m == ble.HeartRateMeasurement(**{k: tuple(v) if isinstance(v, list) else v for k, v in m.to_dict().items()})
    assert hash(m)


def test_encode_errors_name_the_field() -> None:
    with pytest.raises(EncodeError) as ei:
        encode(0x2AD2, power_w=40000)
    assert ei.value.field == "power_w" and "-32768..32767" in str(ei.value)
    with pytest.raises(EncodeError) as ei:
        encode(0x2AD2, speed_kmh=float("nan"))
    assert ei.value.field == "speed_kmh"
    with pytest.raises(EncodeError) as ei:
        encode(0x2ACD, inclination_pct=1.0)  # ramp angle travels with it
    assert ei.value.field == "ramp_angle_deg"
    with pytest.raises(EncodeError) as ei:
        encode(0x2A63, power_w=1, flags=0x0001)  # flags claim a balance field that is not given
    assert ei.value.field == "flags"
    with pytest.raises(EncodeError):
        encode(0x2A63)  # power is mandatory
    with pytest.raises(EncodeError):
        encode(0x2A37, heart_rate_bpm=70, unknown_flag_bits=0x01)  # a defined bit is not "unknown"
    with pytest.raises(EncodeError):
        encode(0x2A19, battery_level_pct=101)
    with pytest.raises(TypeError):
        encode(0x2AD2, watts=100)


def test_decode_error_is_value_error_with_details() -> None:
    with pytest.raises(ValueError) as ei:
        decode(0x2A63, bytes.fromhex("2000 6400 0100"))  # crank flag, payload ends early
    e = ei.value
    assert isinstance(e, DecodeError)
    assert (e.field, e.offset, e.needed, e.available) == ("crank_revolutions/crank_event_time_1024", 4, 4, 6)
    assert "Cycling Power Measurement (0x2A63)" in str(e) and "offset 4" in str(e) and "6 byte(s)" in str(e)
    assert e.partial.power_w == 100 and e.partial.crank_revolutions is None


def test_encoder_rounds_to_the_grid() -> None:
    m = decode(0x2AD2, encode(0x2AD2, speed_kmh=27.456, cadence_rpm=87.3, power_w=201.6))
    assert (m.speed_kmh, m.cadence_rpm, m.power_w) == (27.46, 87.5, 202)


def test_public_names() -> None:
    for name in ble.__all__:
        assert hasattr(ble, name), name
    assert issubclass(ble.DecodeError, ValueError)


def test_docs_list_every_characteristic_and_field() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "ble-characteristics.md").read_text()
    for c in ble.CODECS:
        assert f"0x{c.uuid:04X}" in doc, c.name
        for name in c.cls.field_names():
            assert name in doc, (c.name, name)
