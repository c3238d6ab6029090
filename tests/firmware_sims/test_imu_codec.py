"""The custom IMU service codec (protocols.ble.imu): round trips, golden bytes, fuzzing."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, strategies as st

from protocols.ble import imu
from protocols.ble.errors import DecodeError, EncodeError

i16 = st.integers(-32768, 32767)
triple = st.tuples(i16, i16, i16)


@st.composite
def packets(draw):
    n = draw(st.integers(0, 19))
    gyro = draw(st.booleans())
    return dict(
        packet_seq=draw(st.integers(0, 0xFFFF)),
        sample_rate_dhz=draw(st.sampled_from([125, 250, 500, 1000, 2000])),
        first_sample=draw(st.integers(0, 0xFFFFFFFF)),
        accel_1_4096g=draw(st.lists(triple, min_size=n, max_size=n)),
        gyro_0_1dps=draw(st.lists(triple, min_size=n, max_size=n)) if gyro else None,
    )


def test_golden_bytes() -> None:
    p = imu.encode_imu_data(packet_seq=0x0102, sample_rate_dhz=1000, first_sample=7,
                            accel_1_4096g=[(4096, -1, 0)], gyro_0_1dps=[(10, 0, -10)])
    assert p == bytes([0x01, 0x02, 0x01, 0xE8, 0x03, 7, 0, 0, 0, 1]) + struct.pack("<6h", 4096, -1, 0, 10, 0, -10)
    m = imu.decode_imu_data(p)
    assert m.sample_rate_hz == 100.0
    assert m.accel_g == [(1.0, -1 / 4096, 0.0)]
    assert m.gyro_dps == [(1.0, 0.0, -1.0)]
    assert len(p) <= imu.MAX_PAYLOAD_BYTES


def test_max_samples_fit_mtu() -> None:
    for gyro in (False, True):
        n = imu.max_samples(gyro)
        p = imu.encode_imu_data(packet_seq=0, sample_rate_dhz=500, first_sample=0, accel_1_4096g=[(0, 0, 0)] * n,
                                gyro_0_1dps=[(0, 0, 0)] * n if gyro else None)
        assert len(p) <= imu.MAX_PAYLOAD_BYTES
    assert (imu.max_samples(False), imu.max_samples(True)) == (39, 19)


@given(packets())
def test_roundtrip(fields) -> None:
    p = imu.encode_imu_data(**fields)
    m = imu.decode_imu_data(p)
    assert [tuple(s) for s in fields["accel_1_4096g"]] == list(m.accel_1_4096g)
    assert imu.encode_imu_data(**m.to_dict()) == p
    assert m.trailing_bytes == 0 and m.unknown_flag_bits == 0


@given(packets(), st.data())
def test_truncated_keeps_valid_part(fields, data) -> None:
    p = imu.encode_imu_data(**fields)
    cut = data.draw(st.integers(0, len(p) - 1))
    if cut == len(p):
        return
    with pytest.raises(DecodeError) as ei:
        imu.decode_imu_data(p[:cut])
    e = ei.value
    assert e.available == cut and 0 <= e.offset <= cut
    if cut >= imu.HEADER_BYTES:
        assert e.partial is not None and e.partial.packet_seq == fields["packet_seq"]
        if e.field == "gyro":
            assert list(e.partial.accel_1_4096g) == [tuple(s) for s in fields["accel_1_4096g"]]


@given(st.binary(max_size=300))
def test_fuzz_only_decode_error(raw) -> None:
    try:
        m = imu.decode_imu_data(raw)
    except DecodeError:
        return
    again = imu.encode_imu_data(**m.to_dict())
    assert imu.decode_imu_data(again) == m


@given(st.binary(max_size=8))
def test_config_fuzz(raw) -> None:
    try:
        c = imu.decode_imu_config(raw)
    except DecodeError:
        assert len(raw) < 3
        return
    assert imu.decode_imu_config(imu.encode_imu_config(**c.to_dict())) == c


def test_encode_errors_name_field() -> None:
    with pytest.raises(EncodeError, match="int16"):
        imu.encode_imu_data(packet_seq=0, sample_rate_dhz=100, first_sample=0, accel_1_4096g=[(40000, 0, 0)])
    with pytest.raises(EncodeError, match="gyro"):
        imu.encode_imu_data(packet_seq=0, sample_rate_dhz=100, first_sample=0, accel_1_4096g=[(0, 0, 0)],
                            gyro_0_1dps=[])
