"""Advertising data parsing and device classification."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from protocols.ble import DecodeError, DeviceKind, classify, parse_advertisement

BASE = "-0000-1000-8000-00805f9b34fb"


def ad(t: int, data: bytes) -> bytes:
    return bytes([len(data) + 1, t]) + data


def test_heart_rate_strap_advert() -> None:
    raw = ad(0x01, b"\x06") + ad(0x03, bytes.fromhex("0d18 0f18")) + ad(0x09, b"Polar H10 6E1A2B") + ad(0xFF, bytes.fromhex("6b00 3f00")) + ad(0x0A, b"\xfc")
    a = parse_advertisement(raw)
    assert a.local_name == "Polar H10 6E1A2B" and a.ad_flags == 6 and a.tx_power_dbm == -4
    assert a.service_uuids == ("0000180d" + BASE, "0000180f" + BASE)
    assert a.manufacturer_data == {0x006B: b"\x3f\x00"}
    c = a.classify()
    assert c.kinds == {DeviceKind.HEART_RATE} and c.vendor == "Polar Electro" and c.company_ids == (0x006B,)


def test_ftms_indoor_bike_service_data() -> None:
    raw = ad(0x03, bytes.fromhex("2618")) + ad(0x16, bytes.fromhex("2618 01 2000"))
    c = parse_advertisement(raw).classify()
    assert c.kinds == {DeviceKind.FITNESS_MACHINE, DeviceKind.INDOOR_BIKE}
    assert c.ftms_available is True and c.ftms_machine_type_bits == 0x20


def test_ftms_busy_treadmill_and_rower() -> None:
    c = classify(service_data={"00001826" + BASE: bytes.fromhex("00 1100")})
    assert c.kinds == {DeviceKind.FITNESS_MACHINE, DeviceKind.TREADMILL, DeviceKind.ROWER}
    assert c.ftms_available is False


def test_bleak_style_inputs_and_appearance() -> None:
    c = classify(["00001818" + BASE, "00001816" + BASE.upper(), "not-a-uuid", 0x1814], manufacturer_data={0x0087: b""}, appearance=0x0484)
    assert c.kinds == {DeviceKind.CYCLING_POWER, DeviceKind.CYCLING_SPEED_CADENCE, DeviceKind.RUNNING_SPEED_CADENCE}
    assert c.vendor == "Garmin International"
    assert classify(appearance=0x0341).kinds == {DeviceKind.HEART_RATE}  # Heart Rate Belt
    assert not classify(["0000fe59" + BASE]).is_fitness_device


def test_128_bit_uuids_and_padding() -> None:
    u128 = bytes.fromhex("fb349b5f80000080001000000d180000")  # 0000180d-... little-endian
    raw = ad(0x07, u128) + b"\x00\x00\x00"
    assert parse_advertisement(raw).service_uuids == ("0000180d" + BASE,)


def test_malformed_structure_keeps_the_valid_part() -> None:
    raw = ad(0x09, b"Strap") + bytes([10, 0xFF, 0x6B])
    with pytest.raises(DecodeError) as ei:
        parse_advertisement(raw)
    assert ei.value.offset == 7 and ei.value.advertisement.local_name == "Strap"
    with pytest.raises(DecodeError):
        parse_advertisement(ad(0x03, b"\x0d"))  # odd-length 16-bit UUID list


@given(st.binary(max_size=62))
def test_random_adverts_raise_only_decode_error(raw: bytes) -> None:
    try:
        a = parse_advertisement(raw)
    except DecodeError:
        return
    a.classify()
