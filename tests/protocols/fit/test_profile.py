"""The hand-written profile subset agrees with the FIT SDK's profile (garmin-fit-sdk)."""

from __future__ import annotations

from garmin_fit_sdk import Profile

from protocols.fit.profile import (
    BASE_TYPES, HRV_BASE_TYPE, HRV_TIME_FIELD, POSITION_BASE_TYPE, POSITION_FIELDS, RECORD_STREAMS, Mesg,
)

SDK_BASE = {"enum": 0x00, "sint8": 0x01, "uint8": 0x02, "sint16": 0x83, "uint16": 0x84, "sint32": 0x85,
            "uint32": 0x86, "string": 0x07, "float32": 0x88, "float64": 0x89, "uint8z": 0x0A, "uint16z": 0x8B,
            "uint32z": 0x8C, "byte": 0x0D, "sint64": 0x8E, "uint64": 0x8F, "uint64z": 0x90}


def _field(mesg: int, num: int) -> dict:
    return Profile["messages"][mesg]["fields"][num]


def test_message_numbers() -> None:
    m = Profile["mesg_num"]
    for name in ("FILE_ID", "SPORT", "SESSION", "LAP", "RECORD", "EVENT", "DEVICE_INFO", "ACTIVITY", "HRV",
                 "FIELD_DESCRIPTION", "DEVELOPER_DATA_ID"):
        assert getattr(Mesg, name) == m[name], name


def test_record_stream_fields() -> None:
    for sf in RECORD_STREAMS:
        for num, bt in zip(sf.fields, sf.base_types):
            f = _field(Mesg.RECORD, num)
            assert SDK_BASE[f["base_type"]] == bt and bt in BASE_TYPES, (sf.stream, num)
            assert f["scale"][0] == sf.fit_scale and f["offset"][0] == sf.fit_offset, (sf.stream, num)
            assert sf.scale * sf.fit_scale == 1.0, sf.stream
    for num in POSITION_FIELDS:
        assert SDK_BASE[_field(Mesg.RECORD, num)["base_type"]] == POSITION_BASE_TYPE
    hrv = _field(Mesg.HRV, HRV_TIME_FIELD)
    assert hrv["name"] == "time" and SDK_BASE[hrv["base_type"]] == HRV_BASE_TYPE and hrv["scale"][0] == 1000
