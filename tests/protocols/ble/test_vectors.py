"""Golden vectors written by hand from the Bluetooth specifications' field tables.

Each payload below is assembled octet by octet from the spec (little-endian), independent of
the tables in protocols/ble, and checked field by field, then encoded back.
"""

from __future__ import annotations

import math

import pytest

from protocols.ble import DecodeError, decode, encode


def hx(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


def roundtrip(uuid: int, payload: bytes) -> dict:
    m = decode(uuid, payload)
    again = encode(uuid, **m.to_dict())
    assert again == payload, f"{again.hex()} != {payload.hex()}"
    assert decode(uuid, again) == m
    return m.to_dict()


# ----------------------------------------------------------------------------- 0x2A37


def test_hr_uint8_no_contact_support() -> None:
    d = roundtrip(0x2A37, hx("00 48"))
    assert d["heart_rate_bpm"] == 72 and d["sensor_contact"] is None
    assert d["energy_expended_kj"] is None and d["rr_intervals_1024"] is None and d["rr_intervals_ms"] is None
    assert d["unknown_flag_bits"] == 0 and d["trailing_bytes"] == 0


def test_hr_uint16_value() -> None:
    # flags bit0 = uint16; 0x012C = 300 bpm (format allows it; some straps always use uint16)
    d = roundtrip(0x2A37, hx("01 2C 01"))
    assert d["heart_rate_bpm"] == 300
    d = roundtrip(0x2A37, hx("01 48 00"))  # uint16 format with a small value is kept as uint16
    assert d["heart_rate_bpm"] == 72 and d["flags"] == 1


def test_hr_contact_supported_not_detected_is_false() -> None:
    # flags 0x04: contact detection supported, no contact. pycycling's bool(flags & 0x06) says True.
    assert decode(0x2A37, hx("04 48")).sensor_contact is False
    assert decode(0x2A37, hx("06 48")).sensor_contact is True


def test_hr_contact_bit1_without_bit2_means_unsupported() -> None:
    m = decode(0x2A37, hx("02 48"))
    assert m.sensor_contact is None
    assert encode(0x2A37, **m.to_dict()) == hx("02 48")  # the quirk survives a round trip
    assert encode(0x2A37, heart_rate_bpm=72) == hx("00 48")


def test_hr_energy_and_several_rr() -> None:
    # flags 0x1E: contact supported+detected, energy, RR; HR 0x91=145; energy 0x0140=320 kJ;
    # RR 0x0200=512 (500 ms), 0x0400=1024 (1000 ms), 0x0333=819 (799.8 ms)
    d = roundtrip(0x2A37, hx("1E 91 40 01 00 02 00 04 33 03"))
    assert d["heart_rate_bpm"] == 145 and d["sensor_contact"] is True and d["energy_expended_kj"] == 320
    assert d["rr_intervals_1024"] == [512, 1024, 819]
    assert d["rr_intervals_ms"] == pytest.approx([500.0, 1000.0, 819 * 1000 / 1024])


def test_hr_rr_with_uint16_hr_and_odd_trailing_byte() -> None:
    m = decode(0x2A37, hx("11 50 00 20 03 FF"))
    assert m.heart_rate_bpm == 80 and m.rr_intervals_1024 == (800,) and m.trailing_bytes == 1


def test_hr_reserved_bits_kept() -> None:
    m = decode(0x2A37, hx("E0 3C"))
    assert m.unknown_flag_bits == 0xE0 and m.heart_rate_bpm == 60
    assert encode(0x2A37, **m.to_dict()) == hx("E0 3C")


@pytest.mark.parametrize(
    "payload, field, offset",
    [("", "flags", 0), ("01 48", "heart_rate_bpm", 1), ("08 48 01", "energy_expended_kj", 2), ("10 48", "rr_intervals_1024", 2), ("10 48 01", "rr_intervals_1024", 2)],
)
def test_hr_too_short(payload: str, field: str, offset: int) -> None:
    with pytest.raises(DecodeError) as ei:
        decode(0x2A37, hx(payload))
    e = ei.value
    assert e.field == field and e.offset == offset and e.available == len(hx(payload))
    assert "0x2A37" in str(e) and field in str(e)


def test_hr_short_rr_keeps_heart_rate_in_partial() -> None:
    with pytest.raises(DecodeError) as ei:
        decode(0x2A37, hx("10 48"))
    assert ei.value.partial is not None and ei.value.partial.heart_rate_bpm == 72


# ----------------------------------------------------------------------------- misc


def test_body_sensor_location_and_battery() -> None:
    assert decode(0x2A38, hx("01")).body_sensor_location == 1  # chest
    assert decode(0x2A38, hx("2A")).body_sensor_location == 42  # reserved value kept
    assert roundtrip(0x2A19, hx("64"))["battery_level_pct"] == 100
    assert roundtrip(0x2A19, hx("00"))["battery_level_pct"] == 0
    with pytest.raises(DecodeError, match="prohibited"):
        decode(0x2A19, hx("65"))
    with pytest.raises(DecodeError):
        decode(0x2A19, b"")


def test_device_information_strings() -> None:
    m = decode(0x2A29, b"Polar Electro Oy\x00\x00")
    assert m.manufacturer_name == "Polar Electro Oy" and m.trailing_bytes == 2
    assert decode(0x2A24, "H10 \u00e9".encode()).model_number == "H10 \u00e9"
    with pytest.raises(DecodeError) as ei:
        decode(0x2A26, b"1.2\xff3")
    assert ei.value.offset == 3 and ei.value.partial.firmware_revision == "1.2"
    d = roundtrip(0x2A23, hx("01 02 03 04 05 A0 B0 C0"))
    assert d["manufacturer_identifier"] == 0x0504030201 and d["organizationally_unique_identifier"] == 0xC0B0A0
    d = roundtrip(0x2A50, hx("01 6B 00 2D 01 00 03"))
    assert d == {**d, "vendor_id_source": 1, "vendor_id": 0x006B, "product_id": 0x012D, "product_version": 0x0300}


# ----------------------------------------------------------------------------- 0x2A5B CSC


def test_csc_wheel_and_crank() -> None:
    # flags 0x03; wheel revs 0x00012345; wheel time 0x8000 (32 s); crank revs 0x00FE; crank time 0xFFFF
    d = roundtrip(0x2A5B, hx("03 45 23 01 00 00 80 FE 00 FF FF"))
    assert d["wheel_revolutions"] == 0x12345 and d["wheel_event_time_1024"] == 0x8000
    assert d["crank_revolutions"] == 0xFE and d["crank_event_time_1024"] == 0xFFFF


def test_csc_crank_only_and_reserved_bits() -> None:
    d = roundtrip(0x2A5B, hx("82 10 00 00 04"))
    assert d["wheel_revolutions"] is None and d["crank_revolutions"] == 16 and d["crank_event_time_1024"] == 1024
    assert d["unknown_flag_bits"] == 0x80


def test_csc_truncated_crank() -> None:
    with pytest.raises(DecodeError) as ei:
        decode(0x2A5B, hx("03 01 00 00 00 00 04 05 00"))
    e = ei.value
    assert e.field == "crank_revolutions/crank_event_time_1024" and e.offset == 7 and e.needed == 4 and e.available == 9
    assert e.partial.wheel_revolutions == 1 and e.partial.wheel_event_time_1024 == 1024


# ----------------------------------------------------------------------------- 0x2A63 CP


def test_cycling_power_every_field_in_flag_order() -> None:
    payload = hx(
        "FF 1F"        # flags: bits 0-12 all set
        "F4 01"        # power 500 W
        "65"           # pedal power balance 101/2 = 50.5 %
        "40 06"        # accumulated torque 1600/32 = 50 N·m
        "10 27 00 00"  # wheel revs 10000
        "00 08"        # wheel event time 2048 = 1 s (1/2048 s)
        "2C 01"        # crank revs 300
        "00 04"        # crank event time 1024 = 1 s (1/1024 s)
        "58 02 9C FF"  # max force 600 N, min force -100 N
        "40 06 E0 FF"  # max torque 50 N·m, min torque -1 N·m (1/32)
        "5A 40 0B"     # max angle 0x05A = 90, min angle 0x0B4 = 180 (12 bits each, LSB first)
        "14 00"        # top dead spot 20°
        "C8 00"        # bottom dead spot 200°
        "E8 03"        # accumulated energy 1000 kJ
    )
    d = roundtrip(0x2A63, payload)
    assert d["power_w"] == 500 and d["pedal_power_balance_pct"] == 50.5 and d["pedal_power_balance_left"] is True
    assert d["accumulated_torque_nm"] == 50.0 and d["accumulated_torque_crank_based"] is True
    assert d["wheel_revolutions"] == 10000 and d["wheel_event_time_2048"] == 2048
    assert d["crank_revolutions"] == 300 and d["crank_event_time_1024"] == 1024
    assert (d["maximum_force_n"], d["minimum_force_n"]) == (600, -100)
    assert (d["maximum_torque_nm"], d["minimum_torque_nm"]) == (50.0, -1.0)
    assert (d["maximum_angle_deg"], d["minimum_angle_deg"]) == (90, 180)
    assert (d["top_dead_spot_angle_deg"], d["bottom_dead_spot_angle_deg"]) == (20, 200)
    assert d["accumulated_energy_kj"] == 1000 and d["offset_compensation_indicator"] is True
    assert d["trailing_bytes"] == 0 and d["unknown_flag_bits"] == 0


def test_cycling_power_torque_is_skipped_to_reach_crank() -> None:
    # flags 0x24: accumulated torque + crank data; negative power (back-pedalling)
    d = roundtrip(0x2A63, hx("24 00 F6 FF 20 00 07 00 00 10"))
    assert d["power_w"] == -10 and d["accumulated_torque_nm"] == 1.0
    assert d["crank_revolutions"] == 7 and d["crank_event_time_1024"] == 4096


# ----------------------------------------------------------------------------- 0x2A53 RSC


def test_rsc_running_with_stride_and_distance() -> None:
    # flags 0x07; speed 0x0380 = 896/256 = 3.5 m/s; cadence 172 steps/min; stride 0x7D = 1.25 m;
    # distance 0x00002710 = 10000 * 0.1 = 1000 m
    d = roundtrip(0x2A53, hx("07 80 03 AC 7D 00 10 27 00 00"))
    assert d["speed_mps"] == 3.5 and d["cadence_spm"] == 172 and d["stride_length_m"] == 1.25
    assert d["total_distance_m"] == 1000.0 and d["is_running"] is True


def test_rsc_walking_minimal() -> None:
    d = roundtrip(0x2A53, hx("00 80 01 64"))
    assert d["speed_mps"] == 1.5 and d["cadence_spm"] == 100 and d["is_running"] is False
    assert d["stride_length_m"] is None and d["total_distance_m"] is None


# ----------------------------------------------------------------------------- FTMS


def test_indoor_bike_typical_trainer() -> None:
    # flags 0x0244: speed present (bit0=0), cadence (bit2), power (bit6), heart rate (bit9)
    # speed 0x0AF0 = 28.00 km/h; cadence 0x00B4 = 180/2 = 90 rpm; power 0x00FA = 250 W; HR 0x8C = 140
    d = roundtrip(0x2AD2, hx("44 02 F0 0A B4 00 FA 00 8C"))
    assert d["speed_kmh"] == 28.0 and d["cadence_rpm"] == 90.0 and d["power_w"] == 250 and d["heart_rate_bpm"] == 140
    assert d["average_speed_kmh"] is None and d["resistance_level"] is None


def test_indoor_bike_more_data_bit_inverted() -> None:
    d = roundtrip(0x2AD2, hx("41 00 C8 00"))  # bit0=1: no speed; bit6: power 200 W
    assert d["speed_kmh"] is None and d["power_w"] == 200


def test_indoor_bike_all_fields() -> None:
    payload = hx(
        "FF 1F"        # bits 1-12, bit 0 set: speed absent
        "E8 03"        # average speed 10.00 km/h
        "A0 00"        # cadence 80 rpm
        "9A 00"        # average cadence 77 rpm
        "10 27 00"     # distance 10000 m
        "05 00"        # resistance 5
        "2C 01"        # power 300 W
        "FA 00"        # average power 250 W
        "64 00 58 02 0A"  # energy 100 kcal, 600 kcal/h, 10 kcal/min
        "96"           # HR 150
        "55"           # MET 8.5
        "10 0E"        # elapsed 3600 s
        "2C 01"        # remaining 300 s
    )
    d = roundtrip(0x2AD2, payload)
    assert d["average_speed_kmh"] == 10.0 and d["cadence_rpm"] == 80.0 and d["average_cadence_rpm"] == 77.0
    assert d["total_distance_m"] == 10000 and d["resistance_level"] == 5 and d["average_power_w"] == 250
    assert (d["total_energy_kcal"], d["energy_per_hour_kcal"], d["energy_per_minute_kcal"]) == (100, 600, 10)
    assert d["metabolic_equivalent"] == 8.5 and d["elapsed_time_s"] == 3600 and d["remaining_time_s"] == 300


def test_ftms_undefined_bits_are_kept_and_lengths_strict() -> None:
    # a machine sets undefined bit 14 and sends an extra byte: both visible, decode succeeds
    m = decode(0x2AD2, hx("41 40 C8 00 00"))
    assert m.power_w == 200 and m.unknown_flag_bits == 0x4000 and m.trailing_bytes == 1
    assert encode(0x2AD2, **m.to_dict()) == hx("41 40 C8 00 00")
    # flags announce power but the bytes are missing
    with pytest.raises(DecodeError) as ei:
        decode(0x2AD2, hx("41 00 C8"))
    assert ei.value.field == "power_w" and ei.value.offset == 2 and ei.value.needed == 2 and ei.value.available == 3


def test_treadmill_fields() -> None:
    payload = hx(
        "1C 15"        # flags 0x151C: speed (bit0=0), distance(2), incline(3), elevation(4), HR(8), elapsed(10), force(12)
        "B0 04"        # speed 12.00 km/h
        "E8 03 00"     # distance 1000 m
        "32 00 F6 FF"  # inclination 5.0 %, ramp angle -1.0°
        "64 00 0A 00"  # elevation gain +10.0 m, -1.0 m
        "A0"           # HR 160
        "58 02"        # elapsed 600 s
        "14 00 C8 00"  # force on belt 20 N, power output 200 W
    )
    d = roundtrip(0x2ACD, payload)
    assert d["speed_kmh"] == 12.0 and d["total_distance_m"] == 1000
    assert d["inclination_pct"] == 5.0 and d["ramp_angle_deg"] == -1.0
    assert d["positive_elevation_gain_m"] == 10.0 and d["negative_elevation_gain_m"] == 1.0
    assert d["heart_rate_bpm"] == 160 and d["elapsed_time_s"] == 600
    assert d["force_on_belt_n"] == 20 and d["power_output_w"] == 200


def test_treadmill_pace_uint8() -> None:
    d = roundtrip(0x2ACD, hx("61 00 05 04"))  # bit0=1 no speed, bit5+bit6 pace 0.5 / 0.4 km/min
    assert d["pace_km_per_min"] == 0.5 and d["average_pace_km_per_min"] == 0.4


def test_cross_trainer_24_bit_flags() -> None:
    payload = hx(
        "88 81 00"     # flags 0x008188: speed(bit0=0), step rate(3), resistance(7), power(8), movement backward(15)
        "DC 05"        # speed 15.00 km/h
        "78 00 6E 00"  # 120 steps/min, average 110
        "32 00"        # resistance 5.0
        "96 00"        # power 150 W
    )
    d = roundtrip(0x2ACE, payload)
    assert d["speed_kmh"] == 15.0 and d["step_rate_spm"] == 120 and d["average_step_rate_spm"] == 110
    assert d["resistance_level"] == 5.0 and d["power_w"] == 150 and d["movement_backward"] is True
    assert d["unknown_flag_bits"] == 0
    m = decode(0x2ACE, hx("01 00 80"))  # bit 23 (reserved) in the third flag octet
    assert m.unknown_flag_bits == 0x800000


def test_rower_fields() -> None:
    payload = hx(
        "2C 02"        # flags 0x022C: stroke (bit0=0), distance(2), pace(3), power(5), HR(9)
        "3C"           # stroke rate 60/2 = 30 spm
        "D2 04"        # stroke count 1234
        "88 13 00"     # distance 5000 m
        "73 00"        # pace 115 s / 500 m
        "C8 00"        # power 200 W
        "A5"           # HR 165
    )
    d = roundtrip(0x2AD1, payload)
    assert d["stroke_rate_spm"] == 30.0 and d["stroke_count"] == 1234 and d["total_distance_m"] == 5000
    assert d["pace_s_per_500m"] == 115 and d["power_w"] == 200 and d["heart_rate_bpm"] == 165


def test_fitness_machine_feature() -> None:
    # features: cadence(1), total distance(2), HR(10), power(14) = 0x4406; targets: resistance(2), power(3), sim(13)
    d = roundtrip(0x2ACC, hx("06 44 00 00 0C 20 00 00"))
    assert set(d["machine_features"]) == {"cadence", "total_distance", "heart_rate_measurement", "power_measurement"}
    assert set(d["target_settings"]) == {"resistance_target", "power_target", "indoor_bike_simulation_parameters"}
    assert decode(0x2ACC, hx("00 00 02 00 00 00 00 80")).unknown_flag_bits == (1 << 17) | (1 << 63)


def test_training_status() -> None:
    d = roundtrip(0x2AD3, hx("00 01"))
    assert d["training_status"] == 1 and d["training_status_string"] is None
    d = roundtrip(0x2AD3, hx("01 0D") + b"Quick Start")
    assert d["training_status"] == 13 and d["training_status_string"] == "Quick Start"


@pytest.mark.parametrize(
    "payload, fields",
    [
        ("00", {"op_code": 0x00}),
        ("02 64 00", {"target_speed_kmh": 1.0}),
        ("02 D0 07", {"target_speed_kmh": 20.0}),
        ("03 F1 FF", {"target_inclination_pct": -1.5}),
        ("04 32", {"target_resistance_level": 5.0}),
        ("05 C8 00", {"target_power_w": 200}),
        ("08 02", {"stop_or_pause": 2}),
        ("0C 10 27 00", {"targeted_distance_m": 10000}),
        ("10 3C 00 78 00 B4 00 F0 00 2C 01", {"targeted_time_in_hr_zones_s": [60, 120, 180, 240, 300]}),
        # wind 0.5 m/s, grade -2.5 %, crr 0.004, cw 0.51 kg/m
        ("11 F4 01 06 FF 28 33", {"wind_speed_mps": 0.5, "grade_pct": -2.5, "rolling_resistance_coefficient": 0.004, "wind_resistance_coefficient_kg_per_m": 0.51}),
        ("12 3A 52", {"wheel_circumference_mm": 2105.0}),
        ("14 B4 00", {"targeted_cadence_rpm": 90.0}),
        ("80 05 01", {"request_op_code": 5, "result_code": 1}),
        ("80 13 01 E8 03 D0 07", {"request_op_code": 0x13, "target_speed_low_kmh": 10.0, "target_speed_high_kmh": 20.0}),
    ],
)
def test_control_point(payload: str, fields: dict) -> None:
    d = roundtrip(0x2AD9, hx(payload))
    for k, v in fields.items():
        assert d[k] == pytest.approx(v) if isinstance(v, float) else d[k] == v, k
    assert encode(0x2AD9, op_code=hx(payload)[0], **{k: v for k, v in d.items() if v is not None and k not in ("op_code", "unknown_flag_bits", "trailing_bytes")}) == hx(payload)


def test_control_point_response_flags_failure() -> None:
    m = decode(0x2AD9, hx("80 05 05"))
    assert m.is_response and not m.succeeded and m.result_code.name == "CONTROL_NOT_PERMITTED"


def test_machine_status() -> None:
    assert decode(0x2ADA, hx("04")).op_code.name == "STARTED_OR_RESUMED_BY_USER"
    d = roundtrip(0x2ADA, hx("05 E8 03"))
    assert d["target_speed_kmh"] == 10.0
    d = roundtrip(0x2ADA, hx("14 04"))
    assert d["spin_down_status"] == 4
    m = decode(0x2ADA, hx("7F 01 02"))  # an op code from a newer spec: kept, parameter counted
    assert m.op_code == 0x7F and m.trailing_bytes == 2


def test_supported_ranges() -> None:
    d = roundtrip(0x2AD4, hx("50 00 D0 07 0A 00"))
    assert (d["minimum_speed_kmh"], d["maximum_speed_kmh"], d["minimum_increment_kmh"]) == (0.8, 20.0, 0.1)
    d = roundtrip(0x2AD5, hx("9C FF C8 00 05 00"))
    assert (d["minimum_inclination_pct"], d["maximum_inclination_pct"], d["minimum_increment_pct"]) == (-10.0, 20.0, 0.5)
    d = roundtrip(0x2AD8, hx("00 00 E8 03 05 00"))
    assert (d["minimum_power_w"], d["maximum_power_w"], d["minimum_increment_w"]) == (0, 1000, 5)
    assert all(math.isfinite(v) for v in (d["minimum_power_w"], d["maximum_power_w"]))
